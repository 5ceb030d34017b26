"""Writes that survive faults and races (issue 35), in every command that writes.

- Output claims: while another process holds an output's claim (an exclusive ``flock`` on ``.NAME.lock`` beside
  it, with its pid), a command writing that output exits with status 2 and one line naming the output and the
  pid, and writes nothing. Two real rollouts racing for one file; a claim left by ``kill -9`` is no claim.
- Write failures: ENOSPC, EFBIG, EACCES and EROFS during a write are one line naming the file and the cause,
  nothing is left under the final name and the finished work resumes (EFBIG through a real file-size limit,
  EACCES through a folder the writer may not write, ENOSPC and EROFS injected where the write happens).
- Inconsistent metadata: a store whose arrays disagree with their coordinates, dims or chunk grid, and a
  forecast file whose attributes disagree with its dimensions, are one line before anything is read.

The claim holder below is a bare ``flock`` in a separate process, not this package's code: the tests check the
contract (docs/guide/troubleshooting.md), not an implementation.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from test_rollout import RandomWalk, _dataset, _layout, _write_store
from training_helpers import karman_like_store, toy_config, toy_factory

from forecast.cli import main
from forecast.errors import ForecastError
from forecast.rollout import rollout

RUNNER = Path(__file__).parent / "fault_runner.py"
ROOT = Path(__file__).parent.parent

HOLD = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0)
os.write(fd, str(os.getpid()).encode())
print("held", flush=True)
sys.stdin.read()
"""


