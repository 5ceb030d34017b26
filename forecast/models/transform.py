"""The transform module (figure A2): a recurrent U-Net predicting the next frame ``mu`` from the frames so far.

Down path: at each level a ResBlock, then a ConvGRU whose hidden state is the level's memory of the past; the
GRU output is both the skip connection and (downsampled) the input of the next level. Up path: upsample,
concatenate the skip of that level, ResBlock. A 3x3 convolution maps the top level to the frame's channels.
"""

from __future__ import annotations

import torch
from torch import nn

from forecast.models.layers import ConvGRUCell, Downsample, ResBlock, Upsample


class TransformNet(nn.Module):
    def __init__(self, channels: int, dim: int, mults: list[int], groups: int):
        super().__init__()
        self.dims = [dim * m for m in mults]
        levels = len(self.dims)
        self.down_res = nn.ModuleList(
            ResBlock(d_in, d, groups) for d_in, d in zip([channels, *self.dims], self.dims)
        )
        self.grus = nn.ModuleList(ConvGRUCell(d, d) for d in self.dims)
        self.downsample = nn.ModuleList(Downsample(d) for d in self.dims[:-1])
        # Up level i (i = levels-2 .. 0): upsample the level below, concatenate this level's skip, ResBlock.
        self.upsample = nn.ModuleList(Upsample(self.dims[i + 1]) for i in range(levels - 1))
        self.up_res = nn.ModuleList(
            ResBlock(self.dims[i + 1] + self.dims[i], self.dims[i], groups) for i in range(levels - 1)
        )
        self.to_frame = nn.Conv2d(self.dims[0], channels, 3, padding=1)

    def forward(self, frame: torch.Tensor, hidden: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, tuple]:
        """Fold ``frame`` into the memory; return (prediction of the *next* frame, new hidden states)."""
        x, skips = frame, []
        for i, (res, gru) in enumerate(zip(self.down_res, self.grus)):
            x = gru(res(x), hidden[i])
            skips.append(x)
            if i < len(self.downsample):
                x = self.downsample[i](x)
        for i in reversed(range(len(self.up_res))):
            x = self.up_res[i](torch.cat([self.upsample[i](x), skips[i]], dim=1))
        return self.to_frame(x), tuple(skips)
