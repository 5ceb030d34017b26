"""`forecast simulate karman OUT.zarr`: placeholder until the simulator lands (issue 2)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("simulate", help="generate a field store with a simulator")
    parser.set_defaults(handler=lambda args: parser.error("no simulator yet"))
