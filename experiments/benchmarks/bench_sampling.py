"""Sampling speed and quality: DDPM with all N steps against DDIM and DPM-Solver++(2M) with S steps, same inits.

For each sampler the benchmark runs a real rollout (``forecast.rollout.rollout``: context, autoregressive
generation, the forecast file) and reports frames per second (generated frames x members / wall time) and the
mean CRPS of the ensemble against the verifying truth (``properscoring.crps_ensemble``), with ratios to DDPM.
The target of the issue: DDIM-50 at least 25x faster than DDPM-1600, mean CRPS within 5% of DDPM's. A last
column compares every row with the first DDIM row (``--ddim-steps``: the tables' DDIM-25 before the few-step
solver became the default): the speed-up of ``dpmpp2m`` at ``--dpmpp2m-steps`` over it, measured in the same run.

Model, two choices (say which one when you report figures):
  --run RUN_DIR          a trained run (``forecast.training.load_run``, EMA weights); DDPM uses the run's N
  --config CFG.yaml      a model built from the config (``forecast.models.build_model``) with
                         ``diffusion.steps`` overridden by --ddpm-steps (default 1600), untrained, or trained
                         here for --train-steps steps on the data's train group: the timing is the real one,
                         but an untrained network's CRPS compares samplers of a network that learned nothing
Data: --data DATA.zarr (its test group; normalisation from its train group unless --run), or by default a
synthetic store of advected Gaussian blobs of --size pixels (one variable ``u``).

    OMP_NUM_THREADS=2 python experiments/benchmarks/bench_sampling.py --config tiny

Timings are wall-clock on this machine; other load disturbs them.
"""

from __future__ import annotations

import argparse
import copy
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import properscoring
import torch
import xarray as xr
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing

from forecast.data.channels import ChannelLayout  # noqa: E402
from forecast.forecast_file import OBS_SUFFIX  # noqa: E402
from forecast.rollout import rollout  # noqa: E402


