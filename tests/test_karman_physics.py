"""Physics: the simulated shedding frequency matches Williamson's empirical Strouhal relation."""

import pytest

from forecast.store import open_field_store
from simulators.karman import KarmanConfig, generate
from simulators.karman.analysis import strouhal_number, williamson_strouhal


@pytest.mark.slow
def test_strouhal_number_matches_williamson_at_re_100_and_150(tmp_path):
    # The default geometry at 128x128 (D = 8, 6% blockage), 300 frames every 128 steps: ~30 shedding periods.
    config = KarmanConfig(reynolds=(100.0, 150.0), frames=240, test_frames=60, size=(128, 128))
    generate(tmp_path / "karman.zarr", config, scheduler="synchronous", progress=False)
    ds = open_field_store(tmp_path / "karman.zarr", "train")
    for index, reynolds in enumerate(config.reynolds):
        measured = strouhal_number(ds, index)
        expected = williamson_strouhal(reynolds)
        print(
            f"Re = {reynolds:g}: St = {measured:.4f}, Williamson {expected:.4f}, {100 * (measured / expected - 1):+.1f}%"
        )
        assert abs(measured / expected - 1) < 0.10, (reynolds, measured, expected)
