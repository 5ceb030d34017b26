"""Cost per lattice update of runs batched in one lattice (``--batch-runs``) against one lattice per run.

    python experiments/benchmarks/karman_batch.py [--members 4] [--size 64] [--steps 2048] [--repeats 3]
        [--target cpu|gpu]

One process, one core: a single channel (``build_lattice``) and ``members`` channels stacked in one lattice
(``build_batch``) are built (excluded from the timing), then each advances ``steps`` lattice steps in turn,
``repeats`` times, alternating, so that a shared machine loads both alike; the fastest repeat of each counts.
Printed: nanoseconds per cell update of each and their ratio (batched / separate; below 1: batching is
cheaper per update). On a CPU the kernel's work per cell is the same, so the ratio measures what batching
saves per step (Python calls, boundary kernel launches) against what it costs (a longer inner loop, a larger
working set). On a GPU (``--target gpu``) a step of one small channel is dominated by its kernel launches and
Python calls, so stacking channels is how the per-step cost is amortised.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing

from simulators.karman import KarmanConfig  # noqa: E402
from simulators.karman.lattice import build_batch, build_lattice  # noqa: E402


def _seconds(lattice, steps: int) -> float:
    start = time.perf_counter()
    lattice.advance(steps)
    lattice.macroscopic()  # the getter runs when the fields are read: once per frame in the pipeline
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=4, help="channels in the batched lattice")
    parser.add_argument("--size", type=int, default=64, help="stored frame size (the channel is 3x as long)")
    parser.add_argument("--steps", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--inflow-noise", type=float, default=0.0)
    parser.add_argument("--target", choices=("cpu", "gpu"), default="cpu", help="lbmpy target (gpu: cupy)")
    args = parser.parse_args()
    config = KarmanConfig(
        reynolds=(150.0,),
        size=(args.size, args.size),
        threads=1,
        inflow_noise=args.inflow_noise,
        target=args.target,
    )
    single = build_lattice(config, 150.0, noise_seed=0)
    batched = build_batch(config, 150.0, list(range(args.members)))
    cells = config.grid_length * config.grid_height
    single.advance(2)
    batched.advance(2)  # warm-up
    separate, together = [], []
    for _ in range(args.repeats):
        separate.append(_seconds(single, args.steps) / (cells * args.steps))
        together.append(_seconds(batched, args.steps) / (cells * args.members * args.steps))
    ns_single, ns_batched = min(separate) * 1e9, min(together) * 1e9
    print(
        f"channel {config.grid_length}x{config.grid_height}, {args.steps} steps, inflow noise {args.inflow_noise}, "
        f"target {args.target}"
    )
    print(
        f"separate (1 channel per lattice):   {ns_single:7.2f} ns per cell update ({1e3 / ns_single:.0f} MLUPS)"
    )
    print(
        f"batched ({args.members} channels in one lattice): {ns_batched:7.2f} ns per cell update "
        f"({1e3 / ns_batched:.0f} MLUPS)"
    )
    print(f"ratio batched / separate: {ns_batched / ns_single:.3f}")


if __name__ == "__main__":
    main()
