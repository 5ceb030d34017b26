"""SVG-LP (Denton and Fergus 2018, "Stochastic video generation with a learned prior") with ConvLSTMs.

The paper's sequential-VAE baseline (section 4.3: the authors' model "replacing all the LSTM with ConvLSTM
layers"). Frame ``x_t`` is encoded to a feature map ``h_t`` (1/4 of the frame's resolution). Three recurrent
networks run on feature maps:

- the posterior ``q(z_t | x_{1:t}) = ConvLSTM_phi(h_t)`` (training, and true context frames),
- the learned prior ``p(z_t | x_{1:t-1}) = ConvLSTM_psi(h_{t-1})`` (generation),
- the frame predictor ``g_t = ConvLSTM_theta([h_{t-1}, z_t])``,

and the decoder turns ``g_t`` into ``x_t``, with skip connections from the encoder of the last *true* frame (as
in the original). ``z_t`` is a spatial latent map (``z_dim`` channels per position). The loss per frame is
``||x_t - x_hat_t||^2 + beta KL(q || p)``, averaged over frames ``t >= 1`` (SVG reconstructs the context frames
after the first too); KL is summed over latent channels and averaged over positions and batch.

Generation (``sample_next``) draws ``z_t`` from the prior; observing a true frame runs the posterior (and advances
the prior and predictor with the posterior's ``z``), as the original's generation code does for context frames,
except that we take the posterior mean rather than a sample, so that all randomness of a rollout comes from
``sample_next``'s generator.
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
from forecast.models.layers import ConvNormAct, Downsample, Upsample


@dataclass(frozen=True)
class SVGLPConfig:
    kind: str = "svg_lp"
    dim: int = 32  # channels of the encoder's first level (second: 2 dim)
    g_dim: int = 64  # channels of the frame encoding h_t (at 1/4 resolution)
    z_dim: int = 8  # latent channels per position
    rnn_dim: int = 64  # hidden channels of every ConvLSTM
    predictor_layers: int = 2
    prior_layers: int = 1
    posterior_layers: int = 1
    beta: float = 1.0e-4  # weight of the KL term (the original's default)
    groups: int = 8

    def check(self) -> None:
        check_latent_config(self)


#: the sizes every SVG-LP-style config (SVG-LP, SLAMP) must give as positive integers
LATENT_SIZES = (
    "dim",
    "g_dim",
    "z_dim",
    "rnn_dim",
    "predictor_layers",
    "prior_layers",
    "posterior_layers",
    "groups",
)


def check_latent_config(config, non_negative: tuple[str, ...] = ("beta",)) -> None:
    """The checks of an SVG-LP-style config: positive sizes, widths divisible by the groups, ``non_negative``."""
    require_positive_ints(config, LATENT_SIZES)
    if config.dim % config.groups or config.g_dim % config.groups:
        raise ForecastError("model.dim and model.g_dim must be divisible by model.groups")
    require_non_negative(config, non_negative)


class ConvLSTMCell(nn.Module):
    """LSTM whose gates are 3x3 convolutions of ``[x, h]``."""

    def __init__(self, dim_in: int, dim_hidden: int):
        super().__init__()
        self.gates = nn.Conv2d(dim_in + dim_hidden, 4 * dim_hidden, 3, padding=1)

    def forward(self, x, state):
        h, c = state
        i, f, o, g = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class ConvLSTM(nn.Module):
    """Input 1x1 projection, a stack of ConvLSTM cells, output 3x3 convolution (the original's ``lstm`` module).

    With ``gaussian=True`` the output is (mean, log-variance) of a diagonal Gaussian over ``dim_out`` channels.
    """

    def __init__(self, dim_in: int, dim_out: int, dim_hidden: int, layers: int, gaussian: bool = False):
        super().__init__()
        self.dim_hidden, self.gaussian = dim_hidden, gaussian
        self.embed = nn.Conv2d(dim_in, dim_hidden, 1)
        self.cells = nn.ModuleList(ConvLSTMCell(dim_hidden, dim_hidden) for _ in range(layers))
        self.out = nn.Conv2d(dim_hidden, 2 * dim_out if gaussian else dim_out, 3, padding=1)

    def zero_state(self, like: torch.Tensor) -> tuple:
        zeros = like.new_zeros(like.shape[0], self.dim_hidden, *like.shape[-2:])
        return tuple((zeros, zeros) for _ in self.cells)

    def forward(self, x: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple]:
        h, new_state = self.embed(x), []
        for cell, s in zip(self.cells, state):
            s = cell(h, s)
            new_state.append(s)
            h = s[0]
        return self.out(h), tuple(new_state)


class Encoder(nn.Module):
    def __init__(self, channels: int, dim: int, g_dim: int, groups: int):
        super().__init__()
        self.level0 = ConvNormAct(channels, dim, groups)
        self.level1 = nn.Sequential(Downsample(dim), ConvNormAct(dim, 2 * dim, groups))
        self.to_h = nn.Sequential(Downsample(2 * dim), ConvNormAct(2 * dim, g_dim, groups))

    def forward(self, x):
        s0 = self.level0(x)
        s1 = self.level1(s0)
        return self.to_h(s1), (s0, s1)


class Decoder(nn.Module):
    def __init__(self, channels: int, dim: int, g_dim: int, groups: int):
        super().__init__()
        self.up1 = Upsample(g_dim)
        self.level1 = ConvNormAct(g_dim + 2 * dim, 2 * dim, groups)
        self.up0 = Upsample(2 * dim)
        self.level0 = ConvNormAct(2 * dim + dim, dim, groups)
        self.to_frame = nn.Conv2d(dim, channels, 3, padding=1)

    def forward(self, g, skips):
        s0, s1 = skips
        x = self.level1(torch.cat([self.up1(g), s1], dim=1))
        x = self.level0(torch.cat([self.up0(x), s0], dim=1))
        return self.to_frame(x)


@dataclass
class SVGState:
    predictor: tuple | None
    prior: tuple | None
    posterior: tuple | None
    h_prev: torch.Tensor | None  # encoding of the last observed frame
    skips: tuple | None  # encoder features of the last true frame
    pending: tuple | None = None  # (predictor, prior) states after sample_next, committed by observe
    shape: tuple[int, ...] = ()


def gaussian_kl(mu_q, logvar_q, mu_p, logvar_p) -> torch.Tensor:
    """KL(N(mu_q, var_q) || N(mu_p, var_p)) per element."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).square()) / logvar_p.exp() - 1.0)


def draw_latent(
    mode: str,
    mu_p: torch.Tensor,
    logvar_p: torch.Tensor,
    mu_q: torch.Tensor | None,
    logvar_q: torch.Tensor | None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The latent of one step: a draw from the prior (``prior``, sampling), from the posterior (``posterior``,
    training), or the posterior mean (any other mode: observing a true frame)."""
    if mode == "prior":
        noise = torch.randn(mu_p.shape, generator=generator, device=mu_p.device, dtype=mu_p.dtype)
        return mu_p + (0.5 * logvar_p).exp() * noise
    if mode == "posterior":
        return mu_q + (0.5 * logvar_q).exp() * torch.randn_like(mu_q)
    return mu_q


class SVGLP(SequenceModel):
    name = "svg_lp"
    stochastic = True
    spatial_multiple = 4

    def __init__(self, n_channels: int, options: SVGLPConfig):
        super().__init__()
        self.options = options
        self.n_channels = n_channels
        o = options
        self.encoder = Encoder(n_channels, o.dim, o.g_dim, o.groups)
        self.decoder = Decoder(n_channels, o.dim, o.g_dim, o.groups)
        self.posterior = ConvLSTM(o.g_dim, o.z_dim, o.rnn_dim, o.posterior_layers, gaussian=True)
        self.prior = ConvLSTM(o.g_dim, o.z_dim, o.rnn_dim, o.prior_layers, gaussian=True)
        self.predictor = ConvLSTM(o.g_dim + o.z_dim, o.g_dim, o.rnn_dim, o.predictor_layers)

    # ------------------------------------------------------------------ recurrent state
    def initial_state(self, batch: int, height: int, width: int, device) -> SVGState:
        self.check_frame_size(height, width)
        return SVGState(None, None, None, None, None, shape=(batch, self.n_channels, height, width))

    def _states(self, state: SVGState, h: torch.Tensor) -> tuple:
        if state.predictor is not None:
            return state.predictor, state.prior, state.posterior
        return self.predictor.zero_state(h), self.prior.zero_state(h), self.posterior.zero_state(h)

    def observe(self, state: SVGState, frame: torch.Tensor) -> SVGState:
        if state.shape and tuple(frame.shape) != state.shape:
            raise ForecastError(
                f"frame of shape {tuple(frame.shape)} does not match the state's {state.shape}"
            )
        h, skips = self.encoder(frame)
        predictor, prior, posterior = self._states(state, h)
        if state.pending is not None:  # a generated frame: commit what sample_next computed
            predictor, prior = state.pending
            skips = state.skips
        elif state.h_prev is not None:  # a true frame after another: the original's context step
            stats, posterior = self.posterior(h, posterior)
            z = stats.chunk(2, dim=1)[0]  # the posterior mean: observing stays deterministic (reproducible)
            _, prior = self.prior(state.h_prev, prior)
            _, predictor = self.predictor(torch.cat([state.h_prev, z], dim=1), predictor)
        else:  # the first frame: the posterior sees it (its z is not used, as in the original)
            _, posterior = self.posterior(h, posterior)
        return SVGState(predictor, prior, posterior, h, skips, None, state.shape)

    def sample_next(self, state: SVGState, *, sampler="ddpm", steps=None, eta=0.0, generator=None):
        if state.h_prev is None:
            raise ForecastError(
                "the model has not observed any frame yet: observe at least one context frame"
            )
        predictor, prior, _ = self._states(state, state.h_prev)
        stats, prior = self.prior(state.h_prev, prior)
        mu_p, logvar_p = stats.chunk(2, dim=1)
        noise = torch.randn(mu_p.shape, generator=generator, device=mu_p.device, dtype=mu_p.dtype)
        z = mu_p + (0.5 * logvar_p).exp() * noise
        g, predictor = self.predictor(torch.cat([state.h_prev, z], dim=1), predictor)
        state.pending = (predictor, prior)
        return self.decoder(g, state.skips)

    # ------------------------------------------------------------------ training
    def loss(self, window: torch.Tensor, n_context: int) -> torch.Tensor:
        """Mean over frames 1..T-1 of ``MSE + beta KL`` (teacher forcing, posterior z)."""
        check_window(window, self.n_channels)
        batch, length = window.shape[:2]
        if not 1 <= n_context < length:
            raise ForecastError(f"n_context must be in 1..{length - 1} for a window of {length} frames")
        h_all, skips_all = self.encoder(window.flatten(0, 1))
        hs = h_all.unflatten(0, (batch, length))
        skips = [s.unflatten(0, (batch, length)) for s in skips_all]
        predictor = self.predictor.zero_state(hs[:, 0])
        prior = self.prior.zero_state(hs[:, 0])
        _, posterior = self.posterior(hs[:, 0], self.posterior.zero_state(hs[:, 0]))
        mse, kl = window.new_zeros(()), window.new_zeros(())
        for t in range(1, length):
            stats_q, posterior = self.posterior(hs[:, t], posterior)
            mu_q, logvar_q = stats_q.chunk(2, dim=1)
            stats_p, prior = self.prior(hs[:, t - 1], prior)
            mu_p, logvar_p = stats_p.chunk(2, dim=1)
            z = mu_q + (0.5 * logvar_q).exp() * torch.randn_like(mu_q)
            g, predictor = self.predictor(torch.cat([hs[:, t - 1], z], dim=1), predictor)
            skip_t = min(t - 1, n_context - 1)  # skips from the last context frame
            x_hat = self.decoder(g, tuple(s[:, skip_t] for s in skips))
            mse = mse + F.mse_loss(x_hat, window[:, t])
            kl = kl + gaussian_kl(mu_q, logvar_q, mu_p, logvar_p).sum(1).mean()
        return (mse + self.options.beta * kl) / (length - 1)
