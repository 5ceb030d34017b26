"""ChannelLayout: stacking store variables into normalised model channels and back."""

import numpy as np
import pytest
import xarray as xr

from forecast.data.channels import ChannelLayout
from forecast.errors import ForecastError


def _dataset(rng):
    u = rng.normal(3.0, 2.0, size=(2, 5, 8, 6)).astype("float32")
    rgb = rng.integers(0, 255, size=(2, 5, 3, 8, 6)).astype("uint8")
    return xr.Dataset(
        {
            "u": (("sequence", "time", "y", "x"), u, {"units": "lu", "long_name": "velocity"}),
            "frames": (("sequence", "time", "channel", "y", "x"), rgb),
        }
    )


def test_stack_normalises_with_train_statistics_and_unstack_inverts(rng, tmp_path):
    ds = _dataset(rng)
    layout = ChannelLayout.from_dataset(ds, ["u", "frames"])
    assert layout.n_channels == 4
    x = layout.stack(ds)
    assert x.shape == (2, 5, 4, 8, 6) and x.dtype == np.float32
    # each channel standardised: mean 0, std 1 over everything but the channel axis
    np.testing.assert_allclose(x.mean(axis=(0, 1, 3, 4)), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=(0, 1, 3, 4)), 1, atol=1e-4)
    back = layout.unstack(x)
    np.testing.assert_allclose(back["u"], ds["u"].values, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(back["frames"], ds["frames"].values, atol=1e-3)
    layout.to_json(tmp_path / "n.json")
    assert ChannelLayout.from_json(tmp_path / "n.json") == layout


def test_check_compatible_refuses_other_variables_and_sizes(rng):
    ds = _dataset(rng)
    layout = ChannelLayout.from_dataset(ds, ["u"])
    layout.check_compatible(ds)
    with pytest.raises(ForecastError, match="lacks variables"):
        layout.check_compatible(ds.rename({"u": "v"}))
    with pytest.raises(ForecastError, match="frames of"):
        layout.check_compatible(ds.isel(x=slice(0, 4)))


def test_nan_in_train_statistics_is_refused(rng):
    ds = _dataset(rng)
    ds["u"][0, 0, 0, 0] = np.nan
    with pytest.raises(ForecastError, match="NaN"):
        ChannelLayout.from_dataset(ds, ["u"])
