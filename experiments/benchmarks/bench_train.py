"""Training throughput: steps/s and samples/s of ``forecast train`` for tiny and paper_64 on this machine.

Runs the real ``Trainer`` (loader, autocast, clipping, EMA, logging) on a synthetic store and reads the rate
from ``metrics.csv`` after a warm-up interval, next to the bare step (forward, backward, Adam on one fixed
batch) as the reference: the ratio shows what the training machinery costs on top of the model.

    python experiments/benchmarks/bench_train.py                      # real model
    python experiments/benchmarks/bench_train.py --model toy          # before forecast.models lands
"""

from __future__ import annotations

import argparse
import csv
import tempfile

import torch
from bench_loader import step_rate
from common import load, model_factory, synthetic_store

from forecast.training import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["tiny", "paper_64"])
    parser.add_argument("--size", type=int, nargs="+", default=[32, 64], help="frame size per config")
    parser.add_argument("--model", choices=["config", "toy"], default="config")
    parser.add_argument("--steps", type=int, default=6, help="timed steps (after as many warm-up steps)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    factory = model_factory(args.model)
    print(f"torch threads {torch.get_num_threads()}; model: {args.model}")
    print(
        f"{'config':<10} {'size':>4} {'batch':>5} {'params':>10} {'steps/s':>8} {'samples/s':>9} {'bare steps/s':>12} {'ratio':>6}"
    )
    for name, size in zip(args.configs, args.size * len(args.configs)):
        config = load(name, args.model)
        config["training"].update(steps=2 * args.steps, log_every=args.steps, checkpoint_every=10**9)
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
            bare = step_rate(trainer.model, batch, config["data"]["context_frames"], args.steps)
            steps_per_s = samples_per_s / batch_size
            print(
                f"{name:<10} {size:>4} {batch_size:>5} {trainer.n_parameters:>10} {steps_per_s:>8.3f} "
                f"{samples_per_s:>9.2f} {bare:>12.3f} {steps_per_s / bare:>5.2f}x"
            )


if __name__ == "__main__":
    main()
