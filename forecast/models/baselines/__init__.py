"""Baselines of the paper's comparison, behind the same ``SequenceModel`` interface as RVD.

One module each:

- ``persistence``: the last observed frame, as a one-member forecast (``persistence``) or as an ensemble inflated
  by the training data's tendency spread per lead time (``persistence_inflated``);
- ``climatology``: members drawn from a bank of training frames;
- ``convgru``: RVD's transform module alone (the recurrent U-Net), a deterministic predictor trained with MSE;
- ``svg_lp``: SVG-LP (Denton and Fergus 2018) with ConvLSTMs, the paper's sequential-VAE baseline;
- ``ivrnn``: the improved conditional VRNN (Castrejon et al. 2019), a VRNN with a hierarchy of latents;
- ``slamp``: SLAMP (Akan et al. 2021), stochastic latent appearance and motion.

``statistics`` holds what the parameter-free baselines share: buffers fitted from training windows
(``fit_statistics``), saved in the checkpoint like weights. ``build_baseline`` is called by
``forecast.models.build_model`` for every ``model.kind`` in ``BASELINE_KINDS`` (``forecast.models.kinds``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from forecast.errors import ForecastError
from forecast.models.base import SequenceModel
from forecast.models.kinds import BASELINE_KINDS, MODEL_KINDS


def parse_options(config: dict, cls: type) -> Any:
    """The ``model`` section as the dataclass ``cls`` (unknown keys are errors, lists become tuples)."""
    section = config.get("model") or {}
    if not isinstance(section, dict):
        raise ForecastError("config section 'model' must be a mapping")
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(section) - set(allowed))
    if unknown:
        raise ForecastError(
            f"unknown key(s) {unknown} in config section 'model' for kind {section.get('kind')!r}; "
            f"allowed: {allowed}"
        )
    options = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in section.items()})
    check = getattr(options, "check", None)
    if check is not None:
        check()
    return options


def build_baseline(config: dict, n_channels: int) -> SequenceModel:
    """The baseline that ``config["model"]["kind"]`` names, for frames of ``n_channels``."""
    import importlib

    kind = (config.get("model") or {}).get("kind")
    if kind not in BASELINE_KINDS:
        raise ForecastError(f"unknown baseline kind {kind!r}; use one of {', '.join(BASELINE_KINDS)}")
    entry = MODEL_KINDS[kind]
    module = importlib.import_module(f"forecast.models.{entry.module}")
    options = parse_options(config, getattr(module, entry.options))
    return getattr(module, entry.cls)(n_channels, options)


__all__ = ["BASELINE_KINDS", "build_baseline", "parse_options"]
