"""Baselines: persistence (plain and inflated), climatology, ConvGRU predictor, SVG-LP.

Closed-form checks for the parameter-free baselines, "learns on a tiny problem" for the trained ones, and the
train -> load_run -> rollout path for the ones whose statistics live in the checkpoint.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from forecast.errors import ForecastError
from forecast.field_store import open_field_store
from forecast.models import build_model
from forecast.rollout import generate, rollout
from forecast.training import Trainer, load_run
from tests.training_helpers import karman_like_store

torch.set_num_threads(1)


def _config(kind: str, **model) -> dict:
    return {
        "model": {"kind": kind, **model},
        "data": {"variables": ["u", "v"], "context_frames": 2, "future_frames": 2},
        "training": {"batch_size": 2, "steps": 1, "checkpoint_every": 1, "log_every": 1, "lr": 1e-3},
    }


def _random_walk(batch=64, time=6, channels=2, size=4, seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows whose increments have a known std per channel and pixel: x[t] = x[0] + sum of N(0, a^2) steps."""
    g = torch.Generator().manual_seed(seed)
    amplitude = torch.linspace(0.1, 1.0, channels * size * size).reshape(channels, size, size)
    steps = torch.randn(batch, time - 1, channels, size, size, generator=g) * amplitude
    start = torch.randn(batch, 1, channels, size, size, generator=g)
    return torch.cat([start, start + steps.cumsum(1)], dim=1), amplitude


def test_persistence_repeats_the_last_context_frame_and_scores_its_mse():
    model = build_model(_config("persistence"), 2)
    assert not model.stochastic and model.name == "persistence"
    context = torch.randn(3, 2, 8, 8)
    frames = generate(model, context, horizon=4, members=1)
    assert torch.equal(frames[0], context[-1].expand(4, 2, 8, 8))
    window = torch.randn(2, 5, 2, 8, 8)
    expected = ((window[:, 2:] - window[:, 1:2]) ** 2).mean()
    assert torch.allclose(model.loss(window, 2), expected)


