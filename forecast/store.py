"""Field stores: the zarr layout that simulators and importers write and training reads.

See ``CONVENTIONS.md`` ("Field store"). A store holds the groups ``train`` and ``test``; every data variable
has dims ``(sequence, time, y, x)`` or ``(sequence, time, channel, y, x)``. A writer marks the store complete
only when every group is fully written (root attribute ``complete``); readers refuse an incomplete store, so an
interrupted generation is never mistaken for a dataset.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import xarray as xr
import zarr

from forecast.errors import ForecastError

GROUPS = ("train", "test")
TRUTH_GROUP = "truth"  # optional: perfect-model truth ensembles (CONVENTIONS.md, "Field store")
PARTIAL_SUFFIX = "_partial"  # a group being written; renamed to its final name once complete
FIELD_DIMS = ("sequence", "time", "y", "x")
CHANNEL_FIELD_DIMS = ("sequence", "time", "channel", "y", "x")
COMPLETE_ATTR = "complete"


def _root(path: str | os.PathLike, mode: str = "r") -> zarr.Group:
    path = Path(path)
    if not path.exists():
        raise ForecastError(f"no field store at {path}")
    try:
        return zarr.open_group(str(path), mode=mode)
    except Exception as exc:  # zarr raises several types for "not a store"
        raise ForecastError(f"{path} is not a zarr field store ({type(exc).__name__}: {exc})") from None


def mark_complete(path: str | os.PathLike, complete: bool = True) -> None:
    """Set the store's completeness flag (writers set False first and True last)."""
    _root(path, mode="r+").attrs[COMPLETE_ATTR] = bool(complete)


def publish_group(path: str | os.PathLike, group: str) -> None:
    """Rename the finished group ``group + PARTIAL_SUFFIX`` to ``group`` (one rename, so a reader finds the
    group complete or not at all). A no-op when there is no partial group."""
    path = Path(path)
    partial = path / f"{group}{PARTIAL_SUFFIX}"
    if partial.exists():
        if (path / group).exists():
            shutil.rmtree(path / group)
        os.replace(partial, path / group)


def is_complete(path: str | os.PathLike) -> bool:
    return bool(_root(path).attrs.get(COMPLETE_ATTR, False))


def validate_field_dataset(ds: xr.Dataset, name: str = "dataset") -> None:
    """Raise ForecastError unless every data variable has the field-store dims."""
    if not ds.data_vars:
        raise ForecastError(f"{name} has no data variables")
    for var, da in ds.data_vars.items():
        if da.dims not in (FIELD_DIMS, CHANNEL_FIELD_DIMS):
            raise ForecastError(
                f"{name}: variable {var!r} has dims {da.dims}; expected {FIELD_DIMS} or {CHANNEL_FIELD_DIMS}"
            )


def open_field_store(
    path: str | os.PathLike, group: str = "train", chunks: dict | str | None = None
) -> xr.Dataset:
    """Open one group of a complete field store lazily (dask-backed unless ``chunks=None`` is overridden)."""
    if group not in GROUPS:
        raise ForecastError(f"unknown group {group!r}; a field store has groups {GROUPS}")
    root = _root(path)
    if not root.attrs.get(COMPLETE_ATTR, False):
        raise ForecastError(
            f"field store {path} is incomplete (its writer was interrupted or is still running); "
            "finish it with --resume or delete it"
        )
    try:
        ds = xr.open_zarr(
            str(path), group=group, consolidated=False, chunks=chunks if chunks is not None else {}
        )
    except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError) as exc:
        raise ForecastError(f"field store {path} has no group {group!r} ({exc})") from None
    validate_field_dataset(ds, f"{path}[{group}]")
    return ds
