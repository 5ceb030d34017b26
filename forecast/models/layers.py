"""Building blocks shared by the RVD networks (appendix B of the paper).

- ``StepEmbedding``: sinusoidal encoding of the diffusion step ``n`` followed by a small MLP.
- ``ResBlock``: two 3x3 conv -> GroupNorm -> LeakyReLU blocks with a residual connection; the step embedding
  (when given) is added between them.
- ``LinearAttention``: 4 heads of 16 dimensions, linear in the number of pixels; pre-normalised and residual.
- ``ConvGRUCell``: a GRU whose gates are 3x3 convolutions, the temporal memory of the context and transform nets.
- ``Downsample`` / ``Upsample``: stride-2 convolution / transposed convolution (scale 1/2 and 2).
"""

from __future__ import annotations

import math

import torch
from torch import nn

LEAK = 0.2  # LeakyReLU slope


def step_encoding(n: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer-style sinusoidal encoding of integer steps ``n`` ``(batch,)`` -> ``(batch, dim)``."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(10000.0) * torch.arange(half, device=n.device, dtype=torch.float32) / max(half - 1, 1)
    )
    angles = n.float()[:, None] * freqs[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class StepEmbedding(nn.Module):
    """Diffusion step -> a ``dim`` vector that every ResBlock of the denoiser receives."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.LeakyReLU(LEAK), nn.Linear(4 * dim, dim))

    def forward(self, n: torch.Tensor) -> torch.Tensor:
        return self.mlp(step_encoding(n, self.dim))


class ConvNormAct(nn.Sequential):
    """3x3 convolution, GroupNorm, LeakyReLU."""

    def __init__(self, dim_in: int, dim_out: int, groups: int):
        super().__init__(
            nn.Conv2d(dim_in, dim_out, 3, padding=1), nn.GroupNorm(groups, dim_out), nn.LeakyReLU(LEAK)
        )


class ResBlock(nn.Module):
    """ResNet block; ``step_dim`` set: the projected step embedding is added to the features between the convs."""

    def __init__(self, dim_in: int, dim_out: int, groups: int, step_dim: int | None = None):
        super().__init__()
        self.block1 = ConvNormAct(dim_in, dim_out, groups)
        self.step_proj = nn.Sequential(nn.LeakyReLU(LEAK), nn.Linear(step_dim, dim_out)) if step_dim else None
        self.block2 = ConvNormAct(dim_out, dim_out, groups)
        self.shortcut = nn.Conv2d(dim_in, dim_out, 1) if dim_in != dim_out else nn.Identity()

    def forward(self, x: torch.Tensor, step_emb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.block1(x)
        if self.step_proj is not None:
            h = h + self.step_proj(step_emb)[:, :, None, None]
        return self.block2(h) + self.shortcut(x)


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of each pixel."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class LinearAttention(nn.Module):
    """``x + Attn(LayerNorm(x))`` with linear attention (Shen et al.): softmax over keys' pixels, queries' features."""

    def __init__(self, dim: int, heads: int = 4, head_dim: int = 16):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.norm = ChannelLayerNorm(dim)
        self.to_qkv = nn.Conv2d(dim, 3 * heads * head_dim, 1, bias=False)
        self.to_out = nn.Conv2d(heads * head_dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        q, k, v = self.to_qkv(self.norm(x)).reshape(b, 3, self.heads, self.head_dim, h * w).unbind(1)
        q = q.softmax(dim=-2) * self.head_dim**-0.5  # over features
        k = k.softmax(dim=-1)  # over pixels
        summary = torch.einsum("bhdn,bhen->bhde", k, v)  # (head_dim x head_dim) per head: cost linear in h*w
        out = torch.einsum("bhde,bhdn->bhen", summary, q).reshape(b, self.heads * self.head_dim, h, w)
        return x + self.to_out(out)


class ConvGRUCell(nn.Module):
    """Convolutional GRU (Ballas et al.): ``h' = (1 - z) h + z tanh(W [x, r h])`` with 3x3 convolutional gates."""

    def __init__(self, dim_in: int, dim_hidden: int, kernel_size: int = 3):
        super().__init__()
        self.dim_hidden = dim_hidden
        self.gates = nn.Conv2d(dim_in + dim_hidden, 2 * dim_hidden, kernel_size, padding=kernel_size // 2)
        self.candidate = nn.Conv2d(dim_in + dim_hidden, dim_hidden, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        reset, update = torch.sigmoid(self.gates(torch.cat([x, h], dim=1))).chunk(2, dim=1)
        candidate = torch.tanh(self.candidate(torch.cat([x, reset * h], dim=1)))
        return (1 - update) * h + update * candidate


class Downsample(nn.Conv2d):
    """Halve height and width (3x3 convolution, stride 2)."""

    def __init__(self, dim: int):
        super().__init__(dim, dim, 3, stride=2, padding=1)


class Upsample(nn.ConvTranspose2d):
    """Double height and width (4x4 transposed convolution, stride 2)."""

    def __init__(self, dim: int):
        super().__init__(dim, dim, 4, stride=2, padding=1)


def pyramid_zeros(
    batch: int, height: int, width: int, dims: list[int], device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, ...]:
    """Zero hidden states for a pyramid of levels: ``dims[i]`` channels at ``1/2**i`` of the frame's size."""
    return tuple(
        torch.zeros(batch, d, height >> i, width >> i, device=device, dtype=dtype) for i, d in enumerate(dims)
    )


__all__ = [
    "ConvGRUCell",
    "ConvNormAct",
    "Downsample",
    "LinearAttention",
    "ResBlock",
    "StepEmbedding",
    "Upsample",
    "step_encoding",
    "pyramid_zeros",
]
