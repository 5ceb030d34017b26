"""DVD-GAN in its future-prediction form (DVD-GAN-FP; Clark, Donahue and Simonyan 2019), trained adversarially.

Generator: the context frames go through a per-frame encoder (the paper's conditioning stack) to feature maps at
1/4 resolution; a ConvGRU run over them gives the generator's initial recurrent state. A latent ``z`` (one per
video, N(0, I)) is mapped by a linear layer to a feature map that is the ConvGRU's input at every future step;
each step's hidden state is decoded (residual up-sampling blocks) into one frame. Frames are therefore drawn one at
a time, with ``z`` fixed for a member, so the model is a ``SequenceModel`` whose ensemble members differ by ``z``.

Two discriminators, as in the paper, both with spectral normalisation and conditioned on the context (the
paper's discriminators see the conditioning frames with the generated ones):

- spatial ``D_S``: a 2-D ResNet on ``k`` frames drawn at random from the future, each stacked with the last
  context frame along channels; scores summed over the ``k`` frames;
- temporal ``D_T``: a 3-D ResNet on the whole video (context + future) average-pooled 2x in space.

Losses: the hinge loss for both discriminators and the generator (``-D_S - D_T``), with ``d_steps``
discriminator steps per generator step (2 in the paper), and the discriminators learn at ``d_lr_scale`` times
the generator's rate (the paper: 1e-4 for G, 5e-4 for D; ``forecast/configs/dvd_gan.yaml``). The adversarial training step itself is the Trainer's
``adversarial`` mode (``forecast.training.modes``); this module only defines the networks and losses.

Deviations, each an option or noted: compact ResNets of ``dim`` channels rather than the paper's BigGAN-sized
ones; GroupNorm in the generator (the paper: conditional batch norm on ``z``); no output ``tanh`` (the fields are
normalised, not bounded); no class conditioning (there are no classes); ``recon_weight`` adds an L1 loss on the
generated future (0 in the paper, the default); the discriminator steps of one generator step share one batch.
``loss`` (what the standard mode would train) is the mean squared error of a generated future: an evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from forecast.errors import ForecastError
from forecast.models.base import SequenceModel
from forecast.models.baselines.statistics import check_window
from forecast.models.config import require_non_negative, require_positive_ints
from forecast.models.layers import ConvGRUCell, ConvNormAct, Downsample, Upsample


@dataclass(frozen=True)
class DVDGANConfig:
    kind: str = "dvd_gan"
    dim: int = 32  # channels of the generator's and discriminators' first level (second: 2 dim)
    z_dim: int = 32  # latent size per video
    frames_sampled: int = 8  # k, the frames D_S sees per video (all if fewer)
    d_steps: int = 2  # discriminator steps per generator step
    d_lr_scale: float = 5.0  # the discriminators' learning rate over the generator's (the paper: 5e-4 / 1e-4)
    recon_weight: float = 0.0  # L1 on the generated future (0: the paper's pure GAN)
    groups: int = 8

    def check(self) -> None:
        require_positive_ints(self, ("dim", "z_dim", "frames_sampled", "d_steps", "groups"))
        if self.dim % self.groups:
            raise ForecastError("model.dim must be divisible by model.groups")
        require_non_negative(self, ("recon_weight", "d_lr_scale"))
        if self.d_lr_scale == 0:
            raise ForecastError("model.d_lr_scale must be positive (0 would freeze the discriminators)")


class DBlock(nn.Module):
    """Discriminator residual block (spectral-normalised convolutions, ReLU, average-pool down-sampling)."""

    def __init__(self, dim_in: int, dim_out: int, conv: type, down: bool):
        super().__init__()
        self.conv1 = spectral_norm(conv(dim_in, dim_out, 3, padding=1))
        self.conv2 = spectral_norm(conv(dim_out, dim_out, 3, padding=1))
        self.skip = spectral_norm(conv(dim_in, dim_out, 1))
        self.pool = (F.avg_pool2d if conv is nn.Conv2d else F.avg_pool3d) if down else None

    def _down(self, x):
        if self.pool is None:
            return x
        if x.dim() == 5:  # 3-D: pool space only when time is short
            return self.pool(x, (2 if x.shape[2] >= 2 else 1, 2, 2))
        return self.pool(x, 2)

    def forward(self, x):
        h = self.conv2(F.relu(self.conv1(F.relu(x))))
        return self._down(h) + self._down(self.skip(x))


class Critic(nn.Module):
    """Two down-sampling residual blocks, one more block, ReLU, sum-pooling, a linear score."""

    def __init__(self, dim_in: int, dim: int, conv: type):
        super().__init__()
        self.blocks = nn.Sequential(
            DBlock(dim_in, dim, conv, True),
            DBlock(dim, 2 * dim, conv, True),
            DBlock(2 * dim, 2 * dim, conv, False),
        )
        self.score = spectral_norm(nn.Linear(2 * dim, 1))

    def forward(self, x):
        h = F.relu(self.blocks(x))
        return self.score(h.flatten(2).sum(-1)).squeeze(-1)


class Discriminators(nn.Module):
    """``D_S`` on sampled frames (with the last context frame) and ``D_T`` on the 2x down-sampled video."""

    def __init__(self, channels: int, o: DVDGANConfig):
        super().__init__()
        self.k = o.frames_sampled
        self.spatial = Critic(2 * channels, o.dim, nn.Conv2d)
        self.temporal = Critic(channels, o.dim, nn.Conv3d)

    def forward(self, context: torch.Tensor, future: torch.Tensor, generator=None) -> torch.Tensor:
        """Scores (batch,) of ``D_S + D_T`` for videos ``context`` + ``future`` (batch, time, channel, y, x)."""
        batch, length = future.shape[:2]
        k = min(self.k, length)
        pick = torch.stack([torch.randperm(length, generator=generator)[:k] for _ in range(batch)]).to(
            future.device
        )
        frames = torch.gather(future, 1, pick[:, :, None, None, None].expand(-1, -1, *future.shape[2:]))
        last = context[:, -1:].expand(-1, k, -1, -1, -1)
        spatial = self.spatial(torch.cat([frames, last], dim=2).flatten(0, 1)).view(batch, k).sum(1)
        video = torch.cat([context, future], dim=1).transpose(1, 2)  # (batch, channel, time, y, x)
        temporal = self.temporal(F.avg_pool3d(video, (1, 2, 2)))
        return spatial + temporal


@dataclass
class DVDGANState:
    hidden: torch.Tensor | None  # the ConvGRU state (context, then generated steps)
    z: torch.Tensor | None = None  # the member's latent, drawn at its first generated frame
    shape: tuple[int, ...] = ()


class DVDGAN(SequenceModel):
    name = "dvd_gan"
    stochastic = True
    spatial_multiple = (
        8  # generator at 1/4 resolution; the discriminators pool the 2x down-sampled video twice
    )
    adversarial = True  # trained by the Trainer's adversarial mode

    def __init__(self, n_channels: int, options: DVDGANConfig):
        super().__init__()
        self.options, self.n_channels = options, n_channels
        o, hidden = options, 2 * options.dim
        self.encoder = nn.Sequential(
            ConvNormAct(n_channels, o.dim, o.groups),
            Downsample(o.dim),
            ConvNormAct(o.dim, hidden, o.groups),
            Downsample(hidden),
            ConvNormAct(hidden, hidden, o.groups),
        )
        self.context_gru = ConvGRUCell(hidden, hidden)
        self.z_map = nn.Linear(o.z_dim, hidden)
        self.gru = ConvGRUCell(hidden, hidden)
        self.decoder = nn.Sequential(
            ConvNormAct(hidden, hidden, o.groups),
            Upsample(hidden),
            ConvNormAct(hidden, o.dim, o.groups),
            Upsample(o.dim),
            ConvNormAct(o.dim, o.dim, o.groups),
            nn.Conv2d(o.dim, n_channels, 3, padding=1),
        )
        self.discriminator = Discriminators(n_channels, o)

    # ------------------------------------------------------------------ generator pieces
    def generator_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if not name.startswith("discriminator.")]

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return list(self.discriminator.parameters())

    def _condition(self, hidden, frame):
        h = self.encoder(frame)
        return self.context_gru(h, hidden if hidden is not None else torch.zeros_like(h))

    def _step(self, hidden, z):
        size = hidden.shape[-2:]
        hidden = self.gru(self.z_map(z)[:, :, None, None].expand(-1, -1, *size), hidden)
        return self.decoder(hidden), hidden

    def generate_future(self, window: torch.Tensor, n_context: int, generator=None) -> torch.Tensor:
        """The generated future (batch, time - n_context, channel, y, x) of ``window``'s context frames."""
        hidden = None
        for t in range(n_context):
            hidden = self._condition(hidden, window[:, t])
        z = torch.randn(window.shape[0], self.options.z_dim, generator=generator, device=window.device)
        frames = []
        for _ in range(window.shape[1] - n_context):
            frame, hidden = self._step(hidden, z.to(window.dtype))
            frames.append(frame)
        return torch.stack(frames, dim=1)

    # ------------------------------------------------------------------ adversarial losses (hinge)
    def discriminator_loss(self, window, fake, n_context) -> tuple[torch.Tensor, dict]:
        context, real = window[:, :n_context], window[:, n_context:]
        d_real = self.discriminator(context, real)
        d_fake = self.discriminator(context, fake.detach())
        loss = F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()
        return loss, {"d_real": d_real.mean().detach(), "d_fake": d_fake.mean().detach()}

    def generator_loss(self, window, fake, n_context) -> tuple[torch.Tensor, dict]:
        adversarial = -self.discriminator(window[:, :n_context], fake).mean()
        metrics = {"g_adversarial": adversarial.detach()}
        loss = adversarial
        if self.options.recon_weight:
            reconstruction = F.l1_loss(fake, window[:, n_context:])
            loss = loss + self.options.recon_weight * reconstruction
            metrics["g_reconstruction"] = reconstruction.detach()
        return loss, metrics

    # ------------------------------------------------------------------ SequenceModel
    def initial_state(self, batch: int, height: int, width: int, device) -> DVDGANState:
        if height % self.spatial_multiple or width % self.spatial_multiple:
            raise ForecastError(
                f"frames of {height}x{width} do not fit model 'dvd_gan': height and width must be divisible by 8"
            )
        return DVDGANState(None, shape=(batch, self.n_channels, height, width))

    def observe(self, state: DVDGANState, frame: torch.Tensor) -> DVDGANState:
        if state.shape and tuple(frame.shape) != state.shape:
            raise ForecastError(
                f"frame of shape {tuple(frame.shape)} does not match the state's {state.shape}"
            )
        if state.z is not None:  # a generated frame: the generator runs open-loop, as in the paper
            return state
        return DVDGANState(self._condition(state.hidden, frame), None, state.shape)

    def sample_next(self, state: DVDGANState, *, sampler="ddpm", steps=None, eta=0.0, generator=None):
        if state.hidden is None:
            raise ForecastError(
                "the model has not observed any frame yet: observe at least one context frame"
            )
        if state.z is None:
            batch = state.hidden.shape[0]
            state.z = torch.randn(batch, self.options.z_dim, generator=generator, device=state.hidden.device)
        frame, state.hidden = self._step(state.hidden, state.z.to(state.hidden.dtype))
        return frame

    def loss(self, window: torch.Tensor, n_context: int) -> torch.Tensor:
        """Mean squared error of one generated future (an evaluation; training is adversarial)."""
        check_window(window, self.n_channels)
        if not 1 <= n_context < window.shape[1]:
            raise ForecastError(
                f"n_context must be in 1..{window.shape[1] - 1} for a window of {window.shape[1]} frames"
            )
        return F.mse_loss(self.generate_future(window, n_context), window[:, n_context:])

    def forward(self, window: torch.Tensor, n_context: int) -> torch.Tensor:
        return self.loss(window, n_context)
