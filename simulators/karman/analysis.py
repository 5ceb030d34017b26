"""Physics checks on stored frames: the shedding Strouhal number against Williamson's relation."""

from __future__ import annotations

import numpy as np
import xarray as xr

from forecast.errors import ForecastError


def williamson_strouhal(reynolds: float) -> float:
    """Williamson's fit for 2-D parallel (laminar) shedding behind a circular cylinder, 49 < Re < 180.

    St = -3.3265 / Re + 0.1816 + 1.6e-4 Re  (C. H. K. Williamson, "Defining a universal and continuous
    Strouhal-Reynolds number relationship for the laminar vortex shedding of a circular cylinder",
    Phys. Fluids 31, 2742 (1988); the same form is eq. (2) of Williamson, Annu. Rev. Fluid Mech. 28, 1996).
    """
    return -3.3265 / reynolds + 0.1816 + 1.6e-4 * reynolds


def probe_series(ds: xr.Dataset, sequence: int, diameters_downstream: float = 5.0) -> xr.DataArray:
    """Transverse velocity ``v`` at a point on the wake axis, ``diameters_downstream`` D behind the cylinder."""
    seq = ds.isel(sequence=sequence)
    x0 = float(seq["cylinder_x"]) + diameters_downstream * float(seq["cylinder_diameter"])
    y0 = float(seq["cylinder_y"])
    return seq["v"].sel(x=x0, y=y0, method="nearest").load()


def shedding_frequency(signal: np.ndarray, interval: float) -> float:
    """Mean frequency (per unit of ``interval``) from upward zero crossings, linearly interpolated."""
    s = np.asarray(signal, dtype=np.float64)
    s = s - s.mean()
    up = np.where((s[:-1] < 0) & (s[1:] >= 0))[0]
    if up.size < 3:
        raise ForecastError(f"only {up.size} shedding cycles in the probe signal; store more frames")
    crossings = up + (-s[up] / (s[up + 1] - s[up]))  # fractional frame index
    period_frames = (crossings[-1] - crossings[0]) / (crossings.size - 1)
    return 1.0 / (period_frames * interval)


def strouhal_number(ds: xr.Dataset, sequence: int) -> float:
    """St = f D / U measured from the stored frames of one sequence."""
    seq = ds.isel(sequence=sequence)
    f = shedding_frequency(probe_series(ds, sequence).values, float(ds.attrs["frame_interval"]))
    return f * float(seq["cylinder_diameter"]) / float(seq["inflow_velocity"])
