"""Fast sampling paths (forecast.capture, bf16 autocast) give the samples of the plain fp32 sampler.

Tolerances. A compiled or captured denoiser runs other kernels than the eager one, so samples agree to float
rounding, not bit for bit: 1e-5 absolute on residuals of order 1 (tests here see 0 with ``aot_eager``; inductor
measured 3e-6 on one call of the tiny denoiser). Channels-last convolutions on a CPU (oneDNN's other kernels)
differ by up to 2.7e-5 after the 10 steps here: bound 1e-4, as for strict fp32 on a GPU. bf16 autocast rounds
the network's activations to 8 bits of mantissa: samples of an untrained tiny RVD (10 DDIM steps, eta 1, frames of std ~1) stay within 0.5 absolute
(max) and 10% of the frames' std RMS of fp32 (measured: 0.27 and 6%). The sampler's own arithmetic never runs in bf16: driven by the exact Gaussian
predictor, it gives bit-identical samples with and without autocast.
"""

from __future__ import annotations

import pytest
import torch

from forecast.capture import CapturedNetwork, resolve_capture
from forecast.diffusion import GaussianDiffusion
from forecast.errors import ForecastError
from forecast.models import build_model

C, SIZE = 2, 16


def tiny_rvd():
    torch.manual_seed(0)
    config = {
        "model": {"kind": "rvd", "dim": 8, "denoiser_mults": [1, 2], "transform_mults": [1, 2]},
        "diffusion": {"steps": 20, "prediction": "y0", "clip_x0": 2.0},  # as tiny.yaml: bounded samples
    }
    model = build_model(config, C).eval()
    state = model.initial_state(3, SIZE, SIZE, "cpu")
    with torch.no_grad():
        state = model.observe(state, torch.randn(3, C, SIZE, SIZE))
    return model, state


def draw(model, state, seed=1, **kwargs):
    with torch.no_grad():
        return model.sample_next(
            state, sampler="ddim", steps=10, eta=1.0, generator=torch.Generator().manual_seed(seed), **kwargs
        )


def test_resolve_capture_modes():
    assert resolve_capture("auto", "cpu") == "none"
    assert resolve_capture("compile", "cpu") == "compile"
    with pytest.raises(ForecastError, match="needs a CUDA device"):
        resolve_capture("cudagraph", "cpu")
    with pytest.raises(ForecastError, match="unknown capture mode"):
        resolve_capture("fast", "cpu")
    with pytest.raises(ForecastError, match="resolved first"):
        CapturedNetwork(lambda x: x, "auto")


def test_failed_compile_falls_back_to_eager_with_a_warning(monkeypatch):
    def broken_compile(fn, **kwargs):
        def compiled(*args):
            raise RuntimeError("no C++ compiler\nlong log")

        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    net = CapturedNetwork(lambda x, pair: x * 2 + pair[0], "compile")
    x = torch.arange(4.0)
    with pytest.warns(RuntimeWarning, match="'compile' failed \\(RuntimeError: no C\\+\\+ compiler\\)"):
        out = net(x, (x,))
    assert torch.equal(out, x * 3)
    assert net.mode == "none"  # later calls go straight to eager


def test_bf16_autocast_sampling_on_cpu_stays_close_to_fp32():
    model, state = tiny_rvd()
    reference = draw(model, state)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = draw(model, state)
    assert fast.dtype == torch.float32  # the sampler's state and output stay in full precision
    diff = fast - reference
    assert 0 < diff.abs().max() < 0.5, diff.abs().max()  # > 0: autocast really ran the network in bf16
    assert diff.square().mean().sqrt() < 0.1 * reference.std()