def test_inflated_persistence_fits_the_tendency_spread_and_reproduces_it_per_lead():
    windows, amplitude = _random_walk()
    model = build_model(_config("persistence_inflated", max_lead=4), 2)
    model.fit_statistics([windows[:32], windows[32:]])
    # closed form of the estimator: root mean square of x[t+k] - x[t] over windows and starts, per pixel
    for k in range(1, 5):
        diff = (windows[:, k:] - windows[:, :-k]).double()
        assert torch.allclose(
            model.tendency_std[k - 1].double(), diff.square().mean((0, 1)).sqrt(), rtol=1e-5
        )
    # the fitted spread is close to the truth sqrt(k) * amplitude of a random walk
    assert torch.allclose(model.tendency_std[1], 2**0.5 * amplitude, rtol=0.25)
    # a large ensemble spreads about the last true frame with std s_k at lead k (constant beyond max_lead)
    context = torch.zeros(2, 2, 4, 4)
    frames = generate(model, context, horizon=6, members=4000, generator=torch.Generator().manual_seed(1))
    spread = frames.std(0)  # (lead, channel, y, x)
    for k in range(6):
        target = model.tendency_std[min(k, 3)]
        assert torch.allclose(spread[k], target, rtol=0.08), k
    # observing a true frame restarts at lead 1
    state = model.initial_state(4000, 4, 4, "cpu")
    state = model.observe(state, context[0].expand(4000, 2, 4, 4))
    drawn = model.sample_next(state, generator=torch.Generator().manual_seed(2))
    state = model.observe(model.observe(state, drawn), torch.zeros(4000, 2, 4, 4))
    again = model.sample_next(state, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(again.std(0), model.tendency_std[0], rtol=0.08)


def test_inflated_persistence_refuses_to_sample_before_fitting():
    model = build_model(_config("persistence_inflated", max_lead=2), 2)
    with pytest.raises(ForecastError, match="no statistics"):
        generate(model, torch.zeros(1, 2, 4, 4), horizon=1, members=2)


def test_climatology_draws_members_from_its_bank_of_training_frames():
    windows = torch.randn(10, 3, 2, 4, 4)
    model = build_model(_config("climatology", bank_size=16), 2)
    model.fit_statistics([windows[:5], windows[5:]])
    assert model.bank.shape == (16, 2, 4, 4)
    all_frames = windows.reshape(30, 2, 4, 4)
    assert all(any(torch.equal(b, f) for f in all_frames) for b in model.bank)
    frames = generate(
        model, torch.randn(2, 2, 4, 4), horizon=3, members=500, generator=torch.Generator().manual_seed(0)
    )
    flat = frames.reshape(-1, 2, 4, 4)
    assert all(any(torch.equal(x, b) for b in model.bank) for x in flat[:50])
    assert torch.allclose(flat.mean(0), model.bank.mean(0), atol=0.2)
    assert torch.allclose(model.loss(windows, 1), ((windows[:, 1:] - model.bank.mean(0)) ** 2).mean())


def _moving_blob(batch=8, time=5, size=16, seed=0) -> torch.Tensor:
    """A Gaussian blob moving one pixel per frame to the right: a deterministic, learnable dynamic."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    cy = torch.randint(4, size - 4, (batch,), generator=g).float()
    cx = torch.randint(2, 6, (batch,), generator=g).float()
    frames = [
        torch.exp(-((y - cy[:, None, None]) ** 2 + (x - cx[:, None, None] - t) ** 2) / 4) for t in range(time)
    ]
    return torch.stack(frames, 1)[:, :, None]  # (batch, time, 1, y, x)


def _train(model, steps: int, lr: float = 3e-3) -> tuple[float, float]:
    torch.manual_seed(0)
    data = _moving_blob()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    first = float(model.loss(data, 2).detach())
    for _ in range(steps):
        loss = model.loss(data, 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return first, float(model.loss(data, 2).detach())


def test_convgru_reuses_the_transform_module_and_learns_a_moving_blob():
    from forecast.models.transform import TransformNet

    torch.manual_seed(0)
    model = build_model(_config("convgru", dim=8, transform_mults=[1, 2]), 1)
    assert isinstance(model.transform, TransformNet) and not model.stochastic
    first, last = _train(model, 40)
    assert last < 0.5 * first
    frames = generate(model, _moving_blob(1)[0, :2], horizon=2, members=1)
    assert frames.shape == (1, 2, 1, 16, 16)


def test_svg_lp_learns_and_draws_different_members():
    torch.manual_seed(0)
    model = build_model(_config("svg_lp", dim=8, g_dim=8, z_dim=2, rnn_dim=8), 1)
    first, last = _train(model, 40)
    assert last < 0.5 * first
    frames = generate(
        model, _moving_blob(1)[0, :2], horizon=3, members=4, generator=torch.Generator().manual_seed(0)
    )
    assert frames.shape == (4, 3, 1, 16, 16)
    assert not torch.allclose(frames[0], frames[1])
    # same generator seed, same frames: all randomness comes from the generator
    again = generate(
        model, _moving_blob(1)[0, :2], horizon=3, members=4, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(frames, again)


def test_baseline_options_are_checked():
    with pytest.raises(ForecastError, match="unknown key"):
        build_model(_config("climatology", bank=3), 1)
    with pytest.raises(ForecastError, match="max_lead"):
        build_model(_config("persistence_inflated", max_lead=0), 1)
    with pytest.raises(ForecastError, match="convgru"):
        build_model({"model": {"kind": "nonsense"}}, 1)


@pytest.mark.parametrize("kind", ["persistence_inflated", "climatology"])
def test_forecast_train_fits_statistics_into_a_run_that_rollout_loads(tmp_path, kind):
    store = karman_like_store(tmp_path / "data.zarr", n_time=12, ny=8, nx=8)
    options = {"max_lead": 3} if kind == "persistence_inflated" else {"bank_size": 8}
    trainer = Trainer(_config(kind, **options), store, tmp_path / "run", progress=False, log=lambda _: None)
    assert trainer.run_loop()["step"] == 1
    trainer.close()
    run = load_run(tmp_path / "run")
    fitted = run.model.tendency_std if kind == "persistence_inflated" else run.model.bank
    assert bool(run.model.fitted) and fitted.shape[-2:] == (8, 8) and fitted.abs().sum() > 0
    test = open_field_store(store, "test")
    out = rollout(run.model, run.layout, test, tmp_path / "fc.nc", members=4, context=2, horizon=3)
    fc = xr.open_dataset(out)
    assert fc["u"].sizes["member"] == 4
    assert float(fc["u"].std("member").mean()) > 0
    assert np.isfinite(fc["u"].values).all()
