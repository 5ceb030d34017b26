"""Climatology: every member of every lead is a frame drawn at random from a bank of training frames.

It ignores the context entirely, so it is the forecast that knows the data's distribution and nothing about the
present state: a skilful model must beat it at short leads, and any model should match it at long leads.
The bank (``bank_size`` frames spread evenly over the training windows) is a buffer saved in the checkpoint.
Members are drawn independently per lead (the marginal distribution per pixel and lead is the climatology;
consecutive frames of one member are not a coherent trajectory).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from forecast.errors import ForecastError
from forecast.models.baselines.statistics import FittedBuffers, check_window


@dataclass(frozen=True)
class ClimatologyConfig:
    kind: str = "climatology"
    bank_size: int = 512  # training frames kept

    def check(self) -> None:
        if isinstance(self.bank_size, bool) or not isinstance(self.bank_size, int) or self.bank_size < 1:
            raise ForecastError(f"model.bank_size must be a positive integer, got {self.bank_size!r}")


@dataclass
class ClimatologyState:
    shape: tuple[int, int, int, int]  # (batch, channel, y, x)
    device: torch.device
    frames_seen: int = 0


class Climatology(FittedBuffers):
    name = "climatology"
    stochastic = True
    fitted_buffers = ("bank",)
    statistics_frames = 1

    def __init__(self, n_channels: int, options: ClimatologyConfig):
        super().__init__()
        self.options = options
        self.n_channels = n_channels
        self.statistics_windows = options.bank_size
        self._init_fitted()
        # (bank_size, channel, y, x) once fitted
        self.register_buffer("bank", torch.zeros(1, n_channels, 1, 1))

    @torch.no_grad()
    def fit_statistics(self, windows: Iterable[torch.Tensor]) -> None:
        """Keep ``bank_size`` frames, evenly spaced over all frames of the given windows."""
        frames = []
        for window in windows:
            check_window(window, self.n_channels, 1)
            frames.append(window.reshape(-1, *window.shape[2:]).cpu())
        if not frames:
            raise ForecastError("no training windows to build the climatology from")
        frames = torch.cat(frames)
        keep = torch.linspace(0, len(frames) - 1, min(self.options.bank_size, len(frames))).round().long()
        self.bank = frames[keep].to(self.bank.device, torch.float32).contiguous()
        self.fitted.fill_(True)

    def initial_state(self, batch: int, height: int, width: int, device) -> ClimatologyState:
        return ClimatologyState(shape=(batch, self.n_channels, height, width), device=torch.device(device))

    def observe(self, state: ClimatologyState, frame: torch.Tensor) -> ClimatologyState:
        if tuple(frame.shape) != state.shape:
            raise ForecastError(
                f"frame of shape {tuple(frame.shape)} does not match the state's {state.shape}"
            )
        return ClimatologyState(shape=state.shape, device=state.device, frames_seen=state.frames_seen + 1)

    def sample_next(self, state: ClimatologyState, *, sampler="ddpm", steps=None, eta=0.0, generator=None):
        self.check_fitted()
        if tuple(self.bank.shape[-2:]) != state.shape[-2:]:
            raise ForecastError(
                f"the climatology holds frames of {tuple(self.bank.shape[-2:])}, not {state.shape[-2:]}"
            )
        index = torch.randint(len(self.bank), (state.shape[0],), generator=generator, device=self.bank.device)
        return self.bank[index].to(state.device)

    def loss(self, window: torch.Tensor, n_context: int) -> torch.Tensor:
        """MSE of the climatological mean over the future frames (an evaluation: nothing to learn)."""
        check_window(window, self.n_channels)
        self.check_fitted()
        mean = self.bank.mean(0).to(window)
        return F.mse_loss(mean.expand_as(window[:, n_context:]), window[:, n_context:])
