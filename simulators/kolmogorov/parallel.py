"""Kolmogorov flow's generation: its runs (one per seed) on the shared orchestration (``simulators.common``)."""

from __future__ import annotations

import os

from simulators.common import parallel as common
from simulators.common.parallel import GenerationResult, RunResult
from simulators.kolmogorov.config import KolmogorovConfig
from simulators.kolmogorov.writer import FLOW


def simulate_runs(path: str, config: KolmogorovConfig, indices: list[int]) -> list[RunResult]:
    """A task: run ``indices[0]`` computed and written into the store."""
    return common.simulate_batch(path, config, indices, FLOW)


def generate(
    path: str | os.PathLike,
    config: KolmogorovConfig,
    *,
    workers: int | None = None,
    scheduler: str = "local",
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> GenerationResult:
    """Generate the Kolmogorov-flow field store at ``path`` (one run per seed).

    ``scheduler``: ``"local"`` (``workers`` processes of this machine), ``"synchronous"`` (in this process, one
    run after the other) or the address of a running dask distributed scheduler, whose workers must see
    ``path``. ``resume`` finishes an interrupted store, skipping finished runs.
    """
    return common.generate(
        path,
        config,
        FLOW,
        simulate_runs,
        workers=workers,
        scheduler=scheduler,
        resume=resume,
        overwrite=overwrite,
        progress=progress,
    )
