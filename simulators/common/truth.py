"""The truth group every simulator shares: K members per test start, laid out for the known-answer benchmarks.

Layout (group ``truth``): variables as in ``test`` with dims ``(init, member, lead_time, y, x)``;
``init_time`` along ``init`` is the ``time`` value of the test frame that lead 1 verifies against, so lead
``l`` of init ``i`` verifies against ``test.sel(sequence=sequence[i], time=init_time[i] + l - 1)``. How the
members are made (what they are conditioned on) is the flow's (``Flow.continuations``,
``Flow.truth_description``).

The group is written under a temporary name (``truth_partial``) while runs fill their regions and renamed to
``truth`` only when every run has finished: a ``truth`` group is complete or absent.
"""

from __future__ import annotations

import os

import dask.array as da
import numpy as np
import xarray as xr

from forecast.field_store import PARTIAL_SUFFIX, TRUTH_GROUP, publish_group
from simulators.common.flow import FIELDS, Flow

GROUP = TRUTH_GROUP
PARTIAL_GROUP = TRUTH_GROUP + PARTIAL_SUFFIX
DIMS = ("init", "member", "lead_time", "y", "x")


def init_index(config, index: int, start: int) -> int:
    """Position along ``init`` of start number ``start`` of run ``index`` (runs in order, starts in time)."""
    return index * config.truth_inits + start


def _coords(config, test: xr.Dataset, flow: Flow) -> dict:
    """The truth group's coordinates: init (with its run's coordinates), member, lead_time, y, x."""
    inits = np.asarray(config.truth_init_times)
    n_seq = config.runs
    n_init = n_seq * inits.size
    sequence = np.repeat(np.arange(n_seq), inits.size)
    init_times = np.tile(inits, n_seq)
    time_attrs = {k: v for k, v in test["time"].attrs.items() if k != "axis"}  # one T axis: `time`
    coords = {
        "init": ("init", np.arange(n_init), {"long_name": "truth start"}),
        "sequence": ("init", sequence, dict(test["sequence"].attrs)),
        "init_time": (
            "init",
            init_times,
            {**time_attrs, "long_name": "time of the test frame that lead 1 verifies against"},
        ),
        "member": (
            "member",
            np.arange(config.truth_members),
            {"long_name": "truth ensemble member", "standard_name": "realization"},
        ),
        "lead_time": (
            "lead_time",
            np.arange(1, config.truth_horizon + 1),
            {
                **{k: v for k, v in time_attrs.items() if k != "units"},  # a frame count: no UDUNITS time
                "long_name": "frames after the start's last context frame",
                "standard_name": "forecast_period",  # climpred and cf_xarray find the lead axis by it
            },
        ),
        **flow.truth_coords(config, sequence, init_times),
        "y": test["y"].variable,
        "x": test["x"].variable,
    }
    for name, coord in test.coords.items():
        if coord.dims == ("sequence",) and name not in coords:
            coords[name] = ("init", np.asarray(coord.values)[sequence], dict(coord.attrs))
    return coords


def skeleton(config, test: xr.Dataset, flow: Flow) -> xr.Dataset:
    """The lazily zero-filled truth group, coordinates and attributes taken from the ``test`` skeleton."""
    n_init = config.runs * len(config.truth_init_times)
    height, width = config.size
    shape = (n_init, config.truth_members, config.truth_horizon, height, width)
    chunks = (1, 1, config.truth_horizon, height, width)
    data_vars = {
        name: (DIMS, da.zeros(shape, chunks=chunks, dtype=np.float32), dict(test[name].attrs))
        for name in FIELDS
    }
    attrs = {
        **test.attrs,
        "group": GROUP,
        "truth_members": config.truth_members,
        "truth_horizon": config.truth_horizon,
        "truth_context": config.truth_context,
        "truth_description": flow.truth_description,
    }
    return xr.Dataset(data_vars, coords=_coords(config, test, flow), attrs=attrs)


def write_start(path: str | os.PathLike, config, index: int, start: int, members: dict) -> None:
    """Write the members of start ``start`` of run ``index`` into the partial truth group."""
    i = init_index(config, index, start)
    batch = xr.Dataset({name: (DIMS, members[name][None]) for name in FIELDS})
    region = {dim: slice(None) for dim in DIMS[1:]}
    region["init"] = slice(i, i + 1)
    batch.to_zarr(str(path), group=PARTIAL_GROUP, region=region, mode="r+", consolidated=False)


def publish(path: str | os.PathLike) -> None:
    """Give the finished partial group its final name (one rename: the group is then complete)."""
    publish_group(path, GROUP)
