"""The store writer: the vortex street as a field store (docs/formats.md, "Field store").

Layout: groups ``train`` and ``test``, variables ``u``, ``v``, ``rho``, ``vorticity`` with dims
``(sequence, time, y, x)``, one sequence per Reynolds number, chunks of ``time_chunk`` frames. The skeleton
(shapes, coordinates, attributes) is written first; each run then fills its own region, so runs on different
workers never touch the same chunk. Progress lives in a root array ``frames_written`` (one chunk per run):
``--resume`` skips runs whose count is complete, and the store is marked complete only after the last run.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import dask.array as da
import lbmpy
import numpy as np
import xarray as xr
import zarr
from zarr.codecs import BloscCodec

import forecast
from forecast.errors import ForecastError
from forecast.field_store import COMPLETE_ATTR, GROUPS, cf_attrs, mark_complete
from simulators.karman import truth
from simulators.karman.chunk_files import ChunkFiles
from simulators.karman.config import KarmanConfig
from simulators.karman.noise import sequence_seed
from simulators.karman.run import FIELDS

CONFIG_ATTR = "karman_config"
PROGRESS_ARRAY = "frames_written"
#: the frames' codec: LZ4 after a byte shuffle (Blosc). On the street's float32 fields it writes with 1.3 ms less
#: CPU per 128x128 frame than zarr's default (zstd), reads back in half the time, and its chunks are 16% smaller
#: (docs/results/speed.md, "The simulator on a CPU")
FRAME_COMPRESSORS = (BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),)

VARIABLE_ATTRS = {
    # UDUNITS has no lattice units: lattice quantities are dimensionless ("1") and the long_name says which
    "u": {"long_name": "streamwise velocity (lattice units: cells per lattice step)", "units": "1"},
    "v": {"long_name": "transverse velocity (lattice units: cells per lattice step)", "units": "1"},
    "rho": {"long_name": "density (lattice units)", "units": "1"},
    "vorticity": {"long_name": "vorticity dv/dx - du/dy (lattice units: per lattice step)", "units": "1"},
}
COLLISION_NAMES = {
    "cumulant": "cumulant (Geier et al. 2015)",
    "mrt": "MRT (orthogonal moments)",
    "entropic": "entropic KBC N4 (Karlin et al. 2014)",
    "srt": "SRT (BGK)",
}


def _frame_index(config: KarmanConfig, group: str) -> np.ndarray:
    """The ``time`` values of a group: train frames first, then the test frames of the same runs."""
    if group == "train":
        return np.arange(config.frames)
    return np.arange(config.frames, config.frames_per_run)


def _per_run(values, long_name: str) -> tuple:
    """A coordinate along ``sequence`` (dimensionless, lattice units), one value per run."""
    return ("sequence", np.asarray(values), {"long_name": long_name, "units": "1"})


def _sequence_coords(config: KarmanConfig) -> dict:
    """The per-run coordinates: Reynolds number, inflow, cylinder, viscosity and noise seed."""
    n_seq = len(config.reynolds)
    reynolds = np.asarray(config.reynolds, dtype=np.float64)
    cx, cy = config.cylinder_center
    return {
        "sequence": ("sequence", np.arange(n_seq), {"long_name": "run (one per Reynolds number)"}),
        "reynolds": _per_run(reynolds, "Reynolds number U D / nu"),
        "inflow_velocity": _per_run(
            np.full(n_seq, config.velocity), "inflow speed U (lattice units: cells per lattice step)"
        ),
        "cylinder_diameter": _per_run(
            np.full(n_seq, config.cylinder_diameter), "cylinder diameter D (lattice cells)"
        ),
        "viscosity": _per_run(
            np.array([config.viscosity(r) for r in reynolds]),
            "kinematic viscosity (lattice units: cells^2 per lattice step)",
        ),
        # in the same cell-index coordinates as x and y (cell i spans [i - 1/2, i + 1/2])
        "cylinder_x": _per_run(np.full(n_seq, cx - 0.5), "cylinder centre x (lattice cells)"),
        "cylinder_y": _per_run(np.full(n_seq, cy - 0.5), "cylinder centre y (lattice cells)"),
        "noise_seed": _per_run(
            np.array([sequence_seed(config.noise_seed, i) for i in range(n_seq)], dtype=np.int64),
            "seed of the run's inlet noise (noise.sequence_seed(noise_seed, sequence))",
        ),
    }


def _frame_coords(config: KarmanConfig, frame_index: np.ndarray) -> dict:
    """The time and space coordinates of a group's frames."""
    height, width = config.size
    s = config.scale
    cells = (np.arange(max(height, width)) * s + (s - 1) / 2).astype(np.float64)  # pixel centres, grid cells
    return {
        # a frame count, not a physical time: no units (so no forecast_period downstream), axis T
        "time": ("time", frame_index, {"long_name": "frame index within the run", "axis": "T"}),
        "lattice_step": (
            "time",
            config.spinup_steps + (frame_index + 1) * config.every,
            {"long_name": "lattice time step of the frame (lattice units)", "units": "1"},
        ),
        "y": (
            "y",
            cells[:height],
            {"long_name": "transverse position (lattice cells)", "units": "1", "axis": "Y"},
        ),
        "x": (
            "x",
            cells[:width],
            {"long_name": "streamwise position (lattice cells)", "units": "1", "axis": "X"},
        ),
    }


