"""The context encoder: a ConvGRU pyramid that summarises the frames seen so far, one context per level.

Level ``i`` (at ``1/2**i`` of the frame's resolution, ``dims[i]`` channels) is a ResBlock followed by a ConvGRU;
the GRU's hidden state is the context that the denoiser concatenates into its down path at the same level
(the green arrows of figure A1).
"""

from __future__ import annotations

import torch
from torch import nn

from forecast.models.layers import ConvGRUCell, Downsample, ResBlock


class ContextEncoder(nn.Module):
    def __init__(self, channels: int, dims: list[int], groups: int):
        super().__init__()
        self.dims = list(dims)
        self.res = nn.ModuleList(
            ResBlock(d_in, d, groups) for d_in, d in zip([channels, *self.dims], self.dims)
        )
        self.grus = nn.ModuleList(ConvGRUCell(d, d) for d in self.dims)
        self.downsample = nn.ModuleList(Downsample(d) for d in self.dims[:-1])

    def forward(self, frame: torch.Tensor, hidden: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """Fold ``frame`` into the contexts; return the new context (= hidden state) of every level."""
        x, contexts = frame, []
        for i, (res, gru) in enumerate(zip(self.res, self.grus)):
            x = gru(res(x), hidden[i])
            contexts.append(x)
            if i < len(self.downsample):
                x = self.downsample[i](x)
        return tuple(contexts)
