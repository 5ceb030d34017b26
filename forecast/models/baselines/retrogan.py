"""Retrospective cycle GAN (RetroGAN; Kwon and Park 2019): one generator that predicts forwards and backwards.

The generator ``G`` maps ``k`` consecutive frames (stacked along channels) to the next one. Applied to a reversed
sequence it predicts the frame *before* it. On a training sequence ``x_m .. x_n`` (``n = m + k``):

- forward: ``x'_n = G(x_m .. x_{n-1})``;
- backward: ``x'_m = G(reverse(x_{m+1} .. x_n))``;
- retrospective: ``x''_m = G(reverse(x_{m+1} .. x_{n-1}, x'_n))``, the past recovered from the *predicted*
  future (the cycle that gives the method its name).

Losses, as in the paper: the image loss ``L1 + lambda_log * L1 of the Laplacian of Gaussian`` on the three
predictions; two discriminators with least-squares (LSGAN) losses, ``D_A`` on single frames (real ``x_n``, ``x_m``
against the three predictions) and ``D_B`` on sequences of ``k + 1`` frames (the real sequence against it with one
frame replaced by a prediction); the generator's loss is the image loss plus ``lambda_adv`` times its
adversarial terms. Trained by the Trainer's ``adversarial`` mode; deterministic: one member.

Deviations, each an option or noted: ``G`` is a compact U-Net of ``dim`` channels (the paper: a deeper
encoder-decoder with dilated convolutions); the training sequence is the first ``k + 1`` frames of each window;
while fewer than ``k`` frames have been observed, the earliest is repeated to fill the input (rollouts with
shorter contexts than ``k``); no output ``tanh`` (normalised fields, not bounded images).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from forecast.errors import ForecastError
from forecast.models.base import SequenceModel
from forecast.models.baselines.dvd_gan import Critic
from forecast.models.baselines.statistics import check_window
from forecast.models.config import require_non_negative, require_positive_ints
from forecast.models.layers import ConvNormAct, Downsample, Upsample


@dataclass(frozen=True)
class RetroGANConfig:
    kind: str = "retrogan"
    dim: int = 32  # channels of the generator's first level (second: 2 dim, bottleneck: 4 dim)
    inputs: int = 4  # k, frames the generator sees
    lambda_log: float = 1.0  # weight of the Laplacian-of-Gaussian L1
    lambda_adv: float = 0.01  # weight of the generator's adversarial terms
    d_steps: int = 1  # discriminator steps per generator step
    groups: int = 8

    def check(self) -> None:
        require_positive_ints(self, ("dim", "inputs", "d_steps", "groups"))
        if self.dim % self.groups:
            raise ForecastError("model.dim must be divisible by model.groups")
        require_non_negative(self, ("lambda_log", "lambda_adv"))


class UNet(nn.Module):
    """Two down-sampling levels with skips; ``k`` stacked frames in, one frame out."""

    def __init__(self, dim_in: int, dim_out: int, dim: int, groups: int):
        super().__init__()
        self.inp = ConvNormAct(dim_in, dim, groups)
        self.down1 = nn.Sequential(Downsample(dim), ConvNormAct(dim, 2 * dim, groups))
        self.down2 = nn.Sequential(Downsample(2 * dim), ConvNormAct(2 * dim, 4 * dim, groups))
        self.up2 = nn.Sequential(Upsample(4 * dim), ConvNormAct(4 * dim, 2 * dim, groups))
        self.up1 = nn.Sequential(Upsample(4 * dim), ConvNormAct(4 * dim, dim, groups))
        self.out = nn.Conv2d(2 * dim, dim_out, 3, padding=1)

    def forward(self, x):
        s0 = self.inp(x)
        s1 = self.down1(s0)
        h = self.up2(self.down2(s1))
        h = self.up1(torch.cat([h, s1], 1))
        return self.out(torch.cat([h, s0], 1))


def _log_kernel(size: int = 5, sigma: float = 1.0) -> torch.Tensor:
    """A zero-sum Laplacian-of-Gaussian kernel."""
    r = torch.arange(size, dtype=torch.float64) - size // 2
    y, x = torch.meshgrid(r, r, indexing="ij")
    q = (x**2 + y**2) / (2 * sigma**2)
    kernel = (q - 1) * torch.exp(-q)
    return (kernel - kernel.mean()).float()


@dataclass
class RetroGANState:
    frames: list  # the last k observed frames


class RetroGAN(SequenceModel):
    name = "retrogan"
    stochastic = False
    spatial_multiple = 4
    adversarial = True

    def __init__(self, n_channels: int, options: RetroGANConfig):
        super().__init__()
        self.options, self.n_channels = options, n_channels
        o = options
        self.generator = UNet(o.inputs * n_channels, n_channels, o.dim, o.groups)
        self.discriminator = nn.ModuleDict(
            {
                "frame": Critic(n_channels, o.dim, nn.Conv2d),
                "sequence": Critic((o.inputs + 1) * n_channels, o.dim, nn.Conv2d),
            }
        )
        self.register_buffer("log_kernel", _log_kernel()[None, None], persistent=False)

    def generator_parameters(self) -> list[nn.Parameter]:
        return list(self.generator.parameters())

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return list(self.discriminator.parameters())

    def _g(self, frames: list[torch.Tensor]) -> torch.Tensor:
        return self.generator(torch.cat(frames, dim=1))

    def _sequence(self, frames: list[torch.Tensor]) -> torch.Tensor:
        return self.discriminator["sequence"](torch.cat(frames, dim=1))

    def _log(self, x: torch.Tensor) -> torch.Tensor:
        kernel = self.log_kernel.to(x.dtype).expand(x.shape[1], 1, -1, -1)
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), kernel, groups=x.shape[1])

    def _sequence_frames(self, window: torch.Tensor) -> list[torch.Tensor]:
        k = self.options.inputs
        if window.shape[1] < k + 1:
            raise ForecastError(f"model 'retrogan' with inputs={k} needs windows of at least {k + 1} frames")
        return [window[:, i] for i in range(k + 1)]

    # ------------------------------------------------------------------ adversarial training
    def generate_future(self, window: torch.Tensor, n_context: int) -> dict[str, torch.Tensor]:
        """The forward, backward and retrospective predictions on the window's first ``k + 1`` frames."""
        x = self._sequence_frames(window)
        forward = self._g(x[:-1])
        backward = self._g(x[:0:-1])
        retro = self._g([forward, *x[-2:0:-1]])
        return {"forward": forward, "backward": backward, "retro": retro}

    def discriminator_loss(self, window, fake, n_context) -> tuple[torch.Tensor, dict]:
        """LSGAN: real frames and sequences towards 1, those with predictions towards 0 (each kind averaged)."""
        x = self._sequence_frames(window)
        frame_d = self.discriminator["frame"]
        d_real = torch.cat([frame_d(x[-1]), frame_d(x[0])])
        d_fake = torch.cat([frame_d(f.detach()) for f in fake.values()])
        fake_sequences = torch.cat(self._fake_sequences(x, fake, detach=True))
        frames = (d_real - 1).square().mean() + d_fake.square().mean()
        sequences = (self._sequence(x) - 1).square().mean() + fake_sequences.square().mean()
        loss = 0.5 * (frames + sequences)
        return loss, {"d_real": d_real.mean().detach(), "d_fake": d_fake.mean().detach()}

    def _fake_sequences(self, x, fake, detach: bool):
        f = {k: v.detach() if detach else v for k, v in fake.items()}
        return [
            self._sequence([*x[:-1], f["forward"]]),
            self._sequence([f["backward"], *x[1:]]),
            self._sequence([f["retro"], *x[1:-1], f["forward"]]),
        ]

    def generator_loss(self, window, fake, n_context) -> tuple[torch.Tensor, dict]:
        x = self._sequence_frames(window)
        targets = {"forward": x[-1], "backward": x[0], "retro": x[0]}
        image = sum(
            F.l1_loss(fake[k], targets[k])
            + self.options.lambda_log * F.l1_loss(self._log(fake[k]), self._log(targets[k]))
            for k in fake
        )
        frame_d = self.discriminator["frame"]
        adversarial = sum((frame_d(f) - 1).square().mean() for f in fake.values()) / 3
        adversarial = (
            adversarial + sum((s - 1).square().mean() for s in self._fake_sequences(x, fake, False)) / 3
        )
        loss = image + self.options.lambda_adv * adversarial
        return loss, {"g_adversarial": adversarial.detach(), "g_reconstruction": image.detach()}

    # ------------------------------------------------------------------ SequenceModel
    def initial_state(self, batch: int, height: int, width: int, device) -> RetroGANState:
        if height % 4 or width % 4:
            raise ForecastError(
                f"frames of {height}x{width} do not fit model 'retrogan': height and width must be divisible by 4"
            )
        return RetroGANState([])

    def observe(self, state: RetroGANState, frame: torch.Tensor) -> RetroGANState:
        return RetroGANState([*state.frames, frame][-self.options.inputs :])

    def sample_next(self, state: RetroGANState, *, sampler="ddpm", steps=None, eta=0.0, generator=None):
        if not state.frames:
            raise ForecastError(
                "the model has not observed any frame yet: observe at least one context frame"
            )
        missing = self.options.inputs - len(state.frames)
        return self._g([state.frames[0]] * missing + state.frames)

    def loss(self, window: torch.Tensor, n_context: int) -> torch.Tensor:
        """The image loss of the forward prediction (an evaluation; training is adversarial)."""
        check_window(window, self.n_channels)
        fake = self.generate_future(window, n_context)
        return F.l1_loss(fake["forward"], window[:, self.options.inputs])

    def forward(self, window: torch.Tensor, n_context: int) -> torch.Tensor:
        return self.loss(window, n_context)
