"""The scores file (``docs/formats.md``, "Scores file"): its naming rule and its reader.

A scores file holds, for each forecast variable V, one netCDF variable ``{score}_{V}`` per score (``crps_V``,
``crps_mean_V``, ``spread_skill_V``, ...; the registry is ``forecast.metrics.scores``) and a few scores of the
velocity pair (``ke_spectrum``, ...). The name is built by :func:`score_name` and taken apart by
:class:`Scores`, so no caller spells ``f"crps_mean_{v}"``: ``open_scores(path)["u"]["crps_mean"]``.

This module is a file format, below ``forecast.metrics``: it needs xarray only, and ``forecast.filekind``
sniffs files with it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import xarray as xr

from forecast.errors import ForecastError

SCORES_FILE_TYPE = "forecast scores"
CRPS_MEAN = "crps_mean"  # every scores file has crps_mean_V for each of its forecast variables V
_CRPS_MEAN_PREFIX = CRPS_MEAN + "_"


def score_name(score: str, variable: str) -> str:
    """The netCDF name of ``score`` (a metric key: ``"crps_mean"``) of forecast variable ``variable``."""
    return f"{score}_{variable}"


def score_variables(scores: xr.Dataset) -> list[str]:
    """The forecast variables V that a scores file (or Dataset) holds scores of, in file order."""
    return [
        str(n)[len(_CRPS_MEAN_PREFIX) :] for n in scores.data_vars if str(n).startswith(_CRPS_MEAN_PREFIX)
    ]


def looks_like_scores(file_type: str, names: Iterable) -> bool:
    """The scores-file rule on a file's ``file_type`` attribute and variable names (also for a bare netCDF
    header, which ``forecast.filekind`` reads without xarray)."""
    return file_type == SCORES_FILE_TYPE or any(str(n).startswith(_CRPS_MEAN_PREFIX) for n in names)


def is_scores_file(ds: xr.Dataset) -> bool:
    """Whether ``ds`` is a scores file (by its ``file_type`` attribute or its variables)."""
    return looks_like_scores(ds.attrs.get("file_type", ""), ds.data_vars)


class Scores:
    """A scores file (or scores Dataset) with its per-variable scores reachable by name.

    ``scores["u"]`` is a Dataset of the scores of ``u`` under their metric keys (``crps``, ``crps_mean``,
    ``spread_skill``, ...); ``scores.variables`` lists the forecast variables; ``scores.dataset`` is the file
    as written (the velocity-pair scores ``ke_spectrum``, ... are there). Usable as a context manager.
    """

    def __init__(self, dataset: xr.Dataset):
        self.dataset = dataset
        self.variables = score_variables(dataset)
        if not self.variables:
            raise ForecastError("not a scores file: no crps_mean_V variable")

    def _owner(self, name: str) -> str | None:
        """The forecast variable a netCDF variable scores (the longest V it ends ``_V`` with), or None."""
        owners = [v for v in self.variables if name.endswith("_" + v) and len(name) > len(v) + 1]
        return max(owners, key=len) if owners else None

    def __getitem__(self, variable: str) -> xr.Dataset:
        if variable not in self.variables:
            raise KeyError(f"no scores of {variable!r}; the file scores {self.variables}")
        suffix = "_" + variable
        names = {n: str(n)[: -len(suffix)] for n in self.dataset.data_vars if self._owner(str(n)) == variable}
        out = self.dataset[list(names)].rename(names)
        out.attrs = dict(self.dataset.attrs, variable=variable)
        return out

    def __iter__(self) -> Iterator[str]:
        return iter(self.variables)

    def __contains__(self, variable: object) -> bool:
        return variable in self.variables

    def get(self, variable: str, score: str) -> xr.DataArray | None:
        """The score ``score`` of ``variable``, or None where the file lacks it (e.g. no truth ensemble)."""
        name = score_name(score, variable)
        return self.dataset[name] if name in self.dataset else None

    @property
    def attrs(self) -> dict:
        return self.dataset.attrs

    def close(self) -> None:
        self.dataset.close()

    def __enter__(self) -> Scores:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        model = self.attrs.get("model_name", "?")
        return f"<Scores of {model}: variables {self.variables}, {len(self.dataset.data_vars)} scores>"


def open_scores(path: str | os.PathLike, chunks: dict | None = None) -> Scores:
    """Open a scores file (written by ``forecast score`` or ``score_forecast(...).to_netcdf``) as :class:`Scores`.

    A missing file, or a file that is not a scores file, is a one-line ForecastError naming what was given.
    """
    path = Path(path)
    if not path.is_file():
        raise ForecastError(f"no scores file at {path}")
    try:
        ds = xr.open_dataset(path, chunks=chunks)
    except Exception as exc:
        from forecast.filekind import describe

        raise ForecastError(f"{path} is {describe(path)}, not a scores file ({type(exc).__name__})") from None
    if not is_scores_file(ds) or not score_variables(ds):
        from forecast.filekind import describe

        ds.close()
        raise ForecastError(f"{path} is {describe(path)}, not a scores file")
    return Scores(ds)
