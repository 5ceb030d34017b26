"""The forecast file (``docs/formats.md``, "Forecast file"): its settings, writer, partial file, resume and reader.

One netCDF4 file per rollout. For each forecast variable V: ``V (init, member, lead_time, [channel,] y, x)`` in
the store's units, the verifying truth ``V_obs (init, lead_time, [channel,] y, x)`` and the observed context
``V_context (init, context_time, [channel,] y, x)``. Times are the store's own:

- ``init_time (init)`` is the store's ``time`` value of the first forecast frame (the frame lead 1 verifies
  against), so ``store[group].sel(sequence=sequence, time=init_time)`` is ``V_obs`` at lead 1;
- ``valid_time (init, lead_time)`` is the store's ``time`` value of the frame each lead verifies against, so
  ``store[group].sel(sequence=sequence, time=valid_time)`` is ``V_obs``;
- ``forecast_reference_time (init)`` is the store's ``time`` of the last context frame;
- ``lead_time`` is ``valid_time - forecast_reference_time`` in the store's time units (1, 2, ... frames where the
  store's time is a frame index). It is a CF ``forecast_period`` only where those units are a real time.

The file records the store (``source_store``) and group (``source_group``) it came from.

One settings object, ``ForecastSettings``, yields both the file's global attributes and the fingerprint that a
resumed rollout must match. ``ForecastFileWriter`` writes the file piece by piece into ``.NAME.partial`` beside
the final path (memory holds one member chunk, never the ensemble) and renames it only when every init is done,
so a file under its final name is always complete; an interrupted file keeps the inits it finished, listed in a
global attribute, for a resume.

Storage: every frame variable is zlib-compressed (with byte shuffling) and chunked as one init, one member, a few
leads and whole frames: the way the scores (one init at a time) and the plots (a few members of one init) read
it. This module needs no torch: ``forecast.metrics`` reads forecast files through it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from forecast import __version__
from forecast.claims import claim_output
from forecast.errors import ForecastError
from forecast.field_store import TEST_GROUP
from forecast.io_errors import check_headroom, writing

OBS_SUFFIX = "_obs"
CONTEXT_SUFFIX = "_context"
MODEL_NAME_ATTRS = ("model_name", "model", "name")
CONVENTIONS = "CF-1.8"
#: global attribute listing the inits finished so far; present only in a partial file
DONE_ATTR = "rollout_completed_inits"
#: global attribute holding the settings fingerprint a partial file was started with (checked on resume)
SETTINGS_ATTR = "rollout_settings"
#: netCDF4 compression of the frame variables (lossless; level 1 gives nearly all of level 9's gain, faster)
COMPRESSION = {"zlib": True, "complevel": 1, "shuffle": True}
#: leads per chunk: whole frames, a few leads, so reading one lead or one member stays cheap
LEADS_PER_CHUNK = 4

#: words that no UDUNITS unit contains; a store's units holding one are written as "1" (see ``cf_attrs``)
_NON_UDUNITS_WORDS = {
    "lattice",
    "frame",
    "frames",
    "cell",
    "cells",
    "step",
    "steps",
    "pixel",
    "pixels",
    "units",
}
_TIME_UNITS = {
    "s",
    "sec",
    "second",
    "seconds",
    "min",
    "minute",
    "minutes",
    "h",
    "hr",
    "hour",
    "hours",
    "d",
    "day",
}
_TIME_UNITS |= {"days", "ms", "millisecond", "milliseconds"}


# --------------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Init:
    """One forecast start: ``sequence`` (position in the store's group) and ``start`` (first context frame)."""

    sequence: int
    start: int


@dataclass(frozen=True)
class ForecastSettings:
    """Everything a forecast file was made with: the source of its attributes and of its resume fingerprint.

    Built by ``from_options`` from the rollout's options (``forecast.rollout_options``), whose defaults they are.

    ``steps`` is the number of sampling steps asked for (``None``: the model's all), ``sampling_steps`` the
    number run. ``provenance`` holds where the forecast came from (``checkpoint``, ``run_dir``, ``weights``,
    ``config``, ...) and any caller's attributes; ``source_store`` and ``source_group`` name the field store.
    """

    model: str
    variables: tuple[str, ...]
    inits: tuple[Init, ...]
    members: int
    context: int
    horizon: int
    sampler: str
    steps: int | None
    sampling_steps: int | str
    eta: float
    seed: int
    member_chunk: int
    amp: bool
    capture: str  # compiled or captured denoiser (forecast.capture): the same samples to float rounding
    channels_last: bool  # the denoiser in channels-last memory format: likewise, to float rounding
    starts: str
    source_store: str = "unknown"
    source_group: str = TEST_GROUP
    provenance: Mapping[str, Any] = field(default_factory=dict)
    # how, not what: not part of the fingerprint
    device: str = "cpu"
    software: str = f"forecast {__version__}"
    history: str = ""

    @classmethod
    def from_options(cls, options: Any, **resolved: Any) -> ForecastSettings:
        """The settings of a file made with ``options`` (a ``forecast.rollout_options.RolloutOptions``).

        Every option the file records is taken from ``options`` (``steps``: the steps the sampler is asked for,
        ``options.sampling_steps()``); ``resolved`` gives the rest and what the rollout decided in their place
        (the inits, the horizon, one member for a deterministic model, the resolved capture mode, ...).
        """
        names = {f.name for f in fields(cls)}
        taken = {name: value for name, value in options.as_kwargs().items() if name in names}
        taken["steps"] = options.sampling_steps()
        taken.update(resolved)
        taken["member_chunk"] = min(taken["members"], options.batch_size)  # chunks have their own noise
        return cls(**taken)

    def fingerprint(self) -> str:
        """What determines the file's contents; a partial file resumes only under the same fingerprint."""
        what = asdict(self)
        for how in ("device", "software", "history"):
            what.pop(how)
        what["inits"] = [[i.sequence, i.start] for i in self.inits]
        what["provenance"] = {str(k): str(v) for k, v in self.provenance.items()}
        return json.dumps(what, sort_keys=True, default=str)

    def attributes(self) -> dict[str, Any]:
        """The file's global attributes (CF: ``Conventions``, ``title``, ``history``, ``source``)."""
        provenance = dict(self.provenance)
        checkpoint = provenance.get("checkpoint")
        return {
            "Conventions": CONVENTIONS,
            "title": f"{self.model} ensemble forecast",
            "history": self.history or f"{_utc_now()} forecast.rollout.rollout (Python API)",
            "source": f"{self.model} model, {self.software}"
            + (f", checkpoint {checkpoint}" if checkpoint else ""),
            "model": self.model,
            "sampler": self.sampler,
            "sampling_steps": self.sampling_steps,
            "eta": self.eta,
            "seed": self.seed,
            "context_length": self.context,
            "horizon": self.horizon,
            "members": self.members,
            "member_chunk": self.member_chunk,
            "variables": " ".join(self.variables),
            "starts": self.starts,
            "source_store": self.source_store,
            "source_group": self.source_group,
            "time_convention": "init_time: store time of the frame lead 1 verifies against; valid_time: of each "
            "lead's frame; lead_time = valid_time - forecast_reference_time (the last context frame)",
            "software": self.software,
            "device": self.device,
            "amp": int(self.amp),
            "capture": self.capture,
            "channels_last": int(self.channels_last),
            "seeding": "one torch.Generator per (seed, sequence, start, first member of chunk)",
            **provenance,
        }


def history_entry(command: str) -> str:
    """A CF ``history`` line: when, and the command that made the file."""
    return f"{_utc_now()} {command}"


def _utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------------- CF metadata
def valid_udunits(units: str) -> bool:
    """False for the store units UDUNITS cannot parse ("lattice cells", "frame", "1 / lattice step", ...)."""
    return not set(re.findall(r"[A-Za-z]+", str(units))) & _NON_UDUNITS_WORDS


def is_time_unit(units: str | None) -> bool:
    """Whether ``units`` is a real duration (a CF ``forecast_period`` needs one)."""
    return units is not None and str(units).strip() in _TIME_UNITS


def cf_attrs(attrs: Mapping[str, Any], name: str) -> dict[str, Any]:
    """``attrs`` with CF-valid units and a ``long_name``: units UDUNITS cannot parse become "1", named in the long_name.

    A lattice quantity ("lattice cells per lattice step") is written as "1" with a long_name that says it is in
    lattice units; a frame index ("frame") likewise, with a long_name that names it.
    """
    out = {str(k): _attr_value(v) for k, v in attrs.items()}
    long_name = str(out.get("long_name", name.replace("_", " ")))
    units = out.get("units")
    if units is not None and not valid_udunits(str(units)):
        if str(units) == "lattice units":
            long_name = f"{long_name}, in lattice units"
        elif "lattice" in str(units):
            long_name = f"{long_name}, in lattice units ({units})"
        else:
            long_name = f"{long_name} ({units})"
        out["units"] = "1"
    out["long_name"] = long_name
    return out


def _attr_value(value: Any):
    """netCDF attributes hold numbers and strings; everything else is stored as its string form."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float | str | np.integer | np.floating):
        return value
    if value is None:
        return "none"
    return str(value)


def _value_type(values: np.ndarray):
    # native byte order: zarr may hand back big-endian arrays, netCDF4 warns about those
    return str if values.dtype.kind in "OUS" else values.dtype.newbyteorder("=")


def _netcdf_values(values: np.ndarray) -> np.ndarray:
    return values.astype(object) if values.dtype.kind in "OUS" else values


@dataclass(frozen=True)
class StoreTime:
    """The store's ``time`` axis as the forecast file reports it: values, their attributes, and the frame step.

    ``step`` is the spacing of a regular numeric axis (``lead_time = k * step``); ``None`` when the store has no
    numeric regular time, and lead times are then frame counts.
    """

    values: np.ndarray
    attrs: dict[str, Any]
    step: Any

    @classmethod
    def of(cls, source: xr.Dataset) -> StoreTime:
        n = source.sizes["time"]
        coord = source.coords.get("time")
        if coord is None or coord.dtype.kind not in "iufmM":
            return cls(np.arange(n), {"long_name": "frame index", "units": "1"}, None)
        values = np.asarray(coord.values)
        attrs = cf_attrs(coord.attrs, "time")
        if values.dtype.kind in "mM":  # decoded CF times: written as seconds (since the first frame's date)
            origin = values[0] if values.dtype.kind == "M" else np.timedelta64(0, "s")
            since = f" since {np.datetime_as_string(origin, unit='s')}" if values.dtype.kind == "M" else ""
            values = (values - origin) / np.timedelta64(1, "s")
            attrs = {**attrs, "units": f"seconds{since}"}
        step = None
        if n > 1:
            spacing = np.diff(values)
            if np.allclose(spacing, spacing[0]) and spacing[0] > 0:
                step = spacing[0]
        return cls(values, attrs, step)

    @property
    def units(self) -> str | None:
        return self.attrs.get("units")


# --------------------------------------------------------------------------------------------------- the writer
def partial_path(out_path: str | os.PathLike) -> Path:
    """Where a rollout writes until it is complete (beside the final path, so the rename is atomic)."""
    out_path = Path(out_path)
    return out_path.with_name(f".{out_path.name}.partial")


class NoRoomForInit(ForecastError):
    """The disk or the file-size limit cannot hold the next init: the partial file is kept whole for a resume."""


class ForecastFileWriter:
    """Writes one forecast file piece by piece into its partial file; ``commit`` renames it to its final name.

    ``source`` is the store group the inits index (its variables, coordinates and time); ``init_labels`` the
    values of the ``init`` coordinate (default 0..n-1). With ``resume`` an existing partial file is reopened if
    its fingerprint is ``settings``' and ``done`` lists its finished inits; otherwise a new one is created.

    The writer claims ``out_path`` (``forecast.claims``) until ``commit`` or ``abandon``: a second writer to the
    same file is refused with one line. Before each init it checks that the disk and the file-size limit can
    hold it (``NoRoomForInit`` otherwise, the partial file whole); any other failed write is one line too.
    """

    def __init__(
        self,
        out_path: str | os.PathLike,
        settings: ForecastSettings,
        source: xr.Dataset,
        *,
        init_labels: Sequence | None = None,
        resume: bool = False,
    ):
        self.out_path = Path(out_path)
        self.partial = partial_path(self.out_path)
        self.settings = settings
        self.done: set[int] = set()
        self._claim = contextlib.ExitStack()
        self._claim.enter_context(claim_output(self.out_path))
        try:
            with self._writing():
                self.out_path.parent.mkdir(parents=True, exist_ok=True)
                if resume and self.partial.exists() and not _never_started(self.partial):
                    self._nc = self._reopen()
                else:
                    try:
                        self._nc = _create(self.partial, settings, source, init_labels)
                    except BaseException:
                        self.partial.unlink(missing_ok=True)
                        raise
            self.init_bytes = _init_bytes(self._nc, settings)
        except BaseException:
            self._claim.close()
            raise

    def _writing(self):
        """A failed write is one line; the partial file is then deleted (HDF5 may have half-written it)."""
        return writing(
            self.out_path, f"; the partial file {self.partial.name} is removed (a failed write can damage it)"
        )

    def _reopen(self):
        import netCDF4

        try:
            nc = netCDF4.Dataset(self.partial, "a")
        except OSError as exc:
            raise ForecastError(
                f"cannot resume from {self.partial} ({exc}); delete it and start again"
            ) from None
        if SETTINGS_ATTR not in nc.ncattrs() or nc.getncattr(SETTINGS_ATTR) != self.settings.fingerprint():
            nc.close()
            raise ForecastError(
                f"{self.partial} was started with other settings (model, checkpoint, inits, sampler, seed, ...); "
                "rerun with the same options, or without --resume to start afresh"
            )
        self.done = set(json.loads(nc.getncattr(DONE_ATTR)))
        return nc

    def write_observed(self, index: int, window: xr.Dataset) -> None:
        """The context and verifying frames of init ``index`` from its store window (context + horizon frames).

        The init's first write: it first checks that the whole init fits (``NoRoomForInit`` if not)."""
        if self.done:
            kept = f"; the {len(self.done)} finished inits are kept in {self.partial}: rerun with --resume"
        else:
            kept = f"; {self.partial} is kept: rerun with --resume"
        try:
            check_headroom(self.partial, self.init_bytes, kept, output=self.out_path)
        except ForecastError as exc:
            raise NoRoomForInit(str(exc)) from None
        context = self.settings.context
        with self._writing():
            for name in self.settings.variables:
                frames = window[name]
                self._nc[f"{name}{CONTEXT_SUFFIX}"][index] = np.asarray(
                    frames.isel(time=slice(0, context)), np.float32
                )
                self._nc[f"{name}{OBS_SUFFIX}"][index] = np.asarray(
                    frames.isel(time=slice(context, None)), np.float32
                )

    def write_members(self, index: int, first: int, fields: Mapping[str, np.ndarray]) -> None:
        """Members ``first ..`` of init ``index``: ``fields[V]`` of shape (members, lead_time, [channel,] y, x)."""
        with self._writing():
            for name, values in fields.items():
                self._nc[name][index, first : first + len(values)] = values

    def finish_init(self, index: int) -> None:
        """Record init ``index`` as complete (synced to disk: a resume skips it)."""
        with self._writing():
            self._nc.setncattr(DONE_ATTR, json.dumps(sorted(self.done | {index})))
            self._nc.sync()
        self.done.add(index)

    def abandon(self, keep: bool) -> None:
        """Close without committing; ``keep`` leaves the partial file for a resume, otherwise it is deleted."""
        try:
            self._nc.close()
        except RuntimeError:
            if keep:  # the file could not be closed cleanly: it is no base for a resume
                raise
        finally:
            if not keep:
                self.partial.unlink(missing_ok=True)
            self._claim.close()

    def commit(self) -> Path:
        """Drop the partial-file bookkeeping and move the finished file to its final name."""
        try:
            with self._writing():
                self._nc.delncattr(DONE_ATTR)
                self._nc.delncattr(SETTINGS_ATTR)
                self._nc.close()
                os.replace(self.partial, self.out_path)
        except BaseException:
            self.abandon(keep=False)
            raise
        self._claim.close()
        return self.out_path


def _never_started(partial: Path) -> bool:
    """Whether ``partial`` was cut off while it was being created (killed before its layout and settings were
    written): it holds no finished init, so a resume starts it afresh."""
    import netCDF4

    try:
        with netCDF4.Dataset(partial, "r") as nc:
            return SETTINGS_ATTR not in nc.ncattrs()
    except OSError:
        return False  # unreadable: _reopen says so
    except RuntimeError:
        return False


def _init_bytes(nc, settings: ForecastSettings) -> int:
    """An upper bound of the bytes one init adds to the file: its frames uncompressed, plus room for metadata."""
    frame = 1
    for dim in ("channel", "y", "x"):
        if dim in nc.dimensions and any(dim in nc[v].dimensions for v in settings.variables):
            frame *= len(nc.dimensions[dim])
    frames = settings.members * settings.horizon + settings.horizon + settings.context
    raw = 4 * frame * frames * len(settings.variables)
    return int(raw * 1.01) + (1 << 16)


def _create(path: Path, settings: ForecastSettings, source: xr.Dataset, init_labels: Sequence | None):
    import netCDF4

    nc = netCDF4.Dataset(path, "w", format="NETCDF4")
    try:
        channels = _channel_count(source, settings.variables)
        _define_dims(nc, settings, source, channels)
        init_coords = _write_init_coords(nc, settings, source, init_labels)
        time_coords = _write_time_coords(nc, settings, source)
        _write_frame_coords(nc, source, channels)
        _define_frame_variables(nc, settings, source, init_coords, time_coords)
        nc.setncatts({k: _attr_value(v) for k, v in settings.attributes().items()})
        nc.setncattr(SETTINGS_ATTR, settings.fingerprint())
        nc.setncattr(DONE_ATTR, "[]")
        nc.sync()
    except BaseException:
        nc.close()
        raise
    return nc


def _channel_count(source: xr.Dataset, variables: Iterable[str]) -> int | None:
    counts = {source[v].sizes["channel"] for v in variables if "channel" in source[v].dims}
    if len(counts) > 1:
        raise ForecastError(f"variables with different channel counts {sorted(counts)} cannot share a file")
    return counts.pop() if counts else None


def _define_dims(nc, settings: ForecastSettings, source: xr.Dataset, channels: int | None) -> None:
    nc.createDimension("init", len(settings.inits))
    nc.createDimension("member", settings.members)
    nc.createDimension("lead_time", settings.horizon)
    nc.createDimension("context_time", settings.context)
    if channels is not None:
        nc.createDimension("channel", channels)
    nc.createDimension("y", source.sizes["y"])
    nc.createDimension("x", source.sizes["x"])


def _variable(nc, name: str, values: np.ndarray, dims: tuple[str, ...], attrs: Mapping[str, Any]):
    values = np.asarray(values)
    var = nc.createVariable(name, _value_type(values), dims)
    var[:] = _netcdf_values(values)
    var.setncatts({k: _attr_value(v) for k, v in attrs.items()})
    return var


def _write_init_coords(nc, settings: ForecastSettings, source: xr.Dataset, init_labels) -> list[str]:
    """``init`` and the coordinates along it: ``sequence`` and the store's per-sequence parameters."""
    labels = np.arange(len(settings.inits)) if init_labels is None else np.asarray(init_labels)
    _variable(nc, "init", labels, ("init",), {"long_name": "forecast start", "units": "1"})
    seq_index = np.array([i.sequence for i in settings.inits], dtype=int)
    if "sequence" in source.coords:
        seq_values, seq_attrs = np.asarray(source["sequence"].values)[seq_index], source["sequence"].attrs
    else:
        seq_values, seq_attrs = seq_index, {}
    seq_attrs = {"long_name": f"sequence of the source store's {settings.source_group} group", **seq_attrs}
    if seq_values.dtype.kind in "iuf":
        seq_attrs.setdefault("units", "1")  # a numeric label: the checker wants units on numbers
    _variable(nc, "sequence", seq_values, ("init",), cf_attrs(seq_attrs, "sequence"))
    names = ["sequence"]
    for name, coord in source.coords.items():
        if name != "sequence" and coord.dims == ("sequence",):
            values = np.asarray(coord.values)[seq_index]
            attrs = cf_attrs(coord.attrs, name)
            if values.dtype.kind in "iuf":
                attrs.setdefault(
                    "units", "1"
                )  # e.g. a noise seed: a number without units warns in the checker
            _variable(nc, name, values, ("init",), attrs)
            names.append(name)
    return names


def _write_time_coords(nc, settings: ForecastSettings, source: xr.Dataset) -> list[str]:
    """``init_time``, ``forecast_reference_time``, ``valid_time`` (store time values) and ``lead_time``."""
    time = StoreTime.of(source)
    first = np.array([i.start + settings.context for i in settings.inits], dtype=int)
    frames = first[:, None] + np.arange(settings.horizon)[None, :]
    since = time.units is not None and " since " in str(time.units)
    units = {"units": time.units} if time.units is not None else {}
    store = f"in the store's time: {time.attrs['long_name']}"
    _variable(nc, "init_time", time.values[first], ("init",), {
        "long_name": f"time of the first forecast frame, the frame lead 1 verifies against ({store})", **units
    })  # fmt: skip
    # CF standard names on the reference time, the lead and (``_write_frame_coords``) the member, so cf_xarray
    # and climpred find the three axes. A frame index is no UDUNITS time: there the two have no units attribute
    # (a CF warning) rather than "1" (an error: those standard names need time units); the long_name says frames.
    timed = since or is_time_unit(time.units)
    _variable(nc, "forecast_reference_time", time.values[first - 1], ("init",), {
        "standard_name": "forecast_reference_time",
        "long_name": f"time of the last context frame ({store})", **(units if timed else {}),
    })  # fmt: skip
    _variable(nc, "valid_time", time.values[frames], ("init", "lead_time"), {
        "long_name": f"time of the frame each lead verifies against ({store})", **units,
        **({"standard_name": "time"} if since else {}),
    })  # fmt: skip
    leads, contexts = np.arange(1, settings.horizon + 1), np.arange(-settings.context + 1, 1)
    lead_attrs = {"standard_name": "forecast_period"}
    if time.step is not None:
        step_units = str(time.units).split(" since ")[0] if since else time.units
        lead_attrs["long_name"] = "lead time: valid_time - forecast_reference_time"
        if is_time_unit(step_units):
            lead_attrs["units"] = step_units
        else:
            lead_attrs["long_name"] += f" ({store})"
        leads, contexts = leads * time.step, contexts * time.step
    else:
        lead_attrs["long_name"] = "lead time in frames after the last context frame"
    # no axis "T": the CF checker takes an axis-T variable for a time coordinate, which needs "units since epoch"
    _variable(nc, "lead_time", leads, ("lead_time",), lead_attrs)
    _variable(nc, "context_time", contexts, ("context_time",), {
        "long_name": "context frame time relative to the last context frame", "units": lead_attrs.get("units", "1")
    })  # fmt: skip
    return ["init_time", "forecast_reference_time", "valid_time"]


def _write_frame_coords(nc, source: xr.Dataset, channels: int | None) -> None:
    _variable(nc, "member", np.arange(len(nc.dimensions["member"])), ("member",), {
        "standard_name": "realization", "long_name": "ensemble member", "units": "1"
    })  # fmt: skip
    if channels is not None:
        values = source["channel"].values if "channel" in source.coords else np.arange(channels)
        attrs = source["channel"].attrs if "channel" in source.coords else {}
        _variable(nc, "channel", values, ("channel",), cf_attrs(attrs, "channel"))
    for dim, axis in (("y", "Y"), ("x", "X")):
        if dim in source.coords:
            values, attrs = np.asarray(source[dim].values), source[dim].attrs
        else:
            values, attrs = np.arange(source.sizes[dim]), {"units": "1"}
        _variable(nc, dim, values, (dim,), {**cf_attrs(attrs, dim), "axis": axis})


def _define_frame_variables(
    nc, settings: ForecastSettings, source: xr.Dataset, init_coords: list[str], time_coords: list[str]
) -> None:
    leads = min(settings.horizon, LEADS_PER_CHUNK)
    lead_coords = " ".join([*init_coords, *time_coords])
    for name in settings.variables:
        frame_dims = ("channel", "y", "x") if "channel" in source[name].dims else ("y", "x")
        frame = tuple(len(nc.dimensions[d]) for d in frame_dims)
        attrs = cf_attrs(source[name].attrs, name)
        long_name = attrs["long_name"]
        for suffix, dims, chunks, what, coords in (
            ("", ("init", "member", "lead_time"), (1, 1, leads), "", lead_coords),
            (OBS_SUFFIX, ("init", "lead_time"), (1, leads), " (verifying truth)", lead_coords),
            (
                CONTEXT_SUFFIX,
                ("init", "context_time"),
                (1, settings.context),
                " (context frames)",
                init_coords,
            ),
        ):
            var = nc.createVariable(
                f"{name}{suffix}", "f4", (*dims, *frame_dims), chunksizes=(*chunks, *frame), **COMPRESSION
            )
            var.setncatts({**attrs, "long_name": f"{long_name}{what}", "coordinates": _join(coords)})


def _join(names) -> str:
    return names if isinstance(names, str) else " ".join(names)


# --------------------------------------------------------------------------------------------------- the reader
def join_round_robin(
    parts: Sequence[Path], out_path: str | os.PathLike, partial: Path, drop_attrs: Iterable[str] = ()
) -> Path:
    """Join forecast files of one layout whose inits are split round robin (part ``r`` of ``W`` holds inits
    ``r, r + W, ...``) into ``out_path``: a copy of part 0 (layout, coordinates, attributes, compression) with each
    other part's inits copied in, built under ``partial`` and renamed into place; ``drop_attrs`` are removed."""
    import shutil

    import netCDF4

    shutil.copyfile(parts[0], partial)
    try:
        with netCDF4.Dataset(partial, "a") as nc:
            frame_vars = [n for n, v in nc.variables.items() if v.dimensions[:1] == ("init",) and v.ndim > 2]
            n_init = len(nc.dimensions["init"])
            for rank in range(1, len(parts)):
                with netCDF4.Dataset(parts[rank], "r") as src:
                    for index in range(rank, n_init, len(parts)):
                        for name in frame_vars:
                            nc[name][index] = src[name][index]
            for attr in drop_attrs:
                if attr in nc.ncattrs():
                    nc.delncattr(attr)
        os.replace(partial, out_path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return Path(out_path)


def open_netcdf(path: str | os.PathLike, chunks: dict | None = None) -> xr.Dataset:
    """Open a netCDF file lazily (dask chunks when ``chunks`` is given), or raise a one-line ForecastError."""
    path = Path(path)
    if not path.is_file():
        raise ForecastError(f"no such file: {path}")
    try:
        return xr.open_dataset(path, chunks=chunks)
    except Exception as exc:  # netCDF4/h5netcdf/xarray raise many types for "not a netCDF file"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ForecastError(f"{path} is not a readable netCDF file ({reason})") from None


def forecast_variables(ds: xr.Dataset, member_dim: str = "member", name: str = "dataset") -> list[str]:
    """The forecast variables V of ``ds`` (those with a ``V_obs``), checked against the conventions."""
    names = [v for v in ds.data_vars if f"{v}{OBS_SUFFIX}" in ds.data_vars]
    if not names:
        raise ForecastError(f"{name} is not a forecast file: no variable V with a verifying V{OBS_SUFFIX}")
    for v in names:
        ens, obs = ds[v], ds[f"{v}{OBS_SUFFIX}"]
        if member_dim not in ens.dims:
            raise ForecastError(
                f"{name}: forecast variable {v!r} has no {member_dim!r} dimension (dims {ens.dims})"
            )
        for dim in ("init", "lead_time"):
            if dim not in ens.dims:
                raise ForecastError(
                    f"{name}: forecast variable {v!r} has no {dim!r} dimension (dims {ens.dims})"
                )
        if set(ens.dims) - {member_dim} != set(obs.dims):
            raise ForecastError(
                f"{name}: {v}{OBS_SUFFIX} has dims {obs.dims}, expected those of {v} {ens.dims} less {member_dim!r}"
            )
    _check_declared_sizes(ds, name)
    return names


#: global attributes that declare a dimension's length (the oracle's files keep the reference's ``members``)
_DECLARED_SIZES = (("horizon", "lead_time"), ("context_length", "context_time"))


def _check_declared_sizes(ds: xr.Dataset, name: str) -> None:
    """One line where the file's attributes declare a length its dimensions do not have (a damaged or edited
    file): metadata only, before anything is read."""
    for attr, dim in _DECLARED_SIZES:
        if attr not in ds.attrs or dim not in ds.sizes:
            continue
        try:
            declared = int(ds.attrs[attr])
        except (TypeError, ValueError):
            raise ForecastError(f"{name}: attribute {attr}={ds.attrs[attr]!r} is not a length") from None
        if declared != ds.sizes[dim]:
            raise ForecastError(
                f"{name}: attribute {attr}={declared} but dimension {dim!r} has length {ds.sizes[dim]}; the "
                "file's metadata is inconsistent: write it again"
            )


def open_forecast(
    path: str | os.PathLike, chunks: dict | None = None, member_dim: str = "member"
) -> xr.Dataset:
    """Open and check a forecast file; ``chunks`` (e.g. ``{"init": 1}``) streams it through dask."""
    ds = open_netcdf(path, chunks)
    forecast_variables(ds, member_dim, str(path))
    return ds


def model_name(ds: xr.Dataset, default: str = "forecast") -> str:
    """The model's name from the file's attributes (``model_name``, ``model`` or ``name``)."""
    for key in MODEL_NAME_ATTRS:
        if ds.attrs.get(key):
            return str(ds.attrs[key])
    return default
