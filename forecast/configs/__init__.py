"""The shipped configs (YAML), installed with the package: name one (``tiny``) or give a path to any YAML file.

``tiny`` trains on a CPU in minutes, ``demo`` is the demo's RVD, ``paper_64`` and ``paper_128`` are table A1 of
the paper, and there is one per ablation (``vd``, ``simple_rvd``) and baseline (``convgru``, ``svg_lp``,
``persistence``, ``persistence_inflated``, ``climatology``).
"""

from __future__ import annotations

import os
from pathlib import Path

from forecast.errors import ForecastError

CONFIG_DIR = Path(__file__).resolve().parent


def config_names() -> list[str]:
    """The names of the shipped configs, sorted."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def config_path(name_or_path: str | os.PathLike) -> Path:
    """The file a ``--config`` value means: an existing path as given, else the shipped config of that name.

    A name may carry the ``.yaml`` suffix (``tiny`` and ``tiny.yaml`` are the same). A path to an existing file
    wins over a shipped name, so a local ``tiny.yaml`` is read rather than the packaged one.
    """
    path = Path(name_or_path)
    if path.exists():
        return path
    text = str(name_or_path)
    if os.sep not in text and "/" not in text:
        shipped = CONFIG_DIR / (text if text.endswith(".yaml") else f"{text}.yaml")
        if shipped.is_file():
            return shipped
    raise ForecastError(
        f"cannot read config {text}: no such file, and no shipped config of that name "
        f"(shipped: {', '.join(config_names())})"
    )


__all__ = ["CONFIG_DIR", "config_names", "config_path"]
