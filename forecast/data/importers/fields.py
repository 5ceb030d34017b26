"""Any gridded dataset that xarray can open (netCDF, zarr, HDF5 such as PDEBench's 2-D CFD files).

The source's dimensions are mapped onto the store's: ``time``, ``y``, ``x`` (required), ``sequence``
(optional: independent runs or samples; without it the source is one long sequence) and ``channel`` (optional).
Unnamed dims are guessed from common names (``time``/``t``, ``y``/``lat``/``latitude``, ``x``/``lon``/
``longitude``, ``sequence``/``sample``/``run``/``member``). Pure HDF5 files without dimension scales have dims
``phony_dim_0``, ``phony_dim_1``, ...: map them explicitly, e.g. for PDEBench 2-D CFD (``Vx`` etc. shaped
``(sample, t, x, y)``): ``sequence=phony_dim_0,time=phony_dim_1,x=phony_dim_2,y=phony_dim_3``.

Split: ``by="sequence"`` puts the last ``test_fraction`` of the sequences in `test`; ``by="time"`` puts the
first ``1 - test_fraction`` of every sequence's frames in `train` and the rest in `test`. With ``length`` each
group's frames are then cut into non-overlapping windows of that many frames (coordinates ``source_sequence``
and ``start_index``). Data are streamed a few frames at a time, so a source larger than memory is fine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from forecast.data.importers.writer import StorePlan, VariableSpec, run_import
from forecast.errors import ForecastError
from forecast.field_store import TEST_GROUP, TRAIN_GROUP

GUESSES = {
    "time": ("time", "t"),
    "y": ("y", "lat", "latitude"),
    "x": ("x", "lon", "longitude"),
    "sequence": ("sequence", "sample", "samples", "run", "member"),
    "channel": ("channel",),
}
FRAMES_PER_BLOCK = 16


def parse_mapping(text: str | None) -> dict[str, str]:
    """``"time=t,y=lat"`` -> ``{"time": "t", "y": "lat"}``."""
    if not text:
        return {}
    mapping = {}
    for part in text.split(","):
        if "=" not in part:
            raise ForecastError(f"bad mapping {part!r}: expected NAME=SOURCE_NAME, e.g. time=t")
        key, value = (s.strip() for s in part.split("=", 1))
        mapping[key] = value
    return mapping


def open_source(src: str | os.PathLike, engine: str | None = None, group: str | None = None) -> xr.Dataset:
    path = Path(src)
    if not path.exists():
        raise ForecastError(f"source not found: {path}")
    if engine is None and (
        path.suffix == ".zarr" or (path / "zarr.json").exists() or (path / ".zgroup").exists()
    ):
        engine = "zarr"
    kwargs = {"group": group} if group else {}
    try:
        if engine == "zarr":
            return xr.open_zarr(str(path), chunks={}, consolidated=None, **kwargs)
        return xr.open_dataset(str(path), engine=engine, chunks={}, **kwargs)
    except Exception as exc:  # every backend has its own error types for "not my format"
        raise ForecastError(
            f"cannot open {path} as a gridded dataset ({type(exc).__name__}: {exc})"
        ) from None


@dataclass
class _Window:
    source_sequence: int
    start: int


def import_fields(
    src: str | os.PathLike,
    out: str | os.PathLike,
    variables: list[str] | None = None,
    dims: dict[str, str] | None = None,
    rename: dict[str, str] | None = None,
    by: str = "sequence",
    test_fraction: float = 0.2,
    length: int | None = None,
    engine: str | None = None,
    group: str | None = None,
    dtype: str = "float32",
    allow_nan: bool = False,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Import gridded variables into a field store; see the module docstring for the options.

    Three steps: the plan (which dims play which role, which variables, how the frames split into windows),
    the store's coordinates, and the blocks of frames that ``run_import`` writes sequence by sequence.
    """
    if by not in ("sequence", "time"):
        raise ForecastError(f"split by {by!r}: use 'sequence' or 'time'")
    if not 0 < test_fraction < 1:
        raise ForecastError(f"test fraction {test_fraction} must be between 0 and 1")
    ds = open_source(src, engine, group)
    dims = _resolve_dims(ds, src, dims)
    variables, arrays = _select_arrays(ds, src, dims, variables, rename or {})
    n_seq = ds.sizes[dims["sequence"]] if "sequence" in dims else 1
    windows, time_length = _split_windows(src, n_seq, ds.sizes[dims["time"]], by, test_fraction, length)
    plan = StorePlan(
        variables={name: _variable_spec(da, name, dims, dtype) for name, da in arrays.items()},
        time_length=time_length,
        sequence_coords={g: _sequence_coords(ds, dims, items) for g, items in windows.items()},
        attrs={
            "source": str(src),
            "split": by,
            "test_fraction": test_fraction,
            **{k: v for k, v in ds.attrs.items() if isinstance(v, str | int | float)},
        },
        coords=_coordinates(ds, dims, time_length),
        fingerprint={
            "kind": "fields",
            "src": str(Path(src).resolve()),
            "variables": variables,
            "dims": dims,
            "rename": rename or {},
            "by": by,
            "test_fraction": test_fraction,
            "length": length,
            "dtype": dtype,
        },
    )

    def sequences_for(g: str, start: int):
        for window in windows[g][start:]:
            yield _blocks(arrays, dims, window, time_length, src, allow_nan)

    return run_import(out, plan, sequences_for, resume=resume, overwrite=overwrite, progress=progress)


