"""SLAMP (Akan, Erdem, Erdem and Guney 2021): stochastic latent appearance and motion prediction.

Two SVG-LP-like streams, each with a learned prior, a posterior and a predictor (ConvLSTMs on feature maps at 1/4
of the frame's resolution, as our SVG-LP):

- **appearance** (pixel space): encoder ``E_p(x_t)``, latent ``z^p_t``; its decoder draws the frame ``x^p_t``
  directly (with skips from the last true frame's encoding, as SVG);
- **motion** (flow space): encoder ``E_f([x_{t-1}, x_t])`` on two consecutive frames, latent ``z^f_t``; its decoder
  draws a flow field ``f_t`` (pixels per frame), and the previous frame warped by it is ``x^f_t`` (bilinear,
  border padding);
- a **mask** decoder on both predictors' outputs gives ``m_t`` in (0, 1), and the prediction is
  ``x_hat_t = m_t x^p_t + (1 - m_t) x^f_t``.

Training (teacher forcing, posterior latents) minimises, per frame, the reconstruction errors of the appearance,
the motion and the combined predictions plus ``beta`` times both streams' KL divergences, as the paper.
Deviations, each an option or noted: the flow is predicted at 1/4 resolution and upsampled bilinearly
(``flow_scale``: its output is multiplied by this many pixels, the network's flow range); the mask decoder is a
small convolution on the concatenated predictor outputs rather than the paper's separate decoder branch; losses
are MSE (fixed-variance Gaussian likelihoods) with our SVG-LP's normalisation of the KL (``beta`` 1e-4); the first
motion encoding, where no earlier frame exists, pairs the first frame with itself. Observing a true frame uses
the posteriors' means (deterministic), so a rollout's randomness comes from ``sample_next``'s generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from forecast.errors import ForecastError
from forecast.models.base import SequenceModel
from forecast.models.baselines.statistics import check_window
from forecast.models.baselines.svg_lp import (
    ConvLSTM,
    Decoder,
    Encoder,
    check_latent_config,
    draw_latent,
    gaussian_kl,
)
from forecast.models.layers import ConvNormAct


@dataclass(frozen=True)
class SLAMPConfig:
    kind: str = "slamp"
    dim: int = 32  # channels of each encoder's first level (second: 2 dim)
    g_dim: int = 64  # channels of each stream's frame encoding (at 1/4 resolution)
    z_dim: int = 8  # latent channels per position, per stream
    rnn_dim: int = 64  # hidden channels of every ConvLSTM
    predictor_layers: int = 2
    prior_layers: int = 1
    posterior_layers: int = 1
    beta: float = 1.0e-4  # weight of both KL terms
    flow_scale: float = 4.0  # pixels per unit of the flow decoder's tanh output
    groups: int = 8

    def check(self) -> None:
        check_latent_config(self, non_negative=("beta", "flow_scale"))


class Stream(nn.Module):
    """One SVG-LP stream: encoder, posterior, learned prior, predictor and decoder."""

    def __init__(self, dim_in: int, dim_out: int, o: SLAMPConfig):
        super().__init__()
        self.encoder = Encoder(dim_in, o.dim, o.g_dim, o.groups)
        self.decoder = Decoder(dim_out, o.dim, o.g_dim, o.groups)
        self.posterior = ConvLSTM(o.g_dim, o.z_dim, o.rnn_dim, o.posterior_layers, gaussian=True)
        self.prior = ConvLSTM(o.g_dim, o.z_dim, o.rnn_dim, o.prior_layers, gaussian=True)
        self.predictor = ConvLSTM(o.g_dim + o.z_dim, o.g_dim, o.rnn_dim, o.predictor_layers)

    def zero(self, h: torch.Tensor) -> list:
        return [self.posterior.zero_state(h), self.prior.zero_state(h), self.predictor.zero_state(h)]

    def step(self, states: list, h_prev, h_now=None, mode: str = "prior", generator=None):
        """One frame: the latent (``mode`` prior/posterior sample or posterior mean), the predictor's output,
        the new states and the KL (with ``h_now``, the true frame's encoding; else None)."""
        posterior, prior, predictor = states
        stats_p, prior = self.prior(h_prev, prior)
        mu_p, logvar_p = stats_p.chunk(2, dim=1)
        kl = mu_q = logvar_q = None  # no posterior without the true frame's encoding
        if h_now is not None:
            stats_q, posterior = self.posterior(h_now, posterior)
            mu_q, logvar_q = stats_q.chunk(2, dim=1)
            kl = gaussian_kl(mu_q, logvar_q, mu_p, logvar_p).sum(1).mean()
        z = draw_latent(mode, mu_p, logvar_p, mu_q, logvar_q, generator)
        g, predictor = self.predictor(torch.cat([h_prev, z], dim=1), predictor)
        return g, [posterior, prior, predictor], kl


def warp(frame: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``frame`` sampled at ``(y, x) - flow``: content moves by ``flow`` pixels (channel 0: x, 1: y)."""
    _, _, height, width = frame.shape
    y, x = torch.meshgrid(
        torch.arange(height, device=frame.device, dtype=frame.dtype),
        torch.arange(width, device=frame.device, dtype=frame.dtype),
        indexing="ij",
    )
    src_x = (x - flow[:, 0]) * (2.0 / width) + (1.0 / width - 1.0)  # pixel centres, align_corners=False
    src_y = (y - flow[:, 1]) * (2.0 / height) + (1.0 / height - 1.0)
    grid = torch.stack([src_x, src_y], dim=-1)
    return F.grid_sample(frame, grid, mode="bilinear", padding_mode="border", align_corners=False)


@dataclass
class SLAMPState:
    streams: tuple | None  # (appearance states, motion states)
    h_prev: tuple | None  # (appearance, motion) encodings of the last observed frame (pair)
    skips: tuple | None  # (appearance, motion) encoder features of the last true frame (pair)
    last: torch.Tensor | None  # the last observed frame
    pending: tuple | None = None  # stream states after sample_next, committed by observe
    shape: tuple[int, ...] = ()


class SLAMP(SequenceModel):
    name = "slamp"
    stochastic = True
    spatial_multiple = 4

    def __init__(self, n_channels: int, options: SLAMPConfig):
        super().__init__()
        self.options, self.n_channels = options, n_channels
        o = options
        self.appearance = Stream(n_channels, n_channels, o)
        self.motion = Stream(2 * n_channels, 2, o)
        self.mask = nn.Sequential(
            ConvNormAct(2 * o.g_dim, o.g_dim, o.groups), nn.Conv2d(o.g_dim, 1, 3, padding=1)
        )

    def _predict(self, g_p, g_f, skips, last):
        """(combined, appearance, motion) predictions of the next frame from both predictors' outputs."""
        x_p = self.appearance.decoder(g_p, skips[0])
        flow = self.options.flow_scale * torch.tanh(self.motion.decoder(g_f, skips[1]))
        x_f = warp(last, flow)
        size = last.shape[-2:]
        mask = torch.sigmoid(F.interpolate(self.mask(torch.cat([g_p, g_f], 1)), size=size, mode="bilinear"))
        return mask * x_p + (1 - mask) * x_f, x_p, x_f

    # ------------------------------------------------------------------ SequenceModel
    def initial_state(self, batch: int, height: int, width: int, device) -> SLAMPState:
        self.check_frame_size(height, width)
        return SLAMPState(None, None, None, None, shape=(batch, self.n_channels, height, width))

    def observe(self, state: SLAMPState, frame: torch.Tensor) -> SLAMPState:
        if state.shape and tuple(frame.shape) != state.shape:
            raise ForecastError(
                f"frame of shape {tuple(frame.shape)} does not match the state's {state.shape}"
            )
        previous = state.last if state.last is not None else frame
        h_p, skips_p = self.appearance.encoder(frame)
        h_f, skips_f = self.motion.encoder(torch.cat([previous, frame], dim=1))
        skips = (skips_p, skips_f)
        if state.pending is not None:  # a generated frame: commit what sample_next computed
            streams, skips = state.pending, state.skips
        elif state.h_prev is not None:  # a true frame after another: advance with the posterior means
            _, app, _ = self.appearance.step(state.streams[0], state.h_prev[0], h_p, mode="mean")
            _, mot, _ = self.motion.step(state.streams[1], state.h_prev[1], h_f, mode="mean")
            streams = (app, mot)
        else:  # the first frame: the posteriors see it
            app, mot = self.appearance.zero(h_p), self.motion.zero(h_f)
            _, app[0] = self.appearance.posterior(h_p, app[0])
            _, mot[0] = self.motion.posterior(h_f, mot[0])
            streams = (app, mot)
        return SLAMPState(streams, (h_p, h_f), skips, frame, None, state.shape)

    def sample_next(self, state: SLAMPState, *, sampler="ddpm", steps=None, eta=0.0, generator=None):
        if state.h_prev is None:
            raise ForecastError(
                "the model has not observed any frame yet: observe at least one context frame"
            )
        g_p, app, _ = self.appearance.step(state.streams[0], state.h_prev[0], generator=generator)
        g_f, mot, _ = self.motion.step(state.streams[1], state.h_prev[1], generator=generator)
        state.pending = (app, mot)
        return self._predict(g_p, g_f, state.skips, state.last)[0]

    def loss(self, window: torch.Tensor, n_context: int) -> torch.Tensor:
        """Mean over frames 1..T-1 of the three reconstruction MSEs plus ``beta`` times both KLs."""
        check_window(window, self.n_channels)
        batch, length = window.shape[:2]
        if not 1 <= n_context < length:
            raise ForecastError(f"n_context must be in 1..{length - 1} for a window of {length} frames")
        pairs = torch.cat([torch.cat([window[:, :1], window[:, :-1]], 1), window], dim=2)  # (x_{t-1}, x_t)
        encoded = []
        for stream, x in ((self.appearance, window), (self.motion, pairs)):
            h, skips = stream.encoder(x.flatten(0, 1))
            encoded.append(
                (h.unflatten(0, (batch, length)), [s.unflatten(0, (batch, length)) for s in skips])
            )
        (hp, sp), (hf, sf) = encoded
        app, mot = self.appearance.zero(hp[:, 0]), self.motion.zero(hf[:, 0])
        _, app[0] = self.appearance.posterior(hp[:, 0], app[0])
        _, mot[0] = self.motion.posterior(hf[:, 0], mot[0])
        total = window.new_zeros(())
        for t in range(1, length):
            g_p, app, kl_p = self.appearance.step(app, hp[:, t - 1], hp[:, t], mode="posterior")
            g_f, mot, kl_f = self.motion.step(mot, hf[:, t - 1], hf[:, t], mode="posterior")
            k = min(t - 1, n_context - 1)  # skips from the last context frame (pair)
            skips = ([s[:, k] for s in sp], [s[:, k] for s in sf])
            x_hat, x_p, x_f = self._predict(g_p, g_f, skips, window[:, t - 1])
            target = window[:, t]
            total = total + F.mse_loss(x_hat, target) + F.mse_loss(x_p, target) + F.mse_loss(x_f, target)
            total = total + self.options.beta * (kl_p + kl_f)
        return total / (length - 1)
