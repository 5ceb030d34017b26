"""Truth ensembles of known-answer benchmarks (the store's optional ``truth`` group), matched to a forecast.

A ``truth`` group (docs/formats.md, "Field store") holds, for chosen test starts, K continuations of the
simulator from the exact state of that start with independent future randomness: variables as in ``test`` with
dims ``(init, member, lead_time, [channel,] y, x)`` and coordinates ``sequence`` and ``init_time`` along
``init`` (``init_time``: the store's ``time`` of the frame that lead 1 verifies against, as in forecast files).
The verifying truth (the test frames, a forecast file's ``V_obs``) is one more draw from the same distribution,
so the truth ensemble is the perfect forecast: its CRPS against the verifying truth is the oracle CRPS.

A forecast is matched to the truth by (``sequence``, ``init_time``) of each init and by the value of
``lead_time``, never by position.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr

from forecast.errors import ForecastError
from forecast.field_store import TRUTH_GROUP

INIT_KEYS = ("sequence", "init_time")


def open_truth(store: str | os.PathLike, chunks: dict | str | None = None) -> xr.Dataset:
    """The ``truth`` group of a field store, lazily (dask-backed), checked for the dims and coordinates."""
    store = Path(store)
    if not store.exists():
        raise ForecastError(f"no field store at {store}")
    if not store.is_dir():
        raise ForecastError(
            f"{store} is a file, not a zarr field store (a folder) with a {TRUTH_GROUP!r} group"
        )
    try:
        truth = _open_group(store, chunks if chunks is not None else {})
    except Exception as exc:  # zarr raises several types for "no such group" / "not a store"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ForecastError(
            f"{store} has no readable {TRUTH_GROUP!r} group ({reason}); a known-answer store is written with "
            "truth ensembles by `forecast simulate` (docs/guide/simulate.md)"
        ) from None
    check_truth(truth, f"{store}[{TRUTH_GROUP}]")
    return truth


def _open_group(store: Path, chunks: dict | str, group: str = TRUTH_GROUP) -> xr.Dataset:
    """A group of the store, from consolidated metadata where the store has it (no warning either way)."""
    try:
        return xr.open_zarr(store, group=group, chunks=chunks, consolidated=True)
    except (KeyError, ValueError):  # no consolidated metadata (a store written before they were consolidated)
        return xr.open_zarr(store, group=group, chunks=chunks, consolidated=False)


def verifying_truth(
    store: str | os.PathLike, forecast: xr.Dataset, variables: list[str]
) -> xr.Dataset | None:
    """The store's test frames at the forecast's (``sequence``, ``valid_time``), lazily: what ``V_obs`` must be.

    None where the forecast file has no ``valid_time`` (files written before it existed); a ForecastError
    when the test group lacks those frames (the forecast was not made from this store).
    """
    if "valid_time" not in forecast.coords or "sequence" not in forecast.coords:
        return None
    try:
        test = _open_group(Path(store), {}, "test")
        frames = test[variables].sel(
            sequence=xr.DataArray(forecast["sequence"].values, dims="init"),
            time=xr.DataArray(forecast["valid_time"].values, dims=("init", "lead_time")),
        )
    except (KeyError, ValueError, FileNotFoundError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ForecastError(
            f"{store}'s test group lacks the frames the forecast verifies against ({reason}): the forecast was "
            "not made from this store"
        ) from None
    return frames.drop_vars(list(frames.coords))


def check_truth(truth: xr.Dataset, name: str = "the truth group") -> None:
    """Raise a one-line ForecastError unless ``truth`` has the truth-group layout."""
    if not truth.data_vars:
        raise ForecastError(f"{name} has no data variables")
    for var, da in truth.data_vars.items():
        lead = ("init", "member", "lead_time")
        if da.dims[:3] != lead or da.dims[-2:] != ("y", "x") or len(da.dims) not in (5, 6):
            raise ForecastError(
                f"{name}: variable {var!r} has dims {da.dims}; expected (init, member, lead_time, [channel,] y, x)"
            )
    for key in INIT_KEYS:
        if key not in truth.coords or truth[key].dims != ("init",):
            raise ForecastError(f"{name} lacks the coordinate {key!r} along 'init'")
    if "lead_time" not in truth.coords:
        raise ForecastError(f"{name} lacks the coordinate 'lead_time'")


def _init_keys(ds: xr.Dataset, name: str) -> list[tuple]:
    for key in INIT_KEYS:
        if key not in ds.coords or ds[key].dims != ("init",):
            raise ForecastError(
                f"{name} lacks the coordinate {key!r} along 'init' that matches it to the truth ensembles"
            )
    return [tuple(k) for k in zip(*(np.asarray(ds[key].values).tolist() for key in INIT_KEYS))]


def _describe(keys: list[tuple], limit: int = 3) -> str:
    shown = ", ".join(f"(sequence {s}, init_time {t})" for s, t in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def match_truth(
    forecast: xr.Dataset, truth: xr.Dataset, variables: list[str], member_dim: str = "member"
) -> xr.Dataset:
    """The truth ensembles of ``variables`` at the forecast's inits and lead times, on the forecast's coordinates.

    Returns a Dataset with, for each V, ``V`` (init, member, lead_time, [channel,] y, x) laid out like the
    forecast's ``V`` (the ``member`` dim has the truth's size K). Raises a one-line ForecastError when a
    forecast start or lead time is not in the truth group, or the grids differ.
    """
    check_truth(truth)
    missing_vars = [v for v in variables if v not in truth.data_vars]
    if missing_vars:
        raise ForecastError(f"the truth group lacks the forecast variables {missing_vars}")
    position = {key: i for i, key in enumerate(_init_keys(truth, "the truth group"))}
    wanted = _init_keys(forecast, "the forecast")
    absent = [key for key in wanted if key not in position]
    if absent:
        raise ForecastError(
            f"{len(absent)} of the forecast's {len(wanted)} starts are not in the truth group: {_describe(absent)}; "
            "roll out exactly the truth starts (`forecast rollout ... --starts truth`)"
        )
    leads = np.asarray(forecast["lead_time"].values)
    truth_leads = np.asarray(truth["lead_time"].values)
    absent_leads = [lead for lead in leads.tolist() if lead not in set(truth_leads.tolist())]
    if absent_leads:
        raise ForecastError(
            f"the truth group covers lead times {truth_leads.min()}..{truth_leads.max()}, the forecast also "
            f"{absent_leads[:5]}: roll out a horizon of at most {truth_leads.size} frames"
        )
    index = {"init": [position[key] for key in wanted]}
    lead_index = [int(np.flatnonzero(truth_leads == lead)[0]) for lead in leads.tolist()]
    out = {}
    for v in variables:
        ens = forecast[v]
        da = truth[v].isel(init=index["init"], lead_time=lead_index)
        extra = [d for d in ens.dims if d != member_dim]
        if {d: da.sizes.get(d) for d in extra} != {d: ens.sizes[d] for d in extra}:
            raise ForecastError(
                f"the truth ensemble of {v!r} has sizes {dict(da.sizes)}, the forecast {dict(ens.sizes)}"
            )
        for dim in ("y", "x"):
            if dim in da.coords and dim in ens.coords and not np.allclose(da[dim].values, ens[dim].values):
                raise ForecastError(f"the truth group's {dim!r} coordinate differs from the forecast's")
        da = da.drop_vars(list(da.coords)).rename({"member": member_dim})
        out[v] = da.transpose(*ens.dims).assign_coords(
            {d: ens[d] for d in ens.dims if d != member_dim and d in ens.coords}
        )
    return xr.Dataset(out)
