"""`forecast plot SCORES.nc|FC.nc ... --out DIR`: figures of scores and forecasts."""

from __future__ import annotations

import argparse
from pathlib import Path

from forecast.cli.common import add_write_options, check_input_kind, claimed_output, count, non_negative


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plot",
        help="figures from scores files and forecast files",
        description="Scores files (several: one curve per model) give CRPS and 1/CRPS against lead time, "
        "CRPS maps, spread-skill curves, rank histograms and KE spectra; forecast files give a grid of "
        "context, truth and members and an animation of the rollout.",
    )
    parser.add_argument(
        "files", nargs="+", type=Path, metavar="FILE", help="scores files and/or forecast files (netCDF)"
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="folder to write the figures into"
    )
    parser.add_argument(
        "--lead-index", type=int, default=-1, help="lead-time index of the CRPS maps (-1: the last)"
    )
    parser.add_argument("--init", type=non_negative, default=0, help="which init of a forecast file to draw")
    parser.add_argument("--members", type=count, default=3, help="members to draw")
    parser.add_argument(
        "--animation", choices=("gif", "mp4"), default="gif", help="animation format (mp4 needs ffmpeg)"
    )
    parser.add_argument(
        "--variables", nargs="+", metavar="V", help="only these forecast variables (default: all)"
    )
    parser.add_argument("--dpi", type=count, default=120, help="resolution of the PNG figures")
    add_write_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from forecast.plots import plot_files  # matplotlib only when plotting

    for path in args.files:
        check_input_kind(path, ("a scores file", "a forecast file"))
    with claimed_output(args.out, args):
        written = plot_files(
            args.files,
            args.out,
            args.lead_index,
            args.init,
            args.members,
            args.animation,
            args.variables,
            args.dpi,
        )
    for path in written:
        print(path)
    return 0
