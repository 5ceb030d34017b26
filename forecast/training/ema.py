"""Exponential moving average of a model's weights (the weights used for sampling)."""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    """A shadow copy of ``model.state_dict()`` that trails the trained weights.

    After each optimizer step, ``update`` moves every floating-point entry towards the model's:
    ``shadow = decay * shadow + (1 - decay) * weight``. With ``warmup`` the decay starts small,
    ``min(decay, (1 + step) / (10 + step))``, so that a short run's EMA is not dominated by the random
    initialisation. Integer buffers (counters) are copied, and so is a buffer that has taken its data's shape
    since the last update (RVD's ``sigma: auto_pixel``).
    """

    def __init__(self, model: nn.Module, decay: float, warmup: bool = True):
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.shadow = {name: value.detach().clone() for name, value in model.state_dict().items()}

    def decay_at(self, step: int) -> float:
        return min(self.decay, (1 + step) / (10 + step)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        weight = 1.0 - self.decay_at(step)
        for name, value in model.state_dict().items():
            shadow = self.shadow[name]
            if shadow.shape != value.shape:
                self.shadow[name] = value.detach().clone()
            elif shadow.is_floating_point():
                shadow.lerp_(value.detach().to(shadow.dtype), weight)
            else:
                shadow.copy_(value)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if set(state) != set(self.shadow):
            raise KeyError("EMA state does not match the model's parameters")
        for name, value in state.items():
            self.shadow[name].copy_(value)
