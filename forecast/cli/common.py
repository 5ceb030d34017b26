"""The grammar every sub-command shares: progress flags, the output location, the overwrite policy, numbers.

- ``--quiet`` / ``--no-progress`` (one flag, ``args.quiet``) on every command;
- the output is ``--out`` everywhere; commands that took it as a positional argument keep that as an alias;
- one overwrite policy: an existing output is refused unless ``--overwrite`` (or ``--resume`` where the command
  can continue an interrupted output);
- every numeric option is checked by its argparse type (``count`` >= 1, ``non_negative`` >= 0, ...);
- defaults are shown in every ``--help`` (``DefaultsFormatter``);
- a usage error is one line, like a ``ForecastError``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from forecast.errors import ForecastError


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show ``(default: X)`` for every option with a real default (not for None or a False switch)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        # identity, not equality: a default of 0 is shown, only None and a False switch are not
        if action.default is None or action.default is False or action.default == argparse.SUPPRESS:
            return help_text
        if "%(default)" in help_text:
            return help_text
        if isinstance(action, argparse._StoreConstAction | argparse._HelpAction | argparse._VersionAction):
            return help_text
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and whose help shows the defaults."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def _number(kind: type, lowest: float, inclusive: bool, what: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < lowest or (not inclusive and value == lowest):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


#: a count: an integer >= 1
count = _number(int, 1, True, "an integer >= 1")
#: an integer >= 0 (a seed, a number of steps that may be zero)
non_negative = _number(int, 0, True, "an integer >= 0")
#: a float > 0 (a speed, a size)
positive = _number(float, 0.0, False, "a number > 0")
#: a float >= 0 (a time budget)
non_negative_float = _number(float, 0.0, True, "a number >= 0")


def fraction(text: str) -> float:
    """A float strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return value


def add_progress(parser: argparse.ArgumentParser) -> None:
    """``--quiet`` and ``--no-progress`` (the same switch): no progress bars."""
    parser.add_argument(
        "--quiet", "--no-progress", dest="quiet", action="store_true", help="no progress bars"
    )


def add_output(
    parser: argparse.ArgumentParser, metavar: str, help_text: str, positional: bool = False
) -> None:
    """The output location: ``--out PATH``; with ``positional`` the old positional form is kept as an alias."""
    if positional:
        parser.add_argument("out_positional", nargs="?", metavar=metavar, help=f"{help_text} (or --out)")
        parser.add_argument("--out", metavar=metavar, help=f"{help_text} (or positional)")
    else:
        parser.add_argument("--out", metavar=metavar, required=True, help=help_text)


def output_path(args: argparse.Namespace) -> Path:
    """The output of ``add_output(..., positional=True)``: the positional or ``--out``, exactly one of them."""
    given = [p for p in (getattr(args, "out_positional", None), args.out) if p is not None]
    if not given:
        raise ForecastError("no output given: name it positionally or with --out")
    if len(given) == 2 and Path(given[0]) != Path(given[1]):
        raise ForecastError(f"two different outputs given: {given[0]} and --out {given[1]}")
    return Path(given[0])


def add_overwrite(parser: argparse.ArgumentParser, resume: str | None = None) -> None:
    """``--overwrite`` (replace an existing output) and, where the command can continue one, ``--resume``."""
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    if resume is not None:
        parser.add_argument("--resume", action="store_true", help=resume)


def add_write_options(parser: argparse.ArgumentParser, resume: str | None = None) -> None:
    """The options every writing command ends with: ``--overwrite`` (``--resume`` too, given ``resume``), ``--quiet``."""
    add_overwrite(parser, resume)
    add_progress(parser)


def check_output(path: str | os.PathLike, args: argparse.Namespace) -> None:
    """Refuse an existing output unless ``--overwrite`` (or ``--resume``) was given; an empty folder is new."""
    path = Path(path)
    overwrite = getattr(args, "overwrite", False)
    resume = getattr(args, "resume", False)
    if overwrite and resume:
        raise ForecastError("--overwrite and --resume exclude each other")
    if not path.exists() or overwrite or resume:
        return
    if path.is_dir() and not any(path.iterdir()):
        return
    remedy = "--overwrite to replace it" + (", --resume to continue it" if hasattr(args, "resume") else "")
    raise ForecastError(f"{path} exists; give {remedy}")


@contextlib.contextmanager
def claimed_output(
    path: str | os.PathLike, args: argparse.Namespace | None = None, claim: bool = True
) -> Iterator[None]:
    """Claim the output (``forecast.claims``: a second command writing it gets one line) and, given ``args``,
    refuse an existing one unless ``--overwrite``/``--resume`` (``check_output``). The check runs under the
    claim, so of two commands started together at most one writes; failed writes inside are one line.
    ``claim=False`` (a torchrun rank other than 0) only checks."""
    from forecast.claims import claim_output
    from forecast.io_errors import writing

    with claim_output(path) if claim else contextlib.nullcontext(), writing(path):
        if args is not None:
            check_output(path, args)
        yield


def check_input_kind(
    path: str | os.PathLike, expected: str | tuple[str, ...], option: str = "", missing_ok: bool = False
) -> None:
    """One line if ``path`` is plainly something else than ``expected`` (phrases of ``forecast.filekind``).

    Where netCDF files are expected, a netCDF file that is neither a forecast nor a scores file passes: the
    reader that follows says exactly what it lacks. With ``missing_ok`` a path that does not exist passes too
    (the loader that follows says what is missing).
    """
    from forecast.filekind import describe

    expected = (expected,) if isinstance(expected, str) else expected
    netcdf = all(e in ("a forecast file", "a scores file") for e in expected)
    label = f"{option} {path}" if option else str(path)
    found = describe(path)
    if found == "missing":
        if missing_ok:
            return
        raise ForecastError(f"{label}: no such file")
    if found in expected or (netcdf and found == "a netCDF file"):
        return
    hint = (
        ", not a readable netCDF file" if netcdf and "netCDF" not in found and "scores" not in found else ""
    )
    if "forecast" in found or "scores" in found:
        hint = ""
    raise ForecastError(f"{label} is {found}{hint}; expected {' or '.join(expected)}")


__all__ = [
    "DefaultsFormatter",
    "Parser",
    "add_output",
    "add_overwrite",
    "add_progress",
    "add_write_options",
    "check_input_kind",
    "check_output",
    "claimed_output",
    "count",
    "fraction",
    "non_negative",
    "non_negative_float",
    "output_path",
    "positive",
]
