"""The stochastic vortex street (inlet noise) and its perfect-model truth ensembles."""

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from forecast.errors import ForecastError
from forecast.field_store import is_complete, open_field_store
from simulators.karman import KarmanConfig, generate
from simulators.karman import parallel as karman_parallel
from simulators.karman.lattice import INFLOW_ARRAY, build_lattice
from simulators.karman.noise import InflowNoise, spatial_factor
from simulators.karman.run import run_frames

# The tiny channel of test_karman.py (32x96 cells, D = 2), with room in the test group for truth starts.
TINY = dict(frames=6, test_frames=5, every=8, size=(32, 32), spinup=16, write_batch=4, time_chunk=2)
TRUTH = dict(truth_members=3, truth_inits=2, truth_horizon=2, truth_context=1)
# Frames of today's (before the noise option) deterministic street at Re 150 with TINY, written by the code
# before this change; the zero-noise path must reproduce them (bit for bit on the machine that wrote them,
# to float32 round-off on another compiler).
REFERENCE = Path(__file__).parent / "data" / "karman_deterministic_re150.npz"


def _truth(path: Path) -> xr.Dataset:
    return xr.open_zarr(str(path), group="truth", consolidated=False).load()


@pytest.fixture(scope="module")
def deterministic_truth(tmp_path_factory):
    path = tmp_path_factory.mktemp("karman") / "det.zarr"
    generate(path, KarmanConfig(reynolds=(150.0,), **TINY, **TRUTH), scheduler="synchronous", progress=False)
    return path


@pytest.fixture(scope="module")
def noisy_truth(tmp_path_factory):
    path = tmp_path_factory.mktemp("karman") / "noisy.zarr"
    config = KarmanConfig(reynolds=(150.0,), inflow_noise=0.2, **TINY, **TRUTH)
    generate(path, config, scheduler="synchronous", progress=False)
    return path, config


