"""PSNR, SSIM, LPIPS, FVD: closed forms, a direct scipy reference, and invariants of the learned metrics.

The pretrained backbones (torchvision's AlexNet, I3D Kinetics-400) cannot be downloaded here, so the learned
metrics' invariants are checked on seeded randomly initialised networks of the same architecture; where the
`lpips` package is installed its shipped linear heads are loaded through the real loading code.
"""

import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg
import xarray as xr

from forecast.errors import ForecastError
from forecast.metrics.fvd import feature_statistics, frechet_distance
from forecast.metrics.perceptual import psnr, ssim

torch = pytest.importorskip("torch")


def _frames(rng, n=4, size=32, channels=False):
    """Smooth structured frames (blurred noise), values in 0..255."""
    from scipy import ndimage

    shape = (n, 3, size, size) if channels else (n, size, size)
    sigma = (0, 0, 2, 2) if channels else (0, 2, 2)
    smooth = ndimage.gaussian_filter(rng.normal(size=shape), sigma)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min()) * 200 + 25
    dims = ("frame", "channel", "y", "x") if channels else ("frame", "y", "x")
    return xr.DataArray(smooth, dims=dims)


def _noisy(da, rng, sigma):
    return (da + rng.normal(0, sigma, da.shape)).clip(0, 255)


# --- Frechet distance ---------------------------------------------------------------------------------------
def test_frechet_distance_matches_direct_scipy(rng):
    a = rng.normal(size=(50, 6))
    b = rng.normal(size=(40, 6)) @ rng.normal(size=(6, 6)) + 0.5
    mu1, s1 = feature_statistics(a)
    mu2, s2 = feature_statistics(b)
    np.testing.assert_allclose(mu1, a.mean(0))
    np.testing.assert_allclose(s1, np.cov(a.T))
    direct = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(direct, rel=1e-8)
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(direct, rel=1e-8)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_of_one_dimensional_gaussians():
    # closed form in 1-D: (m1 - m2)^2 + (s1 - s2)^2 for standard deviations s1, s2
    value = frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[9.0]]))
    assert value == pytest.approx(9.0 + 1.0)


def test_frechet_distance_with_singular_covariances(rng):
    a = rng.normal(size=(3, 10))  # fewer samples than dims: rank-deficient covariances (rank 2)
    b = rng.normal(size=(3, 10)) + 0.3
    mu1, s1 = feature_statistics(a)
    mu2, s2 = feature_statistics(b)
    assert np.linalg.matrix_rank(s1) == 2 and np.linalg.matrix_rank(s2) == 2
    # tr((S1 S2)^(1/2)) is the nuclear norm of S1^(1/2) S2^(1/2), and so of A B^T for any factors S1 = A^T A,
    # S2 = B^T B: here the centred samples, with no eigendecomposition of a covariance
    factor_a = (a - mu1) / np.sqrt(len(a) - 1)
    factor_b = (b - mu2) / np.sqrt(len(b) - 1)
    trace_sqrt = np.linalg.svd(factor_a @ factor_b.T, compute_uv=False).sum()
    direct = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt
    # rel 1e-7: the eigenvalues the rank leaves at zero come out as round-off, and sqrt(1e-16) is 1e-8 each
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(direct, rel=1e-7)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-6)
    # commuting singular covariances (a shared rotation, zeros on the diagonal): the closed form
    # |mu1 - mu2|^2 + sum (sqrt(d1) - sqrt(d2))^2
    q = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    d1, d2 = np.array([4.0, 0.0, 1.0, 0.0, 9.0, 0.0]), np.array([1.0, 0.0, 0.0, 2.0, 9.0, 0.0])
    m1, m2 = rng.normal(size=6), rng.normal(size=6)
    value = frechet_distance(m1, q @ np.diag(d1) @ q.T, m2, q @ np.diag(d2) @ q.T)
    assert value == pytest.approx(np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(d1) - np.sqrt(d2)) ** 2), rel=1e-7)


# --- PSNR and SSIM ------------------------------------------------------------------------------------------
def test_psnr_closed_form():
    a = xr.DataArray(np.zeros((2, 8, 8)), dims=("frame", "y", "x"))
    b = a + 10.0
    np.testing.assert_allclose(psnr(a, b).values, 10 * np.log10(255.0**2 / 100.0))
    assert np.isinf(psnr(a, a).values).all()


