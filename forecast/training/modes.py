"""Training modes: what one training step does. ``training.mode`` names one of ``MODES``.

The ``Trainer`` owns the loop: data, learning-rate schedule, EMA, logging, checkpoints, time budget. A mode owns
the step: which optimizers exist (by name) and what one step does with a batch of windows. ``standard`` is
algorithm 1 of the paper: one loss, one Adam, gradient clipping.

Adding a mode (for example adversarial training with a discriminator step):

- subclass ``TrainingMode``; in ``__init__`` build ``self.optimizers`` (name -> optimizer; the Trainer sets every
  group's learning rate from the schedule each step and checkpoints every optimizer under its name);
- implement ``step(window)``: forward, backward and optimizer steps, returning scalar tensors by name, at least
  ``loss`` (checked for non-finite values) and ``grad_norm``. Return them detached and on the device, without
  ``.item()``: the Trainer averages them over the log interval and reads them once per interval;
- list the extra names ``step`` returns in ``extra_metrics`` (they become extra ``metrics.csv`` columns);
- networks the mode trains besides the model (a discriminator) are best submodules of the model, so that
  checkpoints, EMA and ``load_run`` cover them; other state goes through ``state_dict``/``load_state_dict``.
  ``trainer.wrap(module)`` gives a DistributedDataParallel wrapper in multi-process runs (identity otherwise);
  ``trainer.autocast()`` is the precision context of the run;
- add the class to ``MODES`` in ``forecast.training.mode_registry`` (the one list of modes, which config
  validation and the Trainer read); a mode defined elsewhere can be added with ``register_mode``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
from torch import nn

from forecast.errors import ForecastError
from forecast.training.config import TrainingConfig

if TYPE_CHECKING:
    from forecast.training.trainer import Trainer


def adam(parameters: Iterable[nn.Parameter], training: TrainingConfig) -> torch.optim.Adam:
    """Adam with the run's betas and weight decay (the rate is set by the Trainer each step)."""
    return torch.optim.Adam(
        [{"params": list(parameters)}],  # a group may be empty: parameter-free baselines
        lr=training.lr,
        betas=training.adam_betas,
        weight_decay=training.weight_decay,
    )


def backward_and_step(
    loss: torch.Tensor, optimizer: torch.optim.Optimizer, parameters: list[nn.Parameter], clip: float | None
) -> torch.Tensor:
    """Zero the gradients, backpropagate ``loss``, clip to ``clip`` and step; returns the gradient norm before
    clipping (NaN when not clipped), as a device tensor (no host synchronisation)."""
    optimizer.zero_grad(set_to_none=True)
    norm = torch.full((), math.nan, device=loss.device)
    if loss.requires_grad:  # a parameter-free baseline's loss is only an evaluation
        loss.backward()
        if clip:
            norm = nn.utils.clip_grad_norm_(parameters, clip)
    optimizer.step()
    return norm.detach()


class TrainingMode:
    """One step of training (see the module docstring for how to add a mode)."""

    name = ""
    extra_metrics: tuple[str, ...] = ()

    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    def step(self, window: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """State of the mode besides the model and the optimizers (checkpointed)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class StandardMode(TrainingMode):
    """Algorithm 1: the model's loss (teacher forcing), backward, clipping, one Adam step."""

    name = "standard"

    def __init__(self, trainer: Trainer):
        super().__init__(trainer)
        if getattr(trainer.model, "adversarial", False):  # its loss is an evaluation, not what it trains on
            raise ForecastError(
                f"model.kind {trainer.model.name!r} is a GAN: train it with training.mode 'adversarial'"
            )
        self.parameters = list(trainer.model.parameters())
        self.optimizers = {"model": adam(self.parameters, trainer.training)}

    def step(self, window: torch.Tensor) -> dict[str, torch.Tensor]:
        trainer = self.trainer
        with trainer.autocast():
            loss = trainer.module(window, trainer.n_context)
        grad_norm = backward_and_step(
            loss, self.optimizers["model"], self.parameters, trainer.training.grad_clip
        )
        return {"loss": loss.detach(), "grad_norm": grad_norm}
