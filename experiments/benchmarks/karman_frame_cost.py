"""What each part of a stored frame costs in one process, against lbmpy's bare time loop, in the same run.

    python experiments/benchmarks/karman_frame_cost.py [--frames 64] [--repeats 3] [--size 128]
        [--members 1] [--inflow-noise 0] [--target cpu|gpu]

One lattice (the generator's: (3 size) x size cells, cumulant, one thread; with ``--members M``, M runs of
one Reynolds number stacked in it as ``--batch-runs`` does) is stepped ``frames`` frames of ``--every`` steps
six ways, each the previous one plus one stage of ``simulators.karman``'s frame loop:

* bare: all steps at once, the fields read once at the end (the reference): on a CPU lbmpy's
  ``LatticeBoltzmannStep.run``; on a GPU (``--target gpu``) ``Lattice.advance``, because lbmpy's run copies
  the PDFs to the host and back around every call;
* stepping: ``Lattice.advance`` one frame at a time (the generator's kernel calls);
* + check: the divergence check after every frame (``Lattice.check_stable``);
* + sample: the stored window's fields and vorticity (``run.sample_frame``);
* + write: the frames written in batches of ``write_batch`` to a zarr store in this thread
  (``writer.write_frames``, the call that the generator's writer thread makes);
* + write in RunWriter's thread: the generator's own way, the batches written by ``writer.RunWriter``'s thread
  while the lattice computes the next frames.

Printed per way: the best of ``--repeats`` times, MLUPS, the ratio to bare and the milliseconds per frame
(of all members). With inlet noise every way but the CPU's bare one includes the inflow updates.
The ways alternate within each repeat, so a busy machine slows them alike; the best time is the least
disturbed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing

from simulators.karman import KarmanConfig  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--frames", type=int, default=64, help="frames per way and repeat (whole batches of 32)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--every", type=int, default=128)
    parser.add_argument("--members", type=int, default=1, help="runs stacked in the lattice")
    parser.add_argument("--inflow-noise", type=float, default=0.0)
    parser.add_argument("--target", choices=("cpu", "gpu"), default="cpu", help="lbmpy target (gpu: cupy)")
    args = parser.parse_args()

    import numpy as np

    from simulators.karman import writer
    from simulators.karman.run import build_runs, sample_frame

    frames = args.frames - args.frames % 32 or 32  # whole write batches
    config = KarmanConfig(
        reynolds=(150.0,) * args.members,
        frames=frames,
        test_frames=1,
        every=args.every,
        size=(args.size, args.size),
        threads=1,
        inflow_noise=args.inflow_noise,
        target=args.target,
    )
    members = range(args.members)
    lattice = build_runs(config, list(members))
    lattice.advance(8 * config.every)  # past the impulsive start
    scratch = tempfile.TemporaryDirectory()  # removed at exit
    store = Path(scratch.name) / "frames.zarr"
    writer.create_store(store, config)
    arrays = writer.open_frames(store, "train")

    def frame_loop(check: bool, sample: bool, write: bool) -> None:
        batch = []
        for i in range(frames):
            lattice.advance(config.every)
            if check:
                lattice.check_stable("run", i)
            if sample:
                batch.append([sample_frame(lattice, m) for m in members])
            if write and len(batch) == config.write_batch:
                for m in members:
                    stacked = {name: np.stack([f[m][name] for f in batch]) for name in writer.FIELDS}
                    writer.write_frames(arrays, m, i + 1 - len(batch), stacked)
                batch = []

    def writer_thread_loop() -> None:
        """The generator's way: the frames handed to ``RunWriter``, which writes batches in a thread."""
        run_writers = [writer.RunWriter(store, config, m) for m in members]
        try:
            for i in range(frames):
                lattice.advance(config.every)
                lattice.check_stable("run", i)
                for m in members:
                    run_writers[m].add(sample_frame(lattice, m))
            for run_writer in run_writers:
                run_writer.flush()
        finally:
            for run_writer in run_writers:
                run_writer.close()

    def bare() -> None:
        if args.target == "gpu":
            lattice.advance(frames * config.every)
            lattice.macroscopic()
        else:
            lattice.step.run(frames * config.every)

    ways = {
        "bare": bare,
        "stepping": lambda: frame_loop(False, False, False),
        "+ check": lambda: frame_loop(True, False, False),
        "+ sample": lambda: frame_loop(True, True, False),
        "+ write": lambda: frame_loop(True, True, True),
        "+ write in RunWriter's thread": writer_thread_loop,
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.repeats):
        for name, way in ways.items():
            start = time.perf_counter()
            way()
            times[name].append(time.perf_counter() - start)
    cells = config.grid_length * config.grid_height * args.members
    bare = min(times["bare"])
    print(
        f"lattice {config.grid_length}x{config.grid_height} x {args.members} member(s), target {args.target}, "
        f"inflow noise {args.inflow_noise}, {frames} frames of {config.every} steps, best of {args.repeats}"
    )
    scratch.cleanup()
    for name, seconds in times.items():
        best = min(seconds)
        print(
            f"{name:30s} {cells * frames * config.every / best / 1e6:7.1f} MLUPS   ratio to bare {bare / best:6.1%}"
            f"   {best / frames * 1e3:6.2f} ms per frame"
        )


if __name__ == "__main__":
    main()