@contextlib.contextmanager
def held_by_another_process(out: Path):
    """Hold the claim of ``out`` from another process; yields its pid."""
    lock = out.with_name(f".{out.name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder.pid
    finally:
        holder.stdin.close()
        holder.wait(10)


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """A rollout store, a forecast file and a training store and config, made once."""
    base = tmp_path_factory.mktemp("inputs")
    store = base / "data.zarr"
    _write_store(store, _dataset())
    ds = _dataset()
    forecast = base / "fc.nc"
    rollout(RandomWalk(), _layout(ds), ds, forecast, members=2, context=2, horizon=2, progress=False)
    train_store = karman_like_store(base / "k.zarr", n_seq=2, n_time=10)
    config = base / "toy.yaml"
    config.write_text(yaml.safe_dump(toy_config(steps=2, checkpoint_every=1)))
    return {"store": store, "forecast": forecast, "train_store": Path(train_store), "config": config}


@pytest.fixture
def fakes(monkeypatch):
    """Test doubles for a trained run (rollout) and for the network training builds (train)."""
    import types

    from test_rollout import FakeRun

    import forecast.models

    real_training = sys.modules.get("forecast.training")
    monkeypatch.setattr(forecast.models, "build_model", toy_factory, raising=False)

    def use_fake_run(ny: int = 5, nx: int = 4):
        module = types.ModuleType("forecast.training")
        module.load_run = lambda *a, **k: FakeRun(RandomWalk(), _layout(_dataset(ny=ny, nx=nx)))
        monkeypatch.setitem(sys.modules, "forecast.training", module)

    def use_real_training():
        if real_training is not None:
            monkeypatch.setitem(sys.modules, "forecast.training", real_training)

    return types.SimpleNamespace(use_fake_run=use_fake_run, use_real_training=use_real_training)


def command(name: str, out: Path, inputs: dict[str, Path]) -> list[str]:
    """The arguments of a small run of each command that writes, to ``out`` (``inputs``: what it reads)."""
    inputs = {k: inputs.get(k, "") for k in ("store", "forecast", "train_store", "config")}
    return {
        "simulate": [
            "simulate",
            "karman",
            str(out),
            "--reynolds",
            "100",
            "--frames",
            "6",
            "--test-frames",
            "2",
        ]
        + ["--every", "8", "--size", "32", "--spinup", "16", "--scheduler", "synchronous", "--quiet"],
        "data import": ["data", "import", "smmnist", "builtin", str(out), "--length", "4", "--size", "16"]
        + ["--digit-size", "8", "--train-sequences", "2", "--test-sequences", "1", "--quiet"],
        "train": ["train", str(inputs["train_store"]), "--config", str(inputs["config"]), "--out", str(out)]
        + ["--device", "cpu", "--quiet"],
        "rollout": ["rollout", "run", str(inputs["store"]), "--out", str(out), "--members", "2"]
        + ["--context", "2", "--horizon", "2", "--device", "cpu", "--quiet"],
        "score": ["score", str(inputs["forecast"]), "--out", str(out), "--quiet"],
        "plot": ["plot", str(inputs["forecast"]), "--out", str(out), "--members", "1", "--quiet"],
        "demo": ["demo", str(out), "--train-seconds", "0", "--members", "2", "--quiet"],
    }[name]


OUTPUTS = {
    "simulate": "sim.zarr",
    "data import": "sm.zarr",
    "train": "run",
    "rollout": "fc.nc",
    "score": "scores.nc",
    "plot": "figures",
    "demo": "demo",
}
COMMANDS = list(OUTPUTS)


def run_command(name: str, out: Path, inputs, fakes) -> int:
    (fakes.use_fake_run if name == "rollout" else fakes.use_real_training)()
    return main(command(name, out, inputs))


# ------------------------------------------------------------------------------------------------ claims
@pytest.mark.parametrize("name", COMMANDS)
def test_an_output_being_written_by_another_process_is_refused_with_one_line(
    name, tmp_path, inputs, fakes, capsys
):
    out = tmp_path / OUTPUTS[name]
    with held_by_another_process(out) as pid:
        assert run_command(name, out, inputs, fakes) == 2
    err = one_line(capsys)
    assert f"{out} is being written by another process (pid {pid})" in err
    assert not out.exists()


def test_the_shard_join_is_refused_while_another_process_writes_the_file(tmp_path):
    from forecast.rollout_shards import join_shards

    out = tmp_path / "fc.nc"
    with held_by_another_process(out) as pid, pytest.raises(ForecastError) as caught:
        join_shards(out, 2, tmp_path / ".fc.nc.partial")
    assert f"{out} is being written by another process (pid {pid})" in str(caught.value)
    assert not out.exists()


def _runner(args: list[str], **env) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **{k: str(v) for k, v in env.items()}}
    return subprocess.Popen(
        [sys.executable, str(RUNNER), *args],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _rollout_args(store: Path, out: Path) -> list[str]:
    return ["rollout", "run", str(store), "--out", str(out), "--members", "2", "--context", "2"]


@pytest.mark.slow  # two processes that import torch: seconds each
def test_two_rollouts_started_together_give_one_file_and_one_refusal_never_a_crash(tmp_path, inputs):
    out = tmp_path / "fc.nc"
    args = [*_rollout_args(inputs["store"], out), "--horizon", "3", "--device", "cpu", "--quiet"]
    racers = [_runner(args, FAULT_SLEEP_S=0.05) for _ in range(2)]
    results = [(r.wait(120), r.stderr.read()) for r in racers]
    for status, err in results:
        assert "Traceback" not in err, err
        if status != 0:  # the loser: refused, in one line
            assert status == 2 and len(err.strip().splitlines()) == 1, err
            assert f"{out} is being written by another process (pid " in err
    assert 0 in [status for status, _ in results]
    with xr.open_dataset(out) as fc:
        assert fc["u"].shape[0] == 3 and np.isfinite(fc["u"].values).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fc.nc"]


@pytest.mark.slow  # a process that imports torch
def test_a_rollout_killed_with_sigkill_leaves_no_claim_and_resumes(tmp_path, inputs, fakes, capsys):
    out = tmp_path / "fc.nc"
    args = [*_rollout_args(inputs["store"], out), "--horizon", "3", "--device", "cpu", "--quiet"]
    victim = _runner(args, FAULT_SLEEP_S=0.3)
    partial = tmp_path / ".fc.nc.partial"
    deadline = time.monotonic() + 60
    while not partial.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    assert partial.exists() and not out.exists()
    fakes.use_fake_run()
    assert main([*args, "--resume"]) == 0, capsys.readouterr().err
    with xr.open_dataset(out) as fc:
        assert np.isfinite(fc["u"].values).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fc.nc"]


# ------------------------------------------------------------------------------------------------ write failures
def _done_inits(partial: Path) -> list[int]:
    import netCDF4

    with netCDF4.Dataset(partial) as nc:
        return json.loads(nc.getncattr("rollout_completed_inits"))


def _same_file(a: Path, b: Path) -> None:
    with xr.open_dataset(a) as x, xr.open_dataset(b) as y:
        for name in ("u", "u_obs", "u_context"):
            np.testing.assert_array_equal(x[name].values, y[name].values)


def _big_frames_store(path: Path) -> None:
    _write_store(path, _dataset(ny=48, nx=48))


@pytest.mark.slow  # a process that imports torch
def test_file_size_limit_during_a_rollout_is_one_line_and_the_finished_inits_resume(tmp_path, fakes, capsys):
    """EFBIG for real: a process whose file-size limit (RLIMIT_FSIZE) the forecast file outgrows."""
    store = tmp_path / "big.zarr"
    _big_frames_store(store)
    reference, out = tmp_path / "reference.nc", tmp_path / "fc.nc"
    args = [*_rollout_args(store, out), "--horizon", "3", "--seed", "3", "--device", "cpu", "--quiet"]
    fakes.use_fake_run(ny=48, nx=48)
    assert main([*args[:4], str(reference), *args[5:]]) == 0
    limit = reference.stat().st_size - 1024  # the whole file cannot fit; its header and first inits can

    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    environment = {**os.environ, "PYTHONPATH": str(ROOT), "FAULT_NY": "48", "FAULT_NX": "48"}
    limited_run = subprocess.run(
        [sys.executable, str(RUNNER), *args],
        env=environment,
        preexec_fn=limited,
        capture_output=True,
        text=True,
        timeout=120,
    )
    err = limited_run.stderr.strip()
    assert limited_run.returncode == 2 and len(err.splitlines()) == 1, err
    assert str(out) in err and "(EFBIG)" in err and "--resume" in err
    assert not out.exists()
    partial = tmp_path / ".fc.nc.partial"
    assert 1 <= len(_done_inits(partial)) < 3
    assert main([*args, "--resume"]) == 0
    _same_file(out, reference)
    assert not partial.exists()


def test_full_disk_during_a_rollout_keeps_the_finished_inits_for_resume(tmp_path, fakes, monkeypatch, capsys):
    """ENOSPC: the disk reports no room after the first init."""
    store, out, reference = tmp_path / "data.zarr", tmp_path / "fc.nc", tmp_path / "reference.nc"
    _write_store(store, _dataset())
    fakes.use_fake_run()
    args = [*_rollout_args(store, out), "--horizon", "3", "--device", "cpu", "--quiet"]
    assert main([*args[:4], str(reference), *args[5:]]) == 0
    real_statvfs, calls = os.statvfs, []

    def full_after_one_init(path):
        calls.append(path)
        result = real_statvfs(path)
        if len(calls) == 1:
            return result
        fields = list(result)
        fields[4] = 0  # f_bavail
        return os.statvfs_result(fields)

    monkeypatch.setattr(os, "statvfs", full_after_one_init)
    assert main(args) == 2
    err = one_line(capsys)
    assert str(out) in err and "no space left on the device (ENOSPC)" in err and "--resume" in err
    assert not out.exists() and _done_inits(tmp_path / ".fc.nc.partial") == [0]
    monkeypatch.setattr(os, "statvfs", real_statvfs)
    assert main([*args, "--resume"]) == 0
    _same_file(out, reference)


def test_a_failed_netcdf_write_names_the_cause_from_the_c_library(tmp_path):
    """The netCDF library says only "HDF error"; the cause is the errno its failed write left, where the disk's
    state bears it out (an errno left over from a harmless earlier failure is not taken for the cause)."""
    import ctypes

    from forecast.io_errors import writing

    location = ctypes.CDLL(None).__errno_location
    location.restype = ctypes.POINTER(ctypes.c_int)
    with pytest.raises(ForecastError) as caught, writing(tmp_path / "fc.nc"):
        location()[0] = errno.ENOSPC
        raise RuntimeError("NetCDF: HDF error")
    assert f"cannot write {tmp_path / 'fc.nc'}: no space left on the device (ENOSPC)" in str(caught.value)
    for stale in (errno.EROFS, errno.EACCES, errno.ENOENT):  # tmp_path is writable: not the cause
        with pytest.raises(RuntimeError, match="HDF error"), writing(tmp_path / "fc.nc"):
            location()[0] = stale
            raise RuntimeError("NetCDF: HDF error")


def test_full_disk_during_an_import_is_one_line_and_resumes(tmp_path, monkeypatch, capsys):
    """ENOSPC injected into zarr's file writes after the first sequence."""
    import zarr.storage

    from forecast.field_store import open_field_store

    out, reference = tmp_path / "sm.zarr", tmp_path / "reference.zarr"
    assert main(command("data import", reference, {})) == 0
    real_set, frames = zarr.storage.LocalStore.set, []

    async def set_until_full(self, key, value):
        if "/frames/c/" in key:
            frames.append(key)
            if len(frames) > 1:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out / key))
        await real_set(self, key, value)

    monkeypatch.setattr(zarr.storage.LocalStore, "set", set_until_full)
    assert main(command("data import", out, {})) == 2
    err = one_line(capsys)
    assert str(out) in err and "(ENOSPC)" in err and "--resume" in err
    with pytest.raises(ForecastError, match="incomplete"):  # nothing passes for a finished store
        open_field_store(out, "train")
    monkeypatch.setattr(zarr.storage.LocalStore, "set", real_set)
    assert main([*command("data import", out, {}), "--resume"]) == 0
    for group in ("train", "test"):
        xr.testing.assert_identical(
            open_field_store(out, group).load().drop_attrs(),
            open_field_store(reference, group).load().drop_attrs(),
        )


