"""Rollouts across processes: shards written per rank and joined by rank 0 equal a single-process rollout."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from test_rollout import RandomWalk, _dataset, _layout

from forecast.errors import ForecastError
from forecast.rollout import RolloutInterrupted, rollout
from forecast.rollout_shards import Shard, shard_device, shard_from_env, shard_path

OPTIONS = dict(members=3, context=2, horizon=3, inits=5, seed=7, batch_size=2)


def _assert_same_forecast(a_path, b_path):
    with xr.open_dataset(a_path) as a, xr.open_dataset(b_path) as b:
        assert a.attrs.pop("history") != "" and b.attrs.pop("history") != ""  # when and how: may differ
        xr.testing.assert_identical(a, b)


def test_shard_from_torchrun_environment():
    assert shard_from_env({}) is None
    assert shard_from_env({"WORLD_SIZE": "1", "RANK": "0"}) is None
    assert shard_from_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"}) == Shard(3, 4, 1)
    assert [Shard(1, 3).owns(i) for i in range(7)] == [False, True, False, False, True, False, False]
    with pytest.raises(ForecastError, match="outside"):
        shard_from_env({"WORLD_SIZE": "2", "RANK": "2"})
    with pytest.raises(ForecastError, match="must be integers"):
        shard_from_env({"WORLD_SIZE": "two"})


def test_processes_take_one_gpu_each_and_share_them_round_robin_when_there_are_more(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    cuda = torch.device("cuda")
    assert [shard_device(cuda, Shard(r, 5, r)).index for r in range(5)] == [0, 1, 0, 1, 0]
    assert shard_device(torch.device("cuda", 1), Shard(0, 2, 0)) == torch.device("cuda", 1)  # asked for: kept
    assert shard_device(torch.device("cpu"), Shard(1, 2, 1)) == torch.device("cpu")


def test_sharded_rollout_equals_a_single_process_one(tmp_path):
    ds = _dataset()
    single = rollout(RandomWalk(), _layout(ds), ds, tmp_path / "single.nc", **OPTIONS)
    out = tmp_path / "sharded.nc"
    # rank 1 finishes first here; rank 0 waits for every shard, so it runs last in one process
    for rank in (2, 1):
        model = RandomWalk()
        part = rollout(model, _layout(ds), ds, out, **OPTIONS, shard=Shard(rank, 3))
        assert part == shard_path(out, Shard(rank, 3)) and not out.exists()
        assert model.calls == len(range(rank, 5, 3)) * 2 * 3  # its inits only: 2 member chunks x 3 leads
    assert rollout(RandomWalk(), _layout(ds), ds, out, **OPTIONS, shard=Shard(0, 3)) == out
    _assert_same_forecast(out, single)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sharded.nc", "single.nc"]  # shards are gone


def test_interrupted_rank_resumes_and_the_join_is_complete(tmp_path):
    ds = _dataset()
    single = rollout(RandomWalk(), _layout(ds), ds, tmp_path / "single.nc", **OPTIONS)
    out = tmp_path / "sharded.nc"
    with pytest.raises(RolloutInterrupted, match="--resume"):  # rank 1 dies during its second init
        rollout(RandomWalk(fail_at_call=8), _layout(ds), ds, out, **OPTIONS, shard=Shard(1, 2))
    model = RandomWalk()
    rollout(model, _layout(ds), ds, out, **OPTIONS, shard=Shard(1, 2), resume=True)
    assert model.calls == 2 * 3  # only the init it lacked (inits 1 and 3 are rank 1's; 1 was kept)
    rollout(RandomWalk(), _layout(ds), ds, out, **OPTIONS, shard=Shard(0, 2), resume=True)
    _assert_same_forecast(out, single)
    # a finished shard is not redone on resume, but one of other settings is refused
    rollout(RandomWalk(), _layout(ds), ds, out, **OPTIONS, shard=Shard(1, 2))
    model = RandomWalk()
    rollout(model, _layout(ds), ds, out, **OPTIONS, shard=Shard(1, 2), resume=True)
    assert model.calls == 0
    with pytest.raises(ForecastError, match="other settings"):
        rollout(RandomWalk(), _layout(ds), ds, out, **(OPTIONS | {"seed": 8}), shard=Shard(1, 2), resume=True)
    np.testing.assert_array_equal(xr.open_dataset(out)["u"].values, xr.open_dataset(single)["u"].values)


@pytest.mark.slow
def test_torchrun_two_processes_write_the_single_process_file(tmp_path):
    """``torchrun --nproc_per_node 2 -m forecast rollout`` on CPU, a real (briefly trained) RVD run."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import yaml
    from training_helpers import karman_like_store

    from forecast.cli import main

    store = karman_like_store(tmp_path / "k.zarr", n_seq=2, n_time=10)
    config = {
        "model": {"kind": "rvd", "dim": 8, "denoiser_mults": [1, 2], "transform_mults": [1, 2]},
        "diffusion": {"steps": 10},
        "data": {"variables": ["u", "v", "vorticity"], "context_frames": 2, "future_frames": 2},
        "training": {"batch_size": 2, "steps": 2, "checkpoint_every": 2, "log_every": 1, "seed": 0},
    }
    (tmp_path / "rvd.yaml").write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    assert main(["train", store, "--config", str(tmp_path / "rvd.yaml"), "--out", str(run), "--no-progress",
                 "--device", "cpu"]) == 0  # fmt: skip
    args = ["rollout", str(run), store, "--members", "3", "--context", "2", "--horizon", "2", "--inits", "3",
            "--sampler", "ddim", "--steps", "3", "--eta", "1", "--device", "cpu", "--no-progress"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    done = subprocess.run(
        [*torchrun, "-m", "forecast", *args, "--out", str(tmp_path / "sharded.nc")],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "rank 1: wrote its shard" in done.stdout and f"wrote {tmp_path / 'sharded.nc'}" in done.stdout
    assert main([*args, "--out", str(tmp_path / "single.nc")]) == 0
    _assert_same_forecast(tmp_path / "sharded.nc", tmp_path / "single.nc")
