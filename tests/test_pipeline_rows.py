"""``forecast.pipeline.run_rows``: rows in worker processes give the files that rows run one after another give."""

from __future__ import annotations

import functools
import os
import time

import numpy as np
import pytest
import xarray as xr
from training_helpers import karman_like_store

from forecast import pipeline
from forecast.errors import ForecastError

SETTINGS = pipeline.RolloutSettings(members=2, inits=2, context=2, horizon=3, device="cpu")


def _rows() -> list[pipeline.Row]:
    data = {"variables": ["u", "v"], "context_frames": 2, "future_frames": 2}
    training = {"batch_size": 2, "steps": 2, "checkpoint_every": 2, "log_every": 1}
    convgru = {"kind": "convgru", "dim": 4, "transform_mults": [1], "groups": 1, "loss": "l2"}
    persistence = {"model": {"kind": "persistence"}, "data": data, "training": {**training, "steps": 1}}
    return [
        pipeline.Row("convgru", {"model": convgru, "data": data, "training": training}),
        pipeline.Row("persistence", persistence),
        # the same config as the row above: it shares that row's run, so it must run in the same worker
        pipeline.Row("persistence_3", persistence, rollout={"horizon": 2}),
    ]


def _mark(chain: pipeline.Pipeline, row: pipeline.Row) -> None:
    """A further stage: after the row's scores, in its worker."""
    assert chain.scores_file(row).is_file()
    (chain.out / f"{row.name}.after").write_text(str(os.getpid()))


def _wait_for(chain: pipeline.Pipeline, row: pipeline.Row, path: str, seconds: float = 60.0) -> None:
    """A last stage that returns once ``path`` exists (or after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)


def _forecasts(out) -> dict[str, xr.Dataset]:
    return {p.stem: xr.load_dataset(p) for p in sorted((out / "forecasts").glob("*.nc"))}


@pytest.mark.slow  # two spawned workers start torch: about 20 s
def test_rows_in_workers_write_the_files_of_rows_in_turn(tmp_path):
    store = karman_like_store(tmp_path / "data.zarr", n_time=10, ny=8, nx=8)
    lines: list[str] = []
    serial = pipeline.Pipeline(
        tmp_path / "serial", store=store, rollout=SETTINGS, progress=False, log=lines.append
    )
    parallel = pipeline.Pipeline(
        tmp_path / "parallel", store=store, rollout=SETTINGS, progress=False, log=lines.append
    )
    rows = _rows()
    metrics = serial.run_rows(rows, jobs=1)
    lines.clear()
    assert list(parallel.run_rows(rows, jobs=2, after=_mark)) == list(
        metrics
    )  # every row, in the rows' order
    assert lines[0].startswith("3 rows, 2 at a time") and len(lines) == 4
    # rows sharing a config trained one run
    assert sorted(p.name for p in (tmp_path / "parallel" / "runs").iterdir()) == ["convgru", "persistence"]
    a, b = _forecasts(tmp_path / "serial"), _forecasts(tmp_path / "parallel")
    assert list(a) == list(b) == ["convgru", "persistence", "persistence_3"]
    assert b["persistence_3"].sizes["lead_time"] == 2
    for name in a:  # one torch thread in a worker against the default here: equal to float32 rounding
        for v in ("u", "v"):
            np.testing.assert_allclose(b[name][v].values, a[name][v].values, rtol=1e-5, atol=1e-7)
    assert all((tmp_path / "parallel" / "scores" / f"{r.name}.nc").is_file() for r in rows)
    # the further stage ran for every row, in the workers; the rows of one run in one worker
    pids = {r.name: (tmp_path / "parallel" / f"{r.name}.after").read_text() for r in rows}
    assert str(os.getpid()) not in pids.values() and pids["persistence"] == pids["persistence_3"]


@pytest.mark.slow  # one spawned worker: about 10 s
def test_a_failing_row_in_a_worker_raises_its_error_here(tmp_path):
    store = karman_like_store(tmp_path / "data.zarr", n_time=10, ny=8, nx=8)
    said = tmp_path / "said"
    lines: list[str] = []

    def log(line: str) -> None:
        lines.append(line)
        if "failed" in line:
            said.touch()  # lets the other row's last stage return

    chain = pipeline.Pipeline(tmp_path / "out", store=store, rollout=SETTINGS, progress=False, log=log)
    bad = pipeline.Row("bad", {"model": {"kind": "no_such_model"}, "data": {"variables": ["u"]}})
    held = functools.partial(_wait_for, path=str(said))  # the good row runs until the failure is said
    with pytest.raises(ForecastError, match="no_such_model"):
        chain.run_rows([bad, _rows()[1]], jobs=2, after=held)
    # said at once, while the other row still ran; that row finished (a rerun resumes the rest)
    (failure,) = [line for line in lines if "failed" in line]
    assert "no_such_model" in failure and "waiting for the 1 running" in failure
    assert (tmp_path / "out" / "scores" / "persistence.nc").is_file()


def test_a_rerun_finishes_scored_rows_here_and_sends_only_the_rest_to_workers(tmp_path, monkeypatch):
    store = karman_like_store(tmp_path / "data.zarr", n_time=10, ny=8, nx=8)
    lines: list[str] = []
    chain = pipeline.Pipeline(
        tmp_path / "out", store=store, rollout=SETTINGS, progress=False, log=lines.append
    )
    rows = _rows()
    metrics = chain.run_rows(rows, jobs=1)
    sent: list[list[str]] = []

    def in_workers(work, groups, workers, threads, log, after):  # stands in for the spawned workers
        sent.extend([r.name for r in group] for _, group in groups)
        return [{r.name: pipeline._run_row(c, r, after)[0] for r in rs} for c, rs in work]

    monkeypatch.setattr(pipeline, "_run_in_workers", in_workers)
    lines.clear()
    again = chain.run_rows(rows, jobs=2, after=_mark)
    np.testing.assert_equal(again, metrics)  # NaN-aware: persistence has no gradient norm
    assert sent == [] and lines == ["3 rows: every one scored already"]
    # the further stage ran for each row, here
    assert all((tmp_path / "out" / f"{r.name}.after").read_text() == str(os.getpid()) for r in rows)
    # one row's scores gone: only that row goes to a worker; the metrics keep the rows' order
    chain.scores_file(rows[1]).unlink()
    assert list(chain.run_rows(rows, jobs=2)) == [r.name for r in rows] and sent == [["persistence"]]
    assert chain.scores_file(rows[1]).is_file()


def test_jobs_below_one_are_refused(tmp_path):
    chain = pipeline.Pipeline(tmp_path / "out", store=tmp_path / "x.zarr", log=lambda _: None)
    with pytest.raises(ForecastError, match="jobs must be at least 1"):
        chain.run_rows(_rows(), jobs=0)


def test_rows_run_one_per_core_on_cpus_and_one_at_a_time_on_gpus(monkeypatch):
    monkeypatch.setattr(pipeline.os, "cpu_count", lambda: 2)
    assert pipeline.default_jobs(5, gpu=False) == 2
    assert pipeline.default_jobs(1, gpu=False) == 1  # capped by the rows
    assert pipeline.default_jobs(5, gpu=True) == 1


def test_truth_starts_replace_the_even_starts_and_keep_the_rest():
    settings = SETTINGS.at_truth_starts()
    assert (settings.starts, settings.inits, settings.horizon) == ("truth", None, None)
    assert (settings.members, settings.context, settings.device) == (
        SETTINGS.members,
        SETTINGS.context,
        "cpu",
    )
