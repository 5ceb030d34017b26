"""The RVD networks: shapes, recurrence, the three kinds, training signal, sampling, config checking."""

import dataclasses
from pathlib import Path

import pytest
import torch
import yaml

from forecast.configs import CONFIG_DIR
from forecast.errors import ForecastError
from forecast.models import SequenceModel, build_model
from forecast.models.context import ContextEncoder
from forecast.models.denoiser import Denoiser
from forecast.models.layers import (
    ConvGRUCell,
    Downsample,
    LinearAttention,
    ResBlock,
    StepEmbedding,
    Upsample,
    pyramid_zeros,
    step_encoding,
)
from forecast.models.transform import TransformNet

CONFIGS = CONFIG_DIR
EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
B, C, H, W = 2, 3, 16, 16


def small_config(kind="rvd", **model):
    return {
        "model": {"kind": kind, "dim": 8, "denoiser_mults": [1, 2], "transform_mults": [1, 2], **model},
        "diffusion": {"steps": 20},
    }


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ---------------------------------------------------------------------------- layers
def test_layer_shapes():
    x = torch.randn(B, 16, 8, 8)
    emb = StepEmbedding(8)(torch.tensor([0, 19]))
    assert emb.shape == (B, 8)
    assert ResBlock(16, 24, groups=8, step_dim=8)(x, emb).shape == (B, 24, 8, 8)
    assert ResBlock(16, 16, groups=8)(x).shape == (B, 16, 8, 8)
    assert LinearAttention(16, heads=4, head_dim=16)(x).shape == x.shape
    assert ConvGRUCell(16, 8)(x, torch.zeros(B, 8, 8, 8)).shape == (B, 8, 8, 8)
    assert Downsample(16)(x).shape == (B, 16, 4, 4)
    assert Upsample(16)(x).shape == (B, 16, 16, 16)
    assert [t.shape for t in pyramid_zeros(B, 16, 8, [4, 8], torch.device("cpu"), torch.float32)] == [
        (B, 4, 16, 8),
        (B, 8, 8, 4),
    ]


def test_step_encoding_distinguishes_steps_and_is_bounded():
    enc = step_encoding(torch.arange(1600), 64)
    assert enc.shape == (1600, 64)
    assert float(enc.abs().max()) <= 1.0
    assert torch.cdist(enc, enc).add(torch.eye(1600)).min() > 1e-3  # no two steps share an encoding


def test_step_embedding_changes_the_resblock_output():
    block, emb = ResBlock(8, 8, groups=8, step_dim=8), StepEmbedding(8)
    x = torch.randn(1, 8, 4, 4)
    assert not torch.allclose(block(x, emb(torch.tensor([3]))), block(x, emb(torch.tensor([900]))))


def test_linear_attention_is_global_and_permutation_equivariant():
    attn = LinearAttention(16).eval()
    x = torch.randn(1, 16, 6, 6)
    perm = torch.randperm(36)
    out = attn(x).flatten(2)
    out_perm = attn(x.flatten(2)[:, :, perm].reshape(1, 16, 6, 6)).flatten(2)
    torch.testing.assert_close(out_perm, out[:, :, perm], rtol=1e-5, atol=1e-5)
    # Changing one corner pixel changes the opposite corner: the receptive field is the whole frame.
    y = x.clone()
    y[..., 0, 0] += torch.randn(16)
    assert not torch.allclose(attn(y)[..., 5, 5], attn(x)[..., 5, 5])


def test_conv_gru_state_carries_information():
    gru = ConvGRUCell(4, 8)
    a, b, same = torch.randn(1, 4, 6, 6), torch.randn(1, 4, 6, 6), torch.randn(1, 4, 6, 6)
    h0 = torch.zeros(1, 8, 6, 6)
    ha, hb = gru(same, gru(a, h0)), gru(same, gru(b, h0))
    assert (ha - hb).abs().mean() > 1e-3  # the first frame is remembered after the second