# --------------------------------------------------------------------------------------------------- the plan
def _resolve_dims(ds: xr.Dataset, src, dims: dict[str, str] | None) -> dict[str, str]:
    """Role (sequence, time, channel, y, x) -> the source's dim: as given, else guessed from common names."""
    dims = dict(dims or {})
    for role, names in GUESSES.items():
        if role not in dims:
            hit = next((n for n in names if n in ds.dims), None)
            if hit:
                dims[role] = hit
    for role, name in dims.items():
        if role not in GUESSES:
            raise ForecastError(f"unknown dimension role {role!r}; use sequence, time, channel, y, x")
        if name not in ds.dims:
            raise ForecastError(f"{src} has no dimension {name!r} (for {role}); its dims are {list(ds.dims)}")
    for role in ("time", "y", "x"):
        if role not in dims:
            raise ForecastError(
                f"cannot tell which dimension of {src} is {role} (dims {list(ds.dims)}); name it, e.g. {role}=DIM"
            )
    return dims


def _select_arrays(
    ds: xr.Dataset, src, dims: dict[str, str], variables: list[str] | None, rename: dict[str, str]
) -> tuple[list[str], dict[str, xr.DataArray]]:
    """The variables to import (as given, or every one on the frame dims) as arrays in the store's dim order."""
    wanted = {dims[r] for r in ("time", "y", "x")}
    allowed = set(dims.values())
    if variables:
        missing = [v for v in variables if v not in ds.data_vars]
        if missing:
            raise ForecastError(f"{src} has no variable(s) {missing}; it has {list(ds.data_vars)}")
    else:
        variables = [
            v for v, da in ds.data_vars.items() if wanted <= set(da.dims) and set(da.dims) <= allowed
        ]
        if not variables:
            raise ForecastError(f"no variable of {src} has the dims {sorted(wanted)} (and no others)")
    order = [dims[r] for r in ("sequence", "time", "channel", "y", "x") if r in dims]
    arrays = {}
    for name in variables:
        da = ds[name]
        extra = set(da.dims) - allowed
        if extra or not wanted <= set(da.dims):
            raise ForecastError(
                f"variable {name!r} has dims {da.dims}; map or drop {sorted(extra) or wanted}"
            )
        for role in ("sequence", "channel"):
            if role in dims and dims[role] not in da.dims:
                da = da.expand_dims({dims[role]: ds.sizes[dims[role]]})
        arrays[rename.get(name, name)] = da.transpose(*order)
    return variables, arrays


