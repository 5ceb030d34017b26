"""Orchestration every simulator shares: one task per run, on processes of this machine or a dask cluster.

Each task builds its own lattice (``Flow.build_runs``) and writes its own region of the store, so the caller only schedules and
watches: it polls the store's ``frames_written`` array for the progress bars (runs, frames). A finished run
is never recomputed by ``--resume``; the store is marked complete only after every run has finished.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import shutil
import signal
import sys
import time
import uuid
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from forecast.claims import claim_output
from forecast.errors import ForecastError
from forecast.field_store import mark_complete
from forecast.io_errors import writing
from simulators.common import store, truth
from simulators.common.flow import Flow

if TYPE_CHECKING:
    import distributed

POLL_SECONDS = 1.0  # how often the client reads the store's progress (it shares the cores with the runs)


class UnderResolvedWarning(UserWarning):
    """The lattice does not resolve the flow at the requested Reynolds number (the store says so too)."""


@dataclass
class RunResult:
    index: int
    lattice_steps: int
    seconds: float  # wall time of the task
    build_seconds: float  # of which: code generation and compilation of the kernels
    truth_seconds: float = 0.0  # of which: the truth ensembles' continuations
    lattice_runs: int = 1  # runs computed together in one lattice (--batch-runs); they share the seconds


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


def simulate_batch(path: str, config, indices: list[int], flow: Flow) -> list[RunResult]:
    """Compute runs ``indices`` (one ``flow.run_key``) in one lattice and write them into the store (the unit
    of work of a dask task); one run is the plain case.

    With truth ensembles, the runs fork their continuations when they reach each start (``Flow.continuations``); they
    are written before the runs' last frames, so a run counted as finished has its truth written too."""
    start = time.perf_counter()
    writers = [store.RunWriter(path, config, index) for index in indices]
    for index in indices:
        store.set_frames_written(path, index, 0)
    lattice = flow.build_runs(config, indices)
    built = time.perf_counter()
    try:
        truth_seconds = _frames_and_truth(path, config, indices, lattice, writers, flow)
        for writer in writers:
            writer.flush()
    finally:
        for writer in writers:
            writer.close()
    steps = config.spinup_steps + config.frames_per_run * config.every
    truth_steps = len(config.truth_init_times) * config.truth_members * config.truth_horizon * config.every
    seconds = time.perf_counter() - start
    return [
        RunResult(
            index,
            steps + truth_steps,
            seconds,
            built - start,
            truth_seconds,
            len(indices),
        )
        for index in indices
    ]


def _frames_and_truth(path: str, config, indices: list[int], lattice, writers: list, flow: Flow) -> float:
    """Compute and hand the frames to the writers, forking the truth at its starts; the truth's seconds."""
    # a start's continuations fork from the state of the frame before the one lead 1 verifies against
    forks = {t - 1: number for number, t in enumerate(config.truth_init_times)}
    truth_seconds = 0.0
    for time_value, frames in enumerate(flow.batch_frames(config, indices, lattice)):
        for writer, frame in zip(writers, frames, strict=True):
            writer.add(frame)
        if time_value in forks:
            fork_start = time.perf_counter()
            members = flow.continuations(lattice, config, indices, time_value + 1)
            for index, run_members in zip(indices, members, strict=True):
                truth.write_start(path, config, index, forks[time_value], run_members)
            truth_seconds += time.perf_counter() - fork_start
    return truth_seconds


def batches(config, todo: list[int], run_key=lambda config, index: 0) -> list[list[int]]:
    """The runs to compute, grouped into lattices: up to ``config.batch`` runs with one ``run_key`` each (the
    street's: its Reynolds number), in order of first appearance."""
    groups: dict[object, list[list[int]]] = {}
    for index in todo:
        runs = groups.setdefault(run_key(config, index), [[]])
        if len(runs[-1]) == config.batch:
            runs.append([])
        runs[-1].append(index)
    return [batch for runs in groups.values() for batch in runs]


