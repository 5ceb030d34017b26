"""The ``model`` and ``diffusion`` sections of a run config, parsed and checked.

```yaml
model:
  kind: rvd                       # rvd | vd (mu = 0, sigma = 1) | simple_rvd (mu = previous frame)
  dim: 48                         # channel dim of the first level (table A1: 48 at 64x64, 64 at 128x128)
  denoiser_mults: [1, 2, 4, 8]    # per-level channel multipliers of the denoiser (and of the context encoder)
  transform_mults: [1, 2, 2, 4]   # per-level multipliers of the transform (rvd only)
  sigma: 2.0                      # residual scale; vd fixes it to 1; auto: the residual's own RMS per channel,
                                  # a running statistic of the training batches kept in the checkpoint;
                                  # auto_pixel: the same per channel and pixel (frames of the training size only)
  sigma_momentum: 0.01            # sigma auto: weight of each training batch in the running mean square
  loss: l2                        # l2 (equation 9) | l1 (the authors' released code)
  mu_loss_weight: 0.0             # > 0 adds w * mean((mu - x)^2) per future frame (rvd only; not in the paper)
  detach_mu: false                # true: the diffusion loss does not train mu, which learns from the mu loss alone
                                  # (rvd with mu_loss_weight > 0; not in the paper)
  condition_on_mu: false          # true: the denoiser sees mu too, concatenated to its noisy input (rvd and
                                  # simple_rvd; not in the paper, whose denoiser sees the context only)
  groups: 8                       # GroupNorm groups (every level's channel count must be divisible by it)
  attention_heads: 4
  attention_head_dim: 16
diffusion:
  steps: 1600                     # N
  schedule: cosine                # cosine (Nichol & Dhariwal, the paper) | linear (Ho et al.)
  clip_x0: null                   # clamp the predicted residual to +-clip_x0 while sampling (released code: 2)
  prediction: eps                 # what the denoiser predicts: eps (the paper) | y0 (released code's "pred_true")
                                  # | v (Salimans & Ho 2022)
  loss_weighting: uniform         # uniform (equation 9) | min_snr (Hang et al. 2023: y0-error weight min(SNR, gamma))
  min_snr_gamma: 5.0              # gamma of min_snr
```
Unknown keys are errors, so that a typo cannot silently fall back to a default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from forecast.diffusion import LOSS_WEIGHTINGS, LOSSES, PREDICTIONS, SCHEDULES, GaussianDiffusion
from forecast.errors import ForecastError
from forecast.models.kinds import DIFFUSION_KINDS, MODEL_KINDS

KINDS = DIFFUSION_KINDS  # RVD and its switches (forecast.models.kinds, the one registry)
#: ``model.sigma`` values fitted while training: the residual's RMS per channel, or per channel and pixel
AUTO_SIGMAS = ("auto", "auto_pixel")


@dataclass(frozen=True)
class ModelConfig:
    kind: str = "rvd"
    dim: int = 48
    denoiser_mults: tuple[int, ...] = (1, 2, 4, 8)
    transform_mults: tuple[int, ...] = (1, 2, 2, 4)
    sigma: float | str | None = (
        None  # None: 2 for rvd and simple_rvd, 1 for vd; "auto" / "auto_pixel": fitted while training
    )
    sigma_momentum: float = 0.01
    loss: str = "l2"
    mu_loss_weight: float = 0.0
    detach_mu: bool = False
    condition_on_mu: bool = False
    groups: int = 8
    attention_heads: int = 4
    attention_head_dim: int = 16

    @property
    def auto_sigma(self) -> bool:
        return self.sigma in AUTO_SIGMAS

    @property
    def sigma_per_pixel(self) -> bool:
        return self.sigma == "auto_pixel"

    @property
    def residual_scale(self) -> float:
        """The fixed residual scale (with ``sigma: auto``: its value before the first training batch, 1)."""
        if self.auto_sigma:
            return 1.0
        if self.sigma is not None:
            return self.sigma
        return 1.0 if self.kind == "vd" else 2.0


@dataclass(frozen=True)
class DiffusionConfig:
    steps: int = 1600
    schedule: str = "cosine"
    clip_x0: float | None = None
    prediction: str = "eps"
    loss_weighting: str = "uniform"
    min_snr_gamma: float = 5.0

    def build(self) -> GaussianDiffusion:
        return GaussianDiffusion(
            steps=self.steps, schedule=self.schedule, clip_x0=self.clip_x0, prediction=self.prediction,
            loss_weighting=self.loss_weighting, min_snr_gamma=self.min_snr_gamma,
        )  # fmt: skip


def _section(config: dict, name: str, cls: type) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise ForecastError(f"config must be a mapping with a '{name}' section, got {type(config).__name__}")
    section = config.get(name) or {}
    if not isinstance(section, dict):
        raise ForecastError(f"config section '{name}' must be a mapping, got {type(section).__name__}")
    allowed = [f.name for f in fields(cls)]
    unknown = sorted(set(section) - set(allowed))
    if unknown:
        raise ForecastError(f"unknown key(s) {unknown} in config section '{name}'; allowed: {allowed}")
    return dict(section)


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ForecastError(f"{where} must be a positive integer, got {value!r}")
    return value


def require_positive_ints(options: Any, keys: tuple[str, ...]) -> None:
    """One line naming the first of ``options``' fields ``keys`` that is not a positive integer."""
    for key in keys:
        _positive_int(getattr(options, key), f"model.{key}")