# ---------------------------------------------------------------------------- modules
def test_module_shapes_through_every_level():
    dims = [8, 16, 16]
    ctx = ContextEncoder(C, dims, groups=8)
    contexts = ctx(torch.randn(B, C, H, W), pyramid_zeros(B, H, W, dims, torch.device("cpu"), torch.float32))
    assert [tuple(c.shape) for c in contexts] == [(B, 8, 16, 16), (B, 16, 8, 8), (B, 16, 4, 4)]
    den = Denoiser(C, 8, [1, 2, 2], dims, groups=8)
    assert den(torch.randn(B, C, H, W), torch.tensor([0, 5]), contexts).shape == (B, C, H, W)
    tr = TransformNet(C, 8, [1, 2, 4], groups=8)
    mu, hidden = tr(
        torch.randn(B, C, H, W), pyramid_zeros(B, H, W, tr.dims, torch.device("cpu"), torch.float32)
    )
    assert mu.shape == (B, C, H, W)
    assert [tuple(h.shape) for h in hidden] == [(B, 8, 16, 16), (B, 16, 8, 8), (B, 32, 4, 4)]


def test_denoiser_uses_context_and_step():
    dims = [8, 16]
    den = Denoiser(C, 8, [1, 2], dims, groups=8)
    y, n = torch.randn(1, C, 8, 8), torch.tensor([4])
    ctx1 = (torch.randn(1, 8, 8, 8), torch.randn(1, 16, 4, 4))
    ctx2 = (ctx1[0], torch.randn(1, 16, 4, 4))  # only the deepest level differs
    assert not torch.allclose(den(y, n, ctx1), den(y, n, ctx2))
    assert not torch.allclose(den(y, n, ctx1), den(y, torch.tensor([15]), ctx1))


# ---------------------------------------------------------------------------- the model and its kinds
@pytest.mark.parametrize("kind", ["rvd", "vd", "simple_rvd"])
def test_model_interface(kind):
    model = build_model(small_config(kind), C)
    assert isinstance(model, SequenceModel)
    assert model.name == kind and model.spatial_multiple == 2
    state = model.initial_state(B, H, W, "cpu")
    frames = torch.randn(3, B, C, H, W)
    for f in frames:
        new = model.observe(state, f)
        assert new is not state and new.frames_seen == state.frames_seen + 1
        state = new
    assert state.mu.shape == (B, C, H, W)
    assert len(state.context) == 2


def test_kinds_differ_exactly_as_specified():
    frames = torch.randn(2, B, C, H, W)
    rvd, vd, simple = (build_model(small_config(k), C) for k in ("rvd", "vd", "simple_rvd"))
    assert (rvd.sigma, vd.sigma, simple.sigma) == (2.0, 1.0, 2.0)
    assert rvd.transform is not None and vd.transform is None and simple.transform is None
    states = {}
    for name, model in (("rvd", rvd), ("vd", vd), ("simple", simple)):
        s = model.initial_state(B, H, W, "cpu")
        for f in frames:
            s = model.observe(s, f)
        states[name] = s
    assert torch.equal(states["vd"].mu, torch.zeros(B, C, H, W))
    assert torch.equal(states["simple"].mu, frames[-1])  # the previous observed frame
    expected_mu, _ = rvd.transform(
        frames[1], rvd.observe(rvd.initial_state(B, H, W, "cpu"), frames[0]).transform
    )
    torch.testing.assert_close(states["rvd"].mu, expected_mu)
    assert not torch.allclose(states["rvd"].mu, frames[-1])
    # A drawn frame is mu + sigma * (the diffusion's sample with the denoiser closed over the context).
    for name, model in (("rvd", rvd), ("vd", vd), ("simple", simple)):
        s = states[name]
        with torch.no_grad():
            x = model.sample_next(s, sampler="ddim", steps=5, generator=torch.Generator().manual_seed(1))
            y0 = model.diffusion.sample(
                lambda y, n, m=model, s=s: m.denoiser(y, n, s.context), (B, C, H, W), sampler="ddim", steps=5,
                generator=torch.Generator().manual_seed(1),
            )  # fmt: skip
        torch.testing.assert_close(x, s.mu + model.sigma * y0)