def test_zero_noise_is_todays_deterministic_street_and_forking_does_not_touch_it(deterministic_truth):
    reference = np.load(REFERENCE)
    train, test = (
        open_field_store(deterministic_truth, "train"),
        open_field_store(deterministic_truth, "test"),
    )
    for name in ("u", "v"):
        np.testing.assert_allclose(test[name].values[0], reference[f"test_{name}"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(train[name].values[0, -1:], reference[f"train_{name}"], rtol=0, atol=1e-6)
    assert test.attrs["inflow_noise"] == 0.0


def test_zero_noise_truth_members_equal_each_other_and_the_test_frames(deterministic_truth):
    test = open_field_store(deterministic_truth, "test").load()
    truth = _truth(deterministic_truth)
    assert truth["u"].dims == ("init", "member", "lead_time", "y", "x")
    assert truth["u"].shape == (2, 3, 2, 32, 32)
    np.testing.assert_array_equal(truth["lead_time"].values, [1, 2])
    # starts spread over the test frames (times 6..10): one context frame before, the horizon after
    np.testing.assert_array_equal(truth["init_time"].values, [7, 9])
    for i in range(truth.sizes["init"]):
        for lead in truth["lead_time"].values:
            verifying = test.sel(
                sequence=int(truth["sequence"][i]), time=int(truth["init_time"][i]) + lead - 1
            )
            for name in ("u", "v", "rho", "vorticity"):
                members = truth[name].isel(init=i).sel(lead_time=lead).values
                for m in range(truth.sizes["member"]):
                    np.testing.assert_array_equal(members[m], verifying[name].values)


def test_store_with_truth_opens_whole_without_warnings(noisy_truth):
    import warnings

    path, _ = noisy_truth
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tree = xr.open_datatree(str(path), engine="zarr")
    assert set(tree.children) == {"train", "test", "truth"}
    truth = tree["truth"].to_dataset()
    assert truth["member"].attrs["standard_name"] == "realization"
    assert sorted(c for c in truth.coords if "axis" in truth[c].attrs) == [
        "x",
        "y",
    ]  # one T axis: test's time
    assert all(truth[c].attrs.get("long_name") for c in truth.coords)


def test_noise_perturbs_the_inflow_and_is_recorded(noisy_truth):
    path, config = noisy_truth
    test = open_field_store(path, "test")
    assert test.attrs["inflow_noise"] == 0.2 and test.attrs["noise_seed"] == 0
    assert test.attrs["noise_time_lattice_steps"] == pytest.approx(2.0 * 2.0 / 0.05)
    assert test["noise_seed"].dims == ("sequence",)
    inlet_u = test["u"].isel(sequence=0, x=0).values[:, 2:-2]  # away from the side walls
    # a perturbed free stream: varies along the inlet and in time, around U
    assert inlet_u.std(axis=1).mean() > 1e-3 and np.abs(np.diff(inlet_u, axis=0)).max() > 1e-3
    assert abs(inlet_u.mean() - 0.05) < 0.01


def test_noisy_truth_members_share_their_start_and_then_differ(noisy_truth):
    path, config = noisy_truth
    test = open_field_store(path, "test").load()
    truth = _truth(path)
    np.testing.assert_array_equal(truth["init_time"].values, config.truth_init_times)
    seeds = truth["noise_seed"].values
    assert len(np.unique(seeds)) == seeds.size  # every member its own future noise
    for i in range(truth.sizes["init"]):
        u = truth["u"].isel(init=i).values  # (member, lead, y, x)
        spread = u.std(axis=0).mean(axis=(1, 2))
        assert (
            spread[0] > 0 and spread[1] > spread[0]
        )  # independent noise: the members separate, more and more
        first = test["u"].sel(sequence=0, time=int(truth["init_time"][i])).values
        # the same start: one frame after the fork, every member is close to the verifying frame (much closer
        # than frames one lead apart are to each other)
        step_change = np.abs(
            first - test["u"].sel(sequence=0, time=int(truth["init_time"][i]) - 1).values
        ).mean()
        assert np.abs(u[:, 0] - first).mean() < 0.5 * step_change


def test_seed_reproduces_and_another_seed_diverges():
    config = KarmanConfig(reynolds=(150.0,), inflow_noise=0.2, **{**TINY, "frames": 12})
    lattice = build_lattice(config, 150.0, noise_seed=1)
    assert INFLOW_ARRAY in lattice.step.data_handling.cpu_arrays
    initial = lattice.save_state()

    def run(seed: int) -> np.ndarray:
        # the state of a freshly built lattice with this noise seed (the PDFs do not depend on the seed)
        lattice.restore_state(initial)
        old = lattice.noise
        lattice.noise = InflowNoise(0.2, old.velocity, config.grid_height, 4.0, old.tau, seed)
        return np.stack([frame["v"] for frame in run_frames(config, 0, lattice)])

    a, b, c = run(1), run(1), run(2)
    np.testing.assert_array_equal(a, b)
    difference = np.sqrt(((a - c) ** 2).mean(axis=(1, 2)))
    assert difference[0] > 0
    assert difference[-4:].mean() > 3 * difference[:4].mean()  # the runs drift apart


def test_zero_noise_lattice_has_the_constant_inflow():
    lattice = build_lattice(KarmanConfig(reynolds=(150.0,), **TINY), 150.0, noise_seed=5)
    assert lattice.noise is None and INFLOW_ARRAY not in lattice.step.data_handling.cpu_arrays


def test_noise_process_statistics():
    # unit variance per cell, Gaussian correlation across the inlet, exp(-s/tau) in time
    factor = spatial_factor(np.arange(64.0), 4.0)
    covariance = factor @ factor.T
    np.testing.assert_allclose(np.diag(covariance), 1.0, atol=1e-6)
    np.testing.assert_allclose(covariance[10, 14], np.exp(-0.5), atol=1e-6)
    noise = InflowNoise(0.1, 0.05, 64, 4.0, 100.0, seed=3)
    samples = []
    for _ in range(4000):
        before = noise.xi.copy()
        noise.advance(50)
        samples.append((before, noise.xi.copy()))
    x0 = np.concatenate([s[0].ravel() for s in samples])
    x1 = np.concatenate([s[1].ravel() for s in samples])
    assert np.corrcoef(x0, x1)[0, 1] == pytest.approx(np.exp(-0.5), abs=0.02)
    assert x1.std() == pytest.approx(1.0, abs=0.03)
    u, v = noise.velocities()
    assert u.shape == v.shape == (64,)


def test_truth_group_is_absent_until_every_run_finished(tmp_path, monkeypatch):
    path = tmp_path / "half.zarr"
    config = KarmanConfig(reynolds=(150.0, 160.0), **TINY, **TRUTH)
    real_run = karman_parallel.simulate_run

    def interrupted(path_, config_, index):
        if index == 1:
            raise KeyboardInterrupt
        return real_run(path_, config_, index)

    monkeypatch.setattr(karman_parallel, "simulate_run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate(path, config, scheduler="synchronous", progress=False)
    assert "truth" not in zarr.open_group(str(path), mode="r")
    monkeypatch.setattr(karman_parallel, "simulate_run", real_run)
    generate(path, config, scheduler="synchronous", progress=False, resume=True)
    assert is_complete(path)
    truth = _truth(path)
    np.testing.assert_array_equal(truth["sequence"].values, [0, 0, 1, 1])
    assert np.abs(truth["u"].values).min(axis=(1, 2, 3, 4)).shape == (4,)
    assert (np.abs(truth["u"].values).max(axis=(1, 2, 3, 4)) > 0.01).all()  # every start written


def test_truth_options_are_checked():
    with pytest.raises(ForecastError, match="--test-frames"):
        KarmanConfig(reynolds=(150.0,), **{**TINY, "test_frames": 3}, **TRUTH)
    with pytest.raises(ForecastError, match="--inflow-noise"):
        KarmanConfig(inflow_noise=-0.1)
    with pytest.raises(ForecastError, match="--truth-members"):
        KarmanConfig(truth_members=-1)


def test_cli_writes_the_stochastic_street_with_its_truth(tmp_path, capsys):
    from forecast.cli import main

    out = tmp_path / "cli.zarr"
    args = ["simulate", "karman", str(out), "--reynolds", "100", "--frames", "2", "--test-frames", "4"]
    args += ["--every", "8", "--size", "32", "--spinup", "16", "--scheduler", "synchronous", "--quiet"]
    args += ["--inflow-noise", "0.2", "--noise-seed", "7", "--truth-members", "2", "--truth-inits", "1"]
    args += ["--truth-horizon", "2", "--truth-context", "2"]
    assert main(args) == 0
    assert "truth: 2 members x 1 starts x 2 frames" in capsys.readouterr().out
    test = open_field_store(out, "test")
    assert test.attrs["inflow_noise"] == 0.2 and test.attrs["noise_seed"] == 7
    truth = _truth(out)
    assert truth["u"].shape == (1, 2, 2, 32, 32) and int(truth["init_time"][0]) == 4
    # starts that do not fit the test frames: one line naming the remedy, nothing written
    bad = [*args, "--truth-inits", "5", "--overwrite"]
    assert main(bad) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--test-frames" in err
