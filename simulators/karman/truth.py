"""Perfect-model truth ensembles: K continuations of a run from its exact state at chosen test starts.

At each start (``KarmanConfig.truth_init_times``) the run saves its whole state (both PDF buffers, the
macroscopic fields, the inlet-noise process), computes ``truth_members`` continuations of ``truth_horizon``
frames, each with its own future noise (``noise.member_seed``), and then restores the saved state, noise
generator included, so the run itself goes on exactly as if it had not forked: its test frames are one more
draw from the same distribution (the verifying truth of docs/formats.md).

Layout (group ``truth``): variables as in ``test`` with dims ``(init, member, lead_time, y, x)``;
``init_time`` along ``init`` is the ``time`` value of the test frame that lead 1 verifies against, so lead
``l`` of init ``i`` verifies against ``test.sel(sequence=sequence[i], time=init_time[i] + l - 1)``.

The group is written under a temporary name (``truth_partial``) while runs fill their regions and renamed to
``truth`` only when every run has finished: a ``truth`` group is complete or absent.
"""

from __future__ import annotations

import os

import dask.array as da
import numpy as np
import xarray as xr

from forecast.field_store import PARTIAL_SUFFIX, TRUTH_GROUP, publish_group
from simulators.karman.config import KarmanConfig
from simulators.karman.lattice import Lattice
from simulators.karman.noise import member_seed, sequence_seed
from simulators.karman.run import FIELDS, run_name, sample_frame

GROUP = TRUTH_GROUP
PARTIAL_GROUP = TRUTH_GROUP + PARTIAL_SUFFIX


def init_index(config: KarmanConfig, index: int, start: int) -> int:
    """Position along ``init`` of start number ``start`` of run ``index`` (runs in order, starts in time)."""
    return index * config.truth_inits + start


def continuations(
    lattice: Lattice, config: KarmanConfig, indices: int | list[int], init_time: int
) -> list[dict[str, np.ndarray]]:
    """``{name: (members, horizon, height, width)}`` per run of ``indices`` (the runs of a batched lattice,
    in channel order; one index: a single run), forked from the lattice's current state, which is the state
    of frame ``init_time - 1``; the lattice is left exactly in that state. Member ``m`` of every run is
    computed in the same launch."""
    indices = [indices] if isinstance(indices, int) else list(indices)
    saved = lattice.save_state()
    seeds = [sequence_seed(config.noise_seed, index) for index in indices]
    height, width = config.size
    shape = (config.truth_members, config.truth_horizon, height, width)
    out = [{name: np.empty(shape, np.float32) for name in FIELDS} for _ in indices]
    name = f"{', '.join(run_name(i) for i in indices)} truth start {init_time}"
    for member in range(config.truth_members):
        member_seeds = [member_seed(seed, init_time, member) for seed in seeds]
        lattice.restore_state(saved, noise_seed=member_seeds[0] if lattice.members == 1 else member_seeds)
        for lead in range(config.truth_horizon):
            lattice.advance(config.every)
            lattice.check_stable(name, lead + 1)
            for channel, run in enumerate(out):
                frame = sample_frame(lattice, channel)
                for field in FIELDS:
                    run[field][member, lead] = frame[field]
    lattice.restore_state(saved)
    return out


def _member_seeds(config: KarmanConfig, sequence: np.ndarray, init_times: np.ndarray) -> np.ndarray:
    """(init, member) noise seeds of the members' futures (``noise.member_seed``)."""
    return np.array(
        [
            [member_seed(sequence_seed(config.noise_seed, s), int(t), m) for m in range(config.truth_members)]
            for s, t in zip(sequence, init_times)
        ],
        dtype=np.int64,
    )


def _coords(config: KarmanConfig, test: xr.Dataset) -> dict:
    """The truth group's coordinates: init (with its run's coordinates), member, lead_time, y, x."""
    inits = np.asarray(config.truth_init_times)
    n_seq = len(config.reynolds)
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
        "noise_seed": (
            ("init", "member"),
            _member_seeds(config, sequence, init_times),
            {"long_name": "seed of the member's future inlet noise (noise.member_seed)", "units": "1"},
        ),
        "y": test["y"].variable,
        "x": test["x"].variable,
    }
    for name, coord in test.coords.items():
        if coord.dims == ("sequence",) and name not in coords:
            coords[name] = ("init", np.asarray(coord.values)[sequence], dict(coord.attrs))
    return coords


def skeleton(config: KarmanConfig, test: xr.Dataset) -> xr.Dataset:
    """The lazily zero-filled truth group, coordinates and attributes taken from the ``test`` skeleton."""
    n_init = len(config.reynolds) * len(config.truth_init_times)
    height, width = config.size
    shape = (n_init, config.truth_members, config.truth_horizon, height, width)
    chunks = (1, 1, config.truth_horizon, height, width)
    dims = ("init", "member", "lead_time", "y", "x")
    data_vars = {
        name: (dims, da.zeros(shape, chunks=chunks, dtype=np.float32), dict(test[name].attrs))
        for name in FIELDS
    }
    attrs = {
        **test.attrs,
        "group": GROUP,
        "truth_members": config.truth_members,
        "truth_horizon": config.truth_horizon,
        "truth_context": config.truth_context,
        "truth_description": (
            "perfect-model ensemble: continuations from the exact simulator state of the frame before "
            "init_time, each with independent future inlet noise; lead l verifies against "
            "test.sel(sequence=sequence, time=init_time + l - 1)"
        ),
    }
    return xr.Dataset(data_vars, coords=_coords(config, test), attrs=attrs)


def write_start(path: str | os.PathLike, config: KarmanConfig, index: int, start: int, members: dict) -> None:
    """Write the continuations of start ``start`` of run ``index`` into the partial truth group."""
    i = init_index(config, index, start)
    batch = xr.Dataset(
        {name: (("init", "member", "lead_time", "y", "x"), members[name][None]) for name in FIELDS}
    )
    region = {dim: slice(None) for dim in ("member", "lead_time", "y", "x")}
    region["init"] = slice(i, i + 1)
    batch.to_zarr(str(path), group=PARTIAL_GROUP, region=region, mode="r+", consolidated=False)


def publish(path: str | os.PathLike) -> None:
    """Give the finished partial group its final name (one rename: the group is then complete)."""
    publish_group(path, GROUP)
