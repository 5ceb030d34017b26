"""Sampling cost of RVD: seconds per 1000 denoising iterations for one frame, against the paper's figure.

    python experiments/benchmarks/denoiser_speed.py [--config paper_128]
        [--size 128] [--batch 1] [--iters 5] [--device auto]

The paper (section 4.2) reports 18.5 s per 1000 iterations for a 128x128 frame on an NVIDIA Titan RTX. One
iteration is one call of the denoiser inside ``GaussianDiffusion.sample``; we time whole DDIM chains of
``--iters`` steps (so the sampler's own overhead is included) after one warm-up chain, and print the ratio to
the paper's figure. Different hardware: the ratio says where we stand, not who is faster.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from forecast.device import select_device
from forecast.models import build_model
from forecast.training.config import load_config

PAPER_S_PER_1000 = 18.5


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="paper_128")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--device", default="auto")
    args = p.parse_args()

    device = select_device(args.device)
    config = load_config(args.config)
    channels = len(config["data"]["variables"])
    torch.manual_seed(0)
    model = build_model(config, channels).to(device).eval()
    state = model.initial_state(args.batch, args.size, args.size, device)
    with torch.no_grad():
        state = model.observe(state, torch.randn(args.batch, channels, args.size, args.size, device=device))

        def chain() -> float:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            model.sample_next(state, sampler="ddim", steps=args.iters)
            if device.type == "cuda":
                torch.cuda.synchronize()
            return time.perf_counter() - start

        chain()  # warm-up
        seconds = chain()
    per_1000 = seconds / args.iters * 1000
    n_params = sum(p.numel() for p in model.parameters())
    print(f"config {Path(str(args.config)).stem}, {n_params:,} parameters, frame {args.size}x{args.size}, "
          f"batch {args.batch}, device {device}, torch threads {torch.get_num_threads()}")  # fmt: skip
    print(
        f"ours:  {per_1000:10.1f} s per 1000 iterations ({seconds / args.iters * 1000:.0f} ms per iteration)"
    )
    print(f"paper: {PAPER_S_PER_1000:10.1f} s per 1000 iterations (Titan RTX, 128x128)")
    print(f"ratio ours/paper: {per_1000 / PAPER_S_PER_1000:.1f}")


if __name__ == "__main__":
    main()
