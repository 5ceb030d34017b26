"""`forecast rollout RUN_DIR DATA.zarr --out FC.nc`: ensemble forecasts of a store's test group.

Parses the options (declared once, in ``forecast.rollout_options``) and calls ``forecast.rollout.rollout_run``,
which loads the run (EMA weights unless ``--no-ema``), checks the store against it and writes the file with its
provenance.
"""

from __future__ import annotations

import argparse
import sys

from forecast.cli.common import (
    add_write_options,
    check_input_kind,
    claimed_output,
    count,
    non_negative,
    non_negative_float,
)
from forecast.rollout_options import add_arguments, from_arguments, names

#: the CLI's number types for the options' kinds
NUMBER_TYPES = {"count": count, "non_negative": non_negative, "non_negative_float": non_negative_float}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rollout",
        help="ensemble forecasts of a field store's test group -> netCDF forecast file",
        description="Feed CONTEXT true frames to a trained model, generate HORIZON frames autoregressively for "
        "MEMBERS ensemble members at INITS starts of the test group, and write a netCDF forecast file.",
    )
    parser.add_argument(
        "run_dir", metavar="RUN_DIR", help="training run directory (config, normalisation, checkpoints)"
    )
    parser.add_argument("data", metavar="DATA.zarr", help="field store; its test group is forecast")
    parser.add_argument("--out", required=True, metavar="FC.nc", help="forecast file to write")
    add_arguments(parser, NUMBER_TYPES)
    parser.add_argument(
        "--no-ema", action="store_true", help="use the raw weights instead of the EMA weights"
    )
    add_write_options(parser, resume="continue an interrupted rollout to the same --out")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from forecast.forecast_file import history_entry
    from forecast.rollout import RolloutInterrupted, rollout_run
    from forecast.rollout_shards import shard_from_env

    shard = shard_from_env()  # under torchrun: this rank's share of the inits

    check_input_kind(args.run_dir, "a run directory", "RUN_DIR", missing_ok=True)
    check_input_kind(args.data, "a zarr store", "DATA.zarr", missing_ok=True)
    # rank 0 of a torchrun rollout claims the file; the other ranks claim their shards
    with claimed_output(args.out, args, claim=shard is None or shard.rank == 0):
        try:
            out = rollout_run(
                args.run_dir,
                args.data,
                args.out,
                ema=not args.no_ema,
                history=history_entry(_command(args)),
                shard=shard,
                resume=args.resume,
                progress=not args.quiet,
                log=lambda message: print(message, file=sys.stderr),
                **from_arguments(args).as_kwargs(),
            )
        except RolloutInterrupted as exc:
            print(f"forecast rollout: {exc}", file=sys.stderr)
            return 130
    if shard is not None and shard.rank != 0:
        print(f"rank {shard.rank}: wrote its shard {out}; rank 0 joins the shards into {args.out}")
    else:
        print(f"wrote {out}")
    return 0


def _command(args: argparse.Namespace) -> str:
    """The command with every option spelled out (defaults included): a file's ``history`` entry."""
    words = ["forecast rollout", args.run_dir, args.data, "--out", args.out]
    for action in _option_actions():
        value = getattr(args, action.dest)
        if action.nargs == 0:  # a switch
            words += [action.option_strings[0]] if value else []
        elif value is not None:
            words += [action.option_strings[0], str(value)]
    words += [flag for flag, on in (("--no-ema", args.no_ema), ("--resume", args.resume),
                                    ("--overwrite", args.overwrite)) if on]  # fmt: skip
    return " ".join(str(w) for w in words)


def _option_actions() -> list[argparse.Action]:
    """The parser actions of the rollout options, in declaration order."""
    parser = argparse.ArgumentParser()
    add_arguments(parser, NUMBER_TYPES)
    by_dest = {a.dest: a for a in parser._actions}
    return [by_dest[name] for name in names()]