def test_full_disk_during_a_simulation_is_one_line_and_keeps_the_finished_runs(tmp_path, monkeypatch, capsys):
    """ENOSPC from the second run's frame write (the runs themselves are stand-ins: the lattice is not the point)."""
    import simulators.karman.parallel as parallel
    from simulators.karman import writer

    out = tmp_path / "sim.zarr"
    args = command("simulate", out, {})
    args[args.index("--reynolds") + 1 : args.index("--reynolds") + 2] = ["100", "100"]

    def runs(path, config, indices, fail_at=None):
        for index in indices:
            if index == fail_at:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), f"{path}/train/u/c/{index}/0/0/0")
            writer.set_frames_written(path, index, config.frames_per_run)
        return []

    monkeypatch.setattr(parallel, "simulate_group", lambda p, c, i: runs(p, c, i, fail_at=1))
    assert main(args) == 2
    err = one_line(capsys)
    assert str(out) in err and "(ENOSPC)" in err and "--resume" in err
    assert list(writer.frames_written(out)) == [8, 0]
    monkeypatch.setattr(parallel, "simulate_group", runs)
    assert main([*args, "--resume"]) == 0
    assert "skipped finished runs [0]" in capsys.readouterr().out


def test_full_disk_while_saving_a_checkpoint_keeps_the_last_one_for_resume(
    tmp_path, inputs, fakes, monkeypatch, capsys
):
    import torch

    out = tmp_path / "run"
    real_save, saves = torch.save, []

    def save_until_full(obj, f, *a, **k):
        saves.append(f)
        if len(saves) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(f))
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", save_until_full)
    assert run_command("train", out, inputs, fakes) == 2
    err = one_line(capsys)
    assert str(out) in err and "(ENOSPC)" in err and "--resume" in err
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["step"] == 1
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["last.pt"]  # no half-written temporary
    monkeypatch.setattr(torch, "save", real_save)
    assert main([*command("train", out, inputs), "--resume"]) == 0
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["step"] == 2


