"""Statistics of training data kept as buffers, for the parameter-free baselines.

A parameter-free baseline (persistence with inflation, climatology) is "trained" by measuring its training data:
the trainer calls ``fit_statistics(windows)`` once, at the start of a new run, with an iterable of batches of
normalised training windows ``(batch, time, channel, y, x)`` of ``statistics_frames`` frames (at most
``statistics_windows`` windows, spread evenly over the train group). The fitted tensors are buffers, so they are
saved in the checkpoint and restored by ``load_run`` like weights.

Their shape depends on the data (frame size, bank size), which the model does not know when it is built, so
they are listed in ``fitted_buffers`` and ``SequenceModel`` resizes them to the checkpoint's shape on load.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from forecast.errors import ForecastError
from forecast.models.base import SequenceModel


class FittedBuffers(SequenceModel):
    """A ``SequenceModel`` fitted by measuring its training data (its data-shaped buffers are ``fitted_buffers``)."""

    #: frames per window that ``fit_statistics`` wants, and how many windows at most
    statistics_frames: int = 2
    statistics_windows: int = 256

    def _init_fitted(self) -> None:
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def check_fitted(self) -> None:
        if not bool(self.fitted):
            raise ForecastError(
                f"model {self.name!r} has no statistics: train it with `forecast train` (which calls fit_statistics)"
            )

    def fit_statistics(self, windows: Iterable[torch.Tensor]) -> None:  # pragma: no cover (abstract)
        raise NotImplementedError


def check_window(window: torch.Tensor, n_channels: int, min_frames: int = 2) -> None:
    if window.dim() != 5:
        raise ForecastError(
            f"window must have dims (batch, time, channel, y, x), got shape {tuple(window.shape)}"
        )
    if window.shape[2] != n_channels:
        raise ForecastError(f"window has {window.shape[2]} channels, the model was built for {n_channels}")
    if window.shape[1] < min_frames:
        raise ForecastError(f"windows of {window.shape[1]} frames are too short (need {min_frames})")
