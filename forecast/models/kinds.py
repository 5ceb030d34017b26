"""The model kinds: every value ``model.kind`` may take, and where its model lives. The one registry.

RVD's three kinds (``rvd``, ``vd``, ``simple_rvd``) are one model with a switch, configured by the ``model`` and
``diffusion`` sections (``forecast.models.config``); each baseline has its own options dataclass in its module
(``forecast.models.baselines``). ``forecast.models.build_model`` dispatches on this table; config checks and
error messages list its keys.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelKind:
    module: str  # under forecast.models
    cls: str
    options: str | None = None  # the options dataclass of a baseline (None: RVD's ModelConfig)

    @property
    def diffusion(self) -> bool:
        return self.options is None


MODEL_KINDS: dict[str, ModelKind] = {
    "rvd": ModelKind("rvd", "RVD"),
    "vd": ModelKind("rvd", "RVD"),
    "simple_rvd": ModelKind("rvd", "RVD"),
    "persistence": ModelKind("baselines.persistence", "Persistence", "PersistenceConfig"),
    "persistence_inflated": ModelKind("baselines.persistence", "Persistence", "PersistenceConfig"),
    "climatology": ModelKind("baselines.climatology", "Climatology", "ClimatologyConfig"),
    "convgru": ModelKind("baselines.convgru", "ConvGRUPredictor", "ConvGRUConfig"),
    "svg_lp": ModelKind("baselines.svg_lp", "SVGLP", "SVGLPConfig"),
    "ivrnn": ModelKind("baselines.ivrnn", "IVRNN", "IVRNNConfig"),
    "slamp": ModelKind("baselines.slamp", "SLAMP", "SLAMPConfig"),
    "dvd_gan": ModelKind("baselines.dvd_gan", "DVDGAN", "DVDGANConfig"),
    "retrogan": ModelKind("baselines.retrogan", "RetroGAN", "RetroGANConfig"),
    "futuregan": ModelKind("baselines.futuregan", "FutureGAN", "FutureGANConfig"),
}
#: the kinds of the diffusion model (RVD and its switches), and the baselines'
DIFFUSION_KINDS = tuple(k for k, v in MODEL_KINDS.items() if v.diffusion)
BASELINE_KINDS = tuple(k for k, v in MODEL_KINDS.items() if not v.diffusion)
