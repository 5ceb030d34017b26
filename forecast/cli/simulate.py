"""`forecast simulate karman OUT.zarr`: generate a field store with a simulator (see simulators/)."""

from __future__ import annotations

import argparse
import sys
import warnings

from forecast.cli.common import (
    add_output,
    add_overwrite,
    add_progress,
    count,
    non_negative,
    non_negative_float,
    output_path,
    positive,
)
from forecast.errors import ForecastError


def _karman_defaults():
    from simulators.karman.config import KarmanConfig

    return KarmanConfig()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("simulate", help="generate a field store with a simulator")
    kinds = parser.add_subparsers(dest="simulator", metavar="SIMULATOR", required=True)
    d = _karman_defaults()
    karman = kinds.add_parser(
        "karman",
        help="2-D flow past a cylinder (von Karman vortex street), lattice Boltzmann with lbmpy",
        description=(
            "Lattice Boltzmann (lbmpy, D2Q9) channel flow past a cylinder, one run per Reynolds number, "
            "written as a field store (groups train/test, variables u, v, rho, vorticity). The defaults give "
            "the paper's Simulation dataset: 10,000 frames of 128x128 every 128 steps (2 runs x (4000 train + "
            "1000 test))."
        ),
    )
    add_output(karman, "OUT.zarr", "the field store to write", positional=True)
    karman.add_argument(
        "--reynolds",
        type=positive,
        nargs="+",
        default=list(d.reynolds),
        metavar="R",
        help="Reynolds numbers U D / nu, one run (sequence) each",
    )
    karman.add_argument("--frames", type=count, default=d.frames, help="train frames per run")
    karman.add_argument(
        "--test-frames",
        type=count,
        default=d.test_frames,
        help="frames that follow in the same run, stored in the test group",
    )
    karman.add_argument("--every", type=count, default=d.every, help="lattice steps between stored frames")
    karman.add_argument(
        "--size",
        type=count,
        nargs="+",
        default=list(d.size),
        metavar=("H", "W"),
        help="stored frame size (height [width]; width defaults to height)",
    )
    karman.add_argument(
        "--scale",
        type=count,
        default=d.scale,
        help="simulation cells per stored pixel (frames are block-averaged by this factor)",
    )
    karman.add_argument(
        "--diameter",
        type=positive,
        default=None,
        help="cylinder diameter in simulation cells (default: channel height / 16)",
    )
    karman.add_argument("--velocity", type=positive, default=d.velocity, help="inflow speed U, lattice units")
    karman.add_argument(
        "--length-ratio", type=positive, default=d.length_ratio, help="channel length / stored window width"
    )
    karman.add_argument(
        "--collision",
        choices=["cumulant", "mrt", "entropic", "srt"],
        default=d.collision,
        help="collision model (srt is unstable at high Re; for comparison only)",
    )
    karman.add_argument(
        "--spinup",
        type=non_negative,
        default=None,
        help="lattice steps discarded before the first frame (default: 3 flow-throughs)",
    )
    noise = karman.add_argument_group(
        "stochastic street (free-stream turbulence at the inlet)",
        "an Ornstein-Uhlenbeck perturbation of both inflow components, smooth across the inlet",
    )
    noise.add_argument(
        "--inflow-noise",
        type=non_negative_float,
        default=d.inflow_noise,
        metavar="A",
        help="std of each inflow component relative to U (0: the deterministic street, bit for bit)",
    )
    noise.add_argument(
        "--noise-time",
        type=positive,
        default=d.noise_time,
        help="correlation time of the noise in convective times D/U (a shedding period is about 5)",
    )
    noise.add_argument(
        "--noise-length",
        type=positive,
        default=d.noise_length,
        help="correlation length of the noise across the inlet, in cylinder diameters",
    )
    noise.add_argument(
        "--noise-seed",
        type=non_negative,
        default=d.noise_seed,
        help="seed; each run derives its own stream from it",
    )
    truth = karman.add_argument_group(
        "truth ensembles (group `truth`)",
        "K continuations from the exact state at N test starts per run, each with independent future noise",
    )
    truth.add_argument(
        "--truth-members",
        type=non_negative,
        default=d.truth_members,
        metavar="K",
        help="members; 0: no truth group",
    )
    truth.add_argument("--truth-inits", type=count, default=d.truth_inits, metavar="N", help="starts per run")
    truth.add_argument(
        "--truth-horizon", type=count, default=d.truth_horizon, metavar="H", help="frames per continuation"
    )
    truth.add_argument(
        "--truth-context",
        type=count,
        default=d.truth_context,
        metavar="C",
        help="test frames kept before the first start (a forecaster's context)",
    )
    karman.add_argument(
        "--workers",
        type=count,
        default=None,
        help="parallel runs on the local dask cluster (default: min(runs, cores))",
    )
    karman.add_argument(
        "--threads", type=count, default=None, help="OpenMP threads per run (default: cores / parallel runs)"
    )
    karman.add_argument(
        "--scheduler",
        default="local",
        help="'local' (a local dask cluster), 'synchronous' (in-process), or the address of a "
        "dask distributed scheduler, e.g. tcp://host:8786 (its workers must see OUT.zarr)",
    )
    karman.add_argument(
        "--target",
        choices=["cpu", "gpu"],
        default=d.target,
        help="where lbmpy runs the kernels (gpu needs cupy and CUDA)",
    )
    karman.add_argument(
        "--allow-underresolved",
        action="store_true",
        help="run even where the cylinder's boundary layer is far thinner than a cell (the store is flagged)",
    )
    add_overwrite(karman, resume="finish an interrupted store; skip finished runs")
    add_progress(karman)
    karman.set_defaults(handler=run_karman)


