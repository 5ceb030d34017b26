"""Training windows: runs of consecutive frames read lazily from a field store.

A *window* is ``n_frames`` consecutive frames of one sequence, identified by a ``(sequence, start)`` pair.
``WindowDataset`` maps a window index to a normalised float32 tensor ``(time, channel, y, x)``; it reads only
those frames (``isel`` on a lazily opened zarr group, then ``.values``), never the whole store.

``WindowSampler`` decides which windows training sees, as an endless stream of batches: epoch ``e`` is a
permutation of all windows drawn from ``seed + e``, split between the processes of a distributed run the way
``torch.utils.data.DistributedSampler`` does (rank ``r`` takes every ``world_size``-th index). Its only state
is ``position``, the number of batches already consumed by this process, so a resumed run continues with
exactly the windows the interrupted one would have seen next.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from torch.utils.data import Dataset, Sampler

from forecast.data.channels import ChannelLayout
from forecast.errors import ForecastError
from forecast.field_store import TRAIN_GROUP, open_field_store, reading


def open_lazy(path: str | os.PathLike, group: str, validate: bool = True) -> xr.Dataset:
    """Open a store group without dask and without caching: indexing reads just the zarr chunks it touches.

    Training reads one small window at a time, where dask's task-graph overhead would dominate; ``chunks=None``
    gives xarray's lazily indexed backend arrays instead, and ``cache=False`` keeps xarray from holding on to
    what was read (a long run would otherwise accumulate the store in memory).
    """
    if validate:
        open_field_store(path, group)  # completeness, group and dims (cheap: metadata only)
    return xr.open_dataset(
        str(path), engine="zarr", group=group, consolidated=False, chunks=None, cache=False
    )


class WindowDataset(Dataset):
    """Windows of ``n_frames`` consecutive frames over every sequence of one store group.

    Index ``i`` is window ``(sequence, start) = divmod(i, n_starts)``, with ``n_starts = n_time - n_frames + 1``.
    The store is opened lazily in each process that reads (DataLoader workers included), so the dataset
    pickles cheaply.
    """

    def __init__(
        self, path: str | os.PathLike, layout: ChannelLayout, n_frames: int, group: str = TRAIN_GROUP
    ):
        self.path = Path(path)
        self.group = group
        self.layout = layout
        self.n_frames = int(n_frames)
        ds = open_lazy(self.path, group)
        layout.check_compatible(ds, f"{self.path}[{group}]")
        self.n_sequences = int(ds.sizes["sequence"])
        self.n_time = int(ds.sizes["time"])
        if self.n_frames < 1:
            raise ForecastError(f"a window needs at least one frame, got {self.n_frames}")
        if self.n_time < self.n_frames:
            raise ForecastError(
                f"{self.path}[{group}] has {self.n_time} frames per sequence, too few for a window of "
                f"{self.n_frames} (context + future frames)"
            )
        self.n_starts = self.n_time - self.n_frames + 1
        self._ds: xr.Dataset | None = None

    def __len__(self) -> int:
        return self.n_sequences * self.n_starts

    def window(self, index: int) -> tuple[int, int]:
        """The ``(sequence, start)`` pair of window ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} out of range 0..{len(self) - 1}")
        sequence, start = divmod(int(index), self.n_starts)
        return sequence, start

    def _dataset(self) -> xr.Dataset:
        if self._ds is None:
            self._ds = open_lazy(self.path, self.group, validate=False)[list(self.layout.variables)]
        return self._ds

    def __getitem__(self, index: int) -> torch.Tensor:
        sequence, start = self.window(index)
        # one read per variable (all its channels at once), then stacking and normalising in memory
        window = self._dataset().isel(sequence=sequence, time=slice(start, start + self.n_frames))
        loaded = {}
        for name, da in window.data_vars.items():
            with reading(self.path, name):  # a damaged chunk: one line naming the store and the variable
                loaded[name] = da.load()
        frames = window.assign(loaded)
        return torch.from_numpy(self.layout.stack(frames))

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_ds"] = None  # each worker opens its own handle
        return state


class WindowSampler(Sampler[list[int]]):
    """An endless, seeded, resumable stream of batches of window indices for one process.

    Parameters
    ----------
    n_windows: number of windows in the dataset.
    batch_size: windows per batch (per process).
    seed: the stream is a function of ``seed`` alone, so two runs with the same seed see the same windows.
    rank, world_size: this process's share of each epoch (as ``DistributedSampler``); the epoch is padded by
        wrapping around so every rank gets the same number of windows.
    position: number of batches this process has already consumed (where a resumed run continues).
    """

    def __init__(
        self,
        n_windows: int,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        position: int = 0,
    ):
        if n_windows < 1:
            raise ForecastError("the dataset has no windows")
        if batch_size < 1:
            raise ForecastError(f"batch_size must be at least 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
        self.n_windows = int(n_windows)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.position = int(position)
        # windows per rank and epoch (padded as DistributedSampler does)
        self.per_rank = -(-self.n_windows // self.world_size)

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """This rank's window indices for ``epoch``, in order."""
        generator = torch.Generator().manual_seed(self.seed + epoch)
        order = torch.randperm(self.n_windows, generator=generator).numpy()
        total = self.per_rank * self.world_size
        if total > self.n_windows:
            order = np.resize(order, total)  # wrap around to pad
        return order[self.rank : total : self.world_size]

    def window_stream(self, start: int = 0) -> Iterator[int]:
        """Window indices from flat position ``start`` (in windows) on, crossing epochs forever."""
        epoch, offset = divmod(start, self.per_rank)
        while True:
            indices = self.epoch_indices(epoch)
            yield from (int(i) for i in indices[offset:])
            epoch, offset = epoch + 1, 0

    def __iter__(self) -> Iterator[list[int]]:
        stream = self.window_stream(self.position * self.batch_size)
        while True:
            yield [next(stream) for _ in range(self.batch_size)]

    def batch(self, position: int) -> list[int]:
        """The window indices of batch number ``position`` (for inspection and tests)."""
        stream = self.window_stream(position * self.batch_size)
        return [next(stream) for _ in range(self.batch_size)]

    def __len__(self) -> int:  # endless; DataLoader only needs this for len(loader)
        raise TypeError("WindowSampler is endless")

    def state_dict(self) -> dict:
        return {
            "position": self.position,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "world_size": self.world_size,
            "n_windows": self.n_windows,
        }
