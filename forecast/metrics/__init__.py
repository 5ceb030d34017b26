"""Scores of forecasts: xarray in, xarray out (numpy-only at import time; torch only inside LPIPS/FVD)."""