@pytest.mark.parametrize("kind,mu_weight", [("rvd", 0.0), ("rvd", 0.5), ("vd", 0.0), ("simple_rvd", 0.0)])
def test_loss_is_algorithm_1_with_teacher_forcing(kind, mu_weight):
    """The loss equals a hand-written Algorithm 1: one n per sequence, y0 = (x - mu)/sigma, true frames observed
    (plus the optional mu term)."""
    model = build_model(small_config(kind, loss="l1", mu_loss_weight=mu_weight), C)
    window = torch.randn(B, 5, C, H, W)
    torch.manual_seed(7)
    loss = model.loss(window, n_context=2)
    torch.manual_seed(7)
    state = model.initial_state(B, H, W, "cpu")
    for t in range(2):
        state = model.observe(state, window[:, t])
    n = torch.randint(0, 20, (B,))
    terms = []
    for t in range(2, 5):
        mu = {"rvd": state.mu, "vd": 0.0, "simple_rvd": window[:, t - 1]}[kind]
        y0 = (window[:, t] - mu) / model.sigma
        terms.append(
            model.diffusion.training_loss(
                lambda y, k, s=state: model.denoiser(y, k, s.context), y0, n=n, loss="l1"
            )
            + mu_weight * (window[:, t] - state.mu).square().mean()
        )
        state = model.observe(state, window[:, t])
    torch.testing.assert_close(loss, torch.stack(terms).mean())
    torch.manual_seed(7)
    torch.testing.assert_close(model(window, 2), loss)  # forward() is the loss (for DistributedDataParallel)


def test_loss_decreases_on_a_fixed_batch_and_trains_every_part():
    model = build_model(small_config("rvd"), C)
    window = torch.randn(4, 4, C, H, W).cumsum(1) * 0.3  # some temporal structure
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(15):
        torch.manual_seed(0)  # the same n and noise every step: a deterministic objective
        loss = model.loss(window, n_context=2)
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        if not losses:
            for part in (model.denoiser, model.context_encoder, model.transform):
                assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_auto_sigma_is_the_running_rms_of_the_training_residual():
    """sigma: auto learns the residual's RMS per channel from training batches only, is used for y0 and for
    sampling, and travels in the state dict (checkpoints, the weights' EMA)."""
    scales = torch.tensor([0.5, 0.02, 3.0])  # per-channel std of the frame-to-frame steps of a random walk

    def windows(batch=4):
        steps = torch.randn(batch, 5, C, H, W) * scales[None, None, :, None, None]
        return steps.cumsum(1)

    # simple_rvd: mu is the previous frame, so the residual is exactly the random walk's step
    model = build_model(small_config("simple_rvd", sigma="auto", sigma_momentum=1.0), C)
    assert "residual_mean_square" in model.state_dict()
    window = windows()
    model.loss(window, n_context=2)  # momentum 1: the buffer is the last future frame's mean square
    last = (window[:, 4] - window[:, 3]).square().mean(dim=(0, 2, 3))
    torch.testing.assert_close(model.residual_mean_square.flatten(), last)

    model = build_model(small_config("simple_rvd", sigma="auto", sigma_momentum=0.1), C)
    with torch.no_grad():
        for _ in range(40):
            model.loss(windows(), n_context=2)
    torch.testing.assert_close(model.residual_scale().flatten(), scales, rtol=0.05, atol=0)
    fitted = model.residual_mean_square.clone()
    model.eval()
    model.loss(windows() * 10, n_context=2)  # evaluation batches never move it
    assert torch.equal(model.residual_mean_square, fitted)

    # sampling scales the drawn y0 by the fitted sigma: with a diffusion that returns y0 = 1, x = mu + sigma
    model.diffusion.sample = lambda *args, **kwargs: torch.ones(B, C, H, W)
    state = model.observe(model.initial_state(B, H, W, "cpu"), torch.zeros(B, C, H, W))
    frame = model.sample_next(state)
    torch.testing.assert_close(frame, fitted.sqrt().expand(B, C, H, W))
    restored = build_model(small_config("simple_rvd", sigma="auto"), C)
    restored.load_state_dict(model.state_dict())
    torch.testing.assert_close(restored.residual_scale(), model.residual_scale())


