"""The denoising module (figure A1): a U-Net predicting the noise in ``y_n`` at step ``n``, given the context.

Down level ``i`` (DD): ResBlock; concatenate the context of level ``i``; ResBlock; LinearAttention (its output
is the skip connection); downsample (all levels but the last). Middle: ResBlock, LinearAttention, ResBlock.
Up level ``i`` (DU, deepest first): concatenate the skip of level ``i``; ResBlock; ResBlock; LinearAttention;
upsample (all levels but the top). Every ResBlock receives the embedding of the diffusion step ``n``.

``in_channels`` (default ``channels``) is the input's channel count: RVD's ``condition_on_mu`` concatenates
``mu`` to the noisy residual, so the input has twice the channels of the output.
"""

from __future__ import annotations

import torch
from torch import nn

from forecast.models.layers import ConvNormAct, Downsample, LinearAttention, ResBlock, StepEmbedding, Upsample


class Denoiser(nn.Module):
    def __init__(
        self,
        channels: int,
        dim: int,
        mults: list[int],
        context_dims: list[int],
        groups: int,
        heads: int = 4,
        head_dim: int = 16,
        in_channels: int | None = None,
    ):
        super().__init__()
        dims = [dim * m for m in mults]
        self.dims = dims
        levels = len(dims)
        self.step_embedding = StepEmbedding(dim)

        def attention(d: int) -> LinearAttention:
            return LinearAttention(d, heads, head_dim)

        self.down = nn.ModuleList(
            nn.ModuleDict(
                {
                    "res1": ResBlock(d_in, d, groups, dim),
                    "res2": ResBlock(d + c, d, groups, dim),
                    "attn": attention(d),
                    "down": Downsample(d) if i < levels - 1 else nn.Identity(),
                }
            )
            for i, (d_in, d, c) in enumerate(zip([in_channels or channels, *dims], dims, context_dims))
        )
        self.mid_res1 = ResBlock(dims[-1], dims[-1], groups, dim)
        self.mid_attn = attention(dims[-1])
        self.mid_res2 = ResBlock(dims[-1], dims[-1], groups, dim)
        # up[i] serves level i; it receives the features of level i+1 (or of the middle, for the deepest level).
        below = [*dims[1:], dims[-1]]
        self.up = nn.ModuleList(
            nn.ModuleDict(
                {
                    "res1": ResBlock(b + d, d, groups, dim),
                    "res2": ResBlock(d, d, groups, dim),
                    "attn": attention(d),
                    "up": Upsample(d) if i > 0 else nn.Identity(),
                }
            )
            for i, (d, b) in enumerate(zip(dims, below))
        )
        self.out = nn.Sequential(ConvNormAct(dims[0], dims[0], groups), nn.Conv2d(dims[0], channels, 1))

    def forward(self, y: torch.Tensor, n: torch.Tensor, context: tuple[torch.Tensor, ...]) -> torch.Tensor:
        emb = self.step_embedding(n)
        x, skips = y, []
        for level, ctx in zip(self.down, context):
            x = level["res1"](x, emb)
            x = level["res2"](torch.cat([x, ctx], dim=1), emb)
            x = level["attn"](x)
            skips.append(x)
            x = level["down"](x)
        x = self.mid_res2(self.mid_attn(self.mid_res1(x, emb)), emb)
        for level, skip in zip(reversed(self.up), reversed(skips)):
            x = level["res1"](torch.cat([x, skip], dim=1), emb)
            x = level["res2"](x, emb)
            x = level["up"](level["attn"](x))
        return self.out(x)
