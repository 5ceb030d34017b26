"""FutureGAN (Aigner and Koerner 2018): a 3-D convolutional encoder-decoder GAN trained with WGAN-GP.

The generator maps a block of ``frames`` past frames, as one spatio-temporal volume, to the block of the next
``frames`` frames: a 3-D convolutional encoder (down-sampling space, not time), a bottleneck, and a mirrored
decoder, with pixel-wise feature normalisation after each convolution and LeakyReLU, as the paper (which takes
them from progressive GANs). The critic is a 3-D convolutional network on the whole sequence (past block and
future block, real or generated) with a linear score. Losses: Wasserstein GAN with gradient penalty
(``gp_weight``, 10 in the paper) plus the drift term ``epsilon * D(real)^2`` (0.001) of progressive GANs.

Longer horizons are predicted recursively, as in the paper: the generated block becomes the next input. As a
``SequenceModel`` the model keeps the last ``frames`` observed frames; ``sample_next`` generates a whole block when
it has none pending and hands its frames out one at a time. Deterministic: one member.

Deviations from the paper (and its released code), each an option or noted:

- no progressive growing: the networks train at the data's resolution from the start (the paper grows them from
  4x4, fading each new level in, with the learning rate decayed by 0.87 at each growth);
- compact networks: ``dim`` channels at full resolution, then 2 ``dim`` and 4 ``dim`` after two down-samplings
  (the paper: 512 channels, down to 4x4);
- no equalised learning rate and no minibatch-standard-deviation layer in the critic (both progressive-GAN parts
  of the paper). Tried at the test's size: per step 4x slower on a CPU and, after 300 steps, further from the
  truth than persistence, so not adopted;
- the bottleneck keeps the ``frames`` time steps (the paper folds the input frames into one with a
  (frames, 1, 1) convolution and unfolds the predicted ones with a transposed one), so input and output blocks
  have the same length; up-sampling is nearest-neighbour then a convolution (the paper: (1, 2, 2) transposed
  convolutions); the critic's strided convolutions halve time as well as space and its score is averaged over
  the last positions (the paper: (1, 2, 2) strides and a final convolution over all frames and the 4x4 map);
- the gradient penalty differentiates with respect to the interpolated future block (the past block is the same
  in real and generated sequences; the released code takes the norm over the whole interpolated sequence);
- while fewer than ``frames`` frames have been observed, the earliest is repeated; windows must hold
  ``2 * frames`` frames for training (the first ``frames`` are the input, the next ``frames`` the target); no
  output ``tanh`` (normalised fields, not bounded images).

Short trainings. The losses are the paper's alone (no reconstruction term), and WGAN-GP's critic teaches the
generator slowly at first: on the learning test's moving blob (8 channels, 16x16, Adam 1e-3 with the paper's
betas (0, 0.99)) the generated blocks first drift far from the data (at step 50 their error is about 50x
persistence's), come back once the critic separates real from generated sequences, and beat persistence from
about step 200 (about 3x better at step 300). The hinge and LSGAN GANs (DVD-GAN, RetroGAN) get there in 80-100
steps, so FutureGAN's learning test runs 300.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from forecast.errors import ForecastError
from forecast.models.base import SequenceModel
from forecast.models.baselines.statistics import check_window
from forecast.models.config import require_non_negative, require_positive_ints


@dataclass(frozen=True)
class FutureGANConfig:
    kind: str = "futuregan"
    dim: int = 32  # channels of the first level (then 2 dim, 4 dim)
    frames: int = 3  # frames per input block and per predicted block
    gp_weight: float = 10.0  # WGAN-GP's gradient penalty weight
    drift: float = 0.001  # epsilon of the critic's drift term
    d_steps: int = 1  # critic steps per generator step (the paper's progressive-GAN training: 1)

    def check(self) -> None:
        require_positive_ints(self, ("dim", "frames", "d_steps"))
        require_non_negative(self, ("gp_weight", "drift"))


class PixelNorm(nn.Module):
    def forward(self, x):
        return x * torch.rsqrt(x.square().mean(1, keepdim=True) + 1e-8)


def conv3(dim_in: int, dim_out: int, norm: bool = True, stride=1) -> nn.Sequential:
    layers = [nn.Conv3d(dim_in, dim_out, 3, stride=stride, padding=1), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers, PixelNorm()) if norm else nn.Sequential(*layers)


class Generator(nn.Module):
    def __init__(self, channels: int, dim: int):
        super().__init__()
        space = (1, 2, 2)
        self.encoder = nn.Sequential(
            conv3(channels, dim), conv3(dim, 2 * dim, stride=space), conv3(2 * dim, 4 * dim, stride=space)
        )
        self.bottleneck = conv3(4 * dim, 4 * dim)
        self.decoder = nn.Sequential(
            nn.Upsample(scale_factor=space),
            conv3(4 * dim, 2 * dim),
            nn.Upsample(scale_factor=space),
            conv3(2 * dim, dim),
            nn.Conv3d(dim, channels, 1),
        )

    def forward(self, past: torch.Tensor) -> torch.Tensor:
        """(batch, channel, frames, y, x) -> the next ``frames`` frames, same layout."""
        return self.decoder(self.bottleneck(self.encoder(past)))


class Critic(nn.Module):
    def __init__(self, channels: int, dim: int):
        super().__init__()
        self.net = nn.Sequential(
            conv3(channels, dim, norm=False),
            conv3(dim, 2 * dim, norm=False, stride=2),
            conv3(2 * dim, 4 * dim, norm=False, stride=2),
        )
        self.score = nn.Linear(4 * dim, 1)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.score(self.net(video).mean((2, 3, 4))).squeeze(-1)


@dataclass
class FutureGANState:
    frames: list  # the last ``frames`` observed frames
    pending: list  # generated frames not handed out yet


class FutureGAN(SequenceModel):
    name = "futuregan"
    stochastic = False
    spatial_multiple = 4
    adversarial = True

    def __init__(self, n_channels: int, options: FutureGANConfig):
        super().__init__()
        self.options, self.n_channels = options, n_channels
        self.generator = Generator(n_channels, options.dim)
        self.discriminator = Critic(n_channels, options.dim)

    def generator_parameters(self) -> list[nn.Parameter]:
        return list(self.generator.parameters())

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return list(self.discriminator.parameters())

    def _blocks(self, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.options.frames
        if window.shape[1] < 2 * k:
            raise ForecastError(f"model 'futuregan' with frames={k} needs windows of at least {2 * k} frames")
        volume = window.transpose(1, 2)  # (batch, channel, time, y, x)
        return volume[:, :, :k], volume[:, :, k : 2 * k]

    # ------------------------------------------------------------------ adversarial training (WGAN-GP)
    def generate_future(self, window: torch.Tensor, n_context: int) -> torch.Tensor:
        return self.generator(self._blocks(window)[0])

    def discriminator_loss(self, window, fake, n_context) -> tuple[torch.Tensor, dict]:
        past, real = self._blocks(window)
        fake = fake.detach()
        d_real = self.discriminator(torch.cat([past, real], 2))
        d_fake = self.discriminator(torch.cat([past, fake], 2))
        alpha = torch.rand(real.shape[0], 1, 1, 1, 1, device=real.device, dtype=real.dtype)
        mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        score = self.discriminator(torch.cat([past, mixed], 2))
        (grad,) = torch.autograd.grad(score.sum(), mixed, create_graph=True)
        penalty = (grad.flatten(1).norm(dim=1) - 1).square().mean()
        o = self.options
        loss = d_fake.mean() - d_real.mean() + o.gp_weight * penalty + o.drift * d_real.square().mean()
        return loss, {"d_real": d_real.mean().detach(), "d_fake": d_fake.mean().detach()}

    def generator_loss(self, window, fake, n_context) -> tuple[torch.Tensor, dict]:
        past, _ = self._blocks(window)
        adversarial = -self.discriminator(torch.cat([past, fake], 2)).mean()
        return adversarial, {"g_adversarial": adversarial.detach()}

    # ------------------------------------------------------------------ SequenceModel
    def initial_state(self, batch: int, height: int, width: int, device) -> FutureGANState:
        if height % 4 or width % 4:
            raise ForecastError(
                f"frames of {height}x{width} do not fit model 'futuregan': height and width must be divisible by 4"
            )
        return FutureGANState([], [])

    def observe(self, state: FutureGANState, frame: torch.Tensor) -> FutureGANState:
        return FutureGANState([*state.frames, frame][-self.options.frames :], state.pending)

    def sample_next(self, state: FutureGANState, *, sampler="ddpm", steps=None, eta=0.0, generator=None):
        if not state.frames:
            raise ForecastError(
                "the model has not observed any frame yet: observe at least one context frame"
            )
        if not state.pending:
            past = [state.frames[0]] * (self.options.frames - len(state.frames)) + state.frames
            block = self.generator(torch.stack(past, dim=2))
            state.pending = list(block.unbind(2))
        return state.pending.pop(0)

    def loss(self, window: torch.Tensor, n_context: int) -> torch.Tensor:
        """Mean squared error of the generated block (an evaluation; training is adversarial)."""
        check_window(window, self.n_channels)
        return F.mse_loss(self.generate_future(window, n_context), self._blocks(window)[1])

    def forward(self, window: torch.Tensor, n_context: int) -> torch.Tensor:
        return self.loss(window, n_context)
