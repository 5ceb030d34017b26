"""`forecast demo OUT_DIR`: simulate, train, roll out, score and plot, small, on a CPU (forecast.demo)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the whole chain, small, on a CPU: simulate, train RVD and baselines, roll out, score, plot",
        description="Simulate a small vortex street, train a tiny RVD for a few minutes, fit persistence and "
        "climatology, write ensemble forecasts, scores, figures and OUT_DIR/summary.csv. About 6 minutes on two "
        "CPU cores. Rerunning into the same OUT_DIR skips the stages that are done.",
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder for everything the demo writes")
    parser.add_argument(
        "--train-seconds", type=float, default=None, help="time budget of the RVD's training (default 240)"
    )
    parser.add_argument("--members", type=int, default=None, help="ensemble members (default 8)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from forecast.demo import DemoSettings, run_demo

    settings = DemoSettings()
    changes = {
        k: v
        for k, v in {"train_seconds": args.train_seconds, "members": args.members, "seed": args.seed}.items()
        if v is not None
    }
    if changes.get("members", 1) < 1 or changes.get("train_seconds", 0) < 0:
        raise SystemExit("forecast demo: error: --members must be >= 1 and --train-seconds >= 0")
    run_demo(args.out_dir, replace(settings, **changes), progress=not args.no_progress)
    return 0