def test_auto_pixel_sigma_is_the_running_rms_per_pixel_and_travels_with_its_shape():
    """sigma: auto_pixel keeps the residual's RMS per channel and pixel: the buffer takes the frames' size at the
    first training batch, the weights' EMA follows it, a fresh model loads it from a state dict, and frames of
    another size get one error line."""
    from forecast.training.ema import EMA

    # a random walk whose steps have a std that varies along x: a per-channel scale cannot represent it
    profile = (
        torch.linspace(0.05, 2.0, W)[None, None, None, None, :]
        * torch.tensor([1.0, 0.1, 3.0])[None, None, :, None, None]
    )

    def windows(batch=8):
        return (torch.randn(batch, 5, C, H, W) * profile).cumsum(1)

    model = build_model(small_config("simple_rvd", sigma="auto_pixel", sigma_momentum=0.1), C)
    ema = EMA(model, decay=0.5, warmup=False)
    assert model.residual_mean_square.shape == (1, C, 1, 1)  # the frame size is not known yet
    buffer = model.residual_mean_square  # resized in place: DDP keeps broadcasting the tensor it found
    with torch.no_grad():
        for step in range(60):
            model.loss(windows(), n_context=2)
            ema.update(model, step)
    scale = model.residual_scale((H, W))
    assert scale.shape == (1, C, H, W) and model.residual_mean_square is buffer
    expected = profile[0, 0].expand(C, H, W)
    assert (scale[0] / expected - 1).abs().mean() < 0.1, (scale[0] / expected).mean()
    assert ema.state_dict()["residual_mean_square"].shape == (1, C, H, W)

    restored = build_model(small_config("simple_rvd", sigma="auto_pixel"), C)
    restored.load_state_dict(model.state_dict())
    torch.testing.assert_close(restored.residual_scale((H, W)), scale)
    restored.diffusion.sample = lambda *args, **kwargs: torch.ones(B, C, H, W)
    state = restored.observe(restored.initial_state(B, H, W, "cpu"), torch.zeros(B, C, H, W))
    torch.testing.assert_close(restored.sample_next(state), scale.expand(B, C, H, W))
    state = restored.observe(restored.initial_state(B, 2 * H, W, "cpu"), torch.zeros(B, C, 2 * H, W))
    with pytest.raises(ForecastError, match=f"fitted on frames of {H}x{W}, these are {2 * H}x{W}"):
        restored.sample_next(state)

    # the other auto keeps one per channel
    per_channel = build_model(small_config("simple_rvd", sigma="auto"), C)
    with torch.no_grad():
        per_channel.loss(windows(), n_context=2)
    assert per_channel.residual_mean_square.shape == (1, C, 1, 1)


@pytest.mark.parametrize("detach_mu", [False, True])
def test_detach_mu_leaves_mu_to_the_mu_loss_alone(detach_mu):
    """detach_mu: the diffusion loss trains the denoiser but not the transform, whose gradient is then that of
    the mu loss alone; without it (the paper) the diffusion loss reaches the transform through y0."""
    config = small_config("rvd", sigma="auto", mu_loss_weight=1.0, detach_mu=detach_mu)
    window = torch.randn(B, 4, C, H, W)

    def transform_grads(without_diffusion_loss: bool):
        torch.manual_seed(0)
        model = build_model(config, C)
        if without_diffusion_loss:
            model.diffusion.training_loss = lambda *args, **kwargs: torch.zeros(())
        torch.manual_seed(1)
        model.loss(window, n_context=2).backward()
        if not without_diffusion_loss:
            assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.denoiser.parameters())
        return torch.cat([p.grad.flatten() for p in model.transform.parameters()])

    full, mu_loss_only = transform_grads(False), transform_grads(True)
    assert torch.allclose(full, mu_loss_only) == detach_mu


