"""`forecast demo OUT_DIR`: simulate, train, roll out, score and plot, small, on a CPU (forecast.demo)."""

from __future__ import annotations

import argparse
import shutil

from forecast.cli.common import (
    add_output,
    add_overwrite,
    add_progress,
    claimed_output,
    count,
    non_negative,
    non_negative_float,
    output_path,
)
from forecast.errors import ForecastError

# what a demo folder holds: --overwrite deletes a folder only if it has some of these
_DEMO_ENTRIES = ("data", "runs", "forecasts", "scores", "figures", "configs", "summary.csv")


def register(subparsers: argparse._SubParsersAction) -> None:
    from forecast.demo import DemoSettings

    defaults = DemoSettings()
    parser = subparsers.add_parser(
        "demo",
        help="the whole chain, small, on a CPU: simulate, train RVD and baselines, roll out, score, plot",
        description="Simulate a small stochastic vortex street (turbulent inflow) with perfect-model truth "
        "ensembles, train a tiny RVD for a few minutes, fit persistence and climatology, forecast the truth "
        "starts and write ensemble forecasts, scores, figures and OUT_DIR/summary.csv: every model's CRPS, its "
        "ratio to the oracle's (the truth ensemble's, also a row) and its spread-skill ratio; the RVD's spread is first calibrated on a validation store. About 6 minutes (measured before the calibration stage, which adds a small simulation and one rollout) on "
        "two CPU cores. --resume continues an interrupted demo in OUT_DIR, skipping the stages that are done.",
    )
    add_output(parser, "OUT_DIR", "folder for everything the demo writes", positional=True)
    parser.add_argument(
        "--train-seconds",
        type=non_negative_float,
        default=defaults.train_seconds,
        help="time budget of the RVD's training",
    )
    parser.add_argument("--members", type=count, default=defaults.members, help="ensemble members")
    parser.add_argument("--seed", type=non_negative, default=defaults.seed, help="random seed")
    add_overwrite(parser, resume="continue an interrupted demo in OUT_DIR (stages that are done are skipped)")
    add_progress(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from forecast.demo import DemoSettings, run_demo

    out = output_path(args)
    with claimed_output(out, args):
        if args.overwrite and out.is_dir() and any(out.iterdir()):
            if not any((out / name).exists() for name in _DEMO_ENTRIES):
                raise ForecastError(
                    f"{out} does not look like a demo folder; --overwrite replaces only demo folders"
                )
            shutil.rmtree(out)
        settings = replace(
            DemoSettings(), train_seconds=args.train_seconds, members=args.members, seed=args.seed
        )
        run_demo(out, settings, progress=not args.quiet)
    return 0
