"""Stream sequences into a field store, one sequence at a time, resumably.

An importer first *enumerates* its sources (cheap: file names, frame ranges, record offsets) into a
:class:`StorePlan` (how many sequences each group gets, their per-sequence coordinates, the frame shape), then
*decodes* one sequence at a time and hands it to :class:`FieldStoreWriter`. The writer lays out the whole store
up front (metadata only, no data), marks it incomplete, writes each sequence into its slot and records how many
are done after every one, so ``--resume`` continues where an interrupted import stopped. The store is marked
complete (``forecast.field_store.mark_complete``) only when every group is written; readers refuse it until then.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.array as dsa
import numpy as np
import xarray as xr
import zarr
from tqdm.auto import tqdm

from forecast.claims import claim_output
from forecast.errors import ForecastError
from forecast.field_store import (
    COMPLETE_ATTR,
    GROUPS,
    PARTIAL_SUFFIX,
    TRUTH_GROUP,
    cf_attrs,
    is_complete,
    mark_complete,
    publish_group,
)
from forecast.io_errors import writing

WRITTEN_ATTR = "sequences_written"
PLAN_ATTR = "import_plan"
# Aim for chunks of about this many bytes along `time` (whole frames in y/x, as docs/formats.md asks).
TARGET_CHUNK_BYTES = 1 << 20
MAX_FRAMES_PER_CHUNK = 8


@dataclass
class VariableSpec:
    """One data variable of the store: dtype, the shape of one frame (``[channel,] y, x``) and CF attributes."""

    dtype: str
    frame_shape: tuple[int, ...]
    attrs: dict = field(default_factory=dict)

    @property
    def dims(self) -> tuple[str, ...]:
        return ("sequence", "time", *(("channel",) if len(self.frame_shape) == 3 else ()), "y", "x")


@dataclass
class StorePlan:
    """Everything needed to lay out a store before any frame is decoded."""

    variables: dict[str, VariableSpec]
    time_length: int
    # group -> {coordinate name -> 1-D array along `sequence`}; the length of any coordinate is the group size
    sequence_coords: dict[str, dict[str, np.ndarray]]
    attrs: dict = field(default_factory=dict)
    coords: dict[str, xr.DataArray] = field(default_factory=dict)  # time / y / x / channel coordinates
    # What identifies the import (kind and options): a resumed import must match it.
    fingerprint: dict = field(default_factory=dict)

    def group_size(self, group: str) -> int:
        coords = self.sequence_coords.get(group, {})
        if not coords:
            return 0
        return len(next(iter(coords.values())))


def frames_variable(frame_shape: tuple[int, ...], long_name: str = "video frames") -> dict[str, VariableSpec]:
    """The natural-video variable of docs/formats.md: ``frames``, uint8, 0..255."""
    return {
        "frames": VariableSpec(
            "uint8", tuple(frame_shape), {"long_name": long_name, "units": "1", "valid_range": [0, 255]}
        )
    }


def pixel_coords(length: int, height: int, width: int | None = None, channels: bool = False) -> dict:
    """Coordinates of a video store: frame index along `time`, pixel indices along `y`/`x`, RGB names."""
    width = height if width is None else width
    coords = {
        # counts, not physical quantities: dimensionless (UDUNITS has no pixel), with the axis they are
        "time": ("time", np.arange(length), {"long_name": "frame index", "axis": "T"}),
        "y": ("y", np.arange(height), {"units": "1", "long_name": "row (pixel index)", "axis": "Y"}),
        "x": ("x", np.arange(width), {"units": "1", "long_name": "column (pixel index)", "axis": "X"}),
    }
    if channels:
        coords["channel"] = ("channel", np.array(["red", "green", "blue"]), {"long_name": "colour channel"})
    return coords


def window_coords(
    windows: Mapping[str, Sequence[Mapping]], dtypes: Mapping[str, Any]
) -> dict[str, dict[str, np.ndarray]]:
    """Per group, one coordinate along `sequence` per name in ``dtypes``: that entry of each window, in order
    (dtype None: numpy's choice)."""
    return {
        group: {name: np.array([w[name] for w in items], dtype) for name, dtype in dtypes.items()}
        for group, items in windows.items()
    }


def video_plan(
    kind: str,
    long_name: str,
    frame_shape: tuple[int, ...],
    length: int,
    sequence_coords: dict[str, dict[str, np.ndarray]],
    attrs: dict,
    fingerprint: dict,
) -> StorePlan:
    """The plan of a natural-video store of ``kind``: ``frames`` ([channel,] y, x) of ``length`` frames per
    sequence, pixel coordinates, ``source`` = ``kind`` before ``attrs`` and ``kind`` and ``length`` in the
    fingerprint."""
    return StorePlan(
        variables=frames_variable(frame_shape, long_name),
        time_length=length,
        sequence_coords=sequence_coords,
        attrs={"source": kind, **attrs},
        coords=pixel_coords(length, frame_shape[-2], frame_shape[-1], channels=len(frame_shape) == 3),
        fingerprint={"kind": kind, "length": length, **fingerprint},
    )


def _global_attrs(plan: StorePlan) -> dict:
    """The plan's attributes over the CF global attributes (Conventions, title, source, history)."""
    source = str(plan.attrs.get("source", "forecast data import"))
    history = f"forecast data import with {json.dumps(plan.fingerprint, sort_keys=True, default=str)}"
    return {**cf_attrs(f"{source} field store", source, history), **plan.attrs}


def _time_chunk(spec: VariableSpec, time_length: int) -> int:
    frame_bytes = int(np.prod(spec.frame_shape)) * np.dtype(spec.dtype).itemsize
    return int(max(1, min(time_length, MAX_FRAMES_PER_CHUNK, TARGET_CHUNK_BYTES // max(frame_bytes, 1))))


def _template(plan: StorePlan, group: str) -> xr.Dataset:
    n = plan.group_size(group)
    data_vars = {}
    for name, spec in plan.variables.items():
        shape = (n, plan.time_length, *spec.frame_shape)
        chunks = (1, _time_chunk(spec, plan.time_length), *spec.frame_shape)
        data = dsa.zeros(shape, dtype=spec.dtype, chunks=chunks)
        data_vars[name] = xr.DataArray(data, dims=spec.dims, attrs=dict(spec.attrs))
    coords = {
        name: ("sequence", np.asarray(values), {"long_name": name.replace("_", " ")})
        for name, values in plan.sequence_coords[group].items()
    }
    coords.update(plan.coords)
    ds = xr.Dataset(data_vars, coords=coords, attrs=_global_attrs(plan))
    for name in data_vars:
        ds[name].encoding["chunks"] = data_vars[name].data.chunksize
    return ds


@contextlib.contextmanager
def _quiet_zarr() -> Iterator[None]:
    """Fixed-width strings (action names, file names) have no final zarr-v3 spec yet; the warning is noise."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have a Zarr V3 specification.*")
        yield


class FieldStoreWriter:
    """Create (or resume) a field store from a :class:`StorePlan` and write it sequence by sequence."""

    def __init__(
        self, path: str | os.PathLike, plan: StorePlan, resume: bool = False, overwrite: bool = False
    ):
        self.path = Path(path)
        self.plan = plan
        fingerprint = json.dumps(plan.fingerprint, sort_keys=True, default=str)
        if self.path.exists():
            if resume:
                self._check_resumable(fingerprint)
                return
            if not overwrite:
                raise ForecastError(
                    f"{self.path} already exists; pass --resume to finish an interrupted import or "
                    "--overwrite to replace it"
                )
            shutil.rmtree(self.path) if self.path.is_dir() else self.path.unlink()
        self._create(fingerprint)

    def _create(self, fingerprint: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lay_out(fingerprint)
        except BaseException:  # a half-made layout holds no finished work: leave nothing
            shutil.rmtree(self.path, ignore_errors=True)
            raise

    def _lay_out(self, fingerprint: str) -> None:
        with _quiet_zarr():
            root = zarr.open_group(str(self.path), mode="w")
            root.attrs[COMPLETE_ATTR] = False
            root.attrs[PLAN_ATTR] = fingerprint
            root.attrs.update(_global_attrs(self.plan))
            for group in GROUPS:
                _template(self.plan, group).to_zarr(
                    str(self.path), group=group, mode="w", compute=False, consolidated=False
                )
                zarr.open_group(str(self.path), mode="r+", path=group).attrs[WRITTEN_ATTR] = 0

    def _check_resumable(self, fingerprint: str) -> None:
        try:
            root = zarr.open_group(str(self.path), mode="r")
        except Exception as exc:
            raise ForecastError(f"cannot resume {self.path}: not a zarr store ({exc})") from None
        previous = root.attrs.get(PLAN_ATTR)
        if previous is None:
            raise ForecastError(f"cannot resume {self.path}: it was not written by `forecast data import`")
        if previous != fingerprint:
            raise ForecastError(
                f"cannot resume {self.path}: it was started with different sources or options "
                f"({previous}); rerun with the same ones or with --overwrite"
            )

    def written(self, group: str) -> int:
        return int(zarr.open_group(str(self.path), mode="r", path=group).attrs.get(WRITTEN_ATTR, 0))

    @property
    def complete(self) -> bool:
        return is_complete(self.path)

    def write_group(
        self, group: str, sequences: Iterable[Mapping[str, np.ndarray]], progress: bool = True
    ) -> None:
        """Write the remaining sequences of ``group``.

        ``sequences`` yields, for every sequence index from ``self.written(group)`` on, either a mapping from
        variable name to an array of shape ``(time, *frame_shape)``, or (for long sequences) an iterator of
        ``(time_slice, mapping)`` blocks covering the sequence's frames. The importer starts its iterator at
        ``written(group)`` so that finished sequences are not decoded again.
        """
        n = self.plan.group_size(group)
        start = self.written(group)
        zgroup = zarr.open_group(str(self.path), mode="r+", path=group)
        arrays = {name: zgroup[name] for name in self.plan.variables}
        bar = tqdm(total=n, initial=start, desc=f"{group}", unit="seq", disable=not progress or n == 0)
        index = start
        for item in sequences:
            if index >= n:
                raise ForecastError(f"importer produced more than the {n} planned {group} sequences")
            blocks = item if isinstance(item, Iterator) else iter([(slice(0, self.plan.time_length), item)])
            for time_slice, block in blocks:
                for name, spec in self.plan.variables.items():
                    values = np.asarray(block[name])
                    expected = (time_slice.stop - time_slice.start, *spec.frame_shape)
                    if values.shape != expected:
                        raise ForecastError(
                            f"{group} sequence {index}: {name} has shape {values.shape}, expected {expected}"
                        )
                    arrays[name][index, time_slice] = values.astype(spec.dtype, copy=False)
            index += 1
            zgroup.attrs[WRITTEN_ATTR] = index  # after the data: a crash mid-sequence rewrites that sequence
            bar.update(1)
        bar.close()
        if index != n:
            raise ForecastError(f"importer produced {index} of the {n} planned {group} sequences")

    def write_whole_group(self, group: str, ds: xr.Dataset) -> None:
        """Write ``ds`` as ``group`` in one go, under a temporary name renamed when complete (e.g. ``truth``)."""
        with _quiet_zarr():
            ds.to_zarr(str(self.path), group=f"{group}{PARTIAL_SUFFIX}", mode="w", consolidated=False)
        publish_group(self.path, group)

    def finish(self) -> None:
        for group in GROUPS:
            if self.written(group) != self.plan.group_size(group):
                raise ForecastError(f"{self.path}: group {group} is not fully written")
        mark_complete(self.path, True)


def run_import(
    out: str | os.PathLike,
    plan: StorePlan,
    sequences_for: callable,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    truth: Callable[[], xr.Dataset] | None = None,
) -> Path:
    """Lay out ``out`` from ``plan`` and fill it: ``sequences_for(group, start)`` yields that group's sequences
    from index ``start`` on; ``truth()``, if given, makes the ``truth`` group, written last. Returns the
    store's path. The store is claimed (``forecast.claims``) while it is written; a failed write (full disk, no
    permission) is one line and keeps the finished sequences for ``resume``."""
    with claim_output(out), writing(out, "; the finished sequences are kept: rerun with --resume"):
        writer = FieldStoreWriter(out, plan, resume=resume, overwrite=overwrite)
        if writer.complete:
            return writer.path
        for group in GROUPS:
            start = writer.written(group)
            if start < plan.group_size(group):
                writer.write_group(group, sequences_for(group, start), progress=progress)
        if truth is not None:
            writer.write_whole_group(TRUTH_GROUP, truth())
        writer.finish()
        return writer.path