@pytest.mark.parametrize("kind", ["rvd", "simple_rvd"])
def test_condition_on_mu_shows_the_denoiser_mu(kind):
    """condition_on_mu: every denoiser call, in the loss and in sampling, gets mu as extra input channels, so the
    sampled residual changes with mu at the same context and noise; without it (the paper) it cannot."""
    window = torch.randn(B, 4, C, H, W)

    def denoiser_inputs(model, run, *args):  # the denoiser's inputs while run(*args) runs
        seen, forward = [], model.denoiser.forward
        model.denoiser.forward = lambda y, n, context: seen.append(y) or forward(y, n, context)
        run(*args)
        model.denoiser.forward = forward
        return seen

    model = build_model(small_config(kind, condition_on_mu=True), C)
    assert model.denoiser.down[0]["res1"].shortcut.in_channels == 2 * C
    states = []  # the state after each observed frame, as the loss's teacher forcing makes it
    observe = model.observe
    model.observe = lambda state, frame: states.append(observe(state, frame)) or states[-1]
    inputs = denoiser_inputs(model, model.loss, window, 2)
    del model.observe
    assert [y.shape[1] for y in inputs] == [2 * C, 2 * C]
    for y, state in zip(inputs, states[1:]):  # states[1]: after both context frames, it predicts frame 2
        assert torch.equal(y[:, C:], state.mu)

    def residual(model, state):
        sample = model.sample_next(state, sampler="ddim", steps=4, generator=torch.Generator().manual_seed(0))
        return (sample - state.mu) / model.residual_scale()

    for condition in (True, False):
        model = build_model(small_config(kind, condition_on_mu=condition), C).eval()
        state = model.observe(model.initial_state(B, H, W, "cpu"), window[:, 0])
        inputs = denoiser_inputs(model, residual, model, state)
        assert len(inputs) == 4 and all(torch.equal(y[:, C:], state.mu) for y in inputs) == condition
        shifted = dataclasses.replace(state, mu=state.mu + 1.0)
        same = torch.allclose(residual(model, state), residual(model, shifted), atol=1e-5)
        assert same != condition


def test_sample_next_shape_and_reproducibility():
    model = build_model(small_config("rvd"), C).eval()
    state = model.observe(model.initial_state(B, H, W, "cpu"), torch.randn(B, C, H, W))
    draw = lambda seed, **kw: model.sample_next(state, generator=torch.Generator().manual_seed(seed), **kw)  # noqa: E731
    a, b, c = draw(3), draw(3), draw(4)
    assert a.shape == (B, C, H, W) and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert not torch.allclose(a[0], a[1])  # batch rows (ensemble members) get different noise
    d = draw(3, sampler="ddim", steps=4, eta=0.0)
    assert d.shape == (B, C, H, W) and torch.equal(d, draw(3, sampler="ddim", steps=4, eta=0.0))


def test_bad_use_is_a_clear_error():
    model = build_model(small_config("rvd"), C)
    with pytest.raises(ForecastError, match="divisible by 2"):
        model.initial_state(B, 15, 16, "cpu")
    state = model.initial_state(B, H, W, "cpu")
    with pytest.raises(ForecastError, match="observe at least one"):
        model.sample_next(state)
    with pytest.raises(ForecastError, match="does not match"):
        model.observe(state, torch.randn(B, C + 1, H, W))
    with pytest.raises(ForecastError, match="channels"):
        model.loss(torch.randn(B, 4, C + 1, H, W), 2)
    with pytest.raises(ForecastError, match="n_context"):
        model.loss(torch.randn(B, 4, C, H, W), 4)


# ---------------------------------------------------------------------------- build_model and configs
@pytest.mark.parametrize(
    "model_section,match",
    [
        ({"kind": "gan"}, "unknown model.kind"),
        ({"dim": 0}, "model.dim"),
        ({"dim": 12}, "divisible by model.groups"),
        ({"denoiser_mults": []}, "denoiser_mults"),
        ({"denoiser_mults": [1, "2"]}, "denoiser_mults"),
        ({"kind": "vd", "sigma": 2.0}, "mu = 0, sigma = 1"),
        ({"sigma": -1}, "model.sigma"),
        ({"loss": "huber"}, "model.loss"),
        ({"dimension": 8}, "unknown key"),
        ({"mu_loss_weight": -1}, "mu_loss_weight"),
        ({"kind": "vd", "mu_loss_weight": 1.0}, "kind rvd only"),
        ({"sigma": "automatic"}, "model.sigma"),
        ({"kind": "vd", "sigma": "auto"}, "remove sigma=auto"),
        ({"kind": "vd", "sigma": "auto_pixel"}, "remove sigma=auto_pixel"),
        ({"detach_mu": True}, "nothing trains mu"),
        ({"detach_mu": "yes", "mu_loss_weight": 1.0}, "model.detach_mu must be true or false"),
        ({"sigma": "auto", "sigma_momentum": 0}, "sigma_momentum"),
        ({"kind": "vd", "condition_on_mu": True}, "kind vd has mu = 0"),
        ({"condition_on_mu": 1}, "model.condition_on_mu must be true or false"),
    ],
)
def test_build_model_refuses_bad_configs(model_section, match):
    with pytest.raises(ForecastError, match=match):
        build_model({"model": {"dim": 8, **model_section}, "diffusion": {"steps": 10}}, C)


