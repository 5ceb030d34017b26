"""Rollouts across processes: ``torchrun --nproc_per_node P -m forecast rollout`` against one process.

    python experiments/benchmarks/sharded_rollout_check.py [--nproc 2] [--device cpu|cuda] [--config tiny]

Trains a run for 2 steps on a small synthetic store (the timing does not need a good model), forecasts it once
with one process and once with ``--nproc`` torchrun processes (on CUDA: one GPU each while GPUs last, then
shared), prints both wall times (process start and model loading included) and whether the two files hold the
same forecast. Timings are wall-clock on this machine; other load disturbs them.

On a CPU every process, the single one too, runs ``cores // nproc`` threads: CPU convolutions sum in an order
that depends on the thread count, so only equal counts give bit-identical files (on CUDA the count is irrelevant).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import xarray as xr
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from common import load, synthetic_store  # noqa: E402


def _succeeds(label: str, command: list[str], env: dict[str, str]) -> bool:
    """Run ``command``; on failure print its exit status and the end of its stderr."""
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"{label} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return done.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--inits", type=int, default=4)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5, help="DDIM steps")
    args = parser.parse_args()

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    if args.device == "cpu":
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // args.nproc))
    with tempfile.TemporaryDirectory() as tmp:
        config = load(args.config)
        config["training"].update(steps=2, checkpoint_every=2, log_every=1)
        (Path(tmp) / "config.yaml").write_text(yaml.safe_dump(config))
        store = synthetic_store(f"{tmp}/store.zarr", config["data"]["variables"], args.size, n_time=12)
        train = [sys.executable, "-m", "forecast", "train", store, "--config", f"{tmp}/config.yaml",
                 "--out", f"{tmp}/run", "--device", args.device, "--no-progress"]  # fmt: skip
        if not _succeeds("training", train, env):
            return 1
        rollout = ["-m", "forecast", "rollout", f"{tmp}/run", store, "--members", str(args.members),
                   "--context", "2", "--horizon", "4", "--inits", str(args.inits), "--sampler", "ddim",
                   "--steps", str(args.steps), "--eta", "1", "--device", args.device, "--no-progress"]  # fmt: skip
        runs = {
            "1 process": [sys.executable, *rollout, "--out", f"{tmp}/single.nc"],
            f"{args.nproc} processes": [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                        "--nproc_per_node", str(args.nproc), *rollout, "--out", f"{tmp}/sharded.nc"],
        }  # fmt: skip
        walls = {}
        for label, command in runs.items():
            start = time.perf_counter()
            if not _succeeds(label, command, env):
                return 1
            walls[label] = time.perf_counter() - start
            print(
                f"{label:>12}: {walls[label]:7.1f} s for {args.inits} inits x {args.members} members x 4 leads"
            )
        with xr.open_dataset(f"{tmp}/single.nc") as a, xr.open_dataset(f"{tmp}/sharded.nc") as b:
            same = all(a[v].equals(b[v]) for v in a.data_vars)
    threads = f", {env['OMP_NUM_THREADS']} threads per process" if "OMP_NUM_THREADS" in env else ""
    print(f"speed-up {walls['1 process'] / walls[f'{args.nproc} processes']:.2f}x (process start included{threads}); "
          f"sharded file {'IDENTICAL to' if same else 'DIFFERS from'} the single-process file (reference)")  # fmt: skip
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
