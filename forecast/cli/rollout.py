"""`forecast rollout RUN_DIR DATA.zarr --out FC.nc`: ensemble forecasts of a store's test group.

Parses the options and calls ``forecast.rollout.rollout_run``, which loads the run (EMA weights unless
``--no-ema``), checks the store against it and writes the file with its provenance.
"""

from __future__ import annotations

import argparse
import sys

from forecast.cli.common import (
    add_write_options,
    check_input_kind,
    check_output,
    count,
    non_negative,
    non_negative_float,
)


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
    _add_start_args(parser)
    _add_sampler_args(parser)
    _add_device_args(parser)
    add_write_options(parser, resume="continue an interrupted rollout to the same --out")
    parser.set_defaults(handler=run)


def _add_start_args(parser: argparse.ArgumentParser) -> None:
    """What is forecast: members, context, horizon and the starts."""
    parser.add_argument("--members", type=count, default=8, help="ensemble members per init")
    parser.add_argument("--context", type=count, default=4, help="true frames observed before forecasting")
    parser.add_argument(
        "--horizon",
        type=count,
        default=None,
        help="frames generated per init (default 16; with --starts truth: the truth group's horizon)",
    )
    parser.add_argument(
        "--inits",
        type=count,
        default=None,
        help="number of forecast starts, spread evenly over the test sequences (default: one per sequence)",
    )
    parser.add_argument(
        "--starts",
        choices=("even", "truth"),
        default="even",
        help="even: --inits starts spread over the test group; truth: exactly the starts of the store's truth "
        "group (known-answer benchmarks), with its sequence, init_time and horizon",
    )


def _add_sampler_args(parser: argparse.ArgumentParser) -> None:
    """How members are drawn: sampler, steps, eta and seed."""
    parser.add_argument("--sampler", default="ddpm", help="diffusion sampler: ddpm or ddim")
    parser.add_argument(
        "--steps",
        type=count,
        default=None,
        help="sampling steps (default: all N diffusion steps of the model)",
    )
    parser.add_argument(
        "--eta", type=non_negative_float, default=0.0, help="DDIM eta: 0 deterministic, 1 DDPM-like"
    )
    parser.add_argument("--seed", type=non_negative, default=0, help="random seed")
    parser.add_argument(
        "--spread-calibration",
        metavar="FILE",
        help="widen each init's members about their mean by the factors of this spread calibration (JSON, "
        "fitted on a validation store: docs/guide/calibration.md); 'run' for RUN_DIR/spread_calibration.json",
    )


def _add_device_args(parser: argparse.ArgumentParser) -> None:
    """Where and how fast: batch size, device, autocast, compilation, and which weights."""
    parser.add_argument(
        "--batch-size",
        type=count,
        default=32,
        help="most members generated together; larger ensembles are split into chunks",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast on GPUs that support it")
    parser.add_argument(
        "--compile",
        default="none",
        metavar="MODE",
        help="compile or capture the denoiser: none (default), auto (CUDA graphs on a GPU, none on a CPU), "
        "cudagraph (CUDA only) or compile (torch.compile: minutes to build); same samples to float rounding",
    )
    parser.add_argument(
        "--channels-last",
        action="store_true",
        help="run the denoiser in channels-last memory format (can speed up bf16 convolutions on GPUs)",
    )
    parser.add_argument(
        "--no-ema", action="store_true", help="use the raw weights instead of the EMA weights"
    )


def run(args: argparse.Namespace) -> int:
    from forecast.forecast_file import history_entry
    from forecast.rollout import RolloutInterrupted, rollout_run
    from forecast.rollout_shards import shard_from_env

    shard = shard_from_env()  # under torchrun: this rank's share of the inits

    check_input_kind(args.run_dir, "a run directory", "RUN_DIR", missing_ok=True)
    check_input_kind(args.data, "a zarr store", "DATA.zarr", missing_ok=True)
    check_output(args.out, args)
    try:
        out = rollout_run(
            args.run_dir,
            args.data,
            args.out,
            ema=not args.no_ema,
            device=args.device,
            history=history_entry(_command(args)),
            members=args.members,
            context=args.context,
            horizon=args.horizon,
            inits=args.inits,
            starts=args.starts,
            sampler=args.sampler,
            steps=args.steps,
            eta=args.eta,
            seed=args.seed,
            batch_size=args.batch_size,
            amp=args.amp,
            capture=args.compile,
            channels_last=args.channels_last,
            shard=shard,
            spread_calibration=True if args.spread_calibration == "run" else args.spread_calibration,
            resume=args.resume,
            progress=not args.quiet,
            log=lambda message: print(message, file=sys.stderr),
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
    for name in ("members", "context", "horizon", "inits", "starts", "sampler", "steps", "eta", "seed"):
        value = getattr(args, name)
        if value is not None:
            words += [f"--{name}", str(value)]
    words += ["--spread-calibration", args.spread_calibration] if args.spread_calibration else []
    words += ["--batch-size", str(args.batch_size), "--device", args.device, "--compile", args.compile]
    words += [
        flag
        for flag, on in (
            ("--amp", args.amp),
            ("--channels-last", args.channels_last),
            ("--no-ema", args.no_ema),
            ("--resume", args.resume),
            ("--overwrite", args.overwrite),
        )
        if on
    ]
    return " ".join(str(w) for w in words)
