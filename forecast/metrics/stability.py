"""Long-rollout stability: whether the members stay finite and within the data's range, lead after lead.

The data's range of a variable is the range of its verifying truth in the forecast file (every init and lead)
widened on both sides by :data:`RANGE_MARGIN` times its span: ``[lo - m (hi - lo), hi + m (hi - lo)]``. A member
*leaves* at the first lead where any of its pixels is not finite or outside that range, and stays out from then
on (an unphysical state is not undone by coming back). Two scores follow:

* ``stable_fraction`` (``lead_time``): the share of the (init, member) rollouts that have not left by that lead;
* ``stability_horizon`` (scalar): the first lead time at which any rollout left (where ``stable_fraction`` drops
  below 1); NaN where none left within the forecast's lead times (the scores file says so in its
  ``stability_note`` attribute).

Both are computed from three per-frame numbers of each member (its lowest and highest value and its count of
non-finite values), which the streamed scoring (``streaming``) gathers block by block.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

#: how far beyond the verifying truth's range a member may go, as a share of that range's span
RANGE_MARGIN = 0.25


def data_range(obs: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """The widened range ``(low, high)`` of the verifying truth ``obs`` (missing values left out)."""
    return widened(obs.min(skipna=True), obs.max(skipna=True))


def widened(low, high):
    """``(low, high)`` widened by :data:`RANGE_MARGIN` times the span on each side."""
    span = high - low
    return low - RANGE_MARGIN * span, high + RANGE_MARGIN * span


def frame_extremes(ens: xr.DataArray, member_dim: str = "member") -> xr.Dataset:
    """Per (init, member, lead_time): the member's lowest and highest value and its count of non-finite ones."""
    plane = [d for d in ens.dims if d not in ("init", member_dim, "lead_time")]
    finite = ens.where(np.isfinite(ens))
    return xr.Dataset(
        {
            "low": finite.min(plane, skipna=True),
            "high": finite.max(plane, skipna=True),
            "nonfinite": (~np.isfinite(ens)).sum(plane),
        }
    )


def departed(extremes: xr.Dataset, low, high) -> xr.DataArray:
    """Per (init, member, lead_time): whether the rollout has left the range ``[low, high]`` by that lead."""
    out = (extremes["nonfinite"] > 0) | (extremes["low"] < low) | (extremes["high"] > high)
    return out.cumsum("lead_time") > 0


def _lead_values(flags: xr.DataArray) -> np.ndarray:
    lead = (
        flags["lead_time"].values
        if "lead_time" in flags.coords
        else np.arange(1, flags.sizes["lead_time"] + 1)
    )
    return np.asarray(lead, dtype=np.float64)


def stable_fraction(gone: xr.DataArray) -> xr.DataArray:
    """The share of rollouts that have not left by each lead (``gone``: :func:`departed`)."""
    rest = [d for d in gone.dims if d != "lead_time"]
    return (1.0 - gone.astype(np.float64).mean(rest)).assign_attrs(
        long_name="share of the rollouts still finite and within the data's range", units="1"
    )


def stability_horizon(fraction: xr.DataArray) -> xr.DataArray:
    """The first lead time at which a rollout has left: where ``fraction`` (:func:`stable_fraction`) drops below 1;
    NaN where it never does."""
    lead = xr.DataArray(_lead_values(fraction), dims="lead_time")
    first = lead.where((fraction < 1).variable).min("lead_time", skipna=True)
    return first.drop_vars(list(first.coords)).assign_attrs(
        long_name="first lead time at which a member is not finite or outside the data's range "
        "(NaN: none within the forecast)"
    )
