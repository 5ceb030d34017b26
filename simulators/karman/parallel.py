"""The street's generation: its runs on the shared orchestration (``simulators.common.parallel``).

Each task builds its own lattice and writes its own region of the store; the caller only schedules and watches
(progress bars from the store's ``frames_written``). A finished run is never recomputed by ``--resume``; the store
is marked complete only after every run has finished. Runs with one Reynolds number can share a lattice
(``--batch-runs``).
"""

from __future__ import annotations

import os

from simulators.common import parallel as common
from simulators.common.parallel import (  # noqa: F401  (the street's API, as before the move)
    GenerationResult,
    RunResult,
    UnderResolvedWarning,
)
from simulators.karman.config import KarmanConfig
from simulators.karman.writer import FLOW


def batches(config: KarmanConfig, todo: list[int]) -> list[list[int]]:
    """The runs to compute, grouped into lattices: up to ``config.batch`` runs with one Reynolds number each,
    in order of first appearance."""
    return common.batches(config, todo, FLOW.run_key)


def simulate_run(path: str, config: KarmanConfig, index: int) -> RunResult:
    """Compute run ``index`` and write it into the store."""
    return common.simulate_batch(path, config, [index], FLOW)[0]


def simulate_group(path: str, config: KarmanConfig, indices: list[int]) -> list[RunResult]:
    """A task: one run (``simulate_run``) or a batch of runs in one lattice."""
    if len(indices) == 1:
        return [simulate_run(path, config, indices[0])]
    return common.simulate_batch(path, config, indices, FLOW)


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

    ``scheduler``: ``"local"`` (``workers`` processes of this machine), ``"synchronous"`` (in this process,
    one run after the other; for debugging and tests) or the address of a running dask distributed scheduler
    (``tcp://host:8786``), whose workers must see ``path``. Runs with one Reynolds number are computed
    ``config.batch`` at a time in one lattice (one task).
    """
    return common.generate(
        path,
        config,
        FLOW,
        simulate_group,
        workers=workers,
        scheduler=scheduler,
        resume=resume,
        overwrite=overwrite,
        progress=progress,
    )
