"""Persistence: tomorrow looks like today.

``persistence`` forecasts every lead with the last observed frame (one member: it is deterministic).

``persistence_inflated`` turns it into an ensemble by adding noise whose spread grows with lead time as the
training data's *tendency* does: with ``s_k`` the standard deviation of ``x[t + k] - x[t]`` over training windows
(per lead ``k``, channel and pixel), member frames follow a random walk from the last true frame with independent
Gaussian increments of variance ``s_k^2 - s_{k-1}^2``, so that at lead ``k`` the member's spread about the last
true frame is exactly ``s_k``. Beyond the fitted leads (``max_lead``) the spread stays at ``s_max_lead``.

Lead counting: the state remembers whether its last frame was drawn by ``sample_next``; observing such a frame
moves one lead on, observing any other frame (a true context frame) starts again at lead 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from forecast.errors import ForecastError
from forecast.models.baselines.statistics import FittedBuffers, check_window
from forecast.models.config import require_positive_ints


@dataclass(frozen=True)
class PersistenceConfig:
    kind: str = "persistence"  # persistence | persistence_inflated
    max_lead: int = 16  # leads whose tendency spread is fitted (inflated only)
    per_pixel: bool = True  # spread per pixel and channel (True) or per channel only
    statistics_windows: int = 256  # training windows of max_lead + 1 frames used to fit the spread

    def check(self) -> None:
        require_positive_ints(self, ("max_lead", "statistics_windows"))


@dataclass
class PersistenceState:
    last: torch.Tensor | None  # the last observed frame (batch, channel, y, x)
    lead: int = 0  # leads already generated since the last true frame
    drawn: bool = False  # whether sample_next ran since the last observe
    shape: tuple[int, ...] = ()


class Persistence(FittedBuffers):
    fitted_buffers = ("tendency_std",)

    def __init__(self, n_channels: int, options: PersistenceConfig):
        super().__init__()
        self.options = options
        self.name = options.kind
        self.inflated = options.kind == "persistence_inflated"
        self.stochastic = self.inflated
        self.n_channels = n_channels
        self.statistics_frames = options.max_lead + 1 if self.inflated else 1
        self.statistics_windows = options.statistics_windows
        self._init_fitted()
        #: s_k for k = 1..max_lead: (max_lead, channel, y or 1, x or 1), normalised units
        self.register_buffer("tendency_std", torch.zeros(options.max_lead, n_channels, 1, 1))
        if not self.inflated:
            self.fitted.fill_(True)  # plain persistence needs no statistics

    # ------------------------------------------------------------------ statistics
    @torch.no_grad()
    def fit_statistics(self, windows: Iterable[torch.Tensor]) -> None:
        """``s_k^2`` = mean over windows and start times of ``(x[t + k] - x[t])^2`` (the tendency has mean ~0)."""
        if not self.inflated:
            return
        sums, counts = None, torch.zeros(self.options.max_lead, dtype=torch.float64)
        dims = (0, 1) if self.options.per_pixel else (0, 1, 3, 4)
        for window in windows:
            check_window(window, self.n_channels, self.options.max_lead + 1)
            window = window.double()
            batch = []
            for k in range(1, self.options.max_lead + 1):
                diff2 = (window[:, k:] - window[:, :-k]).square()  # (batch, time - k, channel, y, x)
                batch.append(diff2.sum(dim=dims))
                pixels = 1 if self.options.per_pixel else diff2.shape[3] * diff2.shape[4]
                counts[k - 1] += diff2.shape[0] * diff2.shape[1] * pixels
            batch = torch.stack(batch)  # (max_lead, channel[, y, x])
            sums = batch if sums is None else sums + batch
        if sums is None:
            raise ForecastError("no training windows to fit the tendency spread from")
        if not self.options.per_pixel:
            sums = sums[..., None, None]
        total, count = sums, counts[:, None, None, None]
        self.tendency_std = (total / count).sqrt().float().to(self.tendency_std.device)
        self.fitted.fill_(True)

    def increment_std(self, lead: int) -> torch.Tensor:
        """Standard deviation of the random-walk step from lead ``lead`` to ``lead + 1`` (0-based)."""
        s = self.tendency_std
        if lead >= s.shape[0]:
            return torch.zeros_like(s[0])
        previous = s[lead - 1].square() if lead > 0 else torch.zeros_like(s[0])
        return (s[lead].square() - previous).clamp_min(0).sqrt()

    # ------------------------------------------------------------------ SequenceModel
    def initial_state(self, batch: int, height: int, width: int, device) -> PersistenceState:
        return PersistenceState(last=None, shape=(batch, self.n_channels, height, width))

    def observe(self, state: PersistenceState, frame: torch.Tensor) -> PersistenceState:
        if state.shape and tuple(frame.shape) != state.shape:
            raise ForecastError(
                f"frame of shape {tuple(frame.shape)} does not match the state's {state.shape}"
            )
        lead = state.lead + 1 if state.drawn else 0
        return PersistenceState(last=frame, lead=lead, drawn=False, shape=state.shape)

    def sample_next(self, state: PersistenceState, *, sampler="ddpm", steps=None, eta=0.0, generator=None):
        if state.last is None:
            raise ForecastError(
                "the model has not observed any frame yet: observe at least one context frame"
            )
        state.drawn = True
        if not self.inflated:
            return state.last.clone()
        self.check_fitted()
        std = self.increment_std(state.lead).to(state.last)
        if std.shape[-2:] != (1, 1) and std.shape[-2:] != state.last.shape[-2:]:
            raise ForecastError(
                f"the spread was fitted on frames of {tuple(std.shape[-2:])}, not {tuple(state.last.shape[-2:])}"
            )
        noise = torch.randn(
            state.last.shape, generator=generator, device=state.last.device, dtype=state.last.dtype
        )
        return state.last + std * noise

    def loss(self, window: torch.Tensor, n_context: int) -> torch.Tensor:
        """MSE of persisting the last context frame over the future frames (an evaluation: nothing to learn)."""
        check_window(window, self.n_channels)
        last = window[:, n_context - 1 : n_context]
        return F.mse_loss(last.expand_as(window[:, n_context:]), window[:, n_context:])
