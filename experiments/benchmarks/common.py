"""Shared pieces of the training benchmarks: a synthetic field store and the model to time.

Run from the repository root, e.g. ``python experiments/benchmarks/bench_loader.py``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
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


def train_step_rate(
    loss_of: Callable, parameters: Iterable, batch, n_context: int, repeats: int, autocast=nullcontext
) -> float:
    """Steps per second of forward (``loss_of(batch, n_context)`` under ``autocast()``), backward and Adam on
    one fixed ``batch`` already on its device: the bare step, the reference of the training benchmarks.
    Two warm-up steps (and any compiling) are not timed; a GPU is synchronised before and after the timing."""
    import torch

    optimizer = torch.optim.Adam(parameters, lr=1e-5)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = loss_of(batch, n_context)
        loss.backward()
        optimizer.step()

    def synchronize() -> None:
        if batch.is_cuda:
            torch.cuda.synchronize(batch.device)

    step(), step()
    synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    synchronize()
    return repeats / (time.perf_counter() - start)