def prepare_store(path: Path, config, resume: bool, overwrite: bool, flow: Flow) -> list[int]:
    """Create (or check, with ``resume``) the store; return the indices of the runs still to compute."""
    if path.exists() and not resume:
        if not overwrite:
            raise ForecastError(f"{path} exists: pass --resume to finish it or --overwrite to replace it")
        if not (path.is_dir() and ((path / "zarr.json").exists() or (path / ".zgroup").exists())):
            raise ForecastError(f"{path} exists and is not a zarr store; --overwrite replaces only stores")
        shutil.rmtree(path)
    if not path.exists():
        try:
            store.create_store(path, config, flow)
        except BaseException:  # a half-made skeleton holds no finished work: leave nothing
            shutil.rmtree(path, ignore_errors=True)
            raise
    else:
        store.check_resumable(path, config, flow)
    done = store.frames_written(path)
    return [i for i in range(config.runs) if done[i] < config.frames_per_run]


class _Progress:
    """The two progress bars (runs, frames); frames are read from the store's ``frames_written``."""

    def __init__(self, path: Path, config, skipped: int, show: bool):
        n_runs = config.runs
        self.path = path
        self.runs = tqdm(total=n_runs, desc="runs", unit="run", disable=not show, position=0)
        self.frames = tqdm(
            total=n_runs * config.frames_per_run, desc="frames", unit="frame", disable=not show, position=1
        )
        self.runs.update(skipped)
        self.refresh()

    def refresh(self) -> None:
        new = int(store.frames_written(self.path).sum()) - self.frames.n
        if new:
            self.frames.update(new)

    def close(self) -> None:
        self.runs.close()
        self.frames.close()


def _with_threads(config, scheduler: str, workers: int):
    """``config`` with its OpenMP threads per run set, if the user left them open."""
    if config.threads is not None:
        return config
    # the cores left per run on this machine; a remote cluster's workers run one thread per run
    # (synchronous mode is for debugging and tests: one thread, immune to a busy machine)
    threads = max(1, (os.cpu_count() or 1) // workers) if scheduler == "local" else 1
    return dataclasses.replace(config, threads=threads)


def _local_pool(path: Path, config, groups: list[list[int]], workers: int, flow: Flow) -> tuple[list, object]:
    """The batches on ``workers`` spawned processes of this machine, one core each: their futures and the pool.

    A plain process pool, not a local dask cluster: with two runs on two cores, the dask workers' event loops,
    heartbeats and nannies left 72-80% of the bare kernel's throughput in steady state, the pool 84-92%
    (docs/results/speed.md, "The simulator on a CPU"). Dask is for clusters of machines (``scheduler`` an address)."""
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_exit_on_terminate)
    return [pool.submit(simulate_batch, str(path), config, group, flow) for group in groups], pool