def _group_attrs(config: KarmanConfig, group: str) -> dict:
    """The group's global attributes: CF header, lattice, boundaries, noise, resolution."""
    return {
        **cf_attrs(
            "2-D flow past a cylinder (von Karman vortex street), lattice Boltzmann",
            f"lbmpy {lbmpy.__version__} lattice Boltzmann simulation (D2Q9, {COLLISION_NAMES[config.collision]}), "
            f"forecast {forecast.__version__}",
            f"forecast simulate karman (simulators.karman.generate) with options {config.to_json()}",
        ),
        "frame_interval": config.every,
        "stencil": "D2Q9",
        "collision": COLLISION_NAMES[config.collision],
        "lbmpy_version": lbmpy.__version__,
        "spinup_steps": config.spinup_steps,
        "grid_shape": [config.grid_height, config.grid_length],
        "downsampling": config.scale,
        "boundaries": "inflow UBB (uniform U), free-slip side walls, extrapolation outflow, no-slip cylinder",
        "group": group,
        **noise_attrs(config),
        "resolution_warning": config.resolution_issue() or "",
    }


def skeleton(config: KarmanConfig, group: str) -> xr.Dataset:
    """The lazily zero-filled Dataset of one group, with every coordinate and attribute."""
    height, width = config.size
    frame_index = _frame_index(config, group)
    shape = (len(config.reynolds), frame_index.size, height, width)
    chunks = (1, config.time_chunk, height, width)
    data_vars = {
        name: (
            ("sequence", "time", "y", "x"),
            da.zeros(shape, chunks=chunks, dtype=np.float32),
            VARIABLE_ATTRS[name],
        )
        for name in FIELDS
    }
    coords = {**_sequence_coords(config), **_frame_coords(config, frame_index)}
    return xr.Dataset(data_vars, coords=coords, attrs=_group_attrs(config, group))


def noise_attrs(config: KarmanConfig) -> dict:
    """The inlet-noise options as store attributes (the lattice-step values are what the run used)."""
    return {
        "inflow_noise": config.inflow_noise,
        "inflow_noise_description": (
            "std of each inflow velocity component relative to U: Ornstein-Uhlenbeck in time, Gaussian "
            "correlation across the inlet (0: uniform inflow, the deterministic street)"
        ),
        "noise_time": config.noise_time,
        "noise_time_lattice_steps": config.noise_time * config.convective_time,
        "noise_length": config.noise_length,
        "noise_length_cells": config.noise_length * config.cylinder_diameter,
        "noise_seed": config.noise_seed,
    }


def create_store(path: str | os.PathLike, config: KarmanConfig) -> None:
    """Write the skeleton of a new store, marked incomplete, with no run finished."""
    path = Path(path)
    root = zarr.open_group(str(path), mode="w")
    root.attrs[COMPLETE_ATTR] = False
    root.attrs[CONFIG_ATTR] = config.to_json()
    n_seq = len(config.reynolds)
    root.create_array(
        PROGRESS_ARRAY,
        shape=(n_seq,),
        chunks=(1,),
        dtype="int64",
        fill_value=0,
        dimension_names=("sequence",),
        attributes={"long_name": "frames stored so far per run (generation progress)"},
    )
    root.attrs.update(skeleton(config, "train").attrs | {"group": "/"})
    for group in GROUPS:
        encoding = {
            name: {"chunks": (1, config.time_chunk, *config.size), "compressors": FRAME_COMPRESSORS}
            for name in FIELDS
        }
        skeleton(config, group).to_zarr(
            str(path), group=group, mode="a", compute=False, consolidated=False, encoding=encoding
        )
    if config.truth_members:
        template = truth.skeleton(config, skeleton(config, "test"))
        encoding = {
            name: {"chunks": template[name].data.chunksize, "compressors": FRAME_COMPRESSORS}
            for name in FIELDS
        }
        template.to_zarr(
            str(path),
            group=truth.PARTIAL_GROUP,
            mode="a",
            compute=False,
            consolidated=False,
            encoding=encoding,
        )
    mark_complete(path, False)