@pytest.mark.parametrize("sampler, steps", [("ddpm", None), ("ddim", 7)])
def test_sampler_math_does_not_run_in_bf16_under_autocast(sampler, steps):
    d = GaussianDiffusion(steps=50)
    abar_all = d.alphas_cumprod

    def optimal_eps(y, n):  # the exact predictor of N(0.5, 0.3^2) data (see tests/test_diffusion.py)
        abar = abar_all[n].to(y)[:, None]
        return (1 - abar).sqrt() * (y - abar.sqrt() * 0.5) / (abar * 0.09 + 1 - abar)

    def sample():
        return d.sample(optimal_eps, (500, 4), sampler=sampler, steps=steps, eta=1.0,
                        generator=torch.Generator().manual_seed(0))  # fmt: skip

    plain = sample()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(sample(), plain)


def test_channels_last_sampling_matches_eager_and_restores_the_weights():
    model, state = tiny_rvd()
    reference = draw(model, state)
    seen = []
    first_conv = next(m for m in model.denoiser.modules() if isinstance(m, torch.nn.Conv2d))
    hook = first_conv.register_forward_pre_hook(
        lambda module, inputs: seen.append(inputs[0].is_contiguous(memory_format=torch.channels_last))
    )
    model.accelerate_sampling("none", channels_last=True)
    assert first_conv.weight.is_contiguous(memory_format=torch.channels_last)
    fast = draw(model, state)
    assert seen and all(seen)  # every call of the network saw channels-last activations
    torch.testing.assert_close(fast, reference, rtol=0, atol=1e-4)
    model.accelerate_sampling("none")
    hook.remove()
    assert first_conv.weight.is_contiguous() and model._sampling_denoiser is None
    assert torch.equal(draw(model, state), reference)


@pytest.mark.slow
def test_compiled_sampling_matches_eager():
    # aot_eager traces the denoiser with dynamo and AOT autograd as inductor does, without its C++ build (which
    # takes ~9 minutes on a 2-core CPU); inductor's own kernels are checked on a GPU by gpu_check.sh.
    model, state = tiny_rvd()
    reference = draw(model, state)
    model.accelerate_sampling("compile", backend="aot_eager")
    compiled = draw(model, state)
    assert model._sampling_denoiser.mode == "compile"  # no silent fallback to eager
    torch.testing.assert_close(compiled, reference, rtol=0, atol=1e-5)
    model.accelerate_sampling("none")
    assert torch.equal(draw(model, state), reference)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("tf32", [False, True], ids=["fp32", "tf32"])
@pytest.mark.parametrize("mode", ["cudagraph", "compile", "compile+channels_last"])
def test_captured_sampling_on_cuda_matches_eager(mode, tf32, monkeypatch):
    """In strict fp32 the captured chain matches eager to rounding. With TF32 convolutions (PyTorch's default
    for cuDNN) eager and captured runs may pick other algorithms, each rounding inputs to 10 bits of mantissa:
    measured on an H200, 1.8e-3 (CUDA graph) and 3e-2 (inductor) max after 10 steps; the bound here is 1% of
    the frames' std RMS."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", tf32)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", tf32)
    model = tiny_rvd()[0].cuda()
    with torch.no_grad():
        state = model.observe(
            model.initial_state(3, SIZE, SIZE, "cuda"), torch.randn(3, C, SIZE, SIZE).cuda()
        )

    def draw_cuda():
        with torch.no_grad():
            return model.sample_next(state, sampler="ddim", steps=10, eta=1.0,
                                     generator=torch.Generator("cuda").manual_seed(1))  # fmt: skip

    reference = draw_cuda()
    capture, channels_last = mode.removesuffix("+channels_last"), mode.endswith("+channels_last")
    model.accelerate_sampling(capture, channels_last=channels_last)
    fast = draw_cuda()
    assert model._sampling_denoiser.mode == capture
    diff = fast - reference
    rms, largest = diff.square().mean().sqrt().item(), diff.abs().max().item()
    print(f"{mode}, tf32={tf32}: max diff {largest:.2e}, RMS {rms:.2e}, frame std {reference.std():.2e}")
    if tf32:
        assert rms < 0.01 * reference.std()
    else:
        torch.testing.assert_close(fast, reference, rtol=0, atol=1e-4)
