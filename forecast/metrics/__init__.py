"""Scores of ensemble forecasts on labelled xarray objects (numpy/xarray/dask only: no torch, no models).

One concept per module: ``crps`` (the CRPS), ``calibration`` (RMSE, spread, spread-skill, rank and PIT
histograms), ``skill`` (skill scores against a reference), ``physics`` (kinetic-energy spectra, divergence)
and ``scores`` (the scores file of CONVENTIONS.md). Forecast files are read with ``forecast.forecast_file``
(torch-free); ``open_forecast`` is re-exported here.
The perceptual scores of video forecasts (``perceptual``: PSNR, SSIM, LPIPS; ``fvd``; ``video``) import torch
only when called, so importing this package stays light.
"""

from forecast.forecast_file import forecast_variables, model_name, open_forecast
from forecast.metrics.calibration import (
    ensemble_mean_rmse,
    ensemble_spread,
    pit_histogram,
    rank_and_pit,
    rank_histogram,
    spread_skill_ratio,
)
from forecast.metrics.crps import crps_ensemble, crps_ensemble_array
from forecast.metrics.physics import divergence, kinetic_energy_spectrum
from forecast.metrics.scores import build_scores, score_forecast
from forecast.metrics.skill import crps_skill_score, persistence_forecast, persistence_reference, skill_score

__all__ = [
    "build_scores",
    "crps_ensemble",
    "crps_ensemble_array",
    "crps_skill_score",
    "divergence",
    "ensemble_mean_rmse",
    "ensemble_spread",
    "forecast_variables",
    "kinetic_energy_spectrum",
    "model_name",
    "open_forecast",
    "persistence_forecast",
    "persistence_reference",
    "pit_histogram",
    "rank_and_pit",
    "rank_histogram",
    "score_forecast",
    "skill_score",
    "spread_skill_ratio",
]