@pytest.mark.parametrize("name", ["score", "plot"])
def test_full_disk_while_writing_scores_or_figures_leaves_nothing(
    name, tmp_path, inputs, fakes, monkeypatch, capsys
):
    import matplotlib.figure

    out = tmp_path / OUTPUTS[name]

    def full(self, target, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))

    if name == "score":
        monkeypatch.setattr(xr.Dataset, "to_netcdf", full)
    else:
        monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full)
    assert run_command(name, out, inputs, fakes) == 2
    err = one_line(capsys)
    assert str(out) in err and "no space left on the device (ENOSPC)" in err
    assert not out.exists() or not any(out.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], [OUTPUTS[name]])


@pytest.mark.parametrize("name", COMMANDS)
def test_a_read_only_file_system_is_one_line_and_leaves_nothing(
    name, tmp_path, inputs, fakes, monkeypatch, capsys
):
    """EROFS injected where a command first writes: creating the files beside its output."""
    out = tmp_path / "out" / OUTPUTS[name]
    out.parent.mkdir()
    real_open, real_mkdir = os.open, os.mkdir

    def open_read_only(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and Path(path).parent == out.parent:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    def mkdir_read_only(path, *args, **kwargs):
        if Path(path).parent == out.parent:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_read_only)
    monkeypatch.setattr(os, "mkdir", mkdir_read_only)
    status = run_command(name, out, inputs, fakes)
    monkeypatch.undo()
    assert status == 2
    err = one_line(capsys)
    assert str(out) in err and "read-only file system (EROFS)" in err
    assert not any(out.parent.iterdir())


