"""Ensemble rollouts: autoregressive forecasts from a trained model, written to a netCDF forecast file.

For each forecast start (an *init*: a test sequence and the frame where its context begins) the model observes
``context`` true frames, then generates ``horizon`` frames one after the other; each generated frame is fed back
through ``observe``, so its ``mu`` and diffusion context come from the generated past (algorithm 2 of the RVD
paper, section 4.2: 4 context frames, 16 generated). Ensemble members are rows of one batch: the context is
expanded to ``(members, channel, y, x)`` and observed once, so no recurrent state is ever copied.

The forecast file follows ``docs/formats.md`` ("Forecast file"): ``V (init, member, lead_time, [channel,] y, x)``
in physical units and the verifying truth ``V_obs (init, lead_time, [channel,] y, x)``. As an addition to the
conventions it also holds the frames the model observed, ``V_context (init, context_time, [channel,] y, x)`` with
``context_time`` = ``-context+1 .. 0`` (0: the last context frame), so that a forecast file alone can be plotted
with its context and scored against persistence (``forecast score --reference persistence``).

Memory and interruption. The file is written piece by piece: each chunk of at most ``batch_size`` members of one
init is written as soon as it is generated, so memory holds one chunk, never the ensemble. Writing goes to
``.NAME.partial`` beside the final path, which is renamed to the final name only when every init is done, so a
forecast file under its final name is always complete. On an interruption (Ctrl-C, a killed job) the partial
file stays; ``resume=True`` (``forecast rollout ... --resume``) checks that it was written with the same settings
and continues with the inits it lacks. Any other error deletes the partial file.

Reproducibility. Each chunk's noise comes from its own ``torch.Generator`` seeded from
``(seed, sequence, start, first member of the chunk)``: a forecast does not depend on which other inits are in
the run, on their order, or on an interruption and resume, and it does not depend on ``batch_size`` as long as
``batch_size >= members`` (a smaller batch size splits members into chunks with their own noise streams). The
same seed gives the same file on the same device and software.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from forecast import __version__
from forecast.data.channels import ChannelLayout
from forecast.device import autocast_dtype
from forecast.diffusion import SAMPLERS
from forecast.errors import ForecastError
from forecast.models.base import SequenceModel

#: global attribute listing the inits finished so far; present only in a partial file
_DONE_ATTR = "rollout_completed_inits"
#: global attribute holding the settings a partial file was started with (checked on resume)
_SETTINGS_ATTR = "rollout_settings"


class RolloutInterrupted(ForecastError):
    """A rollout stopped by the user; its finished inits are kept in the partial file for ``--resume``."""


@dataclass(frozen=True)
class Init:
    """One forecast start: ``sequence`` (position in the store) and ``start`` (first context frame)."""

    sequence: int
    start: int


def choose_inits(
    n_sequences: int, sequence_length: int, context: int, horizon: int, inits: int | None
) -> list[Init]:
    """Forecast starts spread evenly over the test sequences, and evenly over time within each sequence.

    ``inits=None`` takes one start per sequence (at its beginning). Otherwise sequences are used in turn, the
    first ``inits % n_sequences`` getting one start more, and each sequence's starts are spread evenly over its
    admissible range ``0 .. sequence_length - context - horizon``. Inits come back sorted by sequence and start.
    """
    if context < 1 or horizon < 1:
        raise ForecastError(f"context ({context}) and horizon ({horizon}) must both be at least 1")
    window = context + horizon
    if window > sequence_length:
        raise ForecastError(
            f"context + horizon = {context} + {horizon} = {window} frames is longer than the test sequences "
            f"({sequence_length} frames)"
        )
    if n_sequences < 1:
        raise ForecastError("the test group has no sequences")
    if inits is None:
        inits = n_sequences
    if inits < 1:
        raise ForecastError(f"--inits must be at least 1 (got {inits})")
    n_starts = sequence_length - window + 1  # admissible starts per sequence
    if inits > n_sequences * n_starts:
        raise ForecastError(
            f"{inits} inits asked for, but the test group has only {n_sequences * n_starts} distinct starts "
            f"({n_sequences} sequences x {n_starts} starts for a {window}-frame window)"
        )
    per_sequence = [inits // n_sequences + (1 if i < inits % n_sequences else 0) for i in range(n_sequences)]
    if inits < n_sequences:
        # fewer inits than sequences: take sequences spread evenly rather than the first ones
        chosen = np.round(np.linspace(0, n_sequences - 1, inits)).astype(int)
        per_sequence = [1 if i in set(chosen.tolist()) else 0 for i in range(n_sequences)]
    result = []
    for seq, k in enumerate(per_sequence):
        if k == 0:
            continue
        starts = np.round(np.linspace(0, n_starts - 1, k)).astype(int) if k > 1 else np.array([0])
        result.extend(Init(seq, int(s)) for s in starts)
    return result


def chunk_generator(seed: int, init: Init, first_member: int, device: torch.device) -> torch.Generator:
    """The noise source of one member chunk of one init, independent of every other chunk and init."""
    words = np.random.SeedSequence([seed, init.sequence, init.start, first_member]).generate_state(
        2, np.uint32
    )
    generator = torch.Generator(device=device)
    generator.manual_seed(int(words[0]) << 31 | int(words[1]) >> 1)  # 63 bits: a valid torch seed
    return generator


# --------------------------------------------------------------------------------------------------- generation
@torch.inference_mode()
def generate(
    model: SequenceModel,
    context_frames: torch.Tensor,
    horizon: int,
    members: int,
    *,
    sampler: str = "ddpm",
    steps: int | None = None,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    amp_dtype: torch.dtype | None = None,
    on_frame=None,
) -> torch.Tensor:
    """Roll ``model`` out from one init: ``(members, horizon, channel, y, x)`` normalised frames.

    ``context_frames`` ``(context, channel, y, x)`` are observed by every member (batch row); then each
    generated frame is observed before the next is drawn, so the recurrent state carries the generated past.
    """
    n_context, channels, height, width = context_frames.shape
    device = context_frames.device
    state = model.initial_state(members, height, width, device)
    frames = []
    with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        for t in range(n_context):
            state = model.observe(state, context_frames[t].expand(members, channels, height, width))
        for lead in range(horizon):
            frame = model.sample_next(
                state, sampler=sampler, steps=steps, eta=eta, generator=generator
            ).float()
            if frame.shape != (members, channels, height, width):
                raise ForecastError(
                    f"model {model.name!r} returned a frame of shape {tuple(frame.shape)}, "
                    f"expected {(members, channels, height, width)}"
                )
            frames.append(frame)
            if lead + 1 < horizon:  # the last frame needs no observing
                state = model.observe(state, frame)
            if on_frame is not None:
                on_frame()
    return torch.stack(frames, dim=1)


# --------------------------------------------------------------------------------------------------- the file
def _partial_path(out_path: Path) -> Path:
    return out_path.with_name(f".{out_path.name}.partial")


def _netcdf_value_type(values: np.ndarray):
    # native byte order: zarr may hand back big-endian arrays, netCDF4 warns about those
    return str if values.dtype.kind in "OUS" else values.dtype.newbyteorder("=")


def _create_file(
    path: Path,
    layout: ChannelLayout,
    test_ds: xr.Dataset,
    chosen: list[Init],
    members: int,
    context: int,
    horizon: int,
    attrs: dict[str, Any],
    settings: str,
):
    import netCDF4

    nc = netCDF4.Dataset(path, "w", format="NETCDF4")
    n_init = len(chosen)
    has_channel = any(c is not None for _, c in layout.channels)
    nc.createDimension("init", n_init)
    nc.createDimension("member", members)
    nc.createDimension("lead_time", horizon)
    if has_channel:
        counts = {
            len(layout.channels_of(v)) for v in layout.variables if layout.channels_of(v)[0] is not None
        }
        if len(counts) > 1:
            raise ForecastError(
                f"variables with different channel counts {sorted(counts)} cannot share a file"
            )
        nc.createDimension("channel", counts.pop())
    nc.createDimension("y", layout.height)
    nc.createDimension("x", layout.width)

    init_coords = ["sequence", "init_time"]
    var = nc.createVariable("init", "i4", ("init",))
    var[:] = np.arange(n_init)
    var.long_name = "forecast start"
    seq_index = np.array([i.sequence for i in chosen])
    if "sequence" in test_ds.coords:
        labels = np.asarray(test_ds["sequence"].values)[seq_index]
        seq_attrs = dict(test_ds["sequence"].attrs)
    else:
        labels, seq_attrs = seq_index, {}
    var = nc.createVariable("sequence", _netcdf_value_type(labels), ("init",))
    var[:] = labels.astype(object) if labels.dtype.kind in "OUS" else labels
    var.setncatts({"long_name": "test sequence of the source store", **_attrs(seq_attrs)})
    var = nc.createVariable("init_time", "i4", ("init",))
    var[:] = np.array([i.start + context for i in chosen])
    var.long_name = "source frame index of the first forecast frame"
    var.units = "frames"
    # per-sequence parameters of the store (reynolds number, ...) follow their sequence
    for name, coord in test_ds.coords.items():
        if name == "sequence" or coord.dims != ("sequence",):
            continue
        values = np.asarray(coord.values)[seq_index]
        var = nc.createVariable(name, _netcdf_value_type(values), ("init",))
        var[:] = values.astype(object) if values.dtype.kind in "OUS" else values
        var.setncatts(_attrs(coord.attrs))
        init_coords.append(name)

    var = nc.createVariable("member", "i4", ("member",))
    var[:] = np.arange(members)
    var.standard_name = "realization"
    var.long_name = "ensemble member"
    nc.createDimension("context_time", context)
    var = nc.createVariable("context_time", "i4", ("context_time",))
    var[:] = np.arange(-context + 1, 1)
    var.long_name = "frames relative to the last context frame"
    var.units = "frames"
    var = nc.createVariable("lead_time", "i4", ("lead_time",))
    var[:] = np.arange(1, horizon + 1)
    var.standard_name = "forecast_period"
    var.long_name = "frames after the last context frame"
    var.units = "frames"
    lead_coords = []
    time = test_ds.coords.get("time")
    if time is not None and "units" in time.attrs and time.dtype.kind in "iuf" and time.size > 1:
        spacing = np.diff(np.asarray(time.values, dtype=np.float64))
        if np.allclose(spacing, spacing[0]):
            var = nc.createVariable("forecast_period", "f8", ("lead_time",))
            var[:] = np.arange(1, horizon + 1) * spacing[0]
            var.long_name = "lead time in the source's time units"
            var.units = str(time.attrs["units"])
            lead_coords.append("forecast_period")
    if has_channel:
        var = nc.createVariable("channel", "i4", ("channel",))
        var[:] = np.arange(len(nc.dimensions["channel"]))
    for dim in ("y", "x"):
        values = np.asarray(test_ds[dim].values) if dim in test_ds.coords else np.arange(test_ds.sizes[dim])
        var = nc.createVariable(dim, _netcdf_value_type(values), (dim,))
        var[:] = values
        if dim in test_ds.coords:
            var.setncatts(_attrs(test_ds[dim].attrs))

    for name in layout.variables:
        channel_dims = ("channel",) if layout.channels_of(name)[0] is not None else ()
        frame_dims = (*channel_dims, "y", "x")
        frame_shape = tuple(len(nc.dimensions[d]) for d in frame_dims)
        var_attrs = {k: str(v) for k, v in layout.attrs.get(name, {}).items()}
        fc = nc.createVariable(
            name, "f4", ("init", "member", "lead_time", *frame_dims), chunksizes=(1, 1, 1, *frame_shape)
        )
        fc.setncatts(var_attrs)
        fc.coordinates = " ".join(init_coords + lead_coords)
        obs = nc.createVariable(
            f"{name}_obs", "f4", ("init", "lead_time", *frame_dims), chunksizes=(1, 1, *frame_shape)
        )
        obs.setncatts({**var_attrs, "long_name": f"{var_attrs.get('long_name', name)} (verifying truth)"})
        obs.coordinates = " ".join(init_coords + lead_coords)
        seen = nc.createVariable(
            f"{name}_context", "f4", ("init", "context_time", *frame_dims), chunksizes=(1, 1, *frame_shape)
        )
        seen.setncatts({**var_attrs, "long_name": f"{var_attrs.get('long_name', name)} (context frames)"})
        seen.coordinates = " ".join(init_coords)

    nc.setncatts(_attrs(attrs))
    nc.setncattr(_SETTINGS_ATTR, settings)
    nc.setncattr(_DONE_ATTR, "[]")
    nc.sync()
    return nc


def _attrs(attrs: dict) -> dict:
    return {str(k): _attr_value(v) for k, v in attrs.items()}


def _attr_value(value: Any):
    """netCDF attributes hold numbers and strings; everything else is stored as its string form."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float | str | np.integer | np.floating):
        return value
    if value is None:
        return "none"
    return str(value)


