"""Improved conditional VRNN (Castrejon, Ballas and Courville 2019): a VRNN with a hierarchy of latents.

A frame ``x_t`` is encoded into feature maps ``e^l_t`` at ``levels`` resolutions (level ``l`` at 1/2^(l+1) of
the frame). Each level has a recurrent state ``h^l`` (a ConvLSTM) and a spatial latent ``z^l_t``. Generating a
frame runs top-down, from the coarsest level to the finest:

- the prior ``p(z^l_t | h^l_{t-1}, d^{l+1}_t, z^{>l}_t)`` and the posterior
  ``q(z^l_t | h^l_{t-1}, d^{l+1}_t, z^{>l}_t, e^l_t)`` see the state of their level, the decoder features from the
  level above (``d^{l+1}``, upsampled) and, densely, every latent above (upsampled): the paper's hierarchy with
  dense latent connectivity, which makes prior and posterior flexible;
- the decoder block ``d^l_t = D_l([h^l_{t-1}, z^l_t, d^{l+1}_t])`` feeds the level below; the finest level's
  output is upsampled to the frame ``x_hat_t`` (the likelihood model);
- then, as in a VRNN, every state takes in the frame and its latent: ``h^l_t = ConvLSTM_l([e^l_t, z^l_t], h^l_{t-1})``.

Training maximises the ELBO with teacher forcing (posterior latents): per frame ``||x_t - x_hat_t||^2 +
beta * sum_l KL(q_l || p_l)``. Deviations from the paper, each an option: the likelihood is a fixed-variance
Gaussian, i.e. MSE, and the KL weight ``beta`` uses the same normalisation as our SVG-LP (MSE averaged over
pixels, KL summed over latent channels and averaged over positions; default 1e-4), where the paper weighs a
summed log-likelihood against the KL with beta = 1; the networks are compact ConvNormAct stacks of ``dim``
channels rather than the paper's VGG-like encoder/decoder. Observing a true frame uses the posterior's mean
(deterministic, as our SVG-LP), so every random draw of a rollout comes from ``sample_next``'s generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from forecast.errors import ForecastError
from forecast.models.base import SequenceModel
from forecast.models.baselines.statistics import check_window
from forecast.models.baselines.svg_lp import ConvLSTM, draw_latent, gaussian_kl
from forecast.models.config import require_non_negative, require_positive_ints
from forecast.models.layers import ConvNormAct, Downsample, Upsample


@dataclass(frozen=True)
class IVRNNConfig:
    kind: str = "ivrnn"
    dim: int = 32  # channels of level 0; level l has dim * 2**l
    levels: int = 3  # latent levels (the paper's hierarchy)
    z_dim: int = 8  # latent channels per position and level
    rnn_dim: int = 64  # hidden channels of each level's ConvLSTM
    beta: float = 1.0e-4  # KL weight (see the module docstring)
    groups: int = 8

    def check(self) -> None:
        require_positive_ints(self, ("dim", "levels", "z_dim", "rnn_dim", "groups"))
        if self.dim % self.groups or self.rnn_dim % self.groups:
            raise ForecastError("model.dim and model.rnn_dim must be divisible by model.groups")
        require_non_negative(self, ("beta",))


def gaussian_head(dim_in: int, hidden: int, z_dim: int, groups: int) -> nn.Module:
    """Mean and log-variance of a diagonal Gaussian over ``z_dim`` channels, per position."""
    return nn.Sequential(ConvNormAct(dim_in, hidden, groups), nn.Conv2d(hidden, 2 * z_dim, 3, padding=1))


@dataclass
class IVRNNState:
    outputs: list | None  # per level: the ConvLSTM's output h^l_{t-1}
    lstm: list | None  # per level: the ConvLSTM's (h, c) states
    pending: list | None = None  # latents of the frame sample_next drew, used when that frame is observed
    shape: tuple[int, ...] = ()


class IVRNN(SequenceModel):
    name = "ivrnn"
    stochastic = True

    def __init__(self, n_channels: int, options: IVRNNConfig):
        super().__init__()
        self.options, self.n_channels = options, n_channels
        o, L = options, options.levels
        self.spatial_multiple = 2**L
        ch = [o.dim * 2**level for level in range(L)]
        self.stem = ConvNormAct(n_channels, o.dim, o.groups)
        self.down = nn.ModuleList(
            nn.Sequential(
                Downsample(ch[max(level - 1, 0)]), ConvNormAct(ch[max(level - 1, 0)], ch[level], o.groups)
            )
            for level in range(L)
        )
        self.rnn = nn.ModuleList(ConvLSTM(ch[level] + o.z_dim, o.rnn_dim, o.rnn_dim, 1) for level in range(L))
        # conditioning of level l: its state, the decoder features from above, every latent above
        cond = [
            o.rnn_dim + (ch[level] if level < L - 1 else 0) + o.z_dim * (L - 1 - level) for level in range(L)
        ]
        self.prior = nn.ModuleList(
            gaussian_head(cond[level], ch[level], o.z_dim, o.groups) for level in range(L)
        )
        self.posterior = nn.ModuleList(
            gaussian_head(cond[level] + ch[level], ch[level], o.z_dim, o.groups) for level in range(L)
        )
        self.decode = nn.ModuleList(
            ConvNormAct(cond[level] + o.z_dim, ch[level], o.groups) for level in range(L)
        )
        # decoder features of level l, upsampled to level l-1 with its channel count (level 0: to the frame)
        self.up = nn.ModuleList(
            nn.Sequential(Upsample(ch[level]), ConvNormAct(ch[level], ch[max(level - 1, 0)], o.groups))
            for level in range(L)
        )
        self.to_frame = nn.Conv2d(ch[0], n_channels, 3, padding=1)

    # ------------------------------------------------------------------ pieces
    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        features, h = [], self.stem(x)
        for down in self.down:
            h = down(h)
            features.append(h)
        return features

    def _top_down(self, outputs, features=None, mode: str = "prior", generator=None):
        """Latents and the frame, coarse to fine. ``mode``: prior (sample), posterior (sample), mean (posterior
        mean). Returns (frame, latents per level, KL summed over levels or None without ``features``)."""
        levels = self.options.levels
        zs: list = [None] * levels
        kl, above = None, None
        for level in reversed(range(levels)):
            size = outputs[level].shape[-2:]
            dense = [F.interpolate(zs[k], size=size, mode="nearest") for k in range(level + 1, levels)]
            cond = torch.cat([outputs[level], *([above] if above is not None else []), *dense], dim=1)
            mu_p, logvar_p = self.prior[level](cond).chunk(2, dim=1)
            mu_q = logvar_q = None  # no posterior without the true frame's features
            if features is not None:
                mu_q, logvar_q = self.posterior[level](torch.cat([cond, features[level]], dim=1)).chunk(
                    2, dim=1
                )
                term = gaussian_kl(mu_q, logvar_q, mu_p, logvar_p).sum(1).mean()
                kl = term if kl is None else kl + term
            z = draw_latent(mode, mu_p, logvar_p, mu_q, logvar_q, generator)
            zs[level] = z
            above = self.up[level](self.decode[level](torch.cat([cond, z], dim=1)))
        return self.to_frame(above), zs, kl

    def _advance(self, lstm, features, zs):
        outputs, states = [], []
        for level, rnn in enumerate(self.rnn):
            out, state = rnn(torch.cat([features[level], zs[level]], dim=1), lstm[level])
            outputs.append(out)
            states.append(state)
        return outputs, states

    def _zero(self, features):
        lstm = [rnn.zero_state(f) for rnn, f in zip(self.rnn, features)]
        outputs = [f.new_zeros(f.shape[0], self.options.rnn_dim, *f.shape[-2:]) for f in features]
        return outputs, lstm

    # ------------------------------------------------------------------ SequenceModel
    def initial_state(self, batch: int, height: int, width: int, device) -> IVRNNState:
        self.check_frame_size(height, width)
        return IVRNNState(None, None, shape=(batch, self.n_channels, height, width))

    def observe(self, state: IVRNNState, frame: torch.Tensor) -> IVRNNState:
        if state.shape and tuple(frame.shape) != state.shape:
            raise ForecastError(
                f"frame of shape {tuple(frame.shape)} does not match the state's {state.shape}"
            )
        features = self.encode(frame)
        outputs, lstm = (state.outputs, state.lstm) if state.outputs is not None else self._zero(features)
        zs = state.pending
        if zs is None:  # a true frame: the posterior's mean latents
            _, zs, _ = self._top_down(outputs, features, mode="mean")
        outputs, lstm = self._advance(lstm, features, zs)
        return IVRNNState(outputs, lstm, None, state.shape)

    def sample_next(self, state: IVRNNState, *, sampler="ddpm", steps=None, eta=0.0, generator=None):
        if state.outputs is None:
            raise ForecastError(
                "the model has not observed any frame yet: observe at least one context frame"
            )
        frame, zs, _ = self._top_down(state.outputs, mode="prior", generator=generator)
        state.pending = zs
        return frame

    def loss(self, window: torch.Tensor, n_context: int) -> torch.Tensor:
        """Mean over frames 1..T-1 of ``MSE + beta * KL`` (teacher forcing, posterior latents)."""
        check_window(window, self.n_channels)
        batch, length = window.shape[:2]
        if not 1 <= n_context < length:
            raise ForecastError(f"n_context must be in 1..{length - 1} for a window of {length} frames")
        features_all = [f.unflatten(0, (batch, length)) for f in self.encode(window.flatten(0, 1))]
        features = [f[:, 0] for f in features_all]
        outputs, lstm = self._zero(features)
        _, zs, _ = self._top_down(outputs, features, mode="posterior")  # the first frame's latents
        outputs, lstm = self._advance(lstm, features, zs)
        mse, kl = window.new_zeros(()), window.new_zeros(())
        for t in range(1, length):
            features = [f[:, t] for f in features_all]
            x_hat, zs, kl_t = self._top_down(outputs, features, mode="posterior")
            mse = mse + F.mse_loss(x_hat, window[:, t])
            kl = kl + kl_t
            outputs, lstm = self._advance(lstm, features, zs)
        return (mse + self.options.beta * kl) / (length - 1)
