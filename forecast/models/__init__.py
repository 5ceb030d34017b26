"""Networks: RVD (with its VD and SimpleRVD switches) and the baselines, all behind ``SequenceModel``.

``build_model(config, n_channels)`` turns the ``model`` and ``diffusion`` sections of a run config into a model.
"""

from __future__ import annotations

from forecast.errors import ForecastError
from forecast.models.base import SequenceModel
from forecast.models.config import parse_diffusion_config, parse_model_config
from forecast.models.rvd import RVD, RVDState


def build_model(config: dict, n_channels: int) -> SequenceModel:
    """The model that ``config["model"]`` (and ``config["diffusion"]``) describe, for frames of ``n_channels``.

    Raises ``ForecastError`` naming the offending key for an unknown kind, an unknown key or a bad value.
    """
    if isinstance(n_channels, bool) or not isinstance(n_channels, int) or n_channels < 1:
        raise ForecastError(f"n_channels must be a positive integer, got {n_channels!r}")
    # Baselines (persistence, climatology, convgru, svg_lp, ivrnn, slamp) have their own options: dispatch before RVD's parser.
    from forecast.models.baselines import build_baseline
    from forecast.models.kinds import BASELINE_KINDS

    if isinstance(config, dict) and isinstance(config.get("model"), dict):
        if config["model"].get("kind") in BASELINE_KINDS:
            return build_baseline(config, n_channels)
    model = parse_model_config(config)
    diffusion = parse_diffusion_config(config)
    return RVD(n_channels, model, diffusion)  # parse_model_config has checked that the kind is one of RVD's


__all__ = ["RVD", "RVDState", "SequenceModel", "build_model"]