def _without_root_override() -> None:
    """In the child, before exec: as root, drop CAP_DAC_OVERRIDE from the capability bounding set, so that the
    program it runs is held to the permission bits like any user (root ignores them otherwise)."""
    if os.geteuid() != 0:
        return
    import ctypes

    pr_capbset_drop, cap_dac_override = 24, 1
    if ctypes.CDLL(None, use_errno=True).prctl(pr_capbset_drop, cap_dac_override, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE)")


@pytest.mark.parametrize("name", ["data import", pytest.param("rollout", marks=pytest.mark.slow)])
def test_a_folder_without_write_permission_is_one_line(name, tmp_path):
    """EACCES for real: the output's folder is not writable (mode 0555) by the process writing into it."""
    store = tmp_path / "data.zarr"
    _write_store(store, _dataset())
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    out = folder / OUTPUTS[name]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(RUNNER), *command(name, out, {"store": store})],
        env=environment,
        preexec_fn=_without_root_override,
        capture_output=True,
        text=True,
        timeout=120,
    )
    folder.chmod(0o755)
    err = done.stderr.strip()
    assert done.returncode == 2 and len(err.splitlines()) == 1, err
    assert str(out) in err and "permission denied (EACCES)" in err
    assert not any(folder.iterdir())


# ------------------------------------------------------------------------------------------------ metadata
def _edit_array_metadata(store: Path, array: str, change) -> None:
    path = store / array / "zarr.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


@pytest.mark.parametrize("name", ["rollout", "train"])
def test_a_store_declaring_a_length_its_coordinate_does_not_have_is_one_line(
    name, tmp_path, inputs, fakes, capsys
):
    group = "test" if name == "rollout" else "train"
    source = inputs["store"] if name == "rollout" else inputs["train_store"]
    store = tmp_path / "edited.zarr"
    shutil.copytree(source, store)

    def huge(meta):  # a billion frames: anything allocated from it would fail long before the message
        meta["shape"][1] = 10**9

    _edit_array_metadata(store, f"{group}/u", huge)
    inputs = {**inputs, "store": store, "train_store": store}
    assert run_command(name, tmp_path / OUTPUTS[name], inputs, fakes) == 2
    err = one_line(capsys)
    assert f"{store}[{group}]" in err and "dimension 'time'" in err and "1000000000 in 'u'" in err
    assert not (tmp_path / OUTPUTS[name]).exists()


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda meta: meta.update(dimension_names=["sequence", "time", "y"]), "dimensions"),
        (
            lambda meta: meta["chunk_grid"]["configuration"].update(chunk_shape=[1, 1, 5]),
            "chunk",
        ),
    ],
    ids=["dims", "chunk-grid"],
)
def test_a_store_whose_dims_or_chunk_grid_do_not_fit_its_shape_is_one_line(
    edit, words, tmp_path, inputs, fakes, capsys
):
    store = tmp_path / "edited.zarr"
    shutil.copytree(inputs["store"], store)
    _edit_array_metadata(store, "test/u", edit)
    assert run_command("rollout", tmp_path / "fc.nc", {**inputs, "store": store}, fakes) == 2
    err = one_line(capsys)
    assert f"{store}[test]" in err and words in err


def test_a_forecast_file_whose_attributes_contradict_its_dimensions_is_one_line(tmp_path, inputs, capsys):
    import netCDF4

    edited = tmp_path / "edited.nc"
    shutil.copyfile(inputs["forecast"], edited)
    with netCDF4.Dataset(edited, "a") as nc:
        nc.setncattr("horizon", 7)  # the file has 2 leads
    assert main(["score", str(edited), "--out", str(tmp_path / "scores.nc"), "--quiet"]) == 2
    err = one_line(capsys)
    assert str(edited) in err and "horizon=7" in err and "'lead_time' has length 2" in err