def _split_windows(
    src, n_seq: int, n_time: int, by: str, test_fraction: float, length: int | None
) -> tuple[dict[str, list[_Window]], int]:
    """The windows of each group (split by sequence or by time) and their common length in frames."""
    if by == "sequence":
        n_test = max(1, round(n_seq * test_fraction))
        if n_test >= n_seq:
            raise ForecastError(f"{src} has {n_seq} sequence(s): too few to split by sequence; use by=time")
        ranges = {
            TRAIN_GROUP: (range(0, n_seq - n_test), (0, n_time)),
            TEST_GROUP: (range(n_seq - n_test, n_seq), (0, n_time)),
        }
    else:
        cut = round(n_time * (1 - test_fraction))
        ranges = {TRAIN_GROUP: (range(n_seq), (0, cut)), TEST_GROUP: (range(n_seq), (cut, n_time))}
    windows: dict[str, list[_Window]] = {}
    lengths = set()
    for g, (seqs, (t0, t1)) in ranges.items():
        span = length or (t1 - t0)
        if t1 - t0 < span or span < 1:
            raise ForecastError(f"the {g} group has {t1 - t0} frames per sequence, fewer than length {span}")
        windows[g] = [_Window(s, t) for s in seqs for t in range(t0, t1 - span + 1, span)]
        lengths.add(span)
    if len(lengths) != 1:
        raise ForecastError(
            f"train and test would have different lengths {sorted(lengths)} (split by time); give --length"
        )
    return windows, lengths.pop()


def _variable_spec(da: xr.DataArray, name: str, dims: dict[str, str], dtype: str) -> VariableSpec:
    attrs = {k: v for k, v in da.attrs.items() if k in ("units", "long_name", "standard_name")}
    attrs.setdefault("long_name", name)
    attrs.setdefault("units", "unknown")
    out_dtype = dtype if np.issubdtype(da.dtype, np.floating) else str(da.dtype)
    frame_shape = tuple(da.sizes[dims[r]] for r in ("channel", "y", "x") if r in dims)
    return VariableSpec(out_dtype, frame_shape, attrs)


# --------------------------------------------------------------------------------------------------- coordinates
def _coordinates(ds: xr.Dataset, dims: dict[str, str], time_length: int) -> dict[str, tuple]:
    """The store's y, x (and channel) coordinates from the source; time as frame index, or as time since the
    window's first frame where the source's time is evenly spaced and numeric."""

    def coordinate(role: str) -> tuple:
        name = dims[role]
        if name in ds.coords and ds[name].ndim == 1:
            return (role, ds[name].values, dict(ds[name].attrs))
        return (role, np.arange(ds.sizes[name]))

    coords = {"y": coordinate("y"), "x": coordinate("x"), "time": ("time", np.arange(time_length))}
    if "channel" in dims:
        coords["channel"] = coordinate("channel")
    source = ds[dims["time"]] if dims["time"] in ds.coords else None
    if source is not None and np.issubdtype(source.dtype, np.number) and source.size > 1:
        steps = np.diff(source.values)
        if np.allclose(steps, steps[0]):
            units = {"units": source.attrs["units"]} if "units" in source.attrs else {}
            attrs = {"long_name": "time since the sequence's first frame", **units}
            coords["time"] = ("time", np.arange(time_length) * steps[0], attrs)
    return coords


def _sequence_coords(ds: xr.Dataset, dims: dict[str, str], windows: list[_Window]) -> dict[str, np.ndarray]:
    """Per stored sequence: its source sequence, its first frame there, and the source's per-sequence coords."""
    coords = {
        "source_sequence": np.array([w.source_sequence for w in windows], np.int64),
        "start_index": np.array([w.start for w in windows], np.int64),
    }
    if "sequence" in dims:
        for name, c in ds.coords.items():
            if c.dims == (dims["sequence"],) and name != dims["sequence"]:
                coords[name] = c.values[coords["source_sequence"]]
    return coords


# --------------------------------------------------------------------------------------------------- blocks
def _blocks(
    arrays: dict[str, xr.DataArray],
    dims: dict[str, str],
    window: _Window,
    time_length: int,
    src,
    allow_nan: bool,
):
    """The frames of one window, ``FRAMES_PER_BLOCK`` at a time: (slice of the window, {variable: values})."""
    for offset in range(0, time_length, FRAMES_PER_BLOCK):
        stop = min(time_length, offset + FRAMES_PER_BLOCK)
        block = {}
        for name, da in arrays.items():
            index = {dims["time"]: slice(window.start + offset, window.start + stop)}
            if "sequence" in dims:
                index[dims["sequence"]] = window.source_sequence
            values = np.asarray(da.isel(index).values)
            if not allow_nan and np.issubdtype(values.dtype, np.floating) and np.isnan(values).any():
                raise ForecastError(
                    f"{src}: variable {name!r} has NaNs (sequence {window.source_sequence}, frames "
                    f"{window.start + offset}-{window.start + stop - 1}); pass --allow-nan to keep them"
                )
            block[name] = values
        yield slice(offset, stop), block
