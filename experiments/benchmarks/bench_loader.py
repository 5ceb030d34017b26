"""Does data loading keep up with training? Loader windows/s against the windows/s a training step consumes.

For each config: a synthetic store of the config's variables (``--size`` pixels square, one chunk per frame),
the training window of the config (context + future frames), and the config's batch size. The loader is timed
with 0, 1 and 2 DataLoader workers; the training step (forward, backward, Adam, on a fixed batch) with the
model the config builds. The ratio loader/consumption must be well above 1 (the project asks for 5x).

    python experiments/benchmarks/bench_loader.py                      # tiny and paper_64, real model
    python experiments/benchmarks/bench_loader.py --model toy          # before forecast.models lands
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from common import load, model_factory, synthetic_store, train_step_rate
from torch.utils.data import DataLoader

from forecast.data.channels import ChannelLayout
from forecast.data.windows import WindowDataset, WindowSampler
from forecast.field_store import open_field_store
from forecast.training.config import window_length


def loader_rate(dataset, batch_size: int, workers: int, batches: int) -> float:
    sampler = WindowSampler(len(dataset), batch_size, seed=0)
    loader = DataLoader(
        dataset, batch_sampler=sampler, num_workers=workers, prefetch_factor=4 if workers else None
    )
    it = iter(loader)
    for _ in range(max(2, 2 * workers)):  # worker start-up and first reads are not the steady state
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["tiny", "paper_64"])
    parser.add_argument("--size", type=int, nargs="+", default=[32, 64], help="frame size per config")
    parser.add_argument("--model", choices=["config", "toy"], default="config")
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    factory = model_factory(args.model)
    torch.manual_seed(0)
    print(f"torch threads {torch.get_num_threads()}; model: {args.model}")
    print(
        f"{'config':<10} {'size':>4} {'batch':>5} {'workers':>7} {'loader win/s':>12} {'train win/s':>11} {'ratio':>7}"
    )
    for name, size in zip(args.configs, args.size * len(args.configs)):
        config = load(name, args.model)
        with tempfile.TemporaryDirectory() as tmp:
            store = synthetic_store(f"{tmp}/store.zarr", config["data"]["variables"], size)
            layout = ChannelLayout.from_dataset(open_field_store(store, "train"), config["data"]["variables"])
            dataset = WindowDataset(store, layout, window_length(config))
            batch_size = config["training"]["batch_size"]
            model = factory(config, layout.n_channels)
            batch = torch.stack([dataset[i] for i in range(batch_size)])
            n_context = config["data"]["context_frames"]
            consumed = (
                train_step_rate(model.loss, model.parameters(), batch, n_context, args.steps) * batch_size
            )
            for workers in args.workers:
                rate = loader_rate(dataset, batch_size, workers, args.batches)
                print(
                    f"{name:<10} {size:>4} {batch_size:>5} {workers:>7} {rate:>12.1f} {consumed:>11.2f} "
                    f"{rate / consumed:>6.1f}x"
                )


if __name__ == "__main__":
    main()