def test_build_model_refuses_bad_diffusion_and_channels():
    with pytest.raises(ForecastError, match="diffusion.schedule"):
        build_model({"model": {"dim": 8}, "diffusion": {"schedule": "sigmoid"}}, C)
    with pytest.raises(ForecastError, match="diffusion.steps"):
        build_model({"model": {"dim": 8}, "diffusion": {"steps": 1}}, C)
    with pytest.raises(ForecastError, match="unknown key"):
        build_model({"model": {"dim": 8}, "diffusion": {"step": 10}}, C)
    with pytest.raises(ForecastError, match="diffusion.loss_weighting"):
        build_model({"model": {"dim": 8}, "diffusion": {"loss_weighting": "snr"}}, C)
    with pytest.raises(ForecastError, match="diffusion.prediction"):
        build_model({"model": {"dim": 8}, "diffusion": {"prediction": "score"}}, C)
    with pytest.raises(ForecastError, match="n_channels"):
        build_model({"model": {"dim": 8}}, 0)
    with pytest.raises(ForecastError, match="mapping"):
        build_model(["model"], C)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_configs_build(path):
    config = yaml.safe_load(path.read_text())
    rvd_family = config["model"]["kind"] in ("rvd", "vd", "simple_rvd")  # baselines have no diffusion section
    diffusion = {"diffusion"} if rvd_family else set()
    assert {"model", "data", "training"} | diffusion <= set(config)
    with torch.device("meta"):  # no memory, no initialisation: just the architecture
        model = build_model(config, len(config["data"]["variables"]))
    assert model.name == config["model"]["kind"]
    if path.stem.startswith("paper") or path.stem in ("vd", "simple_rvd"):
        assert model.diffusion.steps == 1600 and model.diffusion.schedule == "cosine"
        assert config["data"]["context_frames"] == 2 and config["data"]["future_frames"] == 6


def test_parameter_count_script_agrees_with_the_models():
    import importlib.util

    spec = importlib.util.spec_from_file_location("param_counts", EXPERIMENTS / "param_counts.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    paper = yaml.safe_load((CONFIGS / "paper_128.yaml").read_text())
    vd = yaml.safe_load((CONFIGS / "vd.yaml").read_text())
    counts, vd_counts = script.model_counts(paper), script.model_counts(vd)
    with torch.device("meta"):
        model = build_model(paper, 3)
    assert sum(counts.values()) == sum(p.numel() for p in model.parameters())
    # The ablation drops exactly the transform network; denoiser and context encoder are shared.
    assert vd_counts == {**counts, "transform": 0}
    # A ResBlock without step embedding: two 3x3 convs + two GroupNorms + a 1x1 shortcut, counted by hand.
    cin, cout = 16, 32
    expected = (9 * cin * cout + cout) + 2 * cout + (9 * cout * cout + cout) + 2 * cout + (cin * cout + cout)
    assert script.count(ResBlock(cin, cout, groups=8)) == expected


def test_state_and_samples_stay_full_precision_under_autocast():
    model = build_model(small_config("rvd"), C)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        state = model.observe(model.initial_state(B, H, W, "cpu"), torch.randn(B, C, H, W))
        frame = model.sample_next(state, sampler="ddim", steps=3)
        loss = model.loss(torch.randn(B, 4, C, H, W), 2)
    assert all(t.dtype == torch.float32 for t in (*state.context, *state.transform, state.mu, frame))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_model_state_remembers_earlier_frames():
    """Same last frame, different first frame: the context and mu differ (the state is not just the last frame)."""
    model = build_model(small_config("rvd"), C)
    a, b, last = torch.randn(3, 1, C, H, W)
    s0 = model.initial_state(1, H, W, "cpu")
    sa = model.observe(model.observe(s0, a), last)
    sb = model.observe(model.observe(s0, b), last)
    for ca, cb in zip(sa.context, sb.context):
        assert (ca - cb).abs().mean() > 1e-4
    assert (sa.mu - sb.mu).abs().mean() > 1e-4
