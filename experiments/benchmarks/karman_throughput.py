"""Throughput of `forecast simulate karman` against the bare lbmpy kernel loop, in the same run.

    python experiments/benchmarks/karman_throughput.py [--frames 300] [--runs 2] [--size 128] [--repeats 1]

* bare: ``runs`` processes at once, each builds the same lattice (excluded from the timing) and calls the
  compiled lbmpy time loop (``LatticeBoltzmannStep.run``) for all its steps in one go: no frames, no checks,
  no I/O.
* pipeline: ``generate()`` with the default local scheduler (a process per run), ``runs`` runs of ``frames``
  frames each: spin-up, frame extraction every ``--every`` steps, divergence checks, zarr writes, progress
  polling. ``--scheduler synchronous`` runs them one after another in this process instead (no worker
  processes, no polling): with ``--runs 1`` it separates the per-frame work from the cost of the processes.
  ``--scheduler ADDRESS`` runs them on a dask distributed scheduler (for example one started for the purpose
  with ``dask scheduler`` and ``dask worker --nthreads 1``).

Printed: lattice updates per second (MLUPS) of both, their ratio (steady state: kernel build excluded from
the pipeline's time; end to end: everything from the call to the complete store), frames written per second,
and the time extrapolated for the paper's full dataset (10,000 frames every 128 steps at 128x128) with the
default options. The bare loop is measured before and after each pipeline and averaged, since the machine may
be shared; ``--repeats N`` alternates N pipelines with the bare loop and prints the median ratios (on the 2-core
development machine one ratio varies by a few points from run to run).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing

from simulators.karman import KarmanConfig, generate  # noqa: E402

#: the 2-core CPU's throughput on the paper's dataset, as measured for issue 13 (the GPU's reference)
CPU_MLUPS = 280


def _bare(config: KarmanConfig, steps: int) -> float:
    """MLUPS of one process running the bare kernel loop on the generator's lattice."""
    from simulators.karman.lattice import build_lattice

    lattice = build_lattice(config, config.reynolds[0])
    lattice.step.run(config.every)  # warm-up
    start = time.perf_counter()
    lattice.step.run(steps)  # lbmpy's compiled time loop, built once for all steps
    seconds = time.perf_counter() - start
    return config.grid_length * config.grid_height * steps / seconds / 1e6


def bare_throughput(config: KarmanConfig, steps: int, processes: int) -> float:
    """Summed MLUPS of ``processes`` bare kernel loops running at once."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes) as pool:
        return sum(pool.starmap(_bare, [(config, steps)] * processes))


def pipeline(config: KarmanConfig, runs: int, scheduler: str, processes: int) -> tuple[float, ...]:
    """One generation into a scratch store: steady-state and end-to-end MLUPS, wall seconds, kernel build."""
    cells = config.grid_length * config.grid_height
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = generate(Path(tmp) / "bench.zarr", config, workers=runs, scheduler=scheduler, progress=False)
        wall = time.perf_counter() - start
    if processes > 1:  # runs side by side: their rates add up
        steady = sum(r.lattice_steps * cells / (r.seconds - r.build_seconds) for r in result.runs) / 1e6
    else:  # one after another
        steady = sum(r.lattice_steps for r in result.runs) * cells / 1e6
        steady /= sum(r.seconds - r.build_seconds for r in result.runs)
    build = max(r.build_seconds for r in result.runs)
    return steady, result.lattice_updates / wall / 1e6, wall, build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300, help="frames per run (train + test)")
    parser.add_argument("--runs", type=int, default=2, help="runs in parallel (one per core)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--every", type=int, default=128)
    parser.add_argument("--target", choices=("cpu", "gpu"), default="cpu", help="lbmpy target (gpu: cupy)")
    parser.add_argument(
        "--scheduler",
        default="local",
        help="the pipeline's runs on local processes (default), one after another in this process "
        "('synchronous'), or on the dask scheduler at this address",
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="pipelines, each between two bare loops (the machine's noise)"
    )
    args = parser.parse_args()

    reynolds = tuple(150.0 + 50 * i for i in range(args.runs))
    test_frames = max(1, args.frames // 5)
    config = KarmanConfig(
        reynolds=reynolds,
        frames=args.frames - test_frames,
        test_frames=test_frames,
        every=args.every,
        size=(args.size, args.size),
        threads=1,
        target=args.target,
    )
    steps_per_run = config.spinup_steps + config.frames_per_run * config.every
    cells = config.grid_length * config.grid_height
    print(
        f"lattice {config.grid_length}x{config.grid_height} ({cells} cells), {args.runs} runs x "
        f"{steps_per_run} steps ({config.frames_per_run} frames every {config.every} + spin-up)"
    )

    processes = 1 if args.scheduler == "synchronous" else args.runs  # the bare loop runs as the pipeline's do
    bares = [bare_throughput(config, steps_per_run, processes)]
    print(f"bare kernel loop ({processes} processes): {bares[0]:8.1f} MLUPS")
    ratios = []
    for _ in range(args.repeats):
        steady, end_to_end, wall, build = pipeline(config, args.runs, args.scheduler, processes)
        bares.append(bare_throughput(config, steps_per_run, processes))
        bare = (bares[-2] + bares[-1]) / 2  # the bare loops just before and after this pipeline
        ratios.append((steady / bare, end_to_end / bare))
        frames = args.runs * config.frames_per_run
        print(f"bare kernel loop ({processes} processes): {bares[-1]:8.1f} MLUPS")
        print(f"pipeline steady state:  {steady:8.1f} MLUPS   ratio to bare {steady / bare:6.1%}")
        print(
            f"pipeline end to end:    {end_to_end:8.1f} MLUPS   ratio to bare {end_to_end / bare:6.1%}   "
            f"({frames} frames in {wall:.1f} s = {frames / wall:.1f} frames/s; kernel build {build:.1f} s)"
        )
    if args.repeats > 1:
        steady_ratios, end_ratios = zip(*ratios, strict=True)
        print(
            f"median of {args.repeats}: steady state {statistics.median(steady_ratios):6.1%} "
            f"(range {min(steady_ratios):.1%}-{max(steady_ratios):.1%}), end to end "
            f"{statistics.median(end_ratios):6.1%} (range {min(end_ratios):.1%}-{max(end_ratios):.1%})"
        )
    updates = steps_per_run * len(config.reynolds) * cells

    # The paper's dataset with the defaults: 2 runs x 5000 frames every 128 steps, 128x128, run in parallel.
    full = KarmanConfig()
    full_updates = len(full.reynolds) * (full.spinup_steps + full.frames_per_run * full.every)
    full_updates *= full.grid_length * full.grid_height
    overhead = wall - updates / (steady * 1e6)  # cluster start, kernel build, final bookkeeping
    per_core = steady / processes
    full_seconds = overhead + full_updates / (per_core * 1e6 * min(len(full.reynolds), processes))
    if args.target == "gpu":
        print(
            f"GPU against the 2-core CPU ({CPU_MLUPS} MLUPS end to end, issue 13): {end_to_end / CPU_MLUPS:.1f}x "
            f"(target: 10x)"
        )
    print(
        f"extrapolated: paper dataset (10,000 frames every 128 steps at 128x128, defaults) in "
        f"{full_seconds / 60:.1f} min on {min(len(full.reynolds), processes)} cores"
    )


if __name__ == "__main__":
    main()