def _exit_on_terminate() -> None:
    """In a pool worker: a terminate request unwinds the run like an error (its writer finishes its batch) and
    the process exits cleanly; killed outright, it would leave its semaphores to a warning at exit."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))


def _stop(pool: ProcessPoolExecutor) -> None:
    """Drop the queued runs and stop the running ones (a failed run's siblings, or an interrupt)."""
    if hasattr(pool, "terminate_workers"):  # Python 3.14
        pool.terminate_workers()
        return
    processes = list((pool._processes or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()


#: how long a client waits for the dask scheduler at ``--scheduler`` before giving up (dask's time string);
#: the environment variable ``FORECAST_SCHEDULER_TIMEOUT`` overrides it
SCHEDULER_TIMEOUT = "20s"


def connect_scheduler(address: str) -> distributed.Client:
    """A dask distributed client of the scheduler at ``address``; one line (``ForecastError``) when it cannot be
    reached within ``SCHEDULER_TIMEOUT``."""
    from dask.distributed import Client

    timeout = os.environ.get("FORECAST_SCHEDULER_TIMEOUT", SCHEDULER_TIMEOUT)
    try:
        return Client(address, timeout=timeout)
    except Exception as exc:  # bad address, refused connection, timeout
        raise ForecastError(f"cannot reach the dask scheduler at {address} ({exc})") from None


def _dask_cluster(
    path: Path, config, groups: list[list[int]], address: str, flow: Flow
) -> tuple[list, object]:
    """The batches as tasks of the dask distributed scheduler at ``address``: their futures and the client."""
    client = connect_scheduler(address)
    tag = uuid.uuid4().hex[:8]  # unique task keys on a shared cluster
    futures = [
        client.submit(
            simulate_batch,
            str(path),
            config,
            group,
            flow,
            pure=False,
            key=f"{flow.name}-run-{group[0]}-{tag}",
        )
        for group in groups
    ]
    return futures, client


def _collect(futures: list, progress: _Progress) -> list[RunResult]:
    """Wait for the runs' futures (``done()``, ``result()``), updating the bars; a run's error is raised."""
    results: list[RunResult] = []
    remaining = list(futures)
    while remaining:
        for future in [f for f in remaining if f.done()]:
            remaining.remove(future)
            batch = future.result()  # re-raises a run's error (e.g. divergence)
            results.extend(batch)
            progress.runs.update(len(batch))
        progress.refresh()
        if remaining:
            time.sleep(POLL_SECONDS)
    return results


def _in_parallel(
    path: Path,
    config,
    groups: list[list[int]],
    scheduler: str,
    workers: int,
    progress: _Progress,
    flow: Flow,
) -> list[RunResult]:
    """Run the batches on local processes (``scheduler == "local"``) or a dask cluster; a run's error (or an
    interrupt) stops the rest and reaches the caller."""
    if scheduler == "local":
        futures, pool = _local_pool(path, config, groups, workers, flow)
        stop, close = (lambda: _stop(pool)), pool.shutdown
    else:
        futures, client = _dask_cluster(path, config, groups, scheduler, flow)
        stop, close = (lambda: client.cancel(futures)), client.close
    try:
        return _collect(futures, progress)
    except BrokenProcessPool:
        stop()
        raise ForecastError(
            f"{path}: a run's process died (killed, or out of memory); run again with --resume"
        ) from None
    except BaseException:
        stop()
        raise
    finally:
        close()


def generate(
    path: str | os.PathLike,
    config,
    flow: Flow,
    task,
    *,
    workers: int | None = None,
    scheduler: str = "local",
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> GenerationResult:
    """Generate the field store of ``flow`` at ``path``; ``task(path, config, indices)`` computes runs in this
    process (``scheduler="synchronous"``; the simulator's own function, so a test can interrupt it).

    ``scheduler``: ``"local"`` (``workers`` processes of this machine), ``"synchronous"`` (in this process,
    one run after the other; for debugging and tests) or the address of a running dask distributed scheduler
    (``tcp://host:8786``), whose workers must see ``path``. Runs with one ``flow.run_key`` are computed
    ``config.batch`` at a time in one lattice (one task).
    """
    path = Path(path).absolute()
    # one writer per store; a failed write (full disk, no permission) is one line, the finished runs kept
    with claim_output(path), writing(path, "; the finished runs are kept: rerun with --resume"):
        return _generate(path, config, flow, task, workers, scheduler, resume, overwrite, progress)


def _generate(
    path: Path,
    config,
    flow: Flow,
    task,
    workers: int | None,
    scheduler: str,
    resume: bool,
    overwrite: bool,
    progress: bool,
) -> GenerationResult:
    start = time.perf_counter()
    todo = prepare_store(path, config, resume, overwrite, flow)
    issue = config.resolution_issue()
    if issue:
        warnings.warn(issue, UnderResolvedWarning, stacklevel=4)  # the caller of the flow's generate
    groups = batches(config, todo, flow.run_key)
    workers = workers or max(1, min(len(groups), os.cpu_count() or 1))
    config = _with_threads(config, scheduler, workers)
    skipped = [i for i in range(config.runs) if i not in todo]
    bars = _Progress(path, config, len(skipped), progress)
    results: list[RunResult] = []
    try:
        if scheduler == "synchronous" or not todo:
            for group in groups:
                results.extend(task(str(path), config, group))
                bars.runs.update(len(group))
                bars.refresh()
        else:
            results = _in_parallel(path, config, groups, scheduler, workers, bars, flow)
    finally:
        bars.close()
    if (store.frames_written(path) < config.frames_per_run).any():
        raise ForecastError(f"{path}: some runs did not finish; run again with --resume")
    truth.publish(path)
    mark_complete(path, True)
    runs = sorted(results, key=lambda r: r.index)
    return GenerationResult(path, runs, skipped, time.perf_counter() - start, config.grid_cells)
