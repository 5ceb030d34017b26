"""Torch networks behind the perceptual metrics (imported only when such a metric is computed)."""
