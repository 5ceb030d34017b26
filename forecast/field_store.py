"""Field stores: the zarr layout that simulators and importers write and training reads.

See ``docs/formats.md`` ("Field store"). A store holds the groups ``train`` and ``test``; every data variable
has dims ``(sequence, time, y, x)`` or ``(sequence, time, channel, y, x)``. A writer marks the store complete
only when every group is fully written (root attribute ``complete``); readers refuse an incomplete store, so an
interrupted generation is never mistaken for a dataset.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

import xarray as xr
import zarr

from forecast.errors import ForecastError

TRAIN_GROUP = "train"
TEST_GROUP = "test"
GROUPS = (TRAIN_GROUP, TEST_GROUP)
TRUTH_GROUP = "truth"  # optional: perfect-model truth ensembles (docs/formats.md, "Field store")
INIT_KEYS = ("sequence", "init_time")  # the coordinates along the truth group's init that name each start
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
    """Set the store's completeness flag (writers set False first and True last); a complete store's metadata
    is consolidated, so every open (``xr.open_datatree``, ``xr.open_zarr``) finds it without warnings."""
    _root(path, mode="r+").attrs[COMPLETE_ATTR] = bool(complete)
    if complete:
        consolidate(path)


CONVENTIONS = "CF-1.8"


def cf_attrs(title: str, source: str, history: str) -> dict:
    """The CF global attributes every store group carries (``history`` gets a UTC time stamp)."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"Conventions": CONVENTIONS, "title": title, "source": source, "history": f"{stamp} {history}"}


def consolidate(path: str | os.PathLike) -> None:
    """Consolidate the store's metadata (after its last change), so that opening it does not warn."""
    with warnings.catch_warnings():
        # zarr 3 notes that consolidated metadata is not in the v3 spec yet; xarray and zarr read it
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        # fixed-width string coordinates (names, actions) are read back fine; zarr notes they lack a v3 spec
        warnings.filterwarnings("ignore", message=".*does not have a Zarr V3 specification.*")
        zarr.consolidate_metadata(str(path))


def upgrade_store(path: str | os.PathLike) -> list[str]:
    """Bring a store written by an older version up to the current layout, in place: name the dimensions of
    arrays that have none (the root ``frames_written`` of older simulator stores, whose one dimension is
    ``sequence``) and consolidate the metadata, so ``xr.open_datatree(path, engine="zarr")`` opens it. Returns
    the arrays it changed. Only zarr-v3 directory stores (what this project writes) can be upgraded."""
    path = Path(path)
    _root(path)
    changed = []
    for meta_file in sorted(path.rglob("zarr.json")):
        meta = json.loads(meta_file.read_text())
        if meta.get("node_type") != "array" or meta.get("dimension_names"):
            continue
        name = meta_file.parent.name
        ndim = len(meta["shape"])
        old_progress = name == "frames_written" and ndim == 1  # runs of `forecast simulate karman`
        meta["dimension_names"] = ["sequence"] if old_progress else [f"{name}_dim_{i}" for i in range(ndim)]
        meta_file.write_text(json.dumps(meta, indent=2))
        changed.append(str(meta_file.parent.relative_to(path)))
    if is_complete(path):
        consolidate(path)
    return changed


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


@contextlib.contextmanager
def reading(source: str | os.PathLike, variable: str) -> Iterator[None]:
    """Turn a chunk that cannot be decoded (a damaged store) into one line naming the store and the variable.

    The codecs raise their own errors (numcodecs' zstd and blosc a RuntimeError, zlib a zlib.error, a
    truncated chunk a ValueError), with a traceback deep inside zarr that says neither which store nor which
    variable is damaged.
    """
    try:
        yield
    except ForecastError:
        raise
    except (RuntimeError, ValueError, OSError, zlib.error) as exc:
        detail = (str(exc).splitlines() or [""])[0]
        raise ForecastError(
            f"cannot read variable {variable!r} of the store {source} ({type(exc).__name__}: {detail}); "
            "the store is damaged: regenerate or re-import it"
        ) from None


def validate_field_dataset(ds: xr.Dataset, name: str = "dataset") -> None:
    """Raise ForecastError unless every data variable has the field-store dims."""
    if not ds.data_vars:
        raise ForecastError(f"{name} has no data variables")
    for var, da in ds.data_vars.items():
        if da.dims not in (FIELD_DIMS, CHANNEL_FIELD_DIMS):
            raise ForecastError(
                f"{name}: variable {var!r} has dims {da.dims}; expected {FIELD_DIMS} or {CHANNEL_FIELD_DIMS}"
            )


def _array_dims(array: zarr.Array) -> tuple[str, ...] | None:
    """The dimension names an array declares (zarr 3's ``dimension_names``, zarr 2's ``_ARRAY_DIMENSIONS``)."""
    names = getattr(array.metadata, "dimension_names", None)
    if names is None:
        names = array.attrs.get("_ARRAY_DIMENSIONS")
    return None if names is None else tuple(names)


def _declared_lengths(source: str, arrays: dict[str, zarr.Array]) -> dict[str, dict[int, list[str]]]:
    """Each dimension's declared lengths and the arrays declaring them; ForecastError where an array's dims or
    chunk grid do not fit its own shape."""
    lengths: dict[str, dict[int, list[str]]] = {}
    for name, array in sorted(arrays.items()):
        shape, dims = tuple(array.shape), _array_dims(array)
        if dims is None or len(dims) != len(shape):
            raise ForecastError(
                f"{source}: array {name!r} has shape {shape} but declares dimensions {dims}; "
                "the store's metadata is inconsistent: regenerate or re-import it"
            )
        chunks = tuple(array.chunks)
        if len(chunks) != len(shape) or any(int(c) < 1 for c in chunks):
            raise ForecastError(
                f"{source}: array {name!r} of shape {shape} declares the chunk grid {chunks}; "
                "the store's metadata is inconsistent: regenerate or re-import it"
            )
        for dim, length in zip(dims, shape):
            lengths.setdefault(dim, {}).setdefault(int(length), []).append(name)
    return lengths


