"""Truth ensembles of known-answer benchmarks (the store's optional ``truth`` group), matched to a forecast.

A ``truth`` group (docs/formats.md, "Field store") holds, for chosen test starts, K continuations of the
simulator from the exact state of that start with independent future randomness: variables as in ``test`` with
dims ``(init, member, lead_time, [channel,] y, x)`` and coordinates ``sequence`` and ``init_time`` along
``init`` (``init_time``: the store's ``time`` of the frame that lead 1 verifies against, as in forecast files).
The verifying truth (the test frames, a forecast file's ``V_obs``) is one more draw from the same distribution,
so the truth ensemble is the perfect forecast: its CRPS against the verifying truth is the oracle CRPS.

The group's format and its opening (``open_truth``, ``check_truth``) belong to ``forecast.field_store``, the
module of the store's format; they are re-exported here. A forecast is matched to the truth by (``sequence``,
``init_time``) of each init and by the value of ``lead_time``, never by position.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr

from forecast.errors import ForecastError
from forecast.field_store import INIT_KEYS, TEST_GROUP, check_truth, open_group, open_truth

__all__ = ["check_truth", "match_truth", "open_truth", "verifying_truth"]


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
        test = open_group(Path(store), {}, TEST_GROUP)
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
