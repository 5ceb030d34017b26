"""Scores of ensemble forecasts on labelled xarray objects (numpy/xarray/dask only: no torch, no models).

One concept per module: ``crps`` (the CRPS), ``calibration`` (RMSE, spread, spread-skill, rank and PIT
histograms), ``skill`` (skill scores and ratios against a reference), ``persistence`` (the persistence reference
forecast), ``distance`` (energy distance between
two ensembles), ``truth`` (the truth ensembles of known-answer stores), ``physics`` (kinetic-energy spectra,
divergence) and ``scores`` (the registry of scores behind the scores file of docs/formats.md). Forecast files
are read with ``forecast.forecast_file`` (torch-free); ``open_forecast`` is re-exported here.
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
from forecast.metrics.distance import energy_distance
from forecast.metrics.persistence import persistence_forecast, persistence_reference
from forecast.metrics.physics import divergence, kinetic_energy_spectrum
from forecast.metrics.scores import build_scores, score_forecast
from forecast.metrics.skill import crps_skill_score, score_ratio, skill_score
from forecast.metrics.truth import match_truth, open_truth
from forecast.scores_file import open_scores, score_variables

__all__ = [
    "build_scores",
    "crps_ensemble",
    "crps_ensemble_array",
    "crps_skill_score",
    "divergence",
    "energy_distance",
    "ensemble_mean_rmse",
    "ensemble_spread",
    "forecast_variables",
    "kinetic_energy_spectrum",
    "match_truth",
    "model_name",
    "open_forecast",
    "open_scores",
    "open_truth",
    "persistence_forecast",
    "persistence_reference",
    "pit_histogram",
    "rank_and_pit",
    "rank_histogram",
    "score_forecast",
    "score_ratio",
    "score_variables",
    "skill_score",
    "spread_skill_ratio",
]
