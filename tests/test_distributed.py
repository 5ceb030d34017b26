"""A real distributed run: `forecast simulate karman` and `forecast score` on a dask cluster of separate
`dask scheduler` and `dask worker` processes on localhost (loopback only), started as a user would start them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from forecast.field_store import open_field_store
from forecast.metrics.scores import score_forecast
from forecast.metrics.synthetic import synthetic_forecast

ROOT = Path(__file__).resolve().parents[1]
DASK = str(Path(sys.executable).parent / "dask")


def _wait_for(path: Path, what: str, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds  # a start-up limit, not a timed assertion of speed
    while not path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start: {process.stderr.read() if process.stderr else ''}")
        time.sleep(0.2)


def _workers(scheduler_file: Path) -> int:
    from distributed import Client

    with Client(scheduler_file=str(scheduler_file), timeout="30s") as client:
        return len(client.scheduler_info()["workers"])


def _shut_down(scheduler_file: Path) -> None:
    from distributed import Client

    try:  # not this process's default scheduler: later tests here compute with dask's local one
        with Client(scheduler_file=str(scheduler_file), timeout="10s", set_as_default=False) as client:
            client.shutdown()
    except Exception:  # noqa: BLE001  a scheduler that is gone already: terminate() below is enough
        pass


@pytest.fixture
def cluster(tmp_path):
    """A scheduler and one worker (two processes, one thread each), on 127.0.0.1 only; stopped at the end."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env["OMP_NUM_THREADS"] = "1"
    scheduler_file = tmp_path / "scheduler.json"
    logs = {name: open(tmp_path / f"{name}.log", "w+") for name in ("scheduler", "worker")}
    common = ["--no-dashboard"]
    scheduler = subprocess.Popen(
        [
            DASK,
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--scheduler-file",
            str(scheduler_file),
            *common,
        ],
        env=env,
        stdout=logs["scheduler"],
        stderr=subprocess.STDOUT,
    )
    processes = [scheduler]
    try:
        _wait_for(scheduler_file, "the dask scheduler", scheduler)
        worker = subprocess.Popen(
            [DASK, "worker", "--scheduler-file", str(scheduler_file), "--host", "127.0.0.1"]
            + ["--nworkers", "1", "--nthreads", "1", "--memory-limit", "2GiB", *common],
            env=env,
            cwd=tmp_path,
            stdout=logs["worker"],
            stderr=subprocess.STDOUT,
        )
        processes.append(worker)
        deadline = time.monotonic() + 120
        while _workers(scheduler_file) < 1:
            assert worker.poll() is None and time.monotonic() < deadline, "the dask worker did not join"
            time.sleep(0.5)
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        yield address, env, tmp_path / "scheduler.log"
    finally:
        if len(processes) > 1:  # the scheduler stops its workers at once (SIGTERM alone took the worker ~8 s)
            _shut_down(scheduler_file)
        for process in reversed(processes):
            process.terminate()
        for process in reversed(processes):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs.values():
            log.close()


def _forecast(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "forecast", *args], env=env, capture_output=True, text=True, timeout=900
    )


@pytest.mark.slow
def test_simulate_and_score_on_a_separate_scheduler_and_worker(cluster, tmp_path):
    address, env, scheduler_log = cluster
    store = tmp_path / "karman.zarr"
    done = _forecast(
        "simulate", "karman", str(store), "--scheduler", address, "--reynolds", "150", "200",
        "--frames", "8", "--test-frames", "4", "--size", "32", "--every", "16", "--spinup", "64", "--quiet",
        env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ds = open_field_store(store, "train")
    assert dict(ds.sizes) == {"sequence": 2, "time": 8, "y": 32, "x": 32}
    assert np.isfinite(ds["vorticity"].values).all() and float(ds["u"].std()) > 0

    fc = tmp_path / "fc.nc"
    synthetic_forecast(n_init=4, n_member=5, n_lead=3, ny=8, nx=10).to_netcdf(fc)
    scores = tmp_path / "scores.nc"
    done = _forecast("score", str(fc), "--out", str(scores), "--scheduler", address, "--quiet", env=env)
    assert done.returncode == 0, done.stderr
    # the same numbers as scoring in this process
    local = score_forecast(xr.open_dataset(fc))
    remote = xr.open_dataset(scores)
    for name in ("crps_mean_u", "rmse_v", "rank_histogram_u"):
        np.testing.assert_allclose(remote[name].values, local[name].values, rtol=1e-6)
    # both commands connected to the scheduler as clients (the worker ran their tasks)
    log = scheduler_log.read_text()
    assert log.count("Receive client connection") >= 2, log[-2000:]


@pytest.mark.slow
def test_score_with_an_unreachable_scheduler_is_one_line(tmp_path):
    fc = tmp_path / "fc.nc"
    synthetic_forecast(n_init=2, n_member=3, n_lead=2, ny=4, nx=5).to_netcdf(fc)
    # a refused connection is retried until the timeout: 2 s instead of the default 20 s
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FORECAST_SCHEDULER_TIMEOUT": "2s"}
    done = _forecast(
        "score", str(fc), "--out", str(tmp_path / "s.nc"), "--scheduler", "tcp://127.0.0.1:1", env=env
    )
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "cannot reach the dask scheduler" in done.stderr
    assert not (tmp_path / "s.nc").exists()