def test_ssim_identical_constant_and_symmetric(rng):
    frames = _frames(rng)
    np.testing.assert_allclose(ssim(frames, frames).values, 1.0)
    c1, c2 = 40.0, 90.0
    a = xr.DataArray(np.full((1, 16, 16), c1), dims=("frame", "y", "x"))
    b = xr.DataArray(np.full((1, 16, 16), c2), dims=("frame", "y", "x"))
    k1 = (0.01 * 255) ** 2
    np.testing.assert_allclose(ssim(a, b).values, (2 * c1 * c2 + k1) / (c1**2 + c2**2 + k1))
    noisy = _noisy(frames, rng, 20)
    np.testing.assert_allclose(ssim(frames, noisy).values, ssim(noisy, frames).values)


@pytest.mark.parametrize("channels", [False, True], ids=["grey", "rgb"])
def test_ssim_matches_scikit_image(rng, channels):
    """scikit-image's structural_similarity with the same parameters (Gaussian window, sigma 1.5, 11 taps,
    population covariances, K1 0.01, K2 0.03, reflected borders): the same SSIM map at every pixel. skimage's
    mean leaves out a border of half a window; ours averages the whole map (the map is compared)."""
    metrics = pytest.importorskip("skimage.metrics")
    from forecast.metrics.perceptual import _ssim_frames

    truth = _frames(rng, n=3, size=24, channels=channels)
    noisy = _noisy(truth, rng, 25)
    ours = _ssim_frames(truth.values, noisy.values, 255.0, 1.5, 0.01, 0.03)
    for i in range(3):
        _, reference = metrics.structural_similarity(
            truth.values[i], noisy.values[i], data_range=255.0, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, K1=0.01, K2=0.03, full=True, channel_axis=0 if channels else None,
        )  # fmt: skip
        np.testing.assert_allclose(ours[i], reference, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ssim(truth, noisy).values[i], reference.mean(), rtol=1e-10)
    assert 0.2 < ssim(truth, noisy).values.mean() < 0.95  # a real difference, not the identical-frames 1


def test_ssim_and_psnr_fall_with_noise_and_broadcast_over_members(rng):
    truth = _frames(rng, channels=True)
    members = xr.concat([_noisy(truth, rng, s) for s in (5, 15, 40)], dim="member")
    s = ssim(members, truth).mean("frame").values
    p = psnr(members, truth).mean("frame").values
    assert s[0] > s[1] > s[2] and p[0] > p[1] > p[2]
    assert ssim(members, truth).dims == ("member", "frame")
    # RGB frames: the mean over channels of per-channel SSIM
    per_channel = [ssim(members.isel(channel=c), truth.isel(channel=c)) for c in range(3)]
    np.testing.assert_allclose(ssim(members, truth).values, sum(per_channel).values / 3)


# --- LPIPS --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lpips_net():
    from forecast.metrics.networks.alexnet import LPIPS, alexnet_features
    from forecast.metrics.weights import LPIPS_ALEX, _package_file, load_state_dict

    torch.manual_seed(0)
    net = LPIPS()
    backbone = {f"features.{k}": v for k, v in alexnet_features().state_dict().items()}
    backbone["classifier.1.weight"] = torch.zeros(4096, 9216)  # torchvision's classifier: ignored
    shipped = _package_file(LPIPS_ALEX)
    heads = (
        load_state_dict(shipped)
        if shipped
        else {
            f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate((64, 192, 384, 256, 256))
        }
    )
    net.load_weights(backbone, heads)
    return net


def test_lpips_invariants(rng, lpips_net):
    from forecast.metrics.perceptual import lpips

    truth = _frames(rng, channels=True)
    np.testing.assert_allclose(lpips(truth, truth, network=lpips_net).values, 0.0, atol=1e-7)
    a, b = _noisy(truth, rng, 10), _noisy(truth, rng, 30)
    np.testing.assert_allclose(
        lpips(a, b, network=lpips_net).values, lpips(b, a, network=lpips_net).values, rtol=1e-5
    )
    distances = [float(lpips(_noisy(truth, rng, s), truth, network=lpips_net).mean()) for s in (3, 15, 60)]
    assert distances[0] < distances[1] < distances[2]
    grey = _frames(rng)
    assert lpips(grey, _noisy(grey, rng, 20), network=lpips_net).dims == ("frame",)


def test_lpips_shipped_heads_load_through_the_real_path():
    from forecast.metrics.weights import LPIPS_ALEX, _package_file, find_weights, load_state_dict

    if _package_file(LPIPS_ALEX) is None:
        pytest.skip("the lpips package (which ships the heads) is not installed")
    state = load_state_dict(find_weights(LPIPS_ALEX, download=False))
    assert [tuple(v.shape) for v in state.values()] == [(1, c, 1, 1) for c in (64, 192, 384, 256, 256)]
    assert all(float(v.min()) >= 0 for v in state.values())  # LPIPS heads are non-negative


