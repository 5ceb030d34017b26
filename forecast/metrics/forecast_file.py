"""Reading a forecast file (docs/formats.md, "Forecast file") for scoring and plotting.

For each forecast variable V the file holds ``V`` (init, member, lead_time, [channel,] y, x) and the
verifying truth ``V_obs`` (init, lead_time, [channel,] y, x). A ``V_context`` (init, context_time,
[channel,] y, x) with the context frames is optional; the plots use it where present.
"""

from __future__ import annotations

import os
from pathlib import Path

import xarray as xr

from forecast.errors import ForecastError

OBS_SUFFIX = "_obs"
CONTEXT_SUFFIX = "_context"
MODEL_NAME_ATTRS = ("model_name", "model", "name")


def open_netcdf(path: str | os.PathLike, chunks: dict | None = None) -> xr.Dataset:
    """Open a netCDF file lazily (dask chunks when ``chunks`` is given), or raise a one-line ForecastError."""
    path = Path(path)
    if not path.is_file():
        raise ForecastError(f"no such file: {path}")
    try:
        return xr.open_dataset(path, chunks=chunks)
    except Exception as exc:  # netCDF4/h5netcdf/xarray raise many types for "not a netCDF file"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ForecastError(f"{path} is not a readable netCDF file ({reason})") from None


def forecast_variables(ds: xr.Dataset, member_dim: str = "member", name: str = "dataset") -> list[str]:
    """The forecast variables V of ``ds`` (those with a ``V_obs``), checked against the conventions."""
    names = [v for v in ds.data_vars if f"{v}{OBS_SUFFIX}" in ds.data_vars]
    if not names:
        raise ForecastError(f"{name} is not a forecast file: no variable V with a verifying V{OBS_SUFFIX}")
    for v in names:
        ens, obs = ds[v], ds[f"{v}{OBS_SUFFIX}"]
        if member_dim not in ens.dims:
            raise ForecastError(
                f"{name}: forecast variable {v!r} has no {member_dim!r} dimension (dims {ens.dims})"
            )
        for dim in ("init", "lead_time"):
            if dim not in ens.dims:
                raise ForecastError(
                    f"{name}: forecast variable {v!r} has no {dim!r} dimension (dims {ens.dims})"
                )
        if set(ens.dims) - {member_dim} != set(obs.dims):
            raise ForecastError(
                f"{name}: {v}{OBS_SUFFIX} has dims {obs.dims}, expected those of {v} {ens.dims} less {member_dim!r}"
            )
    return names


def open_forecast(
    path: str | os.PathLike, chunks: dict | None = None, member_dim: str = "member"
) -> xr.Dataset:
    """Open and check a forecast file; ``chunks`` (e.g. ``{"init": 1}``) streams it through dask."""
    ds = open_netcdf(path, chunks)
    forecast_variables(ds, member_dim, str(path))
    return ds


def model_name(ds: xr.Dataset, default: str = "forecast") -> str:
    """The model's name from the file's attributes (``model_name``, ``model`` or ``name``)."""
    for key in MODEL_NAME_ATTRS:
        if ds.attrs.get(key):
            return str(ds.attrs[key])
    return default
