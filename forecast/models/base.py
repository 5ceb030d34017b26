"""The interface every forecasting model implements, so that training and rollout treat them alike.

A model works on normalised frames, tensors of shape ``(batch, channel, y, x)``. It carries a recurrent
state: ``observe`` folds one frame (true during the context, generated afterwards) into it, and
``sample_next`` draws the frame that follows. Rollout runs ensemble members as separate batch rows, so a
state never needs to be copied between members.

Training calls ``loss`` on a window ``(batch, time, channel, y, x)``: the first ``n_context`` frames are
context, the loss covers every later frame, with teacher forcing (the true previous frames are observed).
``forward`` is the loss too, so that DistributedDataParallel (which hooks ``forward``) can wrap any model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import nn

from forecast.errors import ForecastError

State = Any  # each model defines its own recurrent state (a tuple of tensors, a dataclass, ...)


class SequenceModel(nn.Module, ABC):
    """A next-frame forecaster with a recurrent state."""

    #: short name written into forecast files ("rvd", "vd", "simple_rvd", "persistence", ...)
    name: str = "model"
    #: whether repeated calls of ``sample_next`` on one state give different frames
    stochastic: bool = True
    #: whether ``sample_next`` runs a diffusion sampler (and so heeds ``sampler``/``steps``/``eta``)
    has_diffusion: bool = False
    #: frame height and width must be divisible by this (e.g. 2**(levels - 1) for a U-Net)
    spatial_multiple: int = 1
    #: buffers fitted on training data whose shape depends on the data (frame size, bank size), which the model
    #: does not know when it is built: loading a state dict resizes them to its shape first
    fitted_buffers: tuple[str, ...] = ()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in self.fitted_buffers:
            value = state_dict.get(prefix + name)
            if isinstance(value, torch.Tensor):
                # in place: DistributedDataParallel broadcasts the buffer tensors it found when it wrapped the model
                getattr(self, name).resize_(value.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def check_frame_size(self, height: int, width: int) -> None:
        """ForecastError unless frames of ``height`` x ``width`` fit the network's resolution levels."""
        multiple = int(self.spatial_multiple)
        if height % multiple or width % multiple:
            raise ForecastError(
                f"frames of {height}x{width} do not fit model {self.name!r}: height and width must be divisible "
                f"by {multiple} (change the model depth or resample the data)"
            )

    @abstractmethod
    def initial_state(self, batch: int, height: int, width: int, device: torch.device) -> State:
        """The state before any frame has been seen."""

    @abstractmethod
    def observe(self, state: State, frame: torch.Tensor) -> State:
        """Return the state after seeing ``frame`` ``(batch, channel, y, x)``."""

    @abstractmethod
    def sample_next(
        self,
        state: State,
        *,
        sampler: str = "ddpm",
        steps: int | None = None,
        eta: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Draw the next frame ``(batch, channel, y, x)`` given ``state``.

        ``sampler``/``steps``/``eta`` select the diffusion sampler (``steps=None``: all N steps); models
        without a diffusion part ignore them.
        """

    def accelerate_sampling(
        self, mode: str = "none", backend: str | None = None, channels_last: bool = False
    ) -> None:
        """Compile or capture the network ``sample_next`` calls repeatedly (``forecast.capture``: ``none``,
        ``cudagraph`` or ``compile``; resolve ``auto`` first), and with ``channels_last`` run it in that memory
        format. ``mode="none"`` without ``channels_last`` restores the plain network. Models without such a
        network ignore it."""

    @abstractmethod
    def loss(self, window: torch.Tensor, n_context: int) -> torch.Tensor:
        """Scalar training loss on ``window`` ``(batch, time, channel, y, x)`` (teacher forcing)."""

    def forward(self, window: torch.Tensor, n_context: int) -> torch.Tensor:
        """The training loss (see the module docstring)."""
        return self.loss(window, n_context)
