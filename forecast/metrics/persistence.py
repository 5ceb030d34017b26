"""The persistence forecast: the last context frame held at every lead time, as a reference for skill scores.

``persistence_reference`` builds it for a whole forecast Dataset from its context frames; its CRPS is the mean
absolute error of persistence. (The persistence *model*, which writes forecast files, is
``forecast.models.baselines.persistence``.)
"""

from __future__ import annotations

import xarray as xr

from forecast.errors import ForecastError


def persistence_forecast(
    last_frame: xr.DataArray, lead_time: xr.DataArray, member_dim: str = "member"
) -> xr.DataArray:
    """The persistence forecast: the last context frame repeated at every lead time, as a one-member ensemble."""
    forecast = last_frame.expand_dims({member_dim: 1}).broadcast_like(lead_time)
    order = [d for d in last_frame.dims if d in ("init",)] + [member_dim, *lead_time.dims]
    order += [d for d in forecast.dims if d not in order]
    return forecast.transpose(*order).assign_attrs(last_frame.attrs)


def persistence_reference(forecast: xr.Dataset, member_dim: str = "member") -> xr.Dataset:
    """A persistence forecast Dataset for ``forecast``: each V's last context frame (``V_context``) at every lead.

    The result is a forecast Dataset (``V`` with one member, ``V_obs`` the same truth) that scoring functions
    accept as a reference; its CRPS is the mean absolute error of persistence.
    """
    from forecast.forecast_file import CONTEXT_SUFFIX, OBS_SUFFIX, forecast_variables

    out = {}
    for v in forecast_variables(forecast, member_dim):
        context = forecast.get(f"{v}{CONTEXT_SUFFIX}")
        if context is None or "context_time" not in context.dims:
            raise ForecastError(
                f"persistence needs the context frames {v}{CONTEXT_SUFFIX} (init, context_time, ...); the file has none"
            )
        last = context.isel(context_time=-1, drop=True)
        lead = forecast[f"{v}{OBS_SUFFIX}"]["lead_time"]
        out[v] = persistence_forecast(last, lead, member_dim).transpose(*forecast[v].dims)
        out[f"{v}{OBS_SUFFIX}"] = forecast[f"{v}{OBS_SUFFIX}"]
    return xr.Dataset(out, attrs={"model_name": "persistence"})
