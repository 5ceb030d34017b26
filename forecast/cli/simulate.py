"""`forecast simulate karman|kolmogorov OUT.zarr`: generate a field store with a simulator (see simulators/)."""

from __future__ import annotations

import argparse
import sys
import warnings

from forecast.cli.common import (
    add_output,
    add_overwrite,
    add_progress,
    claimed_output,
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


def _add_options(parser, options: list[tuple[str, dict]]) -> None:
    """Add ``(flag, add_argument keywords)`` pairs to a parser or argument group."""
    for flag, kwargs in options:
        parser.add_argument(flag, **kwargs)


def _opt(flag: str, help: str, **kwargs) -> tuple[str, dict]:
    """One option: its flag and its ``add_argument`` keywords."""
    return flag, {"help": help, **kwargs}


def _flow_options(d) -> list[tuple[str, dict]]:
    """The runs: Reynolds numbers and frames."""
    return [
        _opt(
            "--reynolds",
            "Reynolds numbers U D / nu, one run (sequence) each",
            type=positive,
            nargs="+",
            default=list(d.reynolds),
            metavar="R",
        ),
        *_frame_options(d, d.every, "lattice steps between stored frames"),
    ]


def _frame_options(d, every: int | None, every_help: str) -> list[tuple[str, dict]]:
    """Frames per run and between them (every simulator's)."""
    return [
        _opt("--frames", "train frames per run", type=count, default=d.frames),
        _opt(
            "--test-frames",
            "frames that follow in the same run, stored in the test group",
            type=count,
            default=d.test_frames,
        ),
        _opt("--every", every_help, type=count, default=every),
    ]


def _lattice_options(d) -> list[tuple[str, dict]]:
    """The lattice: grid, cylinder, inflow, collision, spin-up."""
    return [
        _opt(
            "--size",
            "stored frame size (height [width]; width defaults to height)",
            type=count,
            nargs="+",
            default=list(d.size),
            metavar=("H", "W"),
        ),
        _opt(
            "--scale",
            "simulation cells per stored pixel (frames are block-averaged by this factor)",
            type=count,
            default=d.scale,
        ),
        _opt(
            "--diameter",
            "cylinder diameter in simulation cells (default: channel height / 16)",
            type=positive,
            default=None,
        ),
        _opt("--velocity", "inflow speed U, lattice units", type=positive, default=d.velocity),
        _opt("--length-ratio", "channel length / stored window width", type=positive, default=d.length_ratio),
        _opt(
            "--collision",
            "collision model (srt is unstable at high Re; for comparison only)",
            choices=["cumulant", "mrt", "entropic", "srt"],
            default=d.collision,
        ),
        _opt(
            "--spinup",
            "lattice steps discarded before the first frame (default: 3 flow-throughs)",
            type=non_negative,
            default=None,
        ),
    ]


def _noise_options(d) -> list[tuple[str, dict]]:
    """Free-stream turbulence at the inlet."""
    return [
        _opt(
            "--inflow-noise",
            "std of each inflow component relative to U (0: the deterministic street, bit for bit)",
            type=non_negative_float,
            default=d.inflow_noise,
            metavar="A",
        ),
        _opt(
            "--noise-time",
            "correlation time of the noise in convective times D/U (a shedding period is about 5)",
            type=positive,
            default=d.noise_time,
        ),
        _opt(
            "--noise-length",
            "correlation length of the noise across the inlet, in cylinder diameters",
            type=positive,
            default=d.noise_length,
        ),
        _opt(
            "--noise-seed",
            "seed; each run derives its own stream from it",
            type=non_negative,
            default=d.noise_seed,
        ),
    ]


def _truth_options(d) -> list[tuple[str, dict]]:
    """Perfect-model truth ensembles."""
    return [
        _opt(
            "--truth-members",
            "members; 0: no truth group",
            type=non_negative,
            default=d.truth_members,
            metavar="K",
        ),
        _opt("--truth-inits", "starts per run", type=count, default=d.truth_inits, metavar="N"),
        _opt("--truth-horizon", "frames per continuation", type=count, default=d.truth_horizon, metavar="H"),
        _opt(
            "--truth-context",
            "test frames kept before the first start (a forecaster's context)",
            type=count,
            default=d.truth_context,
            metavar="C",
        ),
    ]


def _execution_options(d) -> list[tuple[str, dict]]:
    """Where and how the runs execute (none of these changes the store's content)."""
    return [
        _opt(
            "--workers",
            "runs computed at once by local processes (default: min(runs, cores))",
            type=count,
            default=None,
        ),
        _opt(
            "--threads", "OpenMP threads per run (default: cores / parallel runs)", type=count, default=None
        ),
        _opt(
            "--scheduler",
            "'local' (processes of this machine), 'synchronous' (in-process), or the address of a dask distributed scheduler, e.g. tcp://host:8786 (its workers must see OUT.zarr)",
            default="local",
        ),
        _opt(
            "--batch-runs",
            "runs with the same Reynolds number computed in one lattice, up to this many (channels stacked "
            "across the flow, walls between them; e.g. --reynolds 150 150 150 150 --inflow-noise 0.1)",
            type=count,
            default=d.batch,
            dest="batch",
            metavar="N",
        ),
        _opt(
            "--target",
            "where lbmpy runs the kernels (gpu needs cupy and CUDA)",
            choices=["cpu", "gpu"],
            default=d.target,
        ),
        _opt(
            "--allow-underresolved",
            "run even where the cylinder's boundary layer is far thinner than a cell (the store is flagged)",
            action="store_true",
        ),
    ]


def _kolmogorov_options(d) -> list[tuple[str, dict]]:
    """The runs and the lattice of Kolmogorov flow."""
    return [
        _opt(
            "--seeds",
            "one run (sequence) per seed: the random initial state",
            type=non_negative,
            nargs="+",
            default=list(d.seeds),
            metavar="S",
        ),
        _opt("--reynolds", "Reynolds number U l / nu, l = L / (2 pi)", type=positive, default=d.reynolds),
        _opt(
            "--wavenumber",
            "forcing wavenumber n: F_x = A sin(2 pi n y / L)",
            type=count,
            default=d.wavenumber,
        ),
        _opt("--velocity", "velocity unit U = sqrt(A l), lattice units", type=positive, default=d.velocity),
        *_frame_options(d, None, "lattice steps between stored frames (default: T / 2)"),
        _opt(
            "--size",
            "stored frame size in pixels (a square: H [H])",
            type=count,
            nargs="+",
            default=list(d.size),
            metavar=("H", "W"),
        ),
        _opt("--scale", "simulation cells per stored pixel (block means)", type=count, default=d.scale),
        _opt(
            "--collision",
            "collision model (srt is unstable at high Re; for comparison only)",
            choices=["cumulant", "trt", "mrt", "srt"],
            default=d.collision,
        ),
        _opt(
            "--spinup", "lattice steps discarded before the first frame (default: 100 T)", type=non_negative
        ),
    ]


def _kolmogorov_truth_options(d) -> list[tuple[str, dict]]:
    """Perturbation ensembles."""
    return _truth_options(d) + [
        _opt(
            "--perturbation",
            "std of the members' velocity perturbation relative to U (zero mean over every stored pixel)",
            type=non_negative_float,
            default=d.perturbation,
        )
    ]


def _register_kolmogorov(kinds) -> None:
    from simulators.kolmogorov.config import KolmogorovConfig

    d = KolmogorovConfig()
    parser = kinds.add_parser(
        "kolmogorov",
        help="2-D Kolmogorov flow (chaotic forced turbulence on a periodic square), lattice Boltzmann with lbmpy",
        description=(
            "Lattice Boltzmann (lbmpy, D2Q9) on a periodic square driven by F_x = A sin(2 pi n y / L), one run "
            "per seed, written as a field store (groups train/test, variables u, v, rho, vorticity). Units: "
            "l = L / (2 pi), U = sqrt(A l), T = l / U, Re = U l / nu (docs/guide/kolmogorov.md)."
        ),
    )
    add_output(parser, "OUT.zarr", "the field store to write", positional=True)
    _add_options(parser, _kolmogorov_options(d))
    truth = parser.add_argument_group(
        "truth ensembles (group `truth`)",
        "K members at N test starts per run: the run's lattice state plus a perturbation below a stored pixel",
    )
    _add_options(truth, _kolmogorov_truth_options(d))
    execution = [
        o for o in _execution_options(d) if o[0] in ("--workers", "--threads", "--scheduler", "--target")
    ]
    _add_options(parser, execution)
    add_overwrite(parser, resume="finish an interrupted store; skip finished runs")
    add_progress(parser)
    parser.set_defaults(handler=run_kolmogorov)


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
    _add_options(karman, _flow_options(d) + _lattice_options(d))
    noise = karman.add_argument_group(
        "stochastic street (free-stream turbulence at the inlet)",
        "an Ornstein-Uhlenbeck perturbation of both inflow components, smooth across the inlet",
    )
    _add_options(noise, _noise_options(d))
    truth = karman.add_argument_group(
        "truth ensembles (group `truth`)",
        "K continuations from the exact state at N test starts per run, each with independent future noise",
    )
    _add_options(truth, _truth_options(d))
    _add_options(karman, _execution_options(d))
    add_overwrite(karman, resume="finish an interrupted store; skip finished runs")
    add_progress(karman)
    karman.set_defaults(handler=run_karman)
    _register_kolmogorov(kinds)


# KarmanConfig fields that the command line sets under the same name (size is checked and shaped first)
_CONFIG_FIELDS = (
    "frames",
    "test_frames",
    "every",
    "scale",
    "diameter",
    "velocity",
    "length_ratio",
    "collision",
    "spinup",
    "target",
    "threads",
    "inflow_noise",
    "noise_time",
    "noise_length",
    "noise_seed",
    "truth_members",
    "truth_inits",
    "truth_horizon",
    "truth_context",
    "allow_underresolved",
    "batch",
)


def _square(size: list[int]) -> tuple[int, int]:
    if len(size) not in (1, 2):
        raise ForecastError(f"--size takes H or H W, got {len(size)} numbers")
    return (size[0], size[-1])


def run_kolmogorov(args: argparse.Namespace) -> int:
    from simulators.kolmogorov import KolmogorovConfig, generate

    names = ("reynolds", "wavenumber", "velocity", "frames", "test_frames", "every", "scale", "collision")
    names += ("spinup", "target", "threads", "truth_members", "truth_inits", "truth_horizon", "truth_context")
    config = KolmogorovConfig(
        seeds=tuple(args.seeds),
        size=_square(args.size),
        perturbation=args.perturbation,
        **{name: getattr(args, name) for name in names},
    )
    _report(_generate(generate, args, config), config)
    return 0


def _generate(generate, args: argparse.Namespace, config):
    """``generate`` (a simulator's) into the command's output with its execution options, the output claimed."""
    with claimed_output(output_path(args)):
        return generate(
            output_path(args),
            config,
            workers=args.workers,
            scheduler=args.scheduler,
            resume=args.resume,
            overwrite=args.overwrite,
            progress=not args.quiet,
        )


def _report(result, config) -> None:
    """The one-line summary of a generation (and the truth's share of the time)."""
    if result.skipped:
        print(f"resumed: skipped finished runs {result.skipped}")
    mlups = result.lattice_updates / result.seconds / 1e6 if result.runs else 0.0
    height, width = config.size
    print(
        f"wrote {result.path}: {config.runs} runs x ({config.frames} train + {config.test_frames} test) "
        f"frames of {height}x{width}; computed {len(result.runs)} runs in {result.seconds:.1f} s "
        f"({mlups:.1f} M lattice updates/s)"
    )
    if config.truth_members and result.runs:
        # runs batched in one lattice share their seconds
        truth_seconds = sum(r.truth_seconds / r.lattice_runs for r in result.runs)
        run_seconds = sum((r.seconds - r.build_seconds) / r.lattice_runs for r in result.runs)
        print(
            f"truth: {config.truth_members} members x {config.truth_inits} starts x {config.truth_horizon} frames "
            f"per run took {truth_seconds:.1f} s of the runs' {run_seconds:.1f} s (kernel builds excluded)"
        )


def run_karman(args: argparse.Namespace) -> int:
    from simulators.karman import KarmanConfig, generate
    from simulators.karman.parallel import UnderResolvedWarning

    size = _square(args.size)
    config = KarmanConfig(
        reynolds=tuple(args.reynolds), size=size, **{name: getattr(args, name) for name in _CONFIG_FIELDS}
    )
    with warnings.catch_warnings():
        # the store is flagged too; here it is one line on stderr, once the inputs have been checked
        warnings.simplefilter("always", UnderResolvedWarning)
        warnings.showwarning = lambda message, *_: print(f"warning: {message}", file=sys.stderr)
        result = _generate(generate, args, config)
    _report(result, config)
    return 0
