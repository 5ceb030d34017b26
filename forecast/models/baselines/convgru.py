"""A deterministic ConvGRU predictor: RVD's transform module alone, trained with MSE.

The network is ``forecast.models.transform.TransformNet`` (figure A2 of the paper), the very module that predicts
``mu`` inside RVD; here its prediction is the forecast, trained by the mean squared (or absolute) error of the next
frame with teacher forcing. It answers "what does the diffusion part add?": a point forecast, one member.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from forecast.errors import ForecastError
from forecast.models.base import SequenceModel
from forecast.models.baselines.statistics import check_window
from forecast.models.layers import pyramid_zeros
from forecast.models.transform import TransformNet


@dataclass(frozen=True)
class ConvGRUConfig:
    kind: str = "convgru"
    dim: int = 48
    transform_mults: tuple[int, ...] = (1, 2, 2, 4)  # as RVD's transform (table A1)
    groups: int = 8
    loss: str = "l2"  # l2 | l1

    def check(self) -> None:
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or self.dim < 1:
            raise ForecastError(f"model.dim must be a positive integer, got {self.dim!r}")
        if not self.transform_mults or any(not isinstance(m, int) or m < 1 for m in self.transform_mults):
            raise ForecastError(
                f"model.transform_mults must be positive integers, got {self.transform_mults!r}"
            )
        bad = [self.dim * m for m in self.transform_mults if (self.dim * m) % self.groups]
        if bad:
            raise ForecastError(f"model.transform_mults: channel counts {bad} are not divisible by groups")
        if self.loss not in ("l2", "l1"):
            raise ForecastError(f"unknown model.loss {self.loss!r}; use l2 or l1")


@dataclass(frozen=True)
class ConvGRUState:
    hidden: tuple[torch.Tensor, ...]
    prediction: torch.Tensor | None  # the forecast of the next frame; None before any frame is seen


class ConvGRUPredictor(SequenceModel):
    name = "convgru"
    stochastic = False

    def __init__(self, n_channels: int, options: ConvGRUConfig):
        super().__init__()
        self.options = options
        self.n_channels = n_channels
        self.transform = TransformNet(n_channels, options.dim, list(options.transform_mults), options.groups)
        self.spatial_multiple = 2 ** (len(options.transform_mults) - 1)

    def initial_state(self, batch: int, height: int, width: int, device) -> ConvGRUState:
        self.check_frame_size(height, width)
        dtype = next(self.parameters()).dtype
        hidden = pyramid_zeros(batch, height, width, self.transform.dims, torch.device(device), dtype)
        return ConvGRUState(hidden=hidden, prediction=None)

    def observe(self, state: ConvGRUState, frame: torch.Tensor) -> ConvGRUState:
        expected = (state.hidden[0].shape[0], self.n_channels, *state.hidden[0].shape[-2:])
        if tuple(frame.shape) != expected:
            raise ForecastError(f"frame of shape {tuple(frame.shape)} does not match the state's {expected}")
        prediction, hidden = self.transform(frame, state.hidden)
        dtype = state.hidden[0].dtype
        return ConvGRUState(hidden=tuple(h.to(dtype) for h in hidden), prediction=prediction.to(dtype))

    def sample_next(self, state: ConvGRUState, *, sampler="ddpm", steps=None, eta=0.0, generator=None):
        if state.prediction is None:
            raise ForecastError(
                "the model has not observed any frame yet: observe at least one context frame"
            )
        return state.prediction

    def loss(self, window: torch.Tensor, n_context: int) -> torch.Tensor:
        """Mean over future frames of the error of the one-step prediction, with teacher forcing."""
        check_window(window, self.n_channels)
        batch, length, _, height, width = window.shape
        if not 1 <= n_context < length:
            raise ForecastError(f"n_context must be in 1..{length - 1} for a window of {length} frames")
        error = F.mse_loss if self.options.loss == "l2" else F.l1_loss
        state = self.initial_state(batch, height, width, window.device)
        total = window.new_zeros(())
        for t in range(length - 1):
            state = self.observe(state, window[:, t])
            if t + 1 >= n_context:
                total = total + error(state.prediction, window[:, t + 1])
        return total / (length - n_context)
