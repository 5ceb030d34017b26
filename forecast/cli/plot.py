"""`forecast plot SCORES.nc|FC.nc ... --out DIR`: figures of scores and forecasts."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plot",
        help="figures from scores files and forecast files",
        description="Scores files (several: one curve per model) give CRPS and 1/CRPS against lead time, "
        "CRPS maps, spread-skill curves, rank histograms and KE spectra; forecast files give a grid of "
        "context, truth and members and an animation of the rollout.",
    )
    parser.add_argument("files", nargs="+", type=Path, help="scores files and/or forecast files (netCDF)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the figures into")
    parser.add_argument(
        "--lead-index", type=int, default=-1, help="lead-time index of the CRPS maps (default last)"
    )
    parser.add_argument(
        "--init", type=int, default=0, help="which init of a forecast file to draw (default 0)"
    )
    parser.add_argument("--members", type=int, default=3, help="members to draw (default 3)")
    parser.add_argument(
        "--animation", choices=("gif", "mp4"), default="gif", help="animation format (mp4 needs ffmpeg)"
    )
    parser.add_argument(
        "--variables", nargs="+", metavar="V", help="only these forecast variables (default all)"
    )
    parser.add_argument("--dpi", type=int, default=120, help="resolution of the PNG figures (default 120)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from forecast.plots import plot_files  # matplotlib only when plotting

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
