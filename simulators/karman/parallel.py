"""Dask orchestration: one task per run, on a local cluster or an existing dask distributed cluster.

Each task builds its own lattice and writes its own region of the store, so the client only schedules and
watches: it polls the store's ``frames_written`` array for the progress bars (runs, frames). A finished run
is never recomputed by ``--resume``; the store is marked complete only after every run has finished.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from forecast.errors import ForecastError
from forecast.field_store import mark_complete
from simulators.karman import truth
from simulators.karman import writer as karman_writer
from simulators.karman.config import KarmanConfig
from simulators.karman.lattice import build_lattice
from simulators.karman.noise import sequence_seed
from simulators.karman.run import run_frames


class UnderResolvedWarning(UserWarning):
    """The lattice does not resolve the flow at the requested Reynolds number (the store says so too)."""


@dataclass
class RunResult:
    index: int
    reynolds: float
    lattice_steps: int
    seconds: float  # wall time of the task
    build_seconds: float  # of which: code generation and compilation of the kernels
    truth_seconds: float = 0.0  # of which: the truth ensembles' continuations


@dataclass
class GenerationResult:
    path: Path
    runs: list[RunResult]  # runs computed now (finished runs skipped by --resume are not listed)
    skipped: list[int]
    seconds: float
    cells: int  # lattice cells of one run's grid

    @property
    def lattice_updates(self) -> int:
        """Cell updates computed now (spin-up included)."""
        return sum(r.lattice_steps for r in self.runs) * self.cells


def simulate_run(path: str, config: KarmanConfig, index: int) -> RunResult:
    """Compute run ``index`` and write it into the store (the unit of work of a dask task).

    With truth ensembles, the run forks its continuations when it reaches each start (``truth.py``); they
    are written before the run's last frames, so a run counted as finished has its truth written too."""
    start = time.perf_counter()
    writer = karman_writer.RunWriter(path, config, index)
    karman_writer.set_frames_written(path, index, 0)
    lattice = build_lattice(config, config.reynolds[index], sequence_seed(config.noise_seed, index))
    built = time.perf_counter()
    # a start's continuations fork from the state of the frame before the one lead 1 verifies against
    forks = {t - 1: number for number, t in enumerate(config.truth_init_times)}
    truth_seconds = 0.0
    for time_value, frame in enumerate(run_frames(config, index, lattice)):
        writer.add(frame)
        if time_value in forks:
            fork_start = time.perf_counter()
            members = truth.continuations(lattice, config, index, time_value + 1)
            truth.write_start(path, config, index, forks[time_value], members)
            truth_seconds += time.perf_counter() - fork_start
    writer.flush()
    steps = config.spinup_steps + config.frames_per_run * config.every
    truth_steps = len(forks) * config.truth_members * config.truth_horizon * config.every
    return RunResult(
        index,
        config.reynolds[index],
        steps + truth_steps,
        time.perf_counter() - start,
        built - start,
        truth_seconds,
    )


def prepare_store(path: Path, config: KarmanConfig, resume: bool, overwrite: bool) -> list[int]:
    """Create (or check, with ``resume``) the store; return the indices of the runs still to compute."""
    if path.exists() and not resume:
        if not overwrite:
            raise ForecastError(f"{path} exists: pass --resume to finish it or --overwrite to replace it")
        if not (path.is_dir() and ((path / "zarr.json").exists() or (path / ".zgroup").exists())):
            raise ForecastError(f"{path} exists and is not a zarr store; --overwrite replaces only stores")
        shutil.rmtree(path)
    if not path.exists():
        karman_writer.create_store(path, config)
    else:
        karman_writer.check_resumable(path, config)
    done = karman_writer.frames_written(path)
    return [i for i in range(len(config.reynolds)) if done[i] < config.frames_per_run]


def _client(scheduler: str, workers: int):
    from dask.distributed import Client, LocalCluster

    if scheduler == "local":
        # processes, one thread each: the generated C kernels hold the GIL, and each run owns a core
        # worker logs silenced: a run's error reaches the user once, as the CLI's one-line message
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
        )
        return Client(cluster), cluster
    try:
        return Client(scheduler, timeout="20s"), None
    except Exception as exc:  # bad address, refused connection, timeout
        raise ForecastError(f"cannot reach the dask scheduler at {scheduler} ({exc})") from None


def generate(
    path: str | os.PathLike,
    config: KarmanConfig,
    *,
    workers: int | None = None,
    scheduler: str = "local",
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> GenerationResult:
    """Generate the vortex-street field store at ``path``.

    ``scheduler``: ``"local"`` (a local dask cluster of ``workers`` processes), ``"synchronous"`` (in this
    process, one run after the other; for debugging and tests) or the address of a running dask scheduler
    (``tcp://host:8786``), whose workers must see ``path``.
    """
    path = Path(path).absolute()
    start = time.perf_counter()
    todo = prepare_store(path, config, resume, overwrite)
    issue = config.resolution_issue()
    if issue:
        warnings.warn(issue, UnderResolvedWarning, stacklevel=2)
    cores = os.cpu_count() or 1
    workers = workers or max(1, min(len(todo), cores))
    if config.threads is None:
        # the cores left per run on this machine; a remote cluster's workers run one thread per run
        # (synchronous mode is for debugging and tests: one thread, immune to a busy machine)
        threads = max(1, cores // workers) if scheduler == "local" else 1
        config = dataclasses.replace(config, threads=threads)
    n_runs = len(config.reynolds)
    skipped = [i for i in range(n_runs) if i not in todo]
    total_frames = n_runs * config.frames_per_run
    runs_bar = tqdm(total=n_runs, desc="runs", unit="run", disable=not progress, position=0)
    frames_bar = tqdm(total=total_frames, desc="frames", unit="frame", disable=not progress, position=1)

    def refresh() -> None:
        new = int(karman_writer.frames_written(path).sum()) - frames_bar.n
        if new:
            frames_bar.update(new)

    runs_bar.update(len(skipped))
    refresh()
    results: list[RunResult] = []
    try:
        if scheduler == "synchronous" or not todo:
            for index in todo:
                results.append(simulate_run(str(path), config, index))
                runs_bar.update(1)
                refresh()
        else:
            client, cluster = _client(scheduler, workers)
            try:
                tag = uuid.uuid4().hex[:8]  # unique task keys on a shared cluster
                futures = [
                    client.submit(simulate_run, str(path), config, i, pure=False, key=f"karman-run-{i}-{tag}")
                    for i in todo
                ]
                remaining = list(futures)
                while remaining:
                    for future in [f for f in remaining if f.done()]:
                        remaining.remove(future)
                        try:
                            results.append(future.result())  # re-raises a run's error (e.g. divergence)
                        except BaseException:
                            client.cancel(remaining)
                            raise
                        runs_bar.update(1)
                    refresh()
                    time.sleep(0.5)
            finally:
                client.close()
                if cluster is not None:
                    cluster.close()
    finally:
        runs_bar.close()
        frames_bar.close()
    if (karman_writer.frames_written(path) < config.frames_per_run).any():
        raise ForecastError(f"{path}: some runs did not finish; run again with --resume")
    truth.publish(path)
    mark_complete(path, True)
    runs = sorted(results, key=lambda r: r.index)
    cells = config.grid_length * config.grid_height
    return GenerationResult(path, runs, skipped, time.perf_counter() - start, cells)