def require_non_negative(options: Any, keys: tuple[str, ...]) -> None:
    """One line naming the first of ``options``' fields ``keys`` that is not a non-negative number."""
    for key in keys:
        value = getattr(options, key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ForecastError(f"model.{key} must be a non-negative number, got {value!r}")


def require_choice(value: Any, choices: Sequence[str], message: str) -> None:
    """One line, ``message`` with ``{value}`` (the value's repr) and ``{choices}`` (comma-separated) filled in,
    unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ForecastError(message.format(value=repr(value), choices=", ".join(choices)))


def _mults(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ForecastError(f"{where} must be a non-empty list of positive integers, got {value!r}")
    return tuple(_positive_int(v, where) for v in value)


def parse_model_config(config: dict) -> ModelConfig:
    raw = _section(config, "model", ModelConfig)
    cfg = ModelConfig(**raw)
    if cfg.kind not in KINDS:
        known = ", ".join(MODEL_KINDS)
        raise ForecastError(f"unknown model.kind {cfg.kind!r}; use one of {known}")
    dim = _positive_int(cfg.dim, "model.dim")
    groups = _positive_int(cfg.groups, "model.groups")
    denoiser = _mults(cfg.denoiser_mults, "model.denoiser_mults")
    transform = _mults(cfg.transform_mults, "model.transform_mults")
    _positive_int(cfg.attention_heads, "model.attention_heads")
    _positive_int(cfg.attention_head_dim, "model.attention_head_dim")
    for name, mults in (("denoiser_mults", denoiser), ("transform_mults", transform)):
        bad = [dim * m for m in mults if (dim * m) % groups]
        if bad:
            raise ForecastError(
                f"model.{name}: channel counts {bad} are not divisible by model.groups = {groups}"
            )
    if cfg.sigma is not None and not cfg.auto_sigma:
        if isinstance(cfg.sigma, bool) or not isinstance(cfg.sigma, int | float) or not cfg.sigma > 0:
            raise ForecastError(
                f"model.sigma must be a positive number or one of {', '.join(AUTO_SIGMAS)}, got {cfg.sigma!r}"
            )
    if cfg.kind == "vd" and cfg.sigma is not None and cfg.sigma != 1:
        raise ForecastError(
            f"model.kind vd models frames directly (mu = 0, sigma = 1); remove sigma={cfg.sigma}"
        )
    m = cfg.sigma_momentum
    if isinstance(m, bool) or not isinstance(m, int | float) or not 0 < m <= 1:
        raise ForecastError(f"model.sigma_momentum must be a number in (0, 1], got {m!r}")
    w = cfg.mu_loss_weight
    if isinstance(w, bool) or not isinstance(w, int | float) or w < 0:
        raise ForecastError(f"model.mu_loss_weight must be a number >= 0, got {w!r}")
    if w > 0 and cfg.kind != "rvd":
        raise ForecastError(
            f"model.mu_loss_weight applies to kind rvd only (kind {cfg.kind} has no learned mu)"
        )
    for switch in (f.name for f in fields(ModelConfig) if f.type == "bool"):  # strict: "yes" or 1 is a typo
        if not isinstance(getattr(cfg, switch), bool):
            raise ForecastError(f"model.{switch} must be true or false, got {getattr(cfg, switch)!r}")
    if cfg.detach_mu and not (cfg.kind == "rvd" and w > 0):
        raise ForecastError(
            "model.detach_mu needs kind rvd and model.mu_loss_weight > 0 (otherwise nothing trains mu)"
        )
    if cfg.condition_on_mu and cfg.kind == "vd":
        raise ForecastError("model.condition_on_mu needs kind rvd or simple_rvd (kind vd has mu = 0)")
    require_choice(cfg.loss, LOSSES, "unknown model.loss {value}; use one of {choices}")
    return ModelConfig(
        **{
            **raw,
            "denoiser_mults": denoiser,
            "transform_mults": transform,
            "sigma": cfg.sigma if cfg.sigma is None or cfg.auto_sigma else float(cfg.sigma),
            "sigma_momentum": float(m),
            "mu_loss_weight": float(w),
        }
    )


def parse_diffusion_config(config: dict) -> DiffusionConfig:
    raw = _section(config, "diffusion", DiffusionConfig)
    cfg = DiffusionConfig(**raw)
    require_choice(cfg.schedule, SCHEDULES, "unknown diffusion.schedule {value}; use one of {choices}")
    if isinstance(cfg.steps, bool) or not isinstance(cfg.steps, int) or cfg.steps < 2:
        raise ForecastError(f"diffusion.steps must be an integer >= 2, got {cfg.steps!r}")
    require_choice(cfg.prediction, PREDICTIONS, "unknown diffusion.prediction {value}; use one of {choices}")
    require_choice(
        cfg.loss_weighting, LOSS_WEIGHTINGS, "unknown diffusion.loss_weighting {value}; use one of {choices}"
    )
    cfg.build()  # validates clip_x0 and min_snr_gamma
    return cfg