def check_resumable(path: str | os.PathLike, config: KarmanConfig) -> None:
    """Refuse to resume a store that was started with other options."""
    root = zarr.open_group(str(path), mode="r")
    stored = root.attrs.get(CONFIG_ATTR)
    if stored is None or PROGRESS_ARRAY not in root:
        raise ForecastError(f"{path} is not a store written by `forecast simulate karman`; cannot resume it")
    old, new = KarmanConfig.content_options(stored), json.loads(config.to_json())
    if old != new:
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise ForecastError(
            f"cannot resume {path}: it was started with different options ({', '.join(changed)}); "
            "repeat the original options or start a new store"
        )


def frames_written(path: str | os.PathLike) -> np.ndarray:
    """Frames stored so far per run (a run is finished when its count equals frames + test_frames)."""
    return zarr.open_array(str(Path(path) / PROGRESS_ARRAY), mode="r")[:]


def set_frames_written(path: str | os.PathLike, index: int, count: int) -> None:
    zarr.open_array(str(Path(path) / PROGRESS_ARRAY), mode="r+")[index] = count


def open_frames(path: str | os.PathLike, group: str) -> dict[str, ChunkFiles | zarr.Array]:
    """The frame variables of ``group``, open for writing whole chunks: as ``ChunkFiles`` where they write
    zarr's own files (the store's layout), else as zarr arrays."""
    arrays = {name: zarr.open_array(str(Path(path) / group / name), mode="r+") for name in FIELDS}
    return {name: ChunkFiles(a) if ChunkFiles.supports(a) else a for name, a in arrays.items()}


def write_frames(
    arrays: dict[str, ChunkFiles | zarr.Array], index: int, start: int, frames: dict[str, np.ndarray]
) -> None:
    """Write a batch ``{name: (n, height, width)}`` of run ``index`` at frame ``start`` into ``arrays``
    (``open_frames``; xarray's region writes cost 1 ms more CPU per 128x128 frame than zarr's, and zarr's
    1.4 ms more than ``ChunkFiles``)."""
    for name in FIELDS:
        target = arrays[name]
        if isinstance(target, ChunkFiles):
            target.write(index, start, frames[name])
        else:
            target[index, start : start + frames[name].shape[0]] = frames[name]


class RunWriter:
    """Buffers the frames of one run and writes them to the right group in batches, in the background.

    A batch is compressed and written by a thread while the lattice computes the next frames (the zarr codecs
    and file writes release the GIL that the kernels hold); at most one batch is in flight, so memory stays
    bounded and the store's ``frames_written`` only ever counts frames that are on disk. ``flush`` writes the
    rest and waits: after it, the run's frames are stored (a write's error is raised there or at the next
    batch)."""

    def __init__(self, path: str | os.PathLike, config: KarmanConfig, index: int):
        self.path, self.config, self.index = path, config, index
        self.count = 0  # frames received
        self._buffer: list[dict[str, np.ndarray]] = []
        self._buffer_start = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"karman-writer-{index}")
        self._pending: Future | None = None
        # per group, opened at its first batch
        self._arrays: dict[str, dict[str, ChunkFiles | zarr.Array]] = {}

    def _group_of(self, frame: int) -> tuple[str, int]:
        if frame < self.config.frames:
            return "train", frame
        return "test", frame - self.config.frames

    def add(self, frame: dict[str, np.ndarray]) -> None:
        if not self._buffer:
            self._buffer_start = self.count
        self._buffer.append(frame)
        self.count += 1
        group_end = self.count == self.config.frames or self.count == self.config.frames_per_run
        if len(self._buffer) >= self.config.write_batch or group_end:
            self._submit()

    def _submit(self) -> None:
        """Hand the buffered frames to the writer thread (after the batch before them is written)."""
        if not self._buffer:
            return
        self._wait()
        group, start = self._group_of(self._buffer_start)
        stacked = {name: np.stack([f[name] for f in self._buffer]) for name in FIELDS}
        self._buffer = []
        self._pending = self._pool.submit(self._write, group, start, stacked, self.count)

    def _write(self, group: str, start: int, stacked: dict[str, np.ndarray], count: int) -> None:
        if group not in self._arrays:
            self._arrays[group] = open_frames(self.path, group)
        write_frames(self._arrays[group], self.index, start, stacked)
        set_frames_written(self.path, self.index, count)

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()  # re-raises the write's error

    def flush(self) -> None:
        """Write what is buffered and wait until every frame received is stored."""
        self._submit()
        self._wait()

    def close(self) -> None:
        """Let the batch in flight finish (its frames are counted as written) and stop the writer thread."""
        self._pool.shutdown(wait=True)
