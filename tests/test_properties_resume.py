"""Randomised resume (hypothesis): work interrupted at a generated point and resumed gives the file of an
uninterrupted run.

* rollouts: generated ensemble sizes, member batches, horizons and starts, split over 1-3 ranks (a single
  process when 1); every rank may be interrupted (Ctrl-C) at a generated sampling call, then all resume; the
  joined file is the single-process file;
* simulations (slow): the stochastic street with truth ensembles, interrupted after a generated number of
  frames (once or twice), resumed to the store an uninterrupted generation writes.

Example counts are stated per test; the default profile is deterministic (tests/conftest.py).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from test_rollout import RandomWalk, _dataset, _layout

from forecast.rollout import RolloutInterrupted, rollout
from forecast.rollout_shards import Shard
from simulators.karman import KarmanConfig, generate
from simulators.karman import writer as karman_writer


def _assert_same_file(a_path: Path, b_path: Path) -> None:
    with xr.open_dataset(a_path) as a, xr.open_dataset(b_path) as b:
        a.attrs.pop("history"), b.attrs.pop("history")  # when it was made: differs
        xr.testing.assert_identical(a.load(), b.load())


@st.composite
def rollout_plans(draw):
    options = dict(
        members=draw(st.integers(1, 4)),
        context=draw(st.integers(1, 3)),
        horizon=draw(st.integers(1, 3)),
        inits=draw(st.integers(1, 5)),
        batch_size=draw(st.integers(1, 4)),
        seed=draw(st.integers(0, 99)),
    )
    world = draw(st.integers(1, 3))
    calls_per_init = math.ceil(options["members"] / options["batch_size"]) * options["horizon"]
    # per rank: the sampling call it is stopped at (None: not stopped); beyond its calls it is not stopped
    stops = [draw(st.none() | st.integers(1, 5 * calls_per_init)) for _ in range(world)]
    return options, world, calls_per_init, stops, draw(st.permutations(range(1, world)))


@settings(max_examples=15)
@given(rollout_plans())
def test_interrupted_and_sharded_rollouts_resume_to_the_single_process_file(plan):
    options, world, calls_per_init, stops, order = plan
    ds = _dataset()
    with tempfile.TemporaryDirectory() as tmp:
        single = rollout(RandomWalk(), _layout(ds), ds, Path(tmp) / "single.nc", **options)
        out = Path(tmp) / "out.nc"
        shard = (lambda r: Shard(r, world)) if world > 1 else (lambda r: None)
        calls = [len(range(r, options["inits"], world)) * calls_per_init for r in range(world)]
        for rank in [*order, 0]:  # first pass, rank 0 last (it joins, waiting for every shard)
            stopped = stops[rank] is not None and stops[rank] <= calls[rank]
            if rank == 0 and not stopped:
                continue  # rank 0 finishing now would wait for shards not yet resumed
            model = RandomWalk(fail_at_call=stops[rank])
            if stopped:
                with pytest.raises(RolloutInterrupted, match="--resume"):
                    rollout(model, _layout(ds), ds, out, **options, shard=shard(rank))
                assert not out.exists()
            else:
                rollout(model, _layout(ds), ds, out, **options, shard=shard(rank))
        for rank in [*order, 0]:  # everyone resumes; a finished shard is not redone
            model = RandomWalk()
            rollout(model, _layout(ds), ds, out, **options, shard=shard(rank), resume=True)
            if stops[rank] is None or stops[rank] > calls[rank]:
                assert model.calls == (calls[rank] if rank == 0 else 0)
            else:  # only the inits the stop left unfinished are generated again
                finished = (stops[rank] - 1) // calls_per_init
                assert model.calls == calls[rank] - finished * calls_per_init
        _assert_same_file(out, single)
        assert sorted(p.name for p in Path(tmp).iterdir()) == ["out.nc", "single.nc"]  # no partial left


# ------------------------------------------------------------------------------------------------ simulation
# The stochastic street of tests/test_karman_noise.py (32x96 cells, D = 2) with truth ensembles, two runs at
# Reynolds numbers this cylinder resolves.
TINY = dict(frames=6, test_frames=5, every=8, size=(32, 32), spinup=16, write_batch=4, time_chunk=2)
TRUTH = dict(truth_members=3, truth_inits=2, truth_horizon=2, truth_context=1)
SIMULATION = KarmanConfig(reynolds=(90.0, 100.0), inflow_noise=0.2, **TINY, **TRUTH)


@pytest.fixture(scope="module")
def uninterrupted_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("karman") / "straight.zarr"
    generate(path, SIMULATION, scheduler="synchronous", progress=False)
    return path


def _store(path: Path) -> dict[str, xr.Dataset]:
    out = {}
    for group in ("train", "test", "truth"):
        ds = xr.open_zarr(str(path), group=group, consolidated=False).load()
        ds.attrs.pop("history", None)
        out[group] = ds
    return out


class _StopAfter:
    """RunWriter.add that raises KeyboardInterrupt (Ctrl-C) once ``frames`` frames have been handed over."""

    def __init__(self, monkeypatch, frames: int):
        self.left = frames
        real_add = karman_writer.RunWriter.add

        def add(writer, frame):
            if self.left == 0:
                raise KeyboardInterrupt
            self.left -= 1
            real_add(writer, frame)

        monkeypatch.setattr(karman_writer.RunWriter, "add", add)


@pytest.mark.slow  # a few tiny simulations: about 30 s on a quiet machine
@settings(max_examples=3)
@given(st.lists(st.integers(0, 2 * SIMULATION.frames_per_run - 1), min_size=1, max_size=2))
def test_interrupted_simulation_resumes_to_the_uninterrupted_store(uninterrupted_store, stops):
    """Stopped after each generated number of frames (counted from that attempt's start), then resumed."""
    reference = _store(uninterrupted_store)
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as monkeypatch:
        path = Path(tmp) / "resumed.zarr"
        for attempt, frames in enumerate(stops):
            _StopAfter(monkeypatch, frames)
            with pytest.raises(KeyboardInterrupt):
                generate(path, SIMULATION, scheduler="synchronous", progress=False, resume=attempt > 0)
            assert not zarr.open_group(str(path), mode="r").attrs.get("complete")
            if attempt == 0:  # the first run is finished (and flushed) exactly when its frames were all handed over
                first_done = karman_writer.frames_written(path)[0] == SIMULATION.frames_per_run
                assert first_done == (frames >= SIMULATION.frames_per_run)
        done = np.flatnonzero(karman_writer.frames_written(path) == SIMULATION.frames_per_run).tolist()
        monkeypatch.undo()
        result = generate(path, SIMULATION, scheduler="synchronous", progress=False, resume=True)
        resumed = _store(path)
    assert result.skipped == done  # finished runs are not recomputed
    for group, ds in reference.items():
        xr.testing.assert_identical(resumed[group], ds)
    assert np.abs(reference["truth"]["u"].values).max() > 0
