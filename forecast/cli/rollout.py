"""`forecast rollout RUN_DIR DATA.zarr --out FC.nc`: ensemble forecasts of a store's test group.

Loads the run (EMA weights unless ``--no-ema``), opens the store's ``test`` group, checks that its variables and
frame size are those the model was trained on, and calls ``forecast.rollout.rollout``.
"""

from __future__ import annotations

import argparse
import json
import sys

from forecast.cli.common import (
    add_overwrite,
    add_progress,
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
    parser.add_argument("--members", type=count, default=8, help="ensemble members per init")
    parser.add_argument("--context", type=count, default=4, help="true frames observed before forecasting")
    parser.add_argument("--horizon", type=count, default=16, help="frames generated per init")
    parser.add_argument(
        "--inits",
        type=count,
        default=None,
        help="number of forecast starts, spread evenly over the test sequences (default: one per sequence)",
    )
    parser.add_argument("--sampler", default="ddpm", help="diffusion sampler: ddpm or ddim (default ddpm)")
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
        "--batch-size",
        type=count,
        default=32,
        help="most members generated together; larger ensembles are split into chunks",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast on GPUs that support it")
    parser.add_argument(
        "--no-ema", action="store_true", help="use the raw weights instead of the EMA weights"
    )
    add_overwrite(parser, resume="continue an interrupted rollout to the same --out")
    add_progress(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from forecast.device import select_device
    from forecast.field_store import open_field_store
    from forecast.rollout import RolloutInterrupted, rollout
    from forecast.training import load_run

    check_input_kind(args.run_dir, "a run directory", "RUN_DIR", missing_ok=True)
    check_input_kind(args.data, "a zarr store", "DATA.zarr", missing_ok=True)
    check_output(args.out, args)
    device = select_device(args.device)
    if device.type == "cuda":
        # same seed, same forecast: no autotuned (non-deterministic) convolution algorithms
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    run_ = load_run(args.run_dir, device=str(device), ema=not args.no_ema)
    test_ds = open_field_store(args.data, "test")
    run_.layout.check_compatible(test_ds, f"{args.data} [test]")
    if not run_.model.stochastic and args.members > 1:
        print(f"model {run_.model.name!r} is deterministic: writing one member", file=sys.stderr)
    attrs = {
        "checkpoint": str(run_.checkpoint),
        "checkpoint_step": int(run_.step),
        "run_dir": str(args.run_dir),
        "weights": "raw" if args.no_ema else "ema",
        "source": str(args.data),
        "source_group": "test",
        "config": json.dumps(run_.config, sort_keys=True, default=str),
    }
    try:
        out = rollout(
            run_.model,
            run_.layout,
            test_ds,
            args.out,
            members=args.members,
            context=args.context,
            horizon=args.horizon,
            inits=args.inits,
            sampler=args.sampler,
            steps=args.steps,
            eta=args.eta,
            seed=args.seed,
            batch_size=args.batch_size,
            device=device,
            amp=args.amp,
            attrs=attrs,
            resume=args.resume,
            progress=not args.quiet,
        )
    except RolloutInterrupted as exc:
        print(f"forecast rollout: {exc}", file=sys.stderr)
        return 130
    print(f"wrote {out}")
    return 0