def _check_consolidated(path: str | os.PathLike, group: str, arrays: dict[str, zarr.Array]) -> None:
    """The root's consolidated metadata (what ``xr.open_datatree`` reads) must give each array its own shape."""
    try:
        consolidated = zarr.open_group(str(path), mode="r").metadata.consolidated_metadata
        flat = consolidated.flattened_metadata if consolidated is not None else {}
    except Exception:  # unreadable root metadata: the group's own check and the reader report it
        return
    for name, array in sorted(arrays.items()):
        entry = flat.get(f"{group}/{name}")
        shape = getattr(entry, "shape", None)
        if shape is not None and tuple(shape) != tuple(array.shape):
            raise ForecastError(
                f"{path}[{group}]: array {name!r} has shape {tuple(array.shape)} but the store's consolidated "
                f"metadata says {tuple(shape)}; the store's metadata is inconsistent: regenerate or re-import it"
            )


def check_group_metadata(path: str | os.PathLike, group: str) -> None:
    """One line (ForecastError) if the arrays of a store group disagree in their metadata: a dimension declared
    with two lengths (an array against its coordinate), dimension names that do not fit an array's shape, a
    chunk grid of the wrong rank. Reads metadata only: it runs before anything is allocated or read."""
    source = f"{path}[{group}]"
    try:
        zgroup = zarr.open_group(str(path), mode="r", path=group, use_consolidated=False)
        arrays = dict(zgroup.arrays())
    except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError):
        return  # a missing group: the caller says so
    except Exception as exc:  # zarr's own metadata validation
        detail = (str(exc).splitlines() or [""])[0]
        raise ForecastError(
            f"{source}: unreadable metadata ({type(exc).__name__}: {detail}); regenerate or re-import the store"
        ) from None
    for dim, seen in _declared_lengths(source, arrays).items():
        if len(seen) > 1:
            # name the coordinate's length first: it is what the other arrays are measured against
            ordered = sorted(seen.items(), key=lambda item: dim not in item[1])
            said = "; ".join(f"{length} in {', '.join(repr(n) for n in names)}" for length, names in ordered)
            raise ForecastError(
                f"{source}: dimension {dim!r} is declared with different lengths ({said}); the store's "
                "metadata is inconsistent: regenerate or re-import it"
            )
    _check_consolidated(path, group, arrays)


def open_field_store(
    path: str | os.PathLike, group: str = TRAIN_GROUP, chunks: dict | str | None = None
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
    check_group_metadata(path, group)
    try:
        ds = xr.open_zarr(
            str(path), group=group, consolidated=False, chunks=chunks if chunks is not None else {}
        )
    except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError) as exc:
        raise ForecastError(f"field store {path} has no group {group!r} ({exc})") from None
    except ValueError as exc:  # metadata xarray cannot reconcile that the check above does not know
        detail = (str(exc).splitlines() or [""])[0]
        raise ForecastError(f"{path}[{group}]: inconsistent metadata ({detail})") from None
    validate_field_dataset(ds, f"{path}[{group}]")
    return ds


# --------------------------------------------------------------------------- the truth group (optional)
def open_truth(store: str | os.PathLike, chunks: dict | str | None = None) -> xr.Dataset:
    """The ``truth`` group of a field store, lazily (dask-backed), checked for the dims and coordinates."""
    store = Path(store)
    if not store.exists():
        raise ForecastError(f"no field store at {store}")
    if not store.is_dir():
        raise ForecastError(
            f"{store} is a file, not a zarr field store (a folder) with a {TRUTH_GROUP!r} group"
        )
    check_group_metadata(store, TRUTH_GROUP)
    try:
        truth = open_group(store, chunks if chunks is not None else {})
    except Exception as exc:  # zarr raises several types for "no such group" / "not a store"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ForecastError(
            f"{store} has no readable {TRUTH_GROUP!r} group ({reason}); a known-answer store is written with "
            "truth ensembles by `forecast simulate` (docs/guide/simulate.md)"
        ) from None
    check_truth(truth, f"{store}[{TRUTH_GROUP}]")
    return truth


def open_group(store: str | os.PathLike, chunks: dict | str, group: str = TRUTH_GROUP) -> xr.Dataset:
    """A group of the store, from consolidated metadata where the store has it (no warning either way)."""
    try:
        return xr.open_zarr(store, group=group, chunks=chunks, consolidated=True)
    except (KeyError, ValueError):  # no consolidated metadata (a store written before they were consolidated)
        return xr.open_zarr(store, group=group, chunks=chunks, consolidated=False)


def check_truth(truth: xr.Dataset, name: str = "the truth group") -> None:
    """Raise a one-line ForecastError unless ``truth`` has the truth-group layout."""
    if not truth.data_vars:
        raise ForecastError(f"{name} has no data variables")
    for var, da in truth.data_vars.items():
        lead = ("init", "member", "lead_time")
        if da.dims[:3] != lead or da.dims[-2:] != ("y", "x") or len(da.dims) not in (5, 6):
            raise ForecastError(
                f"{name}: variable {var!r} has dims {da.dims}; expected (init, member, lead_time, [channel,] y, x)"
            )
    for key in INIT_KEYS:
        if key not in truth.coords or truth[key].dims != ("init",):
            raise ForecastError(f"{name} lacks the coordinate {key!r} along 'init'")
    if "lead_time" not in truth.coords:
        raise ForecastError(f"{name} lacks the coordinate 'lead_time'")
