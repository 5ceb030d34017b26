"""The ``forecast`` command line: a thin front end over the library.

Each sub-command lives in its own module of this package and exposes ``register(subparsers)``, which adds its
parser and sets ``handler`` to a function ``(args) -> int | None``. The handlers only parse, call the library
and report. A ``ForecastError`` becomes a one-line message on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from forecast import __version__
from forecast.cli.common import Parser
from forecast.errors import ForecastError

# One module per sub-command, in the order `forecast --help` lists them.
COMMAND_MODULES = [
    "simulate",
    "data",
    "train",
    "rollout",
    "score",
    "plot",
    "demo",
]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="forecast",
        description="Probabilistic forecasting of gridded fields: simulate, train, roll out, score, plot.",
    )
    parser.add_argument("--version", action="version", version=f"forecast {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"forecast.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # a usage error is one line and SystemExit(2)
    try:
        status = args.handler(args)
    except ForecastError as exc:
        message = str(exc)
        if "Original Traceback" in message:  # re-raised by a DataLoader worker: keep the worker's own line
            message = message.strip().splitlines()[-1].split("ForecastError: ", 1)[-1]
        else:  # a message quoting a library's multi-line error: its first line says what went wrong
            message = (message.strip().splitlines() or [""])[0]
        print(f"forecast {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"forecast {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a full disk, no permission, ... where no writer named its output: still one line
        from forecast.io_errors import write_failure

        error = write_failure(exc.filename or "a file", exc, what="access")
        if error is None:
            raise
        print(f"forecast {args.command}: error: {error}", file=sys.stderr)
        return 2
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