def test_lpips_small_frames_are_refused(rng, lpips_net):
    from forecast.metrics.perceptual import lpips

    small = _frames(rng, size=16)
    with pytest.raises(ForecastError, match="at least 32x32"):
        lpips(small, small, network=lpips_net)


# --- FVD ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def i3d_net():
    from forecast.metrics.networks.i3d import I3D

    torch.manual_seed(0)
    return I3D()


def _videos(rng, n=6, frames=9, size=32):
    """Moving smooth patterns: (video, time, y, x) in 0..255."""
    from scipy import ndimage

    base = ndimage.gaussian_filter(rng.normal(size=(n, size, 2 * size)), (0, 3, 3))
    base = (base - base.min()) / (base.max() - base.min()) * 200 + 25
    clips = np.stack([np.stack([b[:, t : t + size] for t in range(frames)]) for b in base])
    return xr.DataArray(clips, dims=("video", "time", "y", "x"))


def test_fvd_invariants(rng, i3d_net):
    from forecast.metrics.fvd import fvd

    real = _videos(rng)
    other = _videos(rng)
    kw = {"network": i3d_net, "resize": 32}
    assert float(fvd(real, real, **kw)) == pytest.approx(0.0, abs=1e-6 * float(fvd(real, other, **kw)))
    assert float(fvd(real, other, **kw)) == pytest.approx(float(fvd(other, real, **kw)), rel=1e-6)
    # more noise, further away: the real set's features once, not once per pair (what fvd() does inside)
    from forecast.metrics.fvd import feature_statistics, i3d_features

    def stats(videos):
        return feature_statistics(i3d_features(videos.values, network=i3d_net, resize=32))

    reference = stats(real)
    values = [frechet_distance(*reference, *stats(_noisy(real, rng, s))) for s in (2, 20, 80)]
    assert values[0] < values[1] < values[2]


def test_i3d_needs_nine_frames(rng, i3d_net):
    from forecast.metrics.fvd import fvd

    short = _videos(rng, frames=5)
    with pytest.raises(ForecastError, match="at least 9 frames"):
        fvd(short, short, network=i3d_net, resize=32)


def test_i3d_state_dict_names_follow_the_published_port(i3d_net):
    keys = i3d_net.state_dict().keys()
    for key in (
        "Conv3d_1a_7x7.conv3d.weight",
        "Conv3d_1a_7x7.bn.running_var",
        "Mixed_3b.b1b.conv3d.weight",
        "Mixed_5c.b3b.bn.bias",
        "logits.conv3d.weight",
        "logits.conv3d.bias",
    ):
        assert key in keys
    assert i3d_net.logits.conv3d.weight.shape == (400, 1024, 1, 1, 1)


# --- video_scores: the function `forecast score` calls ------------------------------------------------------
def test_video_scores_on_a_forecast_dataset(rng, lpips_net, i3d_net):
    from forecast.metrics.video import video_scores

    truth = _videos(rng, n=3, frames=9).rename(video="init", time="lead_time")
    members = xr.concat([_noisy(truth, rng, s) for s in (5, 10)], dim="member").transpose(
        "init", "member", ...
    )
    ds = xr.Dataset({"frames": members, "frames_obs": truth})
    scores = video_scores(ds, metrics=("psnr", "ssim", "lpips"), lpips_network=lpips_net)
    for name in ("psnr_frames", "ssim_frames", "lpips_frames"):
        assert scores[name].dims == ("lead_time",) and scores[name].sizes["lead_time"] == 9
    expected = psnr(members, truth).mean(("init", "member"))
    np.testing.assert_allclose(scores.psnr_frames.values, expected.values)
    fvd_scores = video_scores(ds, metrics=("fvd",), i3d_network=i3d_net, fvd_resize=32)
    from forecast.metrics.fvd import fvd

    direct = fvd(truth.expand_dims(member=[0]), members, time_dim="lead_time", network=i3d_net, resize=32)
    assert fvd_scores.fvd_frames.dims == () and float(fvd_scores.fvd_frames) > 0
    assert float(fvd_scores.fvd_frames) == pytest.approx(float(direct))
    with pytest.raises(ForecastError, match="unknown perceptual metric"):
        video_scores(ds, metrics=("fid",))


def test_metrics_modules_do_not_import_torch():
    code = (
        "import sys, forecast.metrics.perceptual, forecast.metrics.fvd, forecast.metrics.video, "
        "forecast.metrics.weights; assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
