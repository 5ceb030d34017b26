"""The GANs (DVD-GAN in its future-prediction form, RetroGAN, FutureGAN) and the Trainer's adversarial mode.

The interface (one latent per member: members differ, a member's frames come from one z; randomness from the
generator alone), the hinge losses in closed form, the mode (discriminator and generator steps each move only
their own networks; metrics logged; refusals) and exact resume of both optimizers for each GAN; learning (slow).
"""

from __future__ import annotations

import csv

import pytest
import torch

from forecast.errors import ForecastError
from forecast.models import build_model
from forecast.rollout import generate
from forecast.training import Trainer
from tests.test_baselines import _config, _moving_blob
from tests.test_baselines_latent import heldout_mse
from tests.training_helpers import karman_like_store

torch.set_num_threads(1)

TINY = {"dim": 8, "z_dim": 4, "frames_sampled": 2}
#: each GAN at a tiny size
GANS = {"dvd_gan": TINY, "retrogan": {"dim": 8, "inputs": 2}, "futuregan": {"dim": 8, "frames": 2}}


def _gan_config(kind: str = "dvd_gan", **training) -> dict:
    config = _config(kind, **GANS[kind])
    config["training"].update({"mode": "adversarial", "adam_betas": [0.0, 0.999], **training})
    return config


def test_dvd_gan_interface():
    torch.manual_seed(0)
    model = build_model(_gan_config(), 1)
    assert model.stochastic and model.adversarial
    generator = {id(p) for p in model.generator_parameters()}
    discriminator = {id(p) for p in model.discriminator_parameters()}
    assert generator and discriminator and not generator & discriminator
    assert generator | discriminator == {id(p) for p in model.parameters()}
    context = _moving_blob(1)[0, :2]
    with torch.no_grad():
        frames = generate(model, context, horizon=3, members=4, generator=torch.Generator().manual_seed(0))
        again = generate(model, context, horizon=3, members=4, generator=torch.Generator().manual_seed(0))
    assert frames.shape == (4, 3, 1, 16, 16)
    assert not torch.allclose(frames[0], frames[1]) and torch.equal(frames, again)
    # generation runs open-loop from the context: observing a generated frame changes nothing
    state = model.initial_state(1, 16, 16, torch.device("cpu"))
    for frame in context:
        state = model.observe(state, frame[None])
    first = model.sample_next(state, generator=torch.Generator().manual_seed(1))
    hidden = state.hidden
    assert model.observe(state, first).hidden is hidden
    with pytest.raises(ForecastError, match="divisible by 8"):
        model.initial_state(1, 12, 16, torch.device("cpu"))
    with pytest.raises(ForecastError, match="model.d_steps"):
        build_model(_config("dvd_gan", d_steps=0), 1)
    with pytest.raises(ForecastError, match="model.d_lr_scale must be positive"):
        build_model(_config("dvd_gan", d_lr_scale=0), 1)


class _MeanCritic(torch.nn.Module):
    """A stand-in discriminator with known scores: 10 x the mean of the future frames."""

    def forward(self, context, future, generator=None):
        return 10 * future.flatten(1).mean(1)


def test_hinge_losses():
    torch.manual_seed(0)
    model = build_model(_gan_config(), 1)
    model.discriminator = _MeanCritic()
    window, fake = _moving_blob(3), torch.randn(3, 3, 1, 16, 16)
    d_real, d_fake = 10 * window[:, 2:].flatten(1).mean(1), 10 * fake.flatten(1).mean(1)
    loss, parts = model.discriminator_loss(window, fake, 2)
    expected = torch.relu(1 - d_real).mean() + torch.relu(1 + d_fake).mean()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(parts["d_fake"], d_fake.mean())
    g_loss, _ = model.generator_loss(window, fake, 2)
    torch.testing.assert_close(g_loss, -d_fake.mean())


def _store(tmp_path):
    return karman_like_store(tmp_path / "data.zarr", n_time=8, ny=8, nx=8)


def _trainer(config, store, run, **kw):
    return Trainer(config, store, run, progress=False, log=lambda _: None, **kw)


def test_adversarial_mode_steps_each_network_with_its_optimizer(tmp_path):
    store = _store(tmp_path)
    trainer = _trainer(_gan_config(steps=1, checkpoint_every=1, log_every=1), store, tmp_path / "run")
    model = trainer.model
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.run_loop()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert any(n.startswith("discriminator.") for n in changed)
    assert any(not n.startswith("discriminator.") for n in changed)
    assert set(trainer.mode.optimizers) == {"model", "discriminator"}
    # the paper's rates: the discriminators' is d_lr_scale (5) times the generator's
    (g_group,), (d_group,) = (trainer.mode.optimizers[n].param_groups for n in ("model", "discriminator"))
    assert d_group["lr"] == pytest.approx(5 * g_group["lr"]) and g_group["lr"] == pytest.approx(1e-3)
    assert all(p.requires_grad for p in model.discriminator_parameters())  # unfrozen after the generator step
    trainer.close()
    with open(tmp_path / "run" / "metrics.csv", newline="") as f:
        row = next(csv.DictReader(f))
    assert float(row["d_loss"]) > 0 and row["d_real"] and row["g_adversarial"]


