"""Perceptual scores of a video forecast file (docs/formats.md "Forecast file"), for ``forecast score``.

For each forecast variable ``V`` with its truth ``V_obs``, :func:`video_scores` returns

- ``psnr_V``, ``ssim_V``, ``lpips_V`` with dims ``(lead_time)``: the frame-wise metric of every member against
  the truth, averaged over ``init`` and ``member``;
- ``fvd_V`` (scalar): FVD between the observed videos (one per ``init``, over ``lead_time``) and the forecast
  videos (one per ``init`` and ``member``).

PSNR and SSIM need numpy only; LPIPS and FVD load torch and their pretrained weights when asked for.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import xarray as xr

from forecast.errors import ForecastError
from forecast.forecast_file import OBS_SUFFIX, forecast_variables
from forecast.metrics.perceptual import lpips, psnr, ssim

METRICS = ("psnr", "ssim", "lpips", "fvd")


def _data_range(da: xr.DataArray, default: float) -> float:
    valid = da.attrs.get("valid_range")
    if valid is not None and len(valid) == 2:
        return float(valid[1]) - float(valid[0])
    return default


def video_scores(
    forecast_ds: xr.Dataset,
    metrics: Sequence[str] = METRICS,
    variables: Sequence[str] | None = None,
    data_range: float = 255.0,
    weights: str | os.PathLike | None = None,
    device: str = "cpu",
    lpips_network=None,
    i3d_network=None,
    fvd_resize: int = 224,
) -> xr.Dataset:
    """Perceptual scores of a forecast Dataset (see the module docstring). ``weights`` is a folder searched
    first for the pretrained weights; ``lpips_network``/``i3d_network`` override the pretrained networks;
    ``fvd_resize`` is the frame size I3D sees (224, as in the reference FVD)."""
    unknown = set(metrics) - set(METRICS)
    if unknown:
        raise ForecastError(
            f"unknown perceptual metric(s) {sorted(unknown)}; choose from {', '.join(METRICS)}"
        )
    variables = list(variables) if variables else forecast_variables(forecast_ds)
    if not variables:
        raise ForecastError("the forecast has no variable V with its truth V_obs")
    out = xr.Dataset()
    for name in variables:
        if f"{name}{OBS_SUFFIX}" not in forecast_ds:
            raise ForecastError(f"the forecast has no truth {name}_obs for {name!r}")
        fc, obs = forecast_ds[name], forecast_ds[f"{name}{OBS_SUFFIX}"]
        for dim in ("init", "member", "lead_time"):
            if dim not in fc.dims:
                raise ForecastError(f"forecast variable {name!r} lacks the dim {dim!r} (dims {fc.dims})")
        value_range = _data_range(fc, data_range)
        framewise = {"psnr": psnr, "ssim": ssim}
        for metric in metrics:
            if metric in framewise:
                score = framewise[metric](fc, obs, data_range=value_range)
            elif metric == "lpips":
                score = lpips(
                    fc, obs, data_range=value_range, network=lpips_network, weights=weights, device=device
                )
            else:
                from forecast.metrics.fvd import fvd

                real = obs.expand_dims(member=[0])
                score = fvd(
                    real,
                    fc,
                    time_dim="lead_time",
                    network=i3d_network,
                    weights=weights,
                    data_range=value_range,
                    device=device,
                    resize=fvd_resize,
                )
                out[f"fvd_{name}"] = score.assign_attrs(videos="forecast members vs observed, over lead_time")
                continue
            out[f"{metric}_{name}"] = score.mean(
                [d for d in ("init", "member") if d in score.dims]
            ).assign_attrs(score.attrs)
    return out
