"""Shared pieces of the training benchmarks: a synthetic field store and the model to time.

Run from the repository root, e.g. ``python experiments/benchmarks/bench_loader.py``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from forecast.field_store import mark_complete  # noqa: E402
from forecast.training.config import load_config, resolve_config  # noqa: E402


def load(name: str, model: str = "config") -> dict:
    config = load_config(name)  # a shipped config name (tiny, paper_64) or a path
    if model == "toy":
        config.setdefault("model", {})  # the toy model needs no model section
    return resolve_config(config)


def synthetic_store(
    path: str | os.PathLike, variables: list[str], size: int, n_seq: int = 4, n_time: int = 40
) -> str:
    """A complete field store with random fields, one chunk per frame (as the simulators write them)."""
    rng = np.random.default_rng(0)
    groups = {}
    for group in ("train", "test"):
        data = {}
        for var in variables:
            if var == "frames":
                values = rng.integers(0, 256, (n_seq, n_time, 3, size, size), dtype=np.uint8)
                data[var] = (("sequence", "time", "channel", "y", "x"), values, {"units": "1"})
            else:
                values = rng.standard_normal((n_seq, n_time, size, size), dtype=np.float32)
                data[var] = (("sequence", "time", "y", "x"), values, {"units": "1"})
        groups[group] = xr.Dataset(
            data, coords={"time": np.arange(n_time), "y": np.arange(size), "x": np.arange(size)}
        )
    for i, (group, ds) in enumerate(groups.items()):
        encoding = {
            v: {"chunks": tuple(1 if d in ("sequence", "time") else ds.sizes[d] for d in ds[v].dims)}
            for v in ds
        }
        ds.to_zarr(str(path), group=group, mode="w" if i == 0 else "a", consolidated=False, encoding=encoding)
    mark_complete(path)
    return str(path)


def model_factory(kind: str):
    """``config``: the real model (forecast.models.build_model); ``toy``: the tests' conv next-frame model."""
    if kind == "toy":
        sys.path.insert(0, str(ROOT / "tests"))
        from training_helpers import toy_factory

        return lambda config, n_channels: toy_factory({"model": {"hidden": 32}}, n_channels)
    try:
        from forecast.models import build_model
    except ImportError:
        raise SystemExit(
            "forecast.models.build_model is not available in this checkout; use --model toy"
        ) from None
    return build_model


def timed(fn, repeats: int) -> float:
    """Seconds per call of ``fn`` (after one warm-up call)."""
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats
