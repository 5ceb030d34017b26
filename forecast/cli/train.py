"""`forecast train DATA.zarr --config CFG.yaml --out RUN_DIR`: train a model on a field store."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model on a field store",
        description="Train a model (algorithm 1, teacher forcing) on the train group of a field store. "
        "Multi-GPU: torchrun --nproc_per_node G -m forecast train ...",
    )
    parser.add_argument("store", metavar="DATA.zarr", help="field store (its train group is used)")
    parser.add_argument("--config", required=True, metavar="CFG.yaml", help="experiment config (YAML)")
    parser.add_argument(
        "--out", required=True, metavar="RUN_DIR", help="run directory (must be new or empty)"
    )
    parser.add_argument(
        "--steps", type=int, metavar="N", help="train until step N (overrides training.steps)"
    )
    parser.add_argument(
        "--time-budget",
        type=float,
        metavar="SECONDS",
        help="stop after this much training time in total, over resumes (overrides training.time_budget_s)",
    )
    parser.add_argument("--resume", action="store_true", help="continue RUN_DIR from its last checkpoint")
    parser.add_argument(
        "--dry-run", action="store_true", help="build model and data pipeline, print size, exit"
    )
    parser.add_argument(
        "--device",
        metavar="auto|cpu|cuda|mps",
        help="where to train (overrides training.device; default auto)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from forecast.training import Trainer, load_config

    if args.steps is not None and args.steps < 0:
        raise SystemExit("forecast train: error: --steps must not be negative")
    if args.time_budget is not None and args.time_budget < 0:
        raise SystemExit("forecast train: error: --time-budget must not be negative")
    trainer = Trainer(
        load_config(args.config),
        args.store,
        args.out,
        resume=args.resume,
        steps=args.steps,
        device=args.device,
        time_budget_s=args.time_budget,
        progress=not args.no_progress,
    )
    try:
        main = trainer.process.is_main
        if args.dry_run:
            batch = trainer.check_batch()
            if main:
                print(f"parameters: {trainer.n_parameters}")
                print(
                    f"data: {len(trainer.dataset)} windows of {batch.shape[1]} frames, batch {tuple(batch.shape)}, "
                    f"channels {[f'{v}[{c}]' if c is not None else v for v, c in trainer.layout.channels]}"
                )
                print(f"device: {trainer.device}, world size {trainer.process.world_size}")
            return 0
        final = trainer.run_loop()
        if main:
            loss = f", loss {final['loss']:.4g}" if "loss" in final else ""
            print(f"trained to step {final['step']}{loss}; run directory {args.out}")
        return 0
    finally:
        trainer.close()
