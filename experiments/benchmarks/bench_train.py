"""Training throughput: steps/s and samples/s of ``forecast train`` against the bare step, per config and variant.

Runs the real ``Trainer`` (loader, autocast, clipping, EMA, logging) on a synthetic store and reads the rate
from ``metrics.csv`` after a warm-up interval, next to the bare step as the reference: forward, backward and
Adam on one fixed batch already on the device, in the Trainer's precision and memory format, synchronised with
the device before and after. The ratio shows what the training machinery costs on top of the model (the issue's
target on a GPU: at least 0.95x).

    python experiments/benchmarks/bench_train.py                      # tiny and paper_64, the Trainer's defaults
    python experiments/benchmarks/bench_train.py --configs paper_64 paper_128 --size 64 128 --device cuda \\
        --variants default channels_last compile
    python experiments/benchmarks/bench_train.py --model toy          # before forecast.models lands

Variants: ``default`` (the config as shipped), ``channels_last`` and ``compile`` (the training options of the
same names, for the Trainer and its bare step alike; compiling counts in the warm-up interval only).
"""

from __future__ import annotations

import argparse
import csv
import tempfile

import torch
from common import load, model_factory, synthetic_store, train_step_rate

from forecast.training import Trainer

VARIANTS = {"default": {}, "channels_last": {"channels_last": True}, "compile": {"compile": True}}


def bare_step_rate(trainer: Trainer, batch: torch.Tensor, n_context: int, repeats: int) -> float:
    """Steps per second of forward, backward and Adam on ``batch``, as the Trainer's step runs them."""
    loss_of = torch.compile(trainer.model.loss) if trainer.training.compile else trainer.model.loss
    return train_step_rate(loss_of, trainer.model.parameters(), batch, n_context, repeats, trainer.autocast)


def measure(name: str, size: int, variant: str, args: argparse.Namespace, factory) -> str:
    """One table row: the Trainer's rate over the second logging interval and the bare step's."""
    config = load(name, args.model)
    config["training"].update(steps=2 * args.steps, log_every=args.steps, checkpoint_every=10**9)
    config["training"].update(VARIANTS[variant])
    with tempfile.TemporaryDirectory() as tmp:
        store = synthetic_store(f"{tmp}/store.zarr", config["data"]["variables"], size)
        trainer = Trainer(
            config, store, f"{tmp}/run", model_factory=factory, device=args.device, progress=False
        )
        trainer.run_loop()
        with open(f"{tmp}/run/metrics.csv") as f:
            rows = list(csv.DictReader(f))
        samples_per_s = float(rows[-1]["samples_per_s"])  # the second interval: warm-up excluded
        batch_size = trainer.training.batch_size
        batch = torch.stack([trainer.dataset[i] for i in range(batch_size)]).to(trainer.device)
        bare = bare_step_rate(trainer, batch, config["data"]["context_frames"], args.steps)
        steps_per_s = samples_per_s / batch_size
        precision = str(trainer.autocast_dtype).removeprefix("torch.") if trainer.autocast_dtype else "fp32"
        return (
            f"| {name} | {size} | {batch_size} | {variant} | {precision} | {trainer.n_parameters:,} | "
            f"{steps_per_s:.3f} | {samples_per_s:.2f} | {bare:.3f} | {steps_per_s / bare:.2f}x |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["tiny", "paper_64"])
    parser.add_argument("--size", type=int, nargs="+", default=[32, 64], help="frame size per config")
    parser.add_argument("--model", choices=["config", "toy"], default="config")
    parser.add_argument("--steps", type=int, default=6, help="timed steps (after as many warm-up steps)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=["default"])
    args = parser.parse_args()
    factory = model_factory(args.model)
    print(f"torch threads {torch.get_num_threads()}; model: {args.model}; {args.steps} timed steps")
    print(
        "| config | size | batch | variant | precision | params | steps/s | samples/s | bare steps/s | ratio |"
    )
    print("|---|---:|---:|---|---|---:|---:|---:|---:|---:|")
    for name, size in zip(args.configs, args.size * len(args.configs)):
        for variant in args.variants:
            try:
                print(measure(name, size, variant, args, factory), flush=True)
            except Exception as exc:  # noqa: BLE001 - one failing variant must not hide the others' figures
                print(f"| {name} | {size} | | {variant} | failed: {type(exc).__name__}: {str(exc)[:150]} |")


if __name__ == "__main__":
    main()
