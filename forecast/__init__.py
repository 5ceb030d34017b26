"""Probabilistic forecasting of gridded spatio-temporal fields.

The package is laid out by concept: ``field_store`` (opening and checking field stores), ``data`` (training
windows), ``diffusion`` (the diffusion math), ``models`` (networks), ``training``, ``rollout``,
``forecast_file``, ``metrics`` and ``plots``; ``cli`` is a thin command-line front end over all of them.

The main entry points are importable from here, loaded on first use so that ``import forecast`` stays light
(no torch, no lbmpy until they are needed):

=====================  ==================================================================
``simulate_karman``    write a vortex-street field store (``simulators.karman.generate``)
``KarmanConfig``       its parameters
``open_field_store``   open one group of a field store as an xarray Dataset
``load_config``        a shipped config by name (``"tiny"``) or a YAML file
``config_names``       the shipped configs
``Trainer``            train a model on a store into a run directory
``load_run``           a trained run: model, channel layout, config
``rollout_run``        ensemble forecasts of a store with a run, written as a forecast file
``open_forecast``      open a forecast file
``score_forecast``     the scores of a forecast Dataset (a scores file when written)
``open_scores``        open a scores file, its scores of each variable by name: ``open_scores(p)["u"]``
``plot_files``         the figures of scores files and forecast files
``ForecastError``      the one exception for bad input
=====================  ==================================================================
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> (module, attribute): the public API, imported on first access
_API = {
    "simulate_karman": ("simulators.karman", "generate"),
    "KarmanConfig": ("simulators.karman", "KarmanConfig"),
    "open_field_store": ("forecast.field_store", "open_field_store"),
    "load_config": ("forecast.training.config", "load_config"),
    "config_names": ("forecast.configs", "config_names"),
    "Trainer": ("forecast.training", "Trainer"),
    "load_run": ("forecast.training", "load_run"),
    "rollout_run": ("forecast.rollout", "rollout_run"),
    "open_forecast": ("forecast.forecast_file", "open_forecast"),
    "score_forecast": ("forecast.metrics.scores", "score_forecast"),
    "open_scores": ("forecast.scores_file", "open_scores"),
    "plot_files": ("forecast.plots", "plot_files"),
    "ForecastError": ("forecast.errors", "ForecastError"),
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'forecast' has no attribute {name!r}")
    module, attribute = _API[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
