"""Parameter counts of the shipped model configs, per module, against the paper's "about 123 MB" (section 4.2).

    python experiments/param_counts.py [CONFIG.yaml ...]

Models are built on the ``meta`` device (no memory, no initialisation). For comparison the script also counts
the topology of the authors' released code (github.com/buggyyang/RVD, read for its structure), rebuilt here from
our own layers: its U-Nets have one up level fewer than down levels and drop the top-level skip.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from forecast.configs import CONFIG_DIR
from forecast.models import build_model
from forecast.models.layers import (
    ConvGRUCell,
    ConvNormAct,
    Downsample,
    LinearAttention,
    ResBlock,
    StepEmbedding,
    Upsample,
)
from forecast.training.config import load_config

CONFIGS = CONFIG_DIR
PAPER_128_MB = 123.0


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def released_code_topology(
    dim: int, denoiser_mults, transform_mults, channels: int = 3, groups: int = 8
) -> dict:
    """Parameter counts of the released code's three networks (same blocks as ours, their wiring)."""
    den = [channels, *(dim * m for m in denoiser_mults)]
    pairs = list(zip(den[:-1], den[1:]))
    parts = [StepEmbedding(dim)]
    for i, (a, b) in enumerate(pairs):
        parts += [ResBlock(a, b, groups, dim), ResBlock(2 * b, b, groups, dim), LinearAttention(b)]
        parts += [Downsample(b)] if i < len(pairs) - 1 else []
    parts += [
        ResBlock(den[-1], den[-1], groups, dim),
        LinearAttention(den[-1]),
        ResBlock(den[-1], den[-1], groups, dim),
    ]
    for a, b in reversed(pairs[1:]):
        parts += [
            ResBlock(2 * b, a, groups, dim),
            ResBlock(a, a, groups, dim),
            LinearAttention(a),
            Upsample(a),
        ]
    parts += [ConvNormAct(dim, dim, groups), nn.Conv2d(dim, channels, 1)]
    context = []
    for i, (a, b) in enumerate(pairs):
        context += [ResBlock(a, b, groups), ConvGRUCell(b, b)] + (
            [Downsample(b)] if i < len(pairs) - 1 else []
        )
    tr = [channels, *(dim * m for m in transform_mults)]
    tpairs = list(zip(tr[:-1], tr[1:]))
    transform = [nn.Conv2d(dim, channels, 3, padding=1)]
    for i, (a, b) in enumerate(tpairs):
        transform += [ResBlock(a, b, groups), ConvGRUCell(b, b)] + (
            [Downsample(b)] if i < len(tpairs) - 1 else []
        )
    for i, (a, b) in enumerate(reversed(tpairs[1:])):
        transform += [ResBlock(b if i == 0 else 2 * b, a, groups), Upsample(a)]
    return {name: count(nn.ModuleList(mods)) for name, mods in
            (("denoiser", parts), ("context_encoder", context), ("transform", transform))}  # fmt: skip


def model_counts(config: dict) -> dict[str, int]:
    with torch.device("meta"):
        model = build_model(config, len(config["data"]["variables"]))
    parts = {
        "denoiser": model.denoiser,
        "context_encoder": model.context_encoder,
        "transform": model.transform,
    }
    return {name: count(m) if m is not None else 0 for name, m in parts.items()}


def main(paths: list[str]) -> None:
    paths = paths or sorted(str(p) for p in CONFIGS.glob("*.yaml"))
    row = "{:<16} {:>12} {:>16} {:>12} {:>12} {:>10}"
    print(row.format("config", "denoiser", "context_encoder", "transform", "total", "MB (fp32)"))
    for path in paths:
        config = load_config(path)
        c = model_counts(config)
        total = sum(c.values())
        print(row.format(Path(path).stem, c["denoiser"], c["context_encoder"], c["transform"], total,
                         f"{total * 4 / 1e6:.1f}"))  # fmt: skip
        m = config["model"]
        if Path(path).stem.startswith("paper"):
            with torch.device("meta"):
                r = released_code_topology(m["dim"], m["denoiser_mults"], m["transform_mults"])
            rt = sum(r.values())
            print(row.format("  released code", r["denoiser"], r["context_encoder"], r["transform"], rt,
                             f"{rt * 4 / 1e6:.1f}"))  # fmt: skip
    print(f"paper (section 4.2): about {PAPER_128_MB:.0f} MB for the 128x128 model")


if __name__ == "__main__":
    main(sys.argv[1:])