def synthetic_store(size: int, sequences: int, frames: int, seed: int = 0) -> tuple[xr.Dataset, xr.Dataset]:
    """(train, test) datasets of Gaussian blobs drifting with random constant velocities."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")

    def group(n: int) -> xr.Dataset:
        u = np.zeros((n, frames, size, size), np.float32)
        for s in range(n):
            for _ in range(3):
                pos, vel = rng.uniform(0, size, 2), rng.normal(0, 1.0, 2)
                width = rng.uniform(size / 12, size / 6)
                for t in range(frames):
                    cy, cx = (pos + t * vel) % size
                    dy = np.minimum(abs(yy - cy), size - abs(yy - cy))
                    dx = np.minimum(abs(xx - cx), size - abs(xx - cx))
                    u[s, t] += np.exp(-(dy**2 + dx**2) / (2 * width**2))
        return xr.Dataset(
            {"u": (("sequence", "time", "y", "x"), u, {"units": "1", "long_name": "blob field"})}
        )

    return group(8), group(sequences)


def brief_training(model, layout: ChannelLayout, train: xr.Dataset, args) -> tuple[float, float]:
    """A few Adam steps of the model's own loss on random training windows; returns (first, last) loss.

    Only so that the CRPS comparison is between samplers of a network that has learned something; the whole
    train group is loaded, so use a small store.
    """
    rng = np.random.default_rng(args.seed)
    data = layout.stack(train[list(layout.variables)].load())  # (sequence, time, channel, y, x)
    window = args.context + args.horizon
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    model.train()
    losses = []
    for _ in range(args.train_steps):
        seqs = rng.integers(0, data.shape[0], args.members)
        starts = rng.integers(0, data.shape[1] - window + 1, args.members)
        batch = torch.from_numpy(np.stack([data[s, t : t + window] for s, t in zip(seqs, starts)]))
        loss = model.loss(batch, args.context)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    model.eval()
    return float(np.mean(losses[:10])), float(np.mean(losses[-10:]))


def load_model(args, train: xr.Dataset | None):
    if args.run:
        from forecast.training import load_run

        run = load_run(args.run, device="cpu", ema=True)
        return run.model, run.layout, f"trained run {args.run} (step {run.step})"
    from forecast.models import build_model

    config = yaml.safe_load(Path(args.config).read_text())
    config = copy.deepcopy(config)
    config.setdefault("diffusion", {})["steps"] = args.ddpm_steps
    variables = (config.get("data") or {}).get("variables") or sorted(train.data_vars)
    if args.data is None:
        variables = ["u"]
    layout = ChannelLayout.from_dataset(train, variables)
    torch.manual_seed(args.seed)
    model = build_model(config, layout.n_channels).eval()
    if args.train_steps:
        first, last = brief_training(model, layout, train, args)
        return (
            model,
            layout,
            (
                f"model from {args.config} with N = {args.ddpm_steps}, BRIEFLY TRAINED here for {args.train_steps} "
                f"steps (loss {first:.3f} -> {last:.3f})"
            ),
        )
    return model, layout, f"UNTRAINED model from {args.config} with N = {args.ddpm_steps}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="trained run directory")
    source.add_argument("--config", help="model config (YAML) for an untrained model")
    parser.add_argument("--data", help="field store (default: synthetic blobs)")
    parser.add_argument("--size", type=int, default=32, help="frame size of the synthetic store")
    parser.add_argument(
        "--ddpm-steps", type=int, default=1600, help="N for an untrained model (default 1600)"
    )
    parser.add_argument("--ddim-steps", type=int, nargs="+", default=[10, 25, 50, 100])
    parser.add_argument(
        "--dpmpp2m-steps", type=int, nargs="*", default=[10], help="DPM-Solver++(2M) runs (none: no such run)"
    )
    parser.add_argument(
        "--no-ddpm", action="store_true", help="skip DDPM (the first row is then the reference)"
    )
    parser.add_argument("--inits", type=int, default=2)
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--context", type=int, default=2)
    parser.add_argument("--horizon", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eta", type=float, default=0.0, help="DDIM eta (default 0: deterministic DDIM)")
    parser.add_argument(
        "--train-steps",
        type=int,
        default=0,
        help="with --config: train briefly first (Adam, the model's loss)",
    )
    parser.add_argument("--lr", type=float, default=5e-4, help="learning rate of --train-steps")
    parser.add_argument(
        "--ddpm-repeat", action="store_true", help="also DDPM with seed+1: the CRPS noise floor"
    )
    parser.add_argument("--csv", help="write the table as CSV here")
    args = parser.parse_args(argv)

    if args.data:
        from forecast.field_store import open_field_store

        train, test = open_field_store(args.data, "train"), open_field_store(args.data, "test")
    else:
        frames = max(args.context + args.horizon + 2, 12)
        train, test = synthetic_store(args.size, sequences=max(args.inits, 1), frames=frames)
    model, layout, described = load_model(args, train if not args.run else None)
    n_diffusion = getattr(getattr(model, "diffusion", None), "steps", args.ddpm_steps)
    print(f"model: {described}; {sum(p.numel() for p in model.parameters())} parameters")
    print(
        f"inits {args.inits}, members {args.members}, context {args.context}, horizon {args.horizon}, "
        f"frame {layout.height}x{layout.width}x{layout.n_channels}, torch threads {torch.get_num_threads()}"
    )

    runs = [] if args.no_ddpm else [("ddpm", None, args.seed)]
    if args.ddpm_repeat and not args.no_ddpm:
        runs.append(("ddpm", None, args.seed + 1))
    runs += [("ddim", s, args.seed) for s in args.ddim_steps]
    runs += [("dpmpp2m", s, args.seed) for s in args.dpmpp2m_steps]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        common = dict(
            members=args.members,
            context=args.context,
            horizon=args.horizon,
            inits=args.inits,
            batch_size=args.members,
            device="cpu",
        )
        # warm-up: allocator, thread pool, first-call overheads
        rollout(
            model,
            layout,
            test,
            Path(tmp) / "warm.nc",
            **(common | {"inits": 1, "horizon": 1}),
            sampler="ddim",
            steps=2,
            seed=0,
        )
        for sampler, steps, seed in runs:
            out = Path(tmp) / f"{sampler}-{steps}-{seed}.nc"
            t0 = time.perf_counter()
            rollout(model, layout, test, out, **common, sampler=sampler, steps=steps, eta=args.eta, seed=seed)
            wall = time.perf_counter() - t0
            with xr.open_dataset(out) as fc:
                crps = np.mean(
                    [
                        properscoring.crps_ensemble(
                            fc[f"{v}{OBS_SUFFIX}"].values, np.moveaxis(fc[v].values, 1, -1)
                        ).mean()
                        for v in layout.variables
                    ]
                )
            label = f"DDPM-{n_diffusion}" + (f" (seed {seed})" if seed != args.seed else "")
            if sampler != "ddpm":
                label = f"{'DDIM' if sampler == 'ddim' else 'DPM++2M'}-{steps}"
            frames = args.inits * args.members * args.horizon
            rows.append(
                {"sampler": label, "wall_s": wall, "frames_per_s": frames / wall, "crps": float(crps)}
            )
            print(f"  {label:<22} {wall:9.2f} s  {frames / wall:9.3f} frames/s  CRPS {crps:.5f}", flush=True)

    ref = rows[0]
    ddim = next((r for r in rows if r["sampler"].startswith("DDIM")), ref)
    print(
        f"\n| sampler | wall (s) | frames/s | speed-up vs {ref['sampler']} | mean CRPS | CRPS / {ref['sampler']} "
        f"| speed-up vs {ddim['sampler']} | CRPS / {ddim['sampler']} |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        r["speedup"] = r["frames_per_s"] / ref["frames_per_s"]
        r["crps_ratio"] = r["crps"] / ref["crps"]
        print(
            f"| {r['sampler']} | {r['wall_s']:.2f} | {r['frames_per_s']:.3f} | {r['speedup']:.1f}x | "
            f"{r['crps']:.5f} | {r['crps_ratio']:.3f} | {r['frames_per_s'] / ddim['frames_per_s']:.2f}x | "
            f"{r['crps'] / ddim['crps']:.3f} |"
        )
    target = [r for r in rows if r["sampler"] == "DDIM-50"]
    if target:
        t = target[0]
        ok = t["speedup"] >= 25 and abs(t["crps_ratio"] - 1) <= 0.05
        print(
            f"\ntarget (DDIM-50 >= 25x faster than DDPM-{n_diffusion}, CRPS within 5%): "
            f"{t['speedup']:.1f}x, CRPS ratio {t['crps_ratio']:.3f} -> {'met' if ok else 'NOT met'}"
        )
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