def test_adversarial_mode_refuses_a_model_without_a_discriminator(tmp_path):
    config = _config("svg_lp", dim=8, g_dim=8, z_dim=2, rnn_dim=8)
    config["training"]["mode"] = "adversarial"
    with pytest.raises(ForecastError, match="GAN"):
        _trainer(config, _store(tmp_path), tmp_path / "run")


@pytest.mark.slow  # three short trainings each
@pytest.mark.parametrize("kind", GANS)
def test_adversarial_training_resumes_exactly(tmp_path, kind):
    store = _store(tmp_path)
    config = _gan_config(kind, steps=3, checkpoint_every=1)
    straight = _trainer(config, store, tmp_path / "straight")
    straight.run_loop()
    interrupted = _trainer(config, store, tmp_path / "resumed")
    interrupted.run_loop(max_steps=2)
    interrupted.close()
    resumed = _trainer(config, store, tmp_path / "resumed", resume=True)
    assert resumed.step == 2
    resumed.run_loop()
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    for name in ("model", "discriminator"):
        sa = straight.mode.optimizers[name].state_dict()["state"]
        sb = resumed.mode.optimizers[name].state_dict()["state"]
        assert all(torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"]) for i in sa)
    straight.close()
    resumed.close()


def test_retrogan_predicts_forwards_backwards_and_the_past_from_its_own_future():
    torch.manual_seed(0)
    model = build_model(_config("retrogan", dim=8, inputs=2), 1)
    assert not model.stochastic
    window = _moving_blob(2).requires_grad_(True)
    fake = model.generate_future(window, 2)
    assert set(fake) == {"forward", "backward", "retro"}
    # the retrospective prediction sees x_{m+1} and the *predicted* x_n, not the true x_n ...
    (grad,) = torch.autograd.grad(fake["retro"].sum(), window, retain_graph=True)
    assert grad[:, 1].abs().sum() > 0 and grad[:, 0].abs().sum() > 0  # x_m reaches it through x'_n
    assert grad[:, 2].abs().sum() == 0
    # ... while the backward prediction sees the true x_{m+1}, x_n only
    (grad,) = torch.autograd.grad(fake["backward"].sum(), window)
    assert grad[:, 0].abs().sum() == 0 and grad[:, 2].abs().sum() > 0
    frames = generate(model, _moving_blob(1)[0, :2], horizon=3, members=1)
    assert frames.shape == (1, 3, 1, 16, 16)


def test_futuregan_predicts_blocks_and_recurses():
    torch.manual_seed(0)
    model = build_model(_config("futuregan", dim=8, frames=2), 1)
    assert not model.stochastic
    calls = []
    forward = model.generator.forward
    model.generator.forward = lambda past: calls.append(past.shape) or forward(past)
    frames = generate(model, _moving_blob(1)[0, :2], horizon=5, members=1)
    assert frames.shape == (1, 5, 1, 16, 16)
    assert calls == [(1, 1, 2, 16, 16)] * 3  # blocks of 2 frames: 5 frames need 3 generator calls
    with pytest.raises(ForecastError, match="at least 4 frames"):
        model.loss(_moving_blob(1, time=3), 2)


class _StubTrainer:
    """What AdversarialMode needs of a Trainer, for a learning test on in-memory windows."""

    def __init__(self, model, lr=1e-3, betas=(0.0, 0.999)):
        import contextlib
        import types

        self.model, self.n_context = model, 2
        self.training = types.SimpleNamespace(lr=lr, adam_betas=betas, weight_decay=0.0, grad_clip=None)
        self.process = types.SimpleNamespace(world_size=1)
        self.autocast = contextlib.nullcontext


@pytest.mark.slow  # 80-300 adversarial steps each: a quarter to half a minute each on a quiet machine
@pytest.mark.parametrize(
    "kind, options, steps, betas",
    [
        ("dvd_gan", GANS["dvd_gan"], 80, (0.0, 0.999)),
        ("retrogan", GANS["retrogan"], 100, (0.0, 0.999)),
        # WGAN-GP with progressive GAN's Adam (the paper's): its critic needs more steps than a hinge or LSGAN
        # discriminator (forecast/models/baselines/futuregan.py, "Short trainings")
        ("futuregan", GANS["futuregan"], 300, (0.0, 0.99)),
    ],
)
def test_gan_learns_adversarially_and_beats_persistence(kind, options, steps, betas):
    """The paper's losses (DVD-GAN: pure hinge GAN; RetroGAN: image + LSGAN losses; FutureGAN: WGAN-GP with the
    drift term) through the adversarial mode, each GAN with its paper's losses and nothing added."""
    from forecast.training.adversarial import AdversarialMode

    torch.manual_seed(0)
    model = build_model(_config(kind, **options), 1)
    mode = AdversarialMode(_StubTrainer(model, betas=betas))
    data = _moving_blob(8, time=5)
    for _ in range(steps):
        metrics = mode.step(data)
    assert torch.isfinite(metrics["loss"]) and torch.isfinite(metrics["d_loss"])
    model_mse, persistence_mse = heldout_mse(model)
    assert model_mse < persistence_mse


def test_standard_mode_refuses_a_gan(tmp_path):
    with pytest.raises(ForecastError, match="training.mode 'adversarial'"):
        _trainer(_config("dvd_gan", **TINY), _store(tmp_path), tmp_path / "run")
