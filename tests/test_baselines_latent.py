"""IVRNN and SLAMP, the latent-variable baselines added for table 1 (SVG-LP's are in test_baselines.py).

The interface (shapes, ensembles whose members differ, randomness from the generator alone, refusals), the
motion stream's warp in closed form, learning (beats persistence on held-out moving blobs after a short
training) and exact resume through the Trainer.
"""

from __future__ import annotations

import pytest
import torch

from forecast.errors import ForecastError
from forecast.models import build_model
from forecast.models.baselines.slamp import warp
from forecast.rollout import generate
from forecast.training import Trainer
from tests.test_baselines import _config, _moving_blob, _train
from tests.training_helpers import karman_like_store

torch.set_num_threads(1)

TINY = {
    "ivrnn": {"dim": 8, "levels": 2, "z_dim": 2, "rnn_dim": 8},
    "slamp": {"dim": 8, "g_dim": 8, "z_dim": 2, "rnn_dim": 8},
}


@pytest.mark.parametrize("kind", TINY)
def test_interface_ensembles_and_generator(kind):
    torch.manual_seed(0)
    model = build_model(_config(kind, **TINY[kind]), 1)
    assert model.stochastic and model.name == kind
    window = _moving_blob(2)
    loss = model.loss(window, 2)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    # every parameter of every part (prior, posterior, motion, mask, ...) is trained by the loss: a finite,
    # non-zero gradient, not just an allocated one
    untrained = [
        name
        for name, p in model.named_parameters()
        if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0
    ]
    assert not untrained, untrained
    context = window[0, :2]
    with torch.no_grad():
        frames = generate(model, context, horizon=3, members=4, generator=torch.Generator().manual_seed(0))
        again = generate(model, context, horizon=3, members=4, generator=torch.Generator().manual_seed(0))
    assert frames.shape == (4, 3, 1, 16, 16)
    assert not torch.allclose(frames[0], frames[1])  # members differ
    assert torch.equal(frames, again)  # all randomness comes from the generator
    with pytest.raises(ForecastError, match="divisible"):
        model.initial_state(1, 18, 16, torch.device("cpu"))
    with pytest.raises(ForecastError, match="not observed"):
        model.sample_next(model.initial_state(1, 16, 16, torch.device("cpu")))
    with pytest.raises(ForecastError, match="n_context"):
        model.loss(window, 5)


def test_options_are_checked():
    with pytest.raises(ForecastError, match="model.levels"):
        build_model(_config("ivrnn", levels=0), 1)
    with pytest.raises(ForecastError, match="model.flow_scale"):
        build_model(_config("slamp", flow_scale=-1.0), 1)
    with pytest.raises(ForecastError, match="unknown key"):
        build_model(_config("slamp", levels=2), 1)
    for kind in ("slamp", "svg_lp"):  # one check of the SVG-LP-style sizes for both
        with pytest.raises(ForecastError, match="model.groups must be a positive integer"):
            build_model(_config(kind, groups=0), 1)


def test_warp_moves_content_by_the_flow():
    frame = torch.zeros(1, 1, 8, 8)
    frame[0, 0, 3, 2] = 1.0
    flow = torch.zeros(1, 2, 8, 8)
    flow[:, 0] = 2.0  # two pixels right
    flow[:, 1] = -1.0  # one pixel up
    moved = warp(frame, flow)
    expected = torch.zeros(1, 1, 8, 8)
    expected[0, 0, 2, 4] = 1.0
    torch.testing.assert_close(moved, expected)
    half = warp(frame, torch.full((1, 2, 8, 8), 0.0).index_fill(1, torch.tensor([0]), 0.5))
    torch.testing.assert_close(half[0, 0, 3, 2:4], torch.tensor([0.5, 0.5]))  # bilinear in between


def heldout_mse(model) -> tuple[float, float]:
    """MSE of the ensemble mean over 3 leads, and persistence's, on moving blobs the model has not seen."""
    model_mse = persistence_mse = 0.0
    with torch.no_grad():
        for video in _moving_blob(4, seed=1):
            frames = generate(
                model, video[:2], horizon=3, members=4, generator=torch.Generator().manual_seed(0)
            )
            model_mse += float((frames.mean(0) - video[2:]).square().mean())
            persistence_mse += float((video[1:2] - video[2:]).square().mean())
    return model_mse, persistence_mse


@pytest.mark.slow  # 25 training steps each: a few seconds on a quiet machine
@pytest.mark.parametrize("kind", TINY)
def test_learns_and_beats_persistence(kind):
    torch.manual_seed(0)
    model = build_model(_config(kind, **TINY[kind]), 1)
    first, last = _train(model, 25)
    assert last < 0.2 * first
    model_mse, persistence_mse = heldout_mse(model)
    assert model_mse < 0.5 * persistence_mse


def _weights(trainer) -> dict:
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


@pytest.mark.slow  # three short trainings each: a few seconds on a quiet machine
@pytest.mark.parametrize("kind", TINY)
def test_resumed_training_equals_straight_training(tmp_path, kind):
    store = karman_like_store(tmp_path / "data.zarr", n_time=8, ny=8, nx=8)
    config = _config(kind, **TINY[kind])
    config["training"].update(steps=3, checkpoint_every=1)

    def trainer(run, resume=False):
        return Trainer(config, store, tmp_path / run, resume=resume, progress=False, log=lambda _: None)

    straight = trainer("straight")
    straight.run_loop()
    interrupted = trainer("resumed")
    interrupted.run_loop(max_steps=2)
    interrupted.close()
    resumed = trainer("resumed", resume=True)
    assert resumed.step == 2
    resumed.run_loop()
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    straight.close()
    resumed.close()
