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
same names, for the Trainer and its bare step alike; compiling counts in the warm-up interval only), ``fp32`` and
``bf16`` (``training.precision``; bf16 autocast on CPUs with AVX512-BF16 or AMX). Every row also gives the FLOP
of one step (forward and backward, ``torch.utils.flop_counter``: matrix products and convolutions only), the
achieved FLOP/s of the bare step and its fraction of the machine's peak where that can be known: on a CPU an
estimate, cores x clock (``cpu MHz`` of /proc/cpuinfo) x fp32 FLOP per cycle (64 with AVX-512: two 16-lane FMA
units; 32 with AVX2 FMA), printed with its inputs; the last column is each row's samples/s over the first row's.

    python experiments/benchmarks/bench_train.py --configs rvd_calibrated --size 32 --variants fp32 bf16 \
        --calibration-rvd   # the calibration benchmark's cpu-small RVD: dim 32, batch 4, 2 + 3 frames of 32x32
"""

from __future__ import annotations

import argparse
import csv
import tempfile

import torch
from common import load, model_factory, synthetic_store, train_step_rate

from forecast.training import Trainer

VARIANTS = {
    "default": {},
    "channels_last": {"channels_last": True},
    "compile": {"compile": True},
    "fp32": {"precision": "fp32"},
    "bf16": {"precision": "bf16"},
}


def step_flop(trainer: Trainer, batch: torch.Tensor, n_context: int) -> int:
    """FLOP of one forward and backward pass of the loss (torch's FLOP counter; the optimiser is not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        with trainer.autocast():
            loss = trainer.model.loss(batch, n_context)
        loss.backward()
    trainer.model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def cpu_peak_flops() -> tuple[float | None, str]:
    """An fp32 peak of this CPU for torch's threads and how it was estimated (None where it cannot be)."""
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return None, "no /proc/cpuinfo: peak unknown"
    mhz = [float(line.split(":")[1]) for line in info.splitlines() if line.startswith("cpu MHz")]
    flags = next((line.split(":")[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    per_cycle = 64 if "avx512f" in flags else 32 if "fma" in flags else None
    if not mhz or per_cycle is None:
        return None, "no clock or vector flags: peak unknown"
    threads = torch.get_num_threads()
    peak = threads * max(mhz) * 1e6 * per_cycle
    return peak, f"{threads} cores x {max(mhz):.0f} MHz x {per_cycle} FLOP/cycle = {peak / 1e9:.0f} GFLOP/s"


def bare_step_rate(trainer: Trainer, batch: torch.Tensor, n_context: int, repeats: int) -> float:
    """Steps per second of forward, backward and Adam on ``batch``, as the Trainer's step runs them."""
    loss_of = torch.compile(trainer.model.loss) if trainer.training.compile else trainer.model.loss
    return train_step_rate(loss_of, trainer.model.parameters(), batch, n_context, repeats, trainer.autocast)


def measure(name: str, size: int, variant: str, args: argparse.Namespace, factory) -> tuple[str, float]:
    """One table row: the Trainer's rate over the second logging interval and the bare step's."""
    config = load(name, args.model)
    config["training"].update(steps=2 * args.steps, log_every=args.steps, checkpoint_every=10**9)
    config["training"].update(VARIANTS[variant])
    if args.calibration_rvd:  # the calibration benchmark's cpu-small RVD (experiments/calibration.py)
        config["model"]["dim"] = 32
        config["training"]["batch_size"] = 4
        config["data"].update(context_frames=2, future_frames=3)
        config["diffusion"]["steps"] = 100
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
        flop = step_flop(trainer, batch, config["data"]["context_frames"])
        steps_per_s = samples_per_s / batch_size
        precision = str(trainer.autocast_dtype).removeprefix("torch.") if trainer.autocast_dtype else "fp32"
        peak, _ = cpu_peak_flops() if trainer.device.type == "cpu" else (None, "")
        of_peak = f"{flop * bare / peak:.0%}" if peak else "n/a"
        row = (
            f"| {name} | {size} | {batch_size} | {variant} | {precision} | {trainer.n_parameters:,} | "
            f"{steps_per_s:.3f} | {samples_per_s:.2f} | {bare:.3f} | {steps_per_s / bare:.2f}x | "
            f"{flop / 1e9:.1f} | {flop * bare / 1e9:.1f} | {of_peak} |"
        )
        return row, samples_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["tiny", "paper_64"])
    parser.add_argument("--size", type=int, nargs="+", default=[32, 64], help="frame size per config")
    parser.add_argument("--model", choices=["config", "toy"], default="config")
    parser.add_argument("--steps", type=int, default=6, help="timed steps (after as many warm-up steps)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=["default"])
    parser.add_argument(
        "--calibration-rvd", action="store_true", help="the calibration benchmark's cpu-small RVD sizes"
    )
    args = parser.parse_args()
    factory = model_factory(args.model)
    print(f"torch threads {torch.get_num_threads()}; model: {args.model}; {args.steps} timed steps")
    peak, how = cpu_peak_flops()
    print(f"fp32 peak estimate (CPU): {how}")
    print(
        "| config | size | batch | variant | precision | params | steps/s | samples/s | bare steps/s | ratio | "
        "GFLOP/step | bare GFLOP/s | of fp32 peak | samples/s vs first row |"
    )
    print("|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    first = None
    for name, size in zip(args.configs, args.size * len(args.configs)):
        for variant in args.variants:
            try:
                row, samples_per_s = measure(name, size, variant, args, factory)
            except Exception as exc:  # noqa: BLE001 - one failing variant must not hide the others' figures
                print(f"| {name} | {size} | | {variant} | failed: {type(exc).__name__}: {str(exc)[:150]} |")
                continue
            first = first or samples_per_s
            print(f"{row} {samples_per_s / first:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
