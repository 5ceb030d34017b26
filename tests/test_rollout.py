"""Ensemble rollouts: init choice, context feeding, the forecast file, seeding, chunking, interruption, CLI.

The models here are test doubles with known behaviour: ``Persistence`` (next frame = last observed frame,
deterministic) and ``RandomWalk`` (next = last observed + Gaussian noise drawn from the generator), so every
expected value is known in closed form.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
import zarr

from forecast.data.channels import ChannelLayout
from forecast.diffusion import GaussianDiffusion
from forecast.errors import ForecastError
from forecast.models.base import SequenceModel
from forecast.rollout import Init, RolloutInterrupted, choose_inits, rollout
from forecast.rollout_options import SOLVER_STEPS

N_SEQ, N_TIME, NY, NX = 3, 14, 5, 4


# --------------------------------------------------------------------------------------------- test models
class Persistence(SequenceModel):
    name = "persistence"
    stochastic = False

    def __init__(self):
        super().__init__()
        self.observed = 0
        self.batch_sizes: list[int] = []

    def initial_state(self, batch, height, width, device):
        self.batch_sizes.append(batch)
        return None

    def observe(self, state, frame):
        self.observed += 1
        return frame.clone()

    def sample_next(self, state, *, sampler="ddpm", steps=None, eta=0.0, generator=None):
        return state.clone()

    def loss(self, window, n_context):
        raise NotImplementedError


class RandomWalk(Persistence):
    name = "random_walk"
    stochastic = True
    scale = 0.5  # in normalised units

    def __init__(self, fail_at_call: int | None = None, exc: type[BaseException] = KeyboardInterrupt):
        super().__init__()
        self.calls = 0
        self.fail_at_call, self.exc = fail_at_call, exc

    def sample_next(self, state, *, sampler="ddpm", steps=None, eta=0.0, generator=None):
        self.calls += 1
        if self.fail_at_call is not None and self.calls >= self.fail_at_call:
            raise self.exc()
        return state + self.scale * torch.randn(state.shape, generator=generator, device=state.device)


# --------------------------------------------------------------------------------------------- data
def _dataset(seed: int = 0, ny: int = NY, nx: int = NX, rgb: bool = False) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    # u[s, t] = 100 s + t + a fixed spatial pattern: every frame is identifiable from its value
    pattern = rng.normal(size=(ny, nx))
    u = (
        100.0 * np.arange(N_SEQ)[:, None, None, None] + np.arange(N_TIME)[None, :, None, None] + pattern
    ).astype("float32")
    data = {"u": (("sequence", "time", "y", "x"), u, {"units": "m s-1", "long_name": "velocity"})}
    if rgb:
        frames = rng.integers(0, 255, size=(N_SEQ, N_TIME, 3, ny, nx)).astype("uint8")
        data["frames"] = (
            ("sequence", "time", "channel", "y", "x"),
            frames,
            {"units": "1", "long_name": "video"},
        )
    return xr.Dataset(
        data,
        coords={
            "sequence": ("sequence", np.arange(10, 10 + N_SEQ)),
            "reynolds": ("sequence", np.array([100.0, 150.0, 200.0]), {"long_name": "Reynolds number"}),
            "time": ("time", np.arange(N_TIME) * 2.5, {"units": "s"}),
            "y": ("y", np.arange(ny), {"units": "cells"}),
            "x": ("x", np.arange(nx), {"units": "cells"}),
        },
    )


def _layout(ds: xr.Dataset, variables=("u",)) -> ChannelLayout:
    return ChannelLayout.from_dataset(ds, list(variables))


# --------------------------------------------------------------------------------------------- init choice
def test_choose_inits_spreads_over_sequences_then_time():
    # 3 sequences of 30 frames, window 10: starts 0..20 in each
    assert choose_inits(3, 30, 4, 6, None) == [Init(0, 0), Init(1, 0), Init(2, 0)]
    assert choose_inits(3, 30, 4, 6, 2) == [Init(0, 0), Init(2, 0)]
    assert choose_inits(3, 30, 4, 6, 7) == [
        *(Init(0, s) for s in (0, 10, 20)),
        *(Init(1, s) for s in (0, 20)),
        *(Init(2, s) for s in (0, 20)),
    ]
    assert len(set(choose_inits(3, 30, 4, 6, 63))) == 63  # every start, none twice
    with pytest.raises(ForecastError, match="distinct starts"):
        choose_inits(3, 30, 4, 6, 64)
    with pytest.raises(ForecastError, match="longer than the test sequences"):
        choose_inits(3, 30, 4, 27, 1)


# --------------------------------------------------------------------------------------------- the file
def test_persistence_forecast_file_layout_alignment_and_units(tmp_path):
    ds = _dataset()
    layout = _layout(ds)
    model = Persistence()
    out = rollout(model, layout, ds, tmp_path / "fc.nc", members=5, context=3, horizon=4, inits=4, seed=1)
    # context frames observed, then every generated frame but the last
    assert model.observed == 4 * (3 + 4 - 1)
    fc = xr.open_dataset(out)
    # a deterministic model is written with one member
    assert fc["u"].dims == ("init", "member", "lead_time", "y", "x") and fc.sizes["member"] == 1
    assert fc["u_obs"].dims == ("init", "lead_time", "y", "x")
    assert fc["u"].dtype == np.float32
    # the store's time is in seconds, 2.5 s per frame: lead_time is a real time, a CF forecast_period
    np.testing.assert_allclose(fc["lead_time"].values, [2.5, 5.0, 7.5, 10.0])
    assert fc["lead_time"].attrs["units"] == "s"
    assert fc["lead_time"].attrs["standard_name"] == "forecast_period"
    assert fc["member"].attrs["standard_name"] == "realization"
    assert fc["u"].attrs["units"] == "m s-1" and fc["u"].attrs["long_name"] == "velocity"
    assert fc.attrs["Conventions"] == "CF-1.8" and fc.attrs["model"] == "persistence"
    assert fc.attrs["context_length"] == 3 and fc.attrs["horizon"] == 4 and fc.attrs["seed"] == 1
    assert "rollout_completed_inits" not in fc.attrs  # bookkeeping of partial files only
    assert fc["u_context"].dims == ("init", "context_time", "y", "x")
    np.testing.assert_allclose(fc["context_time"].values, [-5.0, -2.5, 0.0])  # in the store's time units
    # the scoring side's persistence reference, built from V_context, is the persistence model's forecast
    from forecast.metrics.persistence import persistence_reference

    reference = persistence_reference(fc)
    np.testing.assert_allclose(reference["u"].values, fc["u"].values, rtol=1e-5, atol=1e-4)
    # 4 inits over 3 sequences (14 frames, 8 starts each): sequence 0 twice, at its first and last start
    assert list(fc["sequence"].values) == [10, 10, 11, 12]
    # init_time: the store's own time of the first forecast frame (frames 3, 10, 3, 3 at 2.5 s per frame)
    np.testing.assert_allclose(fc["init_time"].values, [7.5, 25.0, 7.5, 7.5])
    np.testing.assert_allclose(fc["forecast_reference_time"].values, fc["init_time"].values - 2.5)
    np.testing.assert_allclose(fc["valid_time"].values, fc["forecast_reference_time"] + fc["lead_time"])
    np.testing.assert_allclose(fc["reynolds"].values, [100, 100, 150, 200])
    np.testing.assert_array_equal(fc["y"].values, ds["y"].values)
    for i, (seq, t0) in enumerate([(0, 3), (0, 10), (1, 3), (2, 3)]):
        # truth: frames t0 .. t0 + 3, exactly the store's values
        np.testing.assert_array_equal(fc["u_obs"][i].values, ds["u"][seq, t0 : t0 + 4].values)
        # the frames the model saw: t0 - 3 .. t0 - 1, at context_time -2 .. 0
        np.testing.assert_array_equal(fc["u_context"][i].values, ds["u"][seq, t0 - 3 : t0].values)
        # persistence in physical units: every lead equals the last context frame
        for k in range(4):
            np.testing.assert_allclose(
                fc["u"][i, 0, k].values, ds["u"][seq, t0 - 1].values, rtol=1e-5, atol=1e-4
            )


def test_channel_variables_keep_their_channel_dim(tmp_path):
    ds = _dataset(rgb=True)
    layout = _layout(ds, ("u", "frames"))
    out = rollout(Persistence(), layout, ds, tmp_path / "fc.nc", context=2, horizon=3, inits=2)
    fc = xr.open_dataset(out)
    assert fc["frames"].dims == ("init", "member", "lead_time", "channel", "y", "x")
    assert fc["frames_obs"].dims == ("init", "lead_time", "channel", "y", "x")
    assert fc["frames_context"].dims == ("init", "context_time", "channel", "y", "x")
    assert fc["u"].dims == ("init", "member", "lead_time", "y", "x")
    # init 1 is sequence 2 (fewer inits than sequences: spread), forecast starts at frame 2
    np.testing.assert_array_equal(fc["frames_obs"][1].values, ds["frames"][2, 2:5].values.astype("float32"))
    np.testing.assert_allclose(fc["frames"][1, 0, 2].values, ds["frames"][2, 1].values, atol=1e-3)


# --------------------------------------------------------------------------------------------- stochastic models
def test_members_differ_and_generated_frames_are_carried_in_the_state(tmp_path):
    ds = _dataset()
    layout = _layout(ds)
    out = rollout(RandomWalk(), layout, ds, tmp_path / "fc.nc", members=64, context=2, horizon=4, inits=3)
    fc = xr.open_dataset(out)
    u = fc["u"].values  # (init, member, lead, y, x), physical
    assert not np.allclose(u[:, 0], u[:, 1])
    # a random walk from the last context frame: the spread across members grows like sqrt(lead) because each
    # frame starts from the previous *generated* frame; were the truth observed instead it would stay constant
    step_std = RandomWalk.scale * layout.std[0]
    spread = u.std(axis=1).mean(axis=(0, 2, 3))
    np.testing.assert_allclose(spread, step_std * np.sqrt([1, 2, 3, 4]), rtol=0.1)
    # the increments between consecutive leads are independent with the step's spread
    increments = np.diff(u, axis=2)
    np.testing.assert_allclose(increments.std(), step_std, rtol=0.05)
    # and the ensemble is centred on the last context frame
    last = np.stack([ds["u"][s, 1].values for s in range(3)])
    np.testing.assert_allclose(u.mean(axis=1)[:, 0], last, atol=4 * step_std / np.sqrt(64))


def test_same_seed_same_file_independent_of_batching_and_other_inits(tmp_path):
    ds = _dataset()
    layout = _layout(ds)

    def run(name, **kw):
        opts = dict(members=6, context=2, horizon=3, inits=5, seed=7, batch_size=6) | kw
        return xr.open_dataset(rollout(RandomWalk(), layout, ds, tmp_path / name, **opts))["u"].values

    reference = run("a.nc")
    np.testing.assert_array_equal(run("b.nc"), reference)
    # a larger batch size does not change anything (one chunk per init either way)
    np.testing.assert_array_equal(run("c.nc", batch_size=64), reference)
    # an init's forecast does not depend on which other inits are in the run
    alone = xr.open_dataset(
        rollout(
            RandomWalk(),
            layout,
            ds,
            tmp_path / "d.nc",
            members=6,
            context=2,
            horizon=3,
            inits=[Init(1, 0)],
            seed=7,
        )
    )
    # (of five inits over three 14-frame sequences, init 2 is sequence 1 at start 0)
    assert choose_inits(N_SEQ, N_TIME, 2, 3, 5)[2] == Init(1, 0)
    np.testing.assert_array_equal(alone["u"].values[0], reference[2])
    # another seed, another forecast
    assert not np.allclose(run("e.nc", seed=8), reference)


def test_members_are_chunked_to_the_batch_size(tmp_path):
    ds = _dataset()
    layout = _layout(ds)
    model = RandomWalk()
    out = rollout(
        model, layout, ds, tmp_path / "fc.nc", members=7, context=2, horizon=3, inits=2, batch_size=3
    )
    assert model.batch_sizes == [3, 3, 1, 3, 3, 1]
    fc = xr.open_dataset(out)
    u = fc["u"].values
    assert u.shape == (2, 7, 3, NY, NX) and np.isfinite(u).all()
    assert fc.attrs["member_chunk"] == 3
    # chunks have their own noise: no two members equal
    flat = u[0].reshape(7, -1)
    assert len({row.tobytes() for row in flat}) == 7
    # chunking reproducible too
    again = rollout(
        RandomWalk(), layout, ds, tmp_path / "fc2.nc", members=7, context=2, horizon=3, inits=2, batch_size=3
    )
    np.testing.assert_array_equal(xr.open_dataset(again)["u"].values, u)


def test_string_sequence_labels_are_written(tmp_path):
    ds = _dataset().assign_coords(sequence=["clip_a", "clip_b", "clip_c"])
    out = rollout(Persistence(), _layout(ds), ds, tmp_path / "fc.nc", context=2, horizon=2, inits=3)
    assert list(xr.open_dataset(out)["sequence"].values) == ["clip_a", "clip_b", "clip_c"]


@pytest.mark.gpu
def test_rollout_on_cuda_is_reproducible(tmp_path):
    ds = _dataset()
    layout = _layout(ds)
    opts = dict(members=4, context=2, horizon=3, inits=2, seed=5, device="cuda")
    a = xr.open_dataset(rollout(RandomWalk(), layout, ds, tmp_path / "a.nc", **opts))["u"].values
    b = xr.open_dataset(rollout(RandomWalk(), layout, ds, tmp_path / "b.nc", **opts))["u"].values
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[:, 0], a[:, 1])


# --------------------------------------------------------------------------------------------- bad input
def test_ddpm_with_fewer_steps_than_the_model_is_refused_before_writing(tmp_path):
    ds = _dataset()
    model = RandomWalk()
    model.diffusion = GaussianDiffusion(steps=100)
    with pytest.raises(ForecastError, match="ddpm sampler runs all 100"):
        rollout(model, _layout(ds), ds, tmp_path / "fc.nc", context=2, horizon=2, sampler="ddpm", steps=10)
    with pytest.raises(ForecastError, match="sampling steps must be an integer in 1..100"):
        rollout(model, _layout(ds), ds, tmp_path / "fc.nc", context=2, horizon=2, sampler="ddim", steps=101)
    with pytest.raises(ForecastError, match="eta must be 0"):
        rollout(model, _layout(ds), ds, tmp_path / "fc.nc", context=2, horizon=2, sampler="dpmpp2m", eta=1.0)
    assert not list(tmp_path.iterdir())
    # the resolved steps are what the file records: the default sampler's few, ddim's all N
    out = rollout(model, _layout(ds), ds, tmp_path / "fc.nc", context=2, horizon=2, members=2)
    with xr.open_dataset(out) as fc:
        assert (fc.attrs["sampler"], fc.attrs["sampling_steps"]) == ("dpmpp2m", SOLVER_STEPS)
    out = rollout(
        model, _layout(ds), ds, tmp_path / "ddim.nc", context=2, horizon=2, members=2, sampler="ddim"
    )
    with xr.open_dataset(out) as fc:
        assert (fc.attrs["sampler"], fc.attrs["sampling_steps"]) == ("ddim", 100)


def test_incompatible_store_is_refused(tmp_path):
    ds = _dataset()
    layout = _layout(ds)
    with pytest.raises(ForecastError, match="lacks variables"):
        rollout(Persistence(), layout, ds.rename({"u": "v"}), tmp_path / "fc.nc", context=2, horizon=2)
    with pytest.raises(ForecastError, match="frames of"):
        rollout(Persistence(), layout, _dataset(ny=6), tmp_path / "fc.nc", context=2, horizon=2)
    assert not list(tmp_path.iterdir())


def test_window_longer_than_the_sequences_is_refused(tmp_path):
    ds = _dataset()
    with pytest.raises(ForecastError, match="longer than the test sequences"):
        rollout(Persistence(), _layout(ds), ds, tmp_path / "fc.nc", context=4, horizon=N_TIME - 3)
    assert not list(tmp_path.iterdir())


def test_nan_context_is_refused_and_nothing_is_left(tmp_path):
    ds = _dataset()
    layout = _layout(ds)
    ds["u"][1, 0, 0, 0] = np.nan
    with pytest.raises(ForecastError, match="NaN"):
        rollout(Persistence(), layout, ds, tmp_path / "fc.nc", context=2, horizon=2)
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------------------------- interruption
def test_interrupted_rollout_leaves_no_final_file_and_resumes_to_the_same_file(tmp_path):
    ds = _dataset()
    layout = _layout(ds)
    opts = dict(members=4, context=2, horizon=3, inits=3, seed=3)
    reference = xr.open_dataset(rollout(RandomWalk(), layout, ds, tmp_path / "ref.nc", **opts))
    out = tmp_path / "fc.nc"
    # Ctrl-C during the second init
    with pytest.raises(RolloutInterrupted, match="1 of 3 inits"):
        rollout(RandomWalk(fail_at_call=5), layout, ds, out, **opts)
    assert not out.exists()
    assert (tmp_path / ".fc.nc.partial").exists()
    # resuming with other settings is refused
    with pytest.raises(ForecastError, match="other settings"):
        rollout(RandomWalk(), layout, ds, out, **(opts | {"seed": 4}), resume=True)
    model = RandomWalk()
    rollout(model, layout, ds, out, **opts, resume=True)
    assert model.calls == 2 * 3  # only the two missing inits were generated
    assert not (tmp_path / ".fc.nc.partial").exists()
    resumed = xr.open_dataset(out)
    np.testing.assert_array_equal(resumed["u"].values, reference["u"].values)
    np.testing.assert_array_equal(resumed["u_obs"].values, reference["u_obs"].values)


def test_failed_rollout_leaves_nothing(tmp_path):
    ds = _dataset()
    with pytest.raises(RuntimeError):
        rollout(
            RandomWalk(fail_at_call=2, exc=RuntimeError),
            _layout(ds),
            ds,
            tmp_path / "fc.nc",
            context=2,
            horizon=3,
        )
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------------------------- CLI
@dataclass
class FakeRun:
    model: SequenceModel
    layout: ChannelLayout
    config: dict = field(default_factory=lambda: {"model": {"name": "random_walk"}})
    checkpoint: Path = Path("run/checkpoints/step_000100.pt")
    step: int = 100


def _write_store(path: Path, ds: xr.Dataset) -> None:
    from forecast.field_store import mark_complete

    ds.to_zarr(path, group="train", mode="w", consolidated=False)
    ds.to_zarr(path, group="test", mode="a", consolidated=False)
    mark_complete(path)


@pytest.fixture
def fake_training(monkeypatch):
    """``forecast.training.load_run`` stand-in (loads no checkpoint)."""
    calls = []

    def load_run(run_dir, device="cpu", ema=True):
        calls.append({"run_dir": run_dir, "device": device, "ema": ema})
        if "mismatch" in str(run_dir):
            raise ForecastError(f"checkpoint of {run_dir} does not match its config")
        return FakeRun(RandomWalk(), _layout(_dataset()))

    module = types.ModuleType("forecast.training")
    module.load_run = load_run
    monkeypatch.setitem(sys.modules, "forecast.training", module)
    return calls


def test_cli_rollout_writes_the_file_with_reproduction_attributes(tmp_path, fake_training, capsys):
    from forecast.cli import main

    store = tmp_path / "data.zarr"
    _write_store(store, _dataset())
    out = tmp_path / "fc.nc"
    args = [
        "rollout",
        "run",
        str(store),
        "--out",
        str(out),
        "--members",
        "3",
        "--context",
        "2",
        "--horizon",
        "3",
    ]
    assert (
        main(
            [*args, "--inits", "2", "--sampler", "ddim", "--steps", "10", "--no-progress", "--device", "cpu"]
        )
        == 0
    )
    assert fake_training == [{"run_dir": "run", "device": "cpu", "ema": True}]
    fc = xr.open_dataset(out)
    assert fc["u"].shape == (2, 3, 3, NY, NX)
    assert fc.attrs["sampler"] == "ddim" and fc.attrs["sampling_steps"] == 10
    assert fc.attrs["checkpoint"].endswith("step_000100.pt") and fc.attrs["checkpoint_step"] == 100
    assert fc.attrs["weights"] == "ema" and fc.attrs["source_store"] == str(store)
    assert fc.attrs["source_group"] == "test" and "random_walk model" in fc.attrs["source"]
    assert "rollout run" in fc.attrs["history"] and "--sampler ddim" in fc.attrs["history"]
    assert "random_walk" in fc.attrs["config"] and fc.attrs["software"].startswith("forecast ")
    assert fc.attrs["capture"] == "none" and fc.attrs["channels_last"] == 0
    fc.close()
    # with the progress bar (on stderr)
    assert main([*args, "--no-ema", "--device", "cpu", "--overwrite", "--channels-last"]) == 0
    assert fake_training[-1]["ema"] is False
    with xr.open_dataset(out) as fc:
        assert fc.attrs["channels_last"] == 1 and "--channels-last" in fc.attrs["history"]
    assert "rollout" in capsys.readouterr().err


def test_rollout_file_scores_against_persistence_from_its_context(tmp_path, fake_training, capsys):
    """rollout -> score --reference persistence: the reference is built from the file's own V_context."""
    from forecast.cli import main

    store = tmp_path / "data.zarr"
    _write_store(store, _dataset())
    forecast, scores = tmp_path / "fc.nc", tmp_path / "scores.nc"
    rollout_args = ["rollout", "run", str(store), "--out", str(forecast), "--members", "4"]
    rollout_args += ["--context", "3", "--horizon", "4", "--inits", "3", "--no-progress", "--device", "cpu"]
    assert main(rollout_args) == 0
    assert (
        main(["score", str(forecast), "--out", str(scores), "--reference", "persistence", "--no-progress"])
        == 0
    )
    fc, sc = xr.open_dataset(forecast), xr.open_dataset(scores)
    # persistence's CRPS is its mean absolute error: |last context frame - truth|, averaged over inits and pixels
    last = fc["u_context"].isel(context_time=-1)
    expected = np.abs(last - fc["u_obs"]).mean(["init", "y", "x"])
    np.testing.assert_allclose(sc["crps_reference_mean_u"].values, expected.values, rtol=1e-5)
    np.testing.assert_allclose(
        sc["crps_skill_u"].values, 1 - sc["crps_mean_u"].values / expected.values, rtol=1e-5
    )


