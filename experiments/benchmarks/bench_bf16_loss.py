"""bf16 autocast against fp32 on the CPU: samples/s and the loss after the same number of samples, over seeds.

Trains the calibration benchmark's cpu-small RVD (``experiments/calibration.py``: dim 32, batch 4, 2 + 3 frames
of 32x32, N 100) on a store's train group with the real ``Trainer``, once per precision and seed, interleaved
(fp32 seed 0, bf16 seed 0, fp32 seed 1, ...) so that load drifts hit both alike. Prints, per run, the mean
samples/s after the first logging interval (the warm-up) and the mean loss over the last ``--tail`` steps; then
per precision the means, the bf16/fp32 throughput ratio (the issue's target: at least 1.3x) and whether the
bf16-fp32 loss difference is within seed noise (the spread of the fp32 seeds' tail losses; with two seeds, their
absolute difference). Writes the curves (``--out``/loss_curves.csv and .png).

    python experiments/benchmarks/bench_bf16_loss.py --data OUT/data/karman.zarr --steps 400 --seeds 0 1 \\
        --out docs/results/speed
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "experiments"))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PRECISIONS = ("fp32", "bf16")


def cpu_small_rvd(steps: int, precision: str, seed: int) -> dict:
    """The calibration table's RVD config at cpu-small, for ``steps`` steps in ``precision`` with ``seed``."""
    import calibration

    config = calibration.row_config(calibration.ROWS[0], calibration.SCALES["cpu-small"], seed)
    config["training"].update(
        steps=steps, precision=precision, lr_decay_steps=steps, checkpoint_every=10**9, log_every=25
    )
    return config


def train_once(store: Path, steps: int, precision: str, seed: int) -> list[dict]:
    """The metrics rows (step, loss, samples_per_s, ...) of one training run in a throwaway directory."""
    from forecast.pipeline import train

    with tempfile.TemporaryDirectory() as tmp:
        train(cpu_small_rvd(steps, precision, seed), store, Path(tmp) / "run", progress=False)
        with open(Path(tmp) / "run" / "metrics.csv", newline="") as f:
            return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def summarize(rows: list[dict], tail: int) -> tuple[float, float]:
    """Mean samples/s after the first interval, and the mean logged loss over the last ``tail`` steps."""
    rate = statistics.fmean(r["samples_per_s"] for r in rows[1:])
    last = rows[-1]["step"]
    return rate, statistics.fmean(r["loss"] for r in rows if r["step"] > last - tail)


def plot(curves: dict[tuple[str, int], list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for (precision, seed), rows in curves.items():
        style = "-" if precision == "fp32" else "--"
        ax.plot(
            [r["step"] for r in rows], [r["loss"] for r in rows], style, label=f"{precision}, seed {seed}"
        )
    ax.set(xlabel="step (batch 4)", ylabel="training loss (logged mean)", yscale="log")
    ax.set_title("cpu-small RVD: bf16 autocast against fp32")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a field store with a train group (the street)")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument(
        "--tail", type=int, default=100, help="steps at the end whose logged loss is averaged"
    )
    parser.add_argument("--out", type=Path, help="folder for loss_curves.csv and loss_curves.png")
    args = parser.parse_args(argv)
    import torch

    print(f"torch threads {torch.get_num_threads()}; {args.steps} steps per run; seeds {args.seeds}")
    curves, summary = {}, {}
    for seed in args.seeds:
        for precision in PRECISIONS:
            curves[precision, seed] = rows = train_once(Path(args.data), args.steps, precision, seed)
            summary[precision, seed] = rate, loss = summarize(rows, args.tail)
            print(
                f"{precision} seed {seed}: {rate:.2f} samples/s, loss over the last {args.tail} steps {loss:.4f}",
                flush=True,
            )
    mean = {p: [statistics.fmean(summary[p, s][i] for s in args.seeds) for i in (0, 1)] for p in PRECISIONS}
    noise = (
        statistics.stdev(summary["fp32", s][1] for s in args.seeds) if len(args.seeds) > 1 else float("nan")
    )
    gap = mean["bf16"][1] - mean["fp32"][1]
    print(f"samples/s: bf16 / fp32 = {mean['bf16'][0] / mean['fp32'][0]:.2f}x (target >= 1.3x)")
    print(
        f"tail loss: fp32 {mean['fp32'][1]:.4f}, bf16 {mean['bf16'][1]:.4f}, difference {gap:+.4f}; "
        f"fp32 seed-to-seed standard deviation {noise:.4f}: {'within' if abs(gap) <= noise else 'NOT within'} seed noise"
    )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        with open(args.out / "loss_curves.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["precision", "seed", "step", "loss", "samples_per_s"])
            for (precision, seed), rows in curves.items():
                writer.writerows(
                    [precision, seed, int(r["step"]), r["loss"], r["samples_per_s"]] for r in rows
                )
        plot(curves, args.out / "loss_curves.png")
        print(f"wrote {args.out / 'loss_curves.csv'}, {args.out / 'loss_curves.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
