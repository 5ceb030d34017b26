"""Synthetic forecast files with a known distribution, for tests, benchmarks and trying the scoring tools.

Truth and members are independent draws from ``N(mu, sigma^2)`` per pixel, with ``mu`` a smooth moving
pattern and ``sigma`` growing with lead time; members get ``dispersion * sigma``. ``dispersion=1`` is a
calibrated ensemble (flat rank histogram, spread-skill ratio ~1), below 1 under-dispersive, above 1 over.
``synthetic_truth`` draws the matching truth ensemble of a known-answer store (``truth`` group): K more draws
from the truth's own ``N(mu, sigma^2)``, so its CRPS is the oracle CRPS of these forecasts.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from forecast.forecast_file import OBS_SUFFIX

_FRAME_INDEX = {"long_name": "frame index of the first forecast frame", "units": "1"}


def _distribution(k: int, n_lead: int, chan: tuple, ny: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean (lead, [channel,] y, x) and standard deviation (lead, 1...) of the truth of the k-th variable."""
    y, x, lead = np.arange(ny), np.arange(nx), np.arange(1, n_lead + 1)
    phase = 2 * np.pi * (x[None, None, :] / nx + 0.05 * lead[:, None, None]) + k
    mu = np.sin(phase) * np.cos(2 * np.pi * y[None, :, None] / ny)  # (lead, y, x)
    mu = np.broadcast_to(mu.reshape(n_lead, *(1,) * len(chan), ny, nx), (n_lead, *chan, ny, nx))
    sigma = 0.1 * np.sqrt(lead).reshape(n_lead, *(1,) * (len(chan) + 2))
    return mu, sigma


def synthetic_forecast(
    n_init: int = 4,
    n_member: int = 8,
    n_lead: int = 5,
    ny: int = 16,
    nx: int = 16,
    variables: tuple[str, ...] = ("u", "v"),
    n_channel: int | None = None,
    dispersion: float = 1.0,
    bias: float = 0.0,
    dtype=np.float64,
    seed: int = 0,
    model_name: str = "synthetic",
    n_context: int = 2,
) -> xr.Dataset:
    """A forecast Dataset laid out as docs/formats.md's forecast file (with ``V_context`` frames too)."""
    rng = np.random.default_rng(seed)
    chan = () if n_channel is None else (n_channel,)
    data = {}
    for k, name in enumerate(variables):
        data.update(
            _draws(rng, k, name, (n_init, n_member, n_lead, n_context, ny, nx), chan, dispersion, bias, dtype)
        )
    return xr.Dataset(
        data,
        coords=_coords(n_init, n_member, n_lead, n_context, ny, nx),
        attrs={
            "Conventions": "CF-1.8",
            "title": f"synthetic ensemble forecast ({model_name})",
            "history": "forecast.metrics.synthetic.synthetic_forecast",
            "source": "draws from known normal distributions",
            "model_name": model_name,
            "sampler": "exact",
            "seed": seed,
            "context_length": n_context,
        },
    )


def _draws(
    rng: np.random.Generator,
    k: int,
    name: str,
    sizes: tuple[int, ...],
    chan: tuple[int, ...],
    dispersion: float,
    bias: float,
    dtype,
) -> dict[str, tuple]:
    """The members ``V``, truth ``V_obs`` and context ``V_context`` of the k-th variable, drawn in that order:
    truth, members, context. ``sizes``: (init, member, lead, context, y, x)."""
    n_init, n_member, n_lead, n_context, ny, nx = sizes
    chan_dims = ("channel",) if chan else ()
    mu, sigma = _distribution(k, n_lead, chan, ny, nx)
    obs = mu + sigma * rng.standard_normal((n_init, n_lead, *chan, ny, nx))
    ens = (
        mu[None, None]
        + bias
        + dispersion * sigma * rng.standard_normal((n_init, n_member, n_lead, *chan, ny, nx))
    )
    context = rng.standard_normal((n_init, n_context, *chan, ny, nx)) * 0.1 + mu[:1]
    attrs = {"units": "1", "long_name": f"synthetic field {name}, in lattice units"}
    return {
        name: (("init", "member", "lead_time", *chan_dims, "y", "x"), ens.astype(dtype), attrs),
        f"{name}{OBS_SUFFIX}": (("init", "lead_time", *chan_dims, "y", "x"), obs.astype(dtype), attrs),
        f"{name}_context": (("init", "context_time", *chan_dims, "y", "x"), context.astype(dtype), attrs),
    }


def _coords(n_init: int, n_member: int, n_lead: int, n_context: int, ny: int, nx: int) -> dict[str, tuple]:
    """The coordinates of a synthetic forecast file."""
    return {
        "init": ("init", np.arange(n_init), {"long_name": "forecast start", "units": "1"}),
        "sequence": (
            "init",
            np.arange(n_init) % 3,
            {"long_name": "sequence of the source", "units": "1"},
        ),
        "init_time": ("init", 10 + np.arange(n_init), _FRAME_INDEX),
        "member": ("member", np.arange(n_member), {"standard_name": "realization", "units": "1"}),
        "lead_time": (
            "lead_time",
            np.arange(1, n_lead + 1),
            {"long_name": "lead time in frames after the last context frame", "units": "1"},
        ),
        "context_time": (
            "context_time",
            np.arange(-n_context + 1, 1),
            {"long_name": "context frame time relative to the last context frame", "units": "1"},
        ),
        "y": ("y", np.arange(ny), {"long_name": "y, in lattice cells", "units": "1", "axis": "Y"}),
        "x": ("x", np.arange(nx), {"long_name": "x, in lattice cells", "units": "1", "axis": "X"}),
    }


def synthetic_truth(forecast: xr.Dataset, n_member: int = 16, seed: int = 1) -> xr.Dataset:
    """A truth group for a ``synthetic_forecast``: ``n_member`` draws of the truth's distribution per init.

    Laid out as a store's ``truth`` group: ``V (init, member, lead_time, [channel,] y, x)`` with ``sequence``
    and ``init_time`` along ``init`` (the forecast's), ``lead_time`` the forecast's values.
    """
    rng = np.random.default_rng(seed)
    names = [str(v)[: -len(OBS_SUFFIX)] for v in forecast.data_vars if str(v).endswith(OBS_SUFFIX)]
    n_init, n_lead = forecast.sizes["init"], forecast.sizes["lead_time"]
    ny, nx = forecast.sizes["y"], forecast.sizes["x"]
    chan = (forecast.sizes["channel"],) if "channel" in forecast.dims else ()
    data = {}
    for k, name in enumerate(names):
        mu, sigma = _distribution(k, n_lead, chan, ny, nx)
        draws = mu[None, None] + sigma * rng.standard_normal((n_init, n_member, n_lead, *chan, ny, nx))
        data[name] = (forecast[name].dims, draws.astype(forecast[name].dtype), dict(forecast[name].attrs))
    coords = {
        "init": np.arange(n_init),
        "sequence": ("init", forecast["sequence"].values),
        "init_time": ("init", forecast["init_time"].values),
        "member": np.arange(n_member),
        "lead_time": ("lead_time", forecast["lead_time"].values, dict(forecast["lead_time"].attrs)),
    }
    return xr.Dataset(data, coords=coords, attrs={"description": "synthetic truth ensemble"})