def test_cli_interrupt_keeps_the_partial_file_for_resume(tmp_path, fake_training, monkeypatch, capsys):
    from forecast.cli import main

    store = tmp_path / "data.zarr"
    _write_store(store, _dataset())
    out = tmp_path / "fc.nc"
    args = [
        "rollout",
        "run",
        str(store),
        "--out",
        str(out),
        "--members",
        "2",
        "--context",
        "2",
        "--horizon",
        "2",
    ]
    interrupted = FakeRun(RandomWalk(fail_at_call=3), _layout(_dataset()))
    monkeypatch.setattr(sys.modules["forecast.training"], "load_run", lambda *a, **k: interrupted)
    assert main([*args, "--no-progress"]) == 130
    assert "--resume" in capsys.readouterr().err and not out.exists()
    monkeypatch.setattr(
        sys.modules["forecast.training"],
        "load_run",
        lambda *a, **k: FakeRun(RandomWalk(), _layout(_dataset())),
    )
    assert main([*args, "--no-progress", "--resume"]) == 0
    assert out.exists() and not (tmp_path / ".fc.nc.partial").exists()


def test_cli_refuses_incompatible_store_and_checkpoint_with_one_line(tmp_path, fake_training, capsys):
    from forecast.cli import main

    store = tmp_path / "other.zarr"
    _write_store(store, _dataset().rename({"u": "w"}))
    out = tmp_path / "fc.nc"
    assert main(["rollout", "run", str(store), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "lacks variables ['u']" in err and len(err.strip().splitlines()) == 1
    good = tmp_path / "data.zarr"
    _write_store(good, _dataset())
    assert main(["rollout", "mismatch_run", str(good), "--out", str(out), "--no-progress"]) == 2
    assert "does not match its config" in capsys.readouterr().err
    assert not out.exists()


# --------------------------------------------------------------------------------------------- CF and times
def _karman_like(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with the simulator's (pre-CF) metadata: lattice units UDUNITS cannot parse, time in "frame"."""
    ds = ds.assign_coords(
        time=("time", np.arange(100, 100 + N_TIME), {"long_name": "frame index", "units": "frame"})
    )
    ds["u"].attrs = {"long_name": "streamwise velocity", "units": "lattice cells per lattice step"}
    ds["x"].attrs = {"long_name": "streamwise position", "units": "lattice cells"}
    ds["y"].attrs = {"units": "lattice cells"}
    return ds.assign_coords(inflow_velocity=("sequence", np.full(N_SEQ, 0.05), {"units": "lattice units"}))


def test_file_opens_without_warnings_and_carries_cf_metadata(tmp_path):
    import warnings

    ds = _karman_like(_dataset())
    out = rollout(RandomWalk(), _layout(ds), ds, tmp_path / "fc.nc", members=2, context=2, horizon=3, inits=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fc = xr.open_dataset(out)
        tree = xr.open_datatree(out)
    assert set(tree.to_dataset().data_vars) == set(fc.data_vars)
    for key in ("Conventions", "title", "history", "source"):
        assert fc.attrs[key], key
    for name, coord in fc.coords.items():
        assert coord.attrs.get("long_name"), f"coordinate {name} has no long_name"
    assert fc["x"].attrs["axis"] == "X" and fc["y"].attrs["axis"] == "Y"
    assert fc["member"].attrs == {
        "standard_name": "realization",
        "long_name": "ensemble member",
        "units": "1",
    }
    # units UDUNITS cannot parse become "1", named in the long_name
    assert fc["u"].attrs["units"] == "1"
    assert (
        fc["u"].attrs["long_name"] == "streamwise velocity, in lattice units (lattice cells per lattice step)"
    )
    assert fc["inflow_velocity"].attrs == {"units": "1", "long_name": "inflow velocity, in lattice units"}
    assert (
        fc["init_time"].attrs["units"] == "1" and "frame index (frame)" in fc["init_time"].attrs["long_name"]
    )
    # a frame index is no real time: lead_time counts frames, a CF forecast_period without units (a frame is
    # no UDUNITS unit; "1" would contradict the standard name), and so is the reference time
    assert list(fc["lead_time"].values) == [1, 2, 3] and "units" not in fc["lead_time"].attrs
    assert fc["lead_time"].attrs["standard_name"] == "forecast_period"
    assert fc["forecast_reference_time"].attrs["standard_name"] == "forecast_reference_time"
    assert "units" not in fc["forecast_reference_time"].attrs
    # compressed, and chunked as one init, one member, a few leads, whole frames
    encoding = fc["u"].encoding
    assert encoding["zlib"] and encoding["shuffle"] and encoding["chunksizes"] == (1, 1, 3, NY, NX)
    assert fc["u_obs"].encoding["chunksizes"] == (1, 3, NY, NX)


@pytest.mark.slow
def test_forecast_file_passes_the_cf_checker(tmp_path):
    from cf_check import assert_cf_valid

    ds = _karman_like(_dataset(rgb=True))
    ds["frames"].attrs = {"long_name": "video", "units": "1"}
    layout = _layout(ds, ("u", "frames"))
    assert_cf_valid(rollout(RandomWalk(), layout, ds, tmp_path / "a.nc", members=2, context=2, horizon=5))
    # physical time in seconds: lead_time becomes a forecast_period
    ds = _dataset()
    assert_cf_valid(
        rollout(RandomWalk(), _layout(ds), ds, tmp_path / "b.nc", members=2, context=2, horizon=2)
    )


def test_store_selected_at_valid_time_is_exactly_the_verifying_truth(tmp_path):
    """Rolled out through the Python API from a store path: times and provenance a user can trust."""
    store = tmp_path / "data.zarr"
    _write_store(store, _karman_like(_dataset()))
    test = xr.open_zarr(store, group="test", consolidated=False)
    out = rollout(
        RandomWalk(), _layout(test), store, tmp_path / "fc.nc", members=2, context=3, horizon=4, inits=5
    )
    fc = xr.open_dataset(out)
    assert fc.attrs["source_store"] == str(store) and fc.attrs["source_group"] == "test"
    assert "Python API" in fc.attrs["history"]
    for i in range(fc.sizes["init"]):
        frames = test.sel(sequence=fc["sequence"].values[i])
        # lead 1 verifies against the store's frame at init_time, every lead against its valid_time
        np.testing.assert_array_equal(frames["u"].sel(time=fc["init_time"].values[i]), fc["u_obs"][i, 0])
        np.testing.assert_array_equal(frames["u"].sel(time=fc["valid_time"].values[i]), fc["u_obs"][i])
        # and the context ends at forecast_reference_time = init_time - one frame
        np.testing.assert_array_equal(
            frames["u"].sel(time=fc["forecast_reference_time"].values[i]), fc["u_context"][i, -1]
        )
    np.testing.assert_array_equal(fc["valid_time"], fc["forecast_reference_time"] + fc["lead_time"])


def test_rollout_run_records_provenance_like_the_cli(tmp_path, fake_training):
    from forecast.rollout import rollout_run

    store = tmp_path / "data.zarr"
    _write_store(store, _dataset())
    out = rollout_run(
        "run", store, tmp_path / "fc.nc", device="cpu", members=2, context=2, horizon=2, inits=1
    )
    fc = xr.open_dataset(out)
    assert fc.attrs["checkpoint"].endswith("step_000100.pt") and fc.attrs["checkpoint_step"] == 100
    assert (
        fc.attrs["run_dir"] == "run" and fc.attrs["weights"] == "ema" and "random_walk" in fc.attrs["config"]
    )
    assert fc.attrs["source_store"] == str(store) and fc.attrs["source_group"] == "test"
    assert "rollout_run" in fc.attrs["history"] and "checkpoint" in fc.attrs["source"]


def test_decoded_datetimes_become_cf_times(tmp_path):
    ds = _dataset().assign_coords(
        time=("time", np.datetime64("2020-01-01T00:00") + np.arange(N_TIME) * np.timedelta64(6, "h"))
    )
    out = rollout(Persistence(), _layout(ds), ds, tmp_path / "fc.nc", context=2, horizon=3, inits=3)
    fc = xr.open_dataset(out)
    assert fc["valid_time"].dtype.kind == "M"  # decoded back to dates
    assert fc["forecast_reference_time"].attrs["standard_name"] == "forecast_reference_time"
    assert fc["lead_time"].attrs["standard_name"] == "forecast_period"
    for i in range(3):
        seq = ds.sel(sequence=fc["sequence"].values[i])
        np.testing.assert_array_equal(seq["u"].sel(time=fc["valid_time"].values[i]), fc["u_obs"][i])


# --------------------------------------------------------------------------------------------- truth starts
def _write_truth(store: Path, sequences, init_times, horizon: int = 3, members: int = 2) -> None:
    """A ``truth`` group as the conventions lay it out (values irrelevant here: only its starts are used)."""
    n = len(sequences)
    truth = xr.Dataset(
        {
            "u": (
                ("init", "member", "lead_time", "y", "x"),
                np.zeros((n, members, horizon, NY, NX), "float32"),
            )
        },
        coords={
            "init": ("init", np.arange(7, 7 + n)),
            "sequence": ("init", np.asarray(sequences)),
            "init_time": ("init", np.asarray(init_times)),
            "lead_time": ("lead_time", np.arange(1, horizon + 1)),
        },
    )
    truth.to_zarr(store, group="truth", mode="a", consolidated=False)
    zarr.consolidate_metadata(
        str(store)
    )  # as the simulator writes stores: the truth group opens without warnings


def test_truth_starts_forecast_exactly_the_truth_groups_inits(tmp_path, fake_training, capsys):
    store = tmp_path / "data.zarr"
    _write_store(store, _karman_like(_dataset()))
    _write_truth(store, sequences=[12, 10], init_times=[105, 110], horizon=3)
    test = xr.open_zarr(store, group="test", consolidated=False)
    out = rollout(
        RandomWalk(), _layout(test), store, tmp_path / "fc.nc", members=2, context=2, starts="truth"
    )
    fc = xr.open_dataset(out)
    # the truth's init labels, sequences and init times, and its horizon by default
    assert list(fc["init"].values) == [7, 8] and list(fc["sequence"].values) == [12, 10]
    assert list(fc["init_time"].values) == [105, 110] and fc.sizes["lead_time"] == 3
    assert fc.attrs["starts"] == "truth"
    for i in range(2):
        frames = test["u"].sel(sequence=fc["sequence"].values[i])
        np.testing.assert_array_equal(frames.sel(time=fc["valid_time"].values[i]), fc["u_obs"][i])
        np.testing.assert_array_equal(frames.sel(time=fc["init_time"].values[i] - 1), fc["u_context"][i, -1])
    # an explicit horizon overrides the truth's
    short = rollout(
        RandomWalk(), _layout(test), store, tmp_path / "s.nc", context=2, horizon=2, starts="truth"
    )
    assert xr.open_dataset(short).sizes["lead_time"] == 2
    # the CLI's --starts truth
    args = [
        "rollout",
        "run",
        str(store),
        "--out",
        str(tmp_path / "cli.nc"),
        "--members",
        "2",
        "--context",
        "2",
    ]
    from forecast.cli import main

    assert main([*args, "--starts", "truth", "--no-progress", "--device", "cpu"]) == 0
    np.testing.assert_array_equal(xr.open_dataset(tmp_path / "cli.nc")["init_time"], [105, 110])


def test_truth_starts_refused_with_one_line(tmp_path, fake_training, capsys):
    from forecast.cli import main

    store = tmp_path / "data.zarr"
    _write_store(store, _karman_like(_dataset()))
    args = [
        "rollout",
        "run",
        str(store),
        "--out",
        str(tmp_path / "fc.nc"),
        "--starts",
        "truth",
        "--no-progress",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "has no readable 'truth' group" in err and len(err.strip().splitlines()) == 1
    layout = _layout(_dataset())
    _write_truth(store, sequences=[10], init_times=[101])
    with pytest.raises(ForecastError, match="--context 4 needs 4"):
        rollout(RandomWalk(), layout, store, tmp_path / "fc.nc", context=4, starts="truth")
    with pytest.raises(ForecastError, match="cannot be combined"):
        rollout(RandomWalk(), layout, store, tmp_path / "fc.nc", context=1, inits=2, starts="truth")
    with pytest.raises(ForecastError, match="unknown starts"):
        rollout(RandomWalk(), layout, store, tmp_path / "fc.nc", starts="random")
    assert not (tmp_path / "fc.nc").exists()


def test_figures_label_lead_times_in_the_stores_units():
    from forecast.plots.scores import _lead_label

    def scores(values, units):
        return xr.Dataset(coords={"lead_time": ("lead_time", np.asarray(values), {"units": units})})

    assert _lead_label(scores([2.5, 5.0], "s")) == "lead time [s]"
    assert (
        _lead_label(scores([1, 2, 3], "1")) == "lead time [frames]"
    )  # a frame-index store: leads count frames
    assert _lead_label(scores([64, 128], "1")) == "lead time"  # dimensionless, but not frames
    assert _lead_label(scores([1, 2], "frames")) == "lead time [frames]"  # files written before the CF units
