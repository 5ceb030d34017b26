"""`forecast train DATA.zarr --config CFG --out RUN_DIR`: train a model on a field store."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from forecast.cli.common import add_overwrite, add_progress, claimed_output, non_negative, non_negative_float
from forecast.errors import ForecastError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model on a field store",
        description="Train a model (algorithm 1, teacher forcing) on the train group of a field store. "
        "Multi-GPU: torchrun --nproc_per_node G -m forecast train ...",
    )
    parser.add_argument("store", metavar="DATA.zarr", help="field store (its train group is used)")
    parser.add_argument(
        "--config",
        required=True,
        metavar="CFG",
        help="experiment config: a YAML file, or the name of a shipped config (tiny, demo, paper_64, ...)",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="RUN_DIR",
        help="run directory (new or empty unless --resume/--overwrite)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="override config keys, checked like the file and recorded in RUN_DIR/config.yaml; values are YAML: "
        "--set data.variables=[u,v] training.steps=500 model.dim=32 (data.variables=null: all of the store's)",
    )
    parser.add_argument(
        "--steps", type=non_negative, metavar="N", help="train until step N (overrides training.steps)"
    )
    parser.add_argument(
        "--time-budget",
        type=non_negative_float,
        metavar="SECONDS",
        help="stop after this much training time in total, over resumes (overrides training.time_budget_s)",
    )
    add_overwrite(parser, resume="continue RUN_DIR from its last checkpoint")
    parser.add_argument(
        "--dry-run", action="store_true", help="build model and data pipeline, print size, exit"
    )
    parser.add_argument(
        "--device",
        metavar="auto|cpu|cuda|mps",
        help="where to train (overrides training.device; default: auto)",
    )
    add_progress(parser)
    parser.set_defaults(handler=run)


@contextlib.contextmanager
def _replacing(run_dir: Path, overwrite: bool) -> Iterator[None]:
    """With ``overwrite``, move an old run directory aside while the new run is set up; drop it once that worked.

    Setting up checks the config, the store and the model: if any is bad, the old run is put back untouched.
    """
    from forecast.atomic import temporary_sibling

    if not overwrite or not run_dir.exists() or (run_dir.is_dir() and not any(run_dir.iterdir())):
        yield
        return
    if not (run_dir / "config.yaml").is_file() and not (run_dir / "checkpoints").is_dir():
        raise ForecastError(f"{run_dir} is not a run directory; --overwrite replaces only run directories")
    aside = temporary_sibling(run_dir)
    os.replace(run_dir, aside)
    try:
        yield
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        os.replace(aside, run_dir)
        raise
    shutil.rmtree(aside)


def run(args: argparse.Namespace) -> int:
    from forecast.training import Trainer, load_config
    from forecast.training.config import override_config, parse_assignments

    if args.overwrite and args.resume:
        raise ForecastError("--overwrite and --resume exclude each other")
    overrides = parse_assignments(args.overrides)
    config = override_config(load_config(args.config), overrides)
    # the keys a resumed run may change: a --set of one applies on --resume too, as its own flag does
    resumable = {"steps": args.steps, "device": args.device, "time_budget_s": args.time_budget}
    for key, value in resumable.items():
        if value is None and f"training.{key}" in overrides:
            resumable[key] = overrides[f"training.{key}"]
    # the run directory is claimed by the one process that writes it (rank 0 under torchrun); a dry run writes nothing
    claim = not args.dry_run and os.environ.get("RANK", "0") == "0"
    with claimed_output(args.out, claim=claim):
        with _replacing(Path(args.out), args.overwrite and not args.dry_run):
            trainer = Trainer(
                config,
                args.store,
                args.out,
                resume=args.resume,
                steps=resumable["steps"],
                device=resumable["device"],
                time_budget_s=resumable["time_budget_s"],
                progress=not args.quiet,
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
