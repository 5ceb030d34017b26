"""The ``adversarial`` training mode: a discriminator step (or several) and a generator step per training step.

For the GAN baselines (``model.adversarial = True``). The model provides the networks and the losses, the mode
the alternation, the two optimizers and their logging; the Trainer's loop, learning-rate schedule, EMA,
checkpoints (both optimizers under their names) and exact resume apply unchanged. A model for this mode has:

- ``generator_parameters()`` and ``discriminator_parameters()`` (the discriminator is a submodule of the model,
  so checkpoints, EMA and ``load_run`` cover it);
- ``generate_future(window, n_context)``: the generated frames after the context, with gradients;
- ``discriminator_loss(window, fake, n_context)`` and ``generator_loss(window, fake, n_context)``, each
  ``(loss, metrics)``; the metrics (scalar tensors) become ``metrics.csv`` columns (listed in ``GAN_METRICS``);
- ``options.d_steps``: discriminator steps per generator step;
- optionally ``options.d_lr_scale``: the discriminator's learning rate over the generator's (1 if absent; DVD-GAN's
  paper trains D at 5x G's rate). The schedule (``training.lr`` to ``lr_final``) sets the generator's rate, and
  each step sets the discriminator's to that rate times ``d_lr_scale``, so both follow the schedule and a resumed
  run has the same rates.

Each step logs ``loss`` (the generator's), ``grad_norm`` (the generator's), ``d_loss`` and ``d_grad_norm`` (of the
last discriminator step) and the models' extra metrics. The discriminator's parameters are frozen during the
generator's backward pass, so the generator step leaves no gradients on them. Multi-process (DDP) training
of this mode is refused: the generator and discriminator are called outside the wrapped ``forward``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from forecast.errors import ForecastError
from forecast.training.modes import TrainingMode, adam, backward_and_step

if TYPE_CHECKING:
    from forecast.training.trainer import Trainer

#: every extra metric a GAN baseline's losses may return (missing ones are logged as NaN)
GAN_METRICS = ("d_loss", "d_grad_norm", "d_real", "d_fake", "g_adversarial", "g_reconstruction")


class AdversarialMode(TrainingMode):
    name = "adversarial"
    extra_metrics = GAN_METRICS

    def __init__(self, trainer: Trainer):
        super().__init__(trainer)
        model = trainer.model
        if not getattr(model, "adversarial", False):
            raise ForecastError(
                f"training.mode 'adversarial' needs a GAN model; model.kind {model.name!r} trains in mode 'standard'"
            )
        if trainer.process.world_size > 1:
            raise ForecastError("training.mode 'adversarial' does not support multi-process training yet")
        self.generator = list(model.generator_parameters())
        self.discriminator = list(model.discriminator_parameters())
        self.d_lr_scale = float(getattr(model.options, "d_lr_scale", 1.0))
        self.optimizers = {
            "model": adam(self.generator, trainer.training),
            "discriminator": adam(self.discriminator, trainer.training),
        }
        self._set_discriminator_lr()

    def _set_discriminator_lr(self) -> None:
        """The discriminator's rate: the generator's (as the Trainer's schedule set it) times ``d_lr_scale``."""
        lr = self.optimizers["model"].param_groups[0]["lr"] * self.d_lr_scale
        for group in self.optimizers["discriminator"].param_groups:
            group["lr"] = lr

    def step(self, window: torch.Tensor) -> dict[str, torch.Tensor]:
        trainer, model = self.trainer, self.trainer.model
        n_context, clip = trainer.n_context, trainer.training.grad_clip
        nan = torch.full((), float("nan"), device=window.device)
        metrics: dict[str, torch.Tensor] = {}
        self._set_discriminator_lr()
        for _ in range(int(model.options.d_steps)):
            with torch.no_grad(), trainer.autocast():
                fake = model.generate_future(window, n_context)
            with trainer.autocast():
                d_loss, d_metrics = model.discriminator_loss(window, fake, n_context)
            d_norm = backward_and_step(d_loss, self.optimizers["discriminator"], self.discriminator, clip)
            metrics.update(d_metrics)
        for p in self.discriminator:
            p.requires_grad_(False)
        try:
            with trainer.autocast():
                fake = model.generate_future(window, n_context)
                g_loss, g_metrics = model.generator_loss(window, fake, n_context)
            g_norm = backward_and_step(g_loss, self.optimizers["model"], self.generator, clip)
        finally:
            for p in self.discriminator:
                p.requires_grad_(True)
        metrics.update(g_metrics)
        out = {"loss": g_loss.detach(), "grad_norm": g_norm, "d_loss": d_loss.detach(), "d_grad_norm": d_norm}
        out.update({name: metrics.get(name, nan).detach() for name in GAN_METRICS if name not in out})
        return out