def run_karman(args: argparse.Namespace) -> int:
    from simulators.karman import KarmanConfig, generate
    from simulators.karman.parallel import UnderResolvedWarning

    if len(args.size) not in (1, 2):
        raise ForecastError(f"--size takes H or H W, got {len(args.size)} numbers")
    size = (args.size[0], args.size[-1])
    config = KarmanConfig(
        reynolds=tuple(args.reynolds),
        frames=args.frames,
        test_frames=args.test_frames,
        every=args.every,
        size=size,
        scale=args.scale,
        diameter=args.diameter,
        velocity=args.velocity,
        length_ratio=args.length_ratio,
        collision=args.collision,
        spinup=args.spinup,
        target=args.target,
        threads=args.threads,
        inflow_noise=args.inflow_noise,
        noise_time=args.noise_time,
        noise_length=args.noise_length,
        noise_seed=args.noise_seed,
        truth_members=args.truth_members,
        truth_inits=args.truth_inits,
        truth_horizon=args.truth_horizon,
        truth_context=args.truth_context,
        allow_underresolved=args.allow_underresolved,
    )
    with warnings.catch_warnings():
        # the store is flagged too; here it is one line on stderr, once the inputs have been checked
        warnings.simplefilter("always", UnderResolvedWarning)
        warnings.showwarning = lambda message, *_: print(f"warning: {message}", file=sys.stderr)
        result = generate(
            output_path(args),
            config,
            workers=args.workers,
            scheduler=args.scheduler,
            resume=args.resume,
            overwrite=args.overwrite,
            progress=not args.quiet,
        )
    if result.skipped:
        print(f"resumed: skipped finished runs {result.skipped}")
    mlups = result.lattice_updates / result.seconds / 1e6 if result.runs else 0.0
    print(
        f"wrote {result.path}: {len(config.reynolds)} runs x ({config.frames} train + {config.test_frames} test) "
        f"frames of {size[0]}x{size[1]}; computed {len(result.runs)} runs in {result.seconds:.1f} s "
        f"({mlups:.1f} M lattice updates/s)"
    )
    if config.truth_members and result.runs:
        truth_seconds = sum(r.truth_seconds for r in result.runs)
        run_seconds = sum(r.seconds - r.build_seconds for r in result.runs)
        print(
            f"truth: {config.truth_members} members x {config.truth_inits} starts x {config.truth_horizon} frames "
            f"per run took {truth_seconds:.1f} s of the runs' {run_seconds:.1f} s (kernel builds excluded)"
        )
    return 0
