"""Vortex shedding at a probe: the Strouhal number of every member's rollout and of the verifying truth.

For a forecast of the vortex street (coordinates ``cylinder_x``, ``cylinder_y``, ``cylinder_diameter`` and
``inflow_velocity`` along ``init``, the store's ``frame_interval`` in lattice steps) the transverse velocity ``v``
is read at a probe :data:`PROBE_DIAMETERS` diameters behind the cylinder on the wake axis (the nearest pixel),
over all lead times. Its shedding frequency is the peak of the periodogram of the mean-removed, Hann-windowed
series, zero-padded :data:`ZERO_PADDING`-fold and refined by a parabola through the log power of the peak and
its neighbours (cycles per frame); then ``St = f D / (U frame_interval)``. The peak of a spectrum, unlike zero
crossings, is not moved by the small-scale noise that a generated member may carry.

A frequency needs several periods: with fewer than :data:`MIN_LEADS` lead times (about ten shedding periods at
the benchmark's frame interval) the score is not defined, and :func:`unavailable` says why (the scores file
keeps that reason as an attribute). A member whose probe series is constant or not finite has no peak: NaN.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

#: the probe: diameters behind the cylinder's centre, on the wake axis (where v swings with the shedding)
PROBE_DIAMETERS = 5.0
#: fewest lead times a shedding frequency is measured from
MIN_LEADS = 64
#: the periodogram is zero-padded to this many times the series' length before its peak is found
ZERO_PADDING = 16
#: the coordinates along ``init`` that locate the probe and scale the frequency
STREET_COORDS = ("cylinder_x", "cylinder_y", "cylinder_diameter", "inflow_velocity")


def unavailable(ds: xr.Dataset) -> str | None:
    """Why the Strouhal number of the forecast ``ds`` cannot be measured, or None where it can."""
    missing = [c for c in STREET_COORDS if c not in ds.coords]
    if "v" not in ds.data_vars or missing:
        return "not a vortex street: the forecast lacks " + ", ".join(
            (["the variable v"] if "v" not in ds.data_vars else []) + missing
        )
    if "channel" in ds["v"].dims:
        return "the variable v has channels: not a velocity component"
    if "frame_interval" not in ds.attrs:
        return "the forecast file has no frame_interval attribute (lattice steps per frame, from its store)"
    if ds.sizes["lead_time"] < MIN_LEADS:
        return (
            f"the forecast has {ds.sizes['lead_time']} lead times; a shedding frequency needs at least "
            f"{MIN_LEADS} (several periods)"
        )
    return None


def peak_frequency(series: np.ndarray) -> np.ndarray:
    """The frequency (cycles per sample) of the periodogram's peak of each series along the last axis; NaN for a
    constant or non-finite series."""
    x = np.asarray(series, dtype=np.float64)
    n = x.shape[-1]
    x = (x - x.mean(axis=-1, keepdims=True)) * np.hanning(n)
    power = np.abs(np.fft.rfft(x, n=ZERO_PADDING * n, axis=-1)) ** 2
    power[..., 0] = 0.0  # the mean, removed already
    peak = np.clip(np.argmax(power, axis=-1), 1, power.shape[-1] - 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        around = np.log(np.take_along_axis(power, peak[..., None] + np.array([-1, 0, 1]), axis=-1))
        left, centre, right = np.moveaxis(around, -1, 0)
        shift = 0.5 * (left - right) / (left - 2 * centre + right)
    shift = np.where(np.isfinite(shift) & (np.abs(shift) <= 1), shift, 0.0)
    frequency = (peak + shift) / (ZERO_PADDING * n)
    defined = np.isfinite(x).all(axis=-1) & (power.max(axis=-1) > 0)
    return np.where(defined, frequency, np.nan)


def probe_series(field: xr.DataArray, ds: xr.Dataset) -> xr.DataArray:
    """``field`` (dims ``init``, ..., ``lead_time``, ``y``, ``x``) at each init's probe: the nearest pixel to
    :data:`PROBE_DIAMETERS` diameters behind the cylinder, on its axis."""
    x0 = np.asarray(ds["cylinder_x"].values + PROBE_DIAMETERS * ds["cylinder_diameter"].values, dtype=float)
    y0 = np.asarray(ds["cylinder_y"].values, dtype=float)
    ix = np.abs(np.asarray(ds["x"].values, dtype=float)[None, :] - x0[:, None]).argmin(axis=1)
    iy = np.abs(np.asarray(ds["y"].values, dtype=float)[None, :] - y0[:, None]).argmin(axis=1)
    ix, iy = xr.DataArray(ix, dims="init"), xr.DataArray(iy, dims="init")
    return field.isel(x=ix, y=iy).drop_vars(["x", "y"], errors="ignore")


def strouhal_numbers(field: xr.DataArray, ds: xr.Dataset) -> xr.DataArray:
    """``St = f D / (U frame_interval)`` of each series of ``field`` (``v`` or ``v_obs``) at the probe; the
    other dims of ``field`` (``member``) kept."""
    series = probe_series(field, ds)
    if series.chunks is not None:
        series = series.chunk({"lead_time": -1})  # one series per block: the periodogram needs all of it
    frequency = xr.apply_ufunc(
        peak_frequency,
        series,
        input_core_dims=[["lead_time"]],
        dask="parallelized",
        output_dtypes=[np.float64],
    )
    diameter, speed = (
        np.asarray(ds[c].values, dtype=float) for c in ("cylinder_diameter", "inflow_velocity")
    )
    scale = xr.DataArray(diameter / (speed * float(ds.attrs["frame_interval"])), dims="init")
    return (frequency * scale).assign_attrs(
        long_name=f"Strouhal number f D / U of v at {PROBE_DIAMETERS:g} D behind the cylinder", units="1"
    )
