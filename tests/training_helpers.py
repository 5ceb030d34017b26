"""Test-only helpers for data and training tests: small field stores and a small ``SequenceModel``."""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr
from torch import nn

from forecast.field_store import mark_complete
from forecast.models.base import SequenceModel


def _frame_index_field(n_seq: int, n_time: int, ny: int, nx: int, offset: float) -> np.ndarray:
    """Values that encode (sequence, time) so a test can tell which frames a window holds."""
    s = np.arange(n_seq, dtype=np.float32)[:, None, None, None]
    t = np.arange(n_time, dtype=np.float32)[None, :, None, None]
    y = np.linspace(0, 1, ny, dtype=np.float32)[None, None, :, None]
    x = np.linspace(0, 1, nx, dtype=np.float32)[None, None, None, :]
    return (1000 * s + t + offset + 0.1 * np.sin(6 * x + t) * np.cos(4 * y)).astype(np.float32)


def write_store(path, groups: dict[str, xr.Dataset]) -> str:
    for i, (name, ds) in enumerate(groups.items()):
        encoding = {
            v: {"chunks": tuple(1 if d in ("sequence", "time") else ds.sizes[d] for d in ds[v].dims)}
            for v in ds.data_vars
        }
        ds.to_zarr(str(path), group=name, mode="w" if i == 0 else "a", consolidated=False, encoding=encoding)
    mark_complete(path)
    return str(path)


def karman_like_dataset(n_seq: int = 2, n_time: int = 12, ny: int = 16, nx: int = 24) -> xr.Dataset:
    dims = ("sequence", "time", "y", "x")
    coords = {
        "time": np.arange(n_time),
        "y": np.arange(ny),
        "x": np.arange(nx),
        "reynolds": ("sequence", [100.0, 150.0][:n_seq] + [200.0] * max(0, n_seq - 2)),
    }
    u = _frame_index_field(n_seq, n_time, ny, nx, 0.0)
    return xr.Dataset(
        {
            "u": (dims, u, {"units": "lattice", "long_name": "x velocity"}),
            "v": (dims, -2 * u, {"units": "lattice", "long_name": "y velocity"}),
            "vorticity": (dims, 0.5 * u + 3, {"units": "1/step", "long_name": "vorticity"}),
        },
        coords=coords,
        attrs={"frame_interval": 128},
    )


def karman_like_store(path, n_seq: int = 2, n_time: int = 12, ny: int = 16, nx: int = 24) -> str:
    train = karman_like_dataset(n_seq, n_time, ny, nx)
    return write_store(path, {"train": train, "test": karman_like_dataset(1, n_time, ny, nx)})


def video_dataset(n_seq: int = 3, n_time: int = 10, size: int = 16, seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, size=(n_seq, n_time, 3, size, size), dtype=np.uint8)
    frames[:, :, 0, 0, 0] = (np.arange(n_seq)[:, None] * 50 + np.arange(n_time)[None, :]).astype(np.uint8)
    return xr.Dataset(
        {"frames": (("sequence", "time", "channel", "y", "x"), frames, {"units": "1", "long_name": "RGB"})},
        coords={
            "time": np.arange(n_time),
            "y": np.arange(size),
            "x": np.arange(size),
            "channel": np.arange(3),
        },
    )


def video_store(path, n_seq: int = 3, n_time: int = 10, size: int = 16) -> str:
    return write_store(
        path, {"train": video_dataset(n_seq, n_time, size), "test": video_dataset(1, n_time, size, 1)}
    )


class ConvNextFrame(SequenceModel):
    """A next-frame predictor: one conv net on the last frame, MSE loss with a little input noise.

    The noise makes the loss depend on the global RNG, as a diffusion loss does, so the exact-resume test
    checks that RNG state is restored.
    """

    name = "conv_next_frame"
    stochastic = False

    def __init__(self, n_channels: int, hidden: int = 8, spatial_multiple: int = 1, noise: float = 0.05):
        super().__init__()
        self.spatial_multiple = spatial_multiple
        self.noise = noise
        self.net = nn.Sequential(
            nn.Conv2d(n_channels, hidden, 3, padding=1),
            nn.GroupNorm(1, hidden),
            nn.SiLU(),
            nn.Conv2d(hidden, n_channels, 3, padding=1),
        )

    def initial_state(self, batch, height, width, device):
        return None

    def observe(self, state, frame):
        return frame

    def sample_next(self, state, *, sampler="ddpm", steps=None, eta=0.0, generator=None):
        return state + self.net(state)

    def loss(self, window: torch.Tensor, n_context: int) -> torch.Tensor:
        previous = window[:, n_context - 1 : -1]
        target = window[:, n_context:]
        b, t = previous.shape[:2]
        x = previous.flatten(0, 1)
        x = x + self.noise * torch.randn_like(x)
        prediction = (x + self.net(x)).unflatten(0, (b, t))
        return ((prediction - target) ** 2).mean()


def toy_factory(config: dict, n_channels: int) -> ConvNextFrame:
    model = config.get("model", {})
    return ConvNextFrame(
        n_channels, hidden=model.get("hidden", 8), spatial_multiple=model.get("spatial_multiple", 1)
    )


def toy_config(variables=("u", "v", "vorticity"), **training) -> dict:
    return {
        "model": {"hidden": 8, "spatial_multiple": 4},
        "data": {"variables": list(variables), "context_frames": 2, "future_frames": 3},
        "training": {
            "batch_size": 2,
            "steps": 6,
            "checkpoint_every": 3,
            "log_every": 2,
            "seed": 0,
            **training,
        },
    }
