"""Sampling cost of RVD: seconds per 1000 denoising iterations for one frame, against the paper's figure.

    python experiments/benchmarks/denoiser_speed.py [--config paper_128]
        [--size 128] [--batch 1] [--iters 5] [--device auto] [--variants fp32 bf16 cudagraph ...]

The paper (section 4.2) reports 18.5 s per 1000 iterations for a 128x128 frame on an NVIDIA Titan RTX. One
iteration is one call of the denoiser inside ``GaussianDiffusion.sample``; we time whole DDIM chains of
``--iters`` steps (so the sampler's own overhead is included) after one warm-up chain, and print the ratio to
the paper's figure. Different hardware: the ratio says where we stand, not who is faster.

Variants, timed in the same run on the same initial noise: ``fp32`` (eager, the reference), ``bf16`` (bf16
autocast of the network; the sampler's math stays fp32), ``cudagraph`` and ``compile`` (``forecast.capture``)
and their ``bf16+`` combinations, each also with ``+channels_last`` (the denoiser in that memory format).
Each prints its speed-up over fp32 and how far its sample lies from fp32's (max and RMS difference of the
generated frame, and its std for scale). The default: every variant that pays on
the device (on a CPU: fp32 and bf16; ``compile`` there takes many minutes to build, ask for it explicitly).
The warm-up chain includes compiling or capturing, so the timed chain is the steady state.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing

from forecast.capture import resolve_capture  # noqa: E402
from forecast.device import select_device  # noqa: E402
from forecast.models import build_model  # noqa: E402
from forecast.training.config import load_config  # noqa: E402

PAPER_S_PER_1000 = 18.5
#: the issue's GPU target: 10x the paper's figure per frame at 128x128, batch 1
TARGET_S_PER_1000 = PAPER_S_PER_1000 / 10
VARIANTS = ("fp32", "bf16", "cudagraph", "bf16+cudagraph", "compile", "bf16+compile")
#: each variant also runs with the denoiser in channels-last memory format (``--channels-last`` of rollouts)
VARIANTS += tuple(f"{v}+channels_last" for v in VARIANTS)


def default_variants(device: torch.device) -> list[str]:
    if device.type == "cuda":
        return ["fp32", "bf16", "cudagraph", "bf16+cudagraph"]
    return ["fp32", "bf16"]


def run_variant(model, state, variant: str, iters: int, device: torch.device) -> tuple[float, torch.Tensor]:
    """(seconds of one timed chain, its sample) for ``variant``; the noise is the same for every variant."""
    parts = set(variant.split("+"))
    bf16, channels_last = "bf16" in parts, "channels_last" in parts
    capture = next((p for p in parts if p in ("cudagraph", "compile")), "none")
    model.accelerate_sampling(resolve_capture(capture, device), channels_last=channels_last)

    def chain() -> tuple[float, torch.Tensor]:
        generator = torch.Generator(device=device).manual_seed(0)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            frame = model.sample_next(state, sampler="ddim", steps=iters, generator=generator)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start, frame

    chain()  # warm-up (and compile / capture)
    seconds, frame = chain()
    model.accelerate_sampling("none")
    return seconds, frame.float()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="paper_128")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--device", default="auto")
    p.add_argument("--variants", nargs="+", choices=VARIANTS, help="default: those that pay on the device")
    args = p.parse_args(argv)

    device = select_device(args.device)
    variants = args.variants or default_variants(device)
    if "fp32" not in variants:
        variants = ["fp32", *variants]  # the reference of every ratio
    config = load_config(args.config)  # a shipped config name or a YAML path
    channels = len(config["data"]["variables"])
    torch.manual_seed(0)
    model = build_model(config, channels).to(device).eval()
    state = model.initial_state(args.batch, args.size, args.size, device)
    with torch.no_grad():
        state = model.observe(state, torch.randn(args.batch, channels, args.size, args.size, device=device))
        results = {v: run_variant(model, state, v, args.iters, device) for v in variants}
    n_params = sum(p.numel() for p in model.parameters())
    print(f"config {Path(args.config).stem}, {n_params:,} parameters, frame {args.size}x{args.size}, "
          f"batch {args.batch}, device {device}, torch threads {torch.get_num_threads()}, "
          f"DDIM chains of {args.iters} steps")  # fmt: skip
    ref_seconds, ref_frame = results["fp32"]
    print(f"| variant | s per 1000 iterations | speed-up vs fp32 | ours / paper's {PAPER_S_PER_1000} s "
          "| max diff to fp32 | RMS diff | frame std |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for variant, (seconds, frame) in results.items():
        per_1000 = seconds / args.iters * 1000
        diff = frame - ref_frame
        print(
            f"| {variant} | {per_1000:.2f} | {ref_seconds / seconds:.2f}x | "
            f"{per_1000 / PAPER_S_PER_1000:.2f} | {diff.abs().max():.2e} | "
            f"{diff.square().mean().sqrt():.2e} | {ref_frame.std():.2e} |"
        )
    best = min(results, key=lambda v: results[v][0])
    best_per_1000 = results[best][0] / args.iters * 1000
    print(f"paper: {PAPER_S_PER_1000} s per 1000 iterations (Titan RTX, 128x128, batch 1); issue's GPU target: "
          f"< {TARGET_S_PER_1000:.2f} s. Fastest here: {best}, {best_per_1000:.2f} s "
          f"({'met' if best_per_1000 < TARGET_S_PER_1000 else 'not met'}"
          f"{'' if args.size == 128 and args.batch == 1 else ', but not at 128x128 batch 1'})")  # fmt: skip


if __name__ == "__main__":
    main()