# --------------------------------------------------------------------------------------------------- rollout
def rollout(
    model: SequenceModel,
    layout: ChannelLayout,
    test_ds: xr.Dataset,
    out_path: str | os.PathLike,
    *,
    members: int = 8,
    context: int = 4,
    horizon: int = 16,
    inits: int | Sequence[Init] | None = None,
    sampler: str = "ddpm",
    steps: int | None = None,
    eta: float = 0.0,
    seed: int = 0,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    amp: bool = False,
    attrs: dict[str, Any] | None = None,
    resume: bool = False,
    progress: bool = False,
) -> Path:
    """Write an ensemble forecast file for ``inits`` starts of ``test_ds`` and return its path.

    ``inits`` is a count (spread evenly by ``choose_inits``; ``None``: one per sequence) or explicit
    ``Init`` objects. ``attrs`` are added to the file's global attributes (the CLI puts the checkpoint, run
    directory and source store there). See the module docstring for chunking, interruption and seeding.
    """
    out_path = Path(out_path)
    device = torch.device(device)
    if sampler not in SAMPLERS:
        raise ForecastError(f"unknown sampler {sampler!r}; choose one of {SAMPLERS}")
    if steps is not None and steps < 1:
        raise ForecastError(f"--steps must be at least 1 (got {steps})")
    if members < 1:
        raise ForecastError(f"--members must be at least 1 (got {members})")
    if batch_size < 1:
        raise ForecastError(f"--batch-size must be at least 1 (got {batch_size})")
    n_diffusion = getattr(getattr(model, "diffusion", None), "steps", None)
    if sampler == "ddpm" and steps is not None and isinstance(n_diffusion, int) and steps != n_diffusion:
        raise ForecastError(
            f"the ddpm sampler runs all {n_diffusion} diffusion steps of this model; use --sampler ddim for {steps}"
        )
    layout.check_compatible(test_ds, "test store")
    if not model.stochastic and members > 1:
        members = 1  # a deterministic model gives the same frame every time: one member says it all
    n_sequences, length = test_ds.sizes["sequence"], test_ds.sizes["time"]
    if inits is None or isinstance(inits, int | np.integer):
        chosen = choose_inits(n_sequences, length, context, horizon, None if inits is None else int(inits))
    else:
        chosen = list(inits)
        choose_inits(n_sequences, length, context, horizon, 1)  # validates the window
        for init in chosen:
            if not (0 <= init.sequence < n_sequences and 0 <= init.start <= length - context - horizon):
                raise ForecastError(f"{init} lies outside the test group ({n_sequences} x {length} frames)")

    settings = json.dumps(
        {
            "model": model.name,
            "members": members,
            "context": context,
            "horizon": horizon,
            "inits": [[i.sequence, i.start] for i in chosen],
            "sampler": sampler,
            "steps": steps,
            "eta": eta,
            "seed": seed,
            "member_chunk": min(members, batch_size),  # chunks have their own noise: part of the result
            "amp": amp,
            "variables": list(layout.variables),
            **{k: str(v) for k, v in (attrs or {}).items()},
        },
        sort_keys=True,
    )
    file_attrs = {
        "Conventions": "CF-1.8",
        "title": f"{model.name} ensemble forecast",
        "model": model.name,
        "sampler": sampler,
        "sampling_steps": _resolved_steps(model, steps),
        "eta": eta,
        "seed": seed,
        "context_length": context,
        "horizon": horizon,
        "members": members,
        "member_chunk": min(members, batch_size),
        "variables": " ".join(layout.variables),
        "software": f"forecast {__version__}, torch {torch.__version__}",
        "device": str(device),
        "amp": int(amp),
        "seeding": "one torch.Generator per (seed, sequence, start, first member of chunk)",
        **(attrs or {}),
    }

    model = model.to(device).eval()
    amp_dtype = autocast_dtype(device) if amp else None
    partial = _partial_path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    nc, done = _open_partial(partial, settings) if resume and partial.exists() else (None, set())
    if nc is None:
        try:
            nc = _create_file(
                partial, layout, test_ds, chosen, members, context, horizon, file_attrs, settings
            )
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    chunk = min(members, batch_size)
    n_chunks = -(-members // chunk)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=(len(chosen) - len(done)) * n_chunks * horizon,
            unit="frame",
            desc="rollout",
            dynamic_ncols=True,
        )
    try:
        for index, init in enumerate(chosen):
            if index in done:
                continue
            if bar is not None:
                bar.set_postfix_str(f"init {index + 1}/{len(chosen)}", refresh=False)
            window = test_ds.isel(
                sequence=init.sequence, time=slice(init.start, init.start + context + horizon)
            )
            window = window[list(layout.variables)].load()
            normalised = layout.stack(window.isel(time=slice(0, context)))
            if not np.isfinite(normalised).all():
                raise ForecastError(f"context frames of {init} contain NaN or infinite values")
            context_frames = torch.from_numpy(normalised).to(device)
            for name in layout.variables:
                nc[f"{name}_context"][index] = np.asarray(
                    window[name].isel(time=slice(0, context)).values, np.float32
                )
                nc[f"{name}_obs"][index] = np.asarray(
                    window[name].isel(time=slice(context, None)).values, np.float32
                )
            for first in range(0, members, chunk):
                size = min(chunk, members - first)
                frames = generate(
                    model,
                    context_frames,
                    horizon,
                    size,
                    sampler=sampler,
                    steps=steps,
                    eta=eta,
                    generator=chunk_generator(seed, init, first, device),
                    amp_dtype=amp_dtype,
                    on_frame=bar.update if bar is not None else None,
                ).cpu()
                if not torch.isfinite(frames).all():
                    raise ForecastError(
                        f"model {model.name!r} generated NaN or infinite values for {init}; "
                        "the checkpoint may be diverged"
                    )
                for name, values in layout.unstack(frames.numpy()).items():
                    nc[name][index, first : first + size] = values
            done.add(index)
            nc.setncattr(_DONE_ATTR, json.dumps(sorted(done)))
            nc.sync()
    except KeyboardInterrupt:
        nc.close()
        if bar is not None:
            bar.close()
        raise RolloutInterrupted(
            f"interrupted after {len(done)} of {len(chosen)} inits; the finished ones are kept in {partial}: "
            "rerun the same command with --resume to continue"
        ) from None
    except BaseException:
        nc.close()
        partial.unlink(missing_ok=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    nc.delncattr(_DONE_ATTR)
    nc.delncattr(_SETTINGS_ATTR)
    nc.close()
    os.replace(partial, out_path)
    return out_path


def _resolved_steps(model: SequenceModel, steps: int | None) -> int | str:
    """The number of sampling steps actually run: ``steps``, or the model's N when it exposes its diffusion."""
    if steps is not None:
        return steps
    n = getattr(getattr(model, "diffusion", None), "steps", None)
    return int(n) if isinstance(n, int) else "all"


def _open_partial(partial: Path, settings: str):
    """Reopen an interrupted rollout's file; refuse it if it was started with other settings."""
    import netCDF4

    try:
        nc = netCDF4.Dataset(partial, "a")
    except OSError as exc:
        raise ForecastError(f"cannot resume from {partial} ({exc}); delete it and start again") from None
    if _SETTINGS_ATTR not in nc.ncattrs() or nc.getncattr(_SETTINGS_ATTR) != settings:
        nc.close()
        raise ForecastError(
            f"{partial} was started with other settings (model, checkpoint, inits, sampler, seed, ...); "
            "rerun with the same options, or without --resume to start afresh"
        )
    done = set(json.loads(nc.getncattr(_DONE_ATTR)))
    return nc, done
