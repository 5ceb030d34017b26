"""Synthetic forecast files with a known distribution, for tests, benchmarks and trying the scoring tools.

Truth and members are independent draws from ``N(mu, sigma^2)`` per pixel, with ``mu`` a smooth moving
pattern and ``sigma`` growing with lead time; members get ``dispersion * sigma``. ``dispersion=1`` is a
calibrated ensemble (flat rank histogram, spread-skill ratio ~1), below 1 under-dispersive, above 1 over.
"""

from __future__ import annotations

import numpy as np
import xarray as xr


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
    y, x = np.arange(ny), np.arange(nx)
    lead = np.arange(1, n_lead + 1)
    chan = () if n_channel is None else (n_channel,)
    chan_dims = () if n_channel is None else ("channel",)
    data = {}
    for k, name in enumerate(variables):
        phase = 2 * np.pi * (x[None, None, :] / nx + 0.05 * lead[:, None, None]) + k
        mu = np.sin(phase) * np.cos(2 * np.pi * y[None, :, None] / ny)  # (lead, y, x)
        mu = np.broadcast_to(mu.reshape(n_lead, *(1,) * len(chan), ny, nx), (n_lead, *chan, ny, nx))
        sigma = 0.1 * np.sqrt(lead).reshape(n_lead, *(1,) * (len(chan) + 2))
        obs = mu + sigma * rng.standard_normal((n_init, n_lead, *chan, ny, nx))
        ens = (
            mu[None, None]
            + bias
            + dispersion * sigma * rng.standard_normal((n_init, n_member, n_lead, *chan, ny, nx))
        )
        context = rng.standard_normal((n_init, n_context, *chan, ny, nx)) * 0.1 + mu[:1]
        attrs = {"units": "lattice units", "long_name": f"velocity component {name}"}
        data[name] = (("init", "member", "lead_time", *chan_dims, "y", "x"), ens.astype(dtype), attrs)
        data[f"{name}_obs"] = (("init", "lead_time", *chan_dims, "y", "x"), obs.astype(dtype), attrs)
        data[f"{name}_context"] = (
            ("init", "context_time", *chan_dims, "y", "x"),
            context.astype(dtype),
            attrs,
        )
    ds = xr.Dataset(
        data,
        coords={
            "init": np.arange(n_init),
            "sequence": ("init", np.arange(n_init) % 3),
            "init_time": ("init", 10 + np.arange(n_init)),
            "member": ("member", np.arange(n_member), {"standard_name": "realization"}),
            "lead_time": ("lead_time", lead, {"standard_name": "forecast_period", "units": "frames"}),
            "context_time": ("context_time", np.arange(-n_context + 1, 1), {"units": "frames"}),
            "y": ("y", y, {"units": "lattice cells"}),
            "x": ("x", x, {"units": "lattice cells"}),
        },
        attrs={"model_name": model_name, "sampler": "exact", "seed": seed, "context_length": n_context},
    )
    return ds
