"""The diffusion math against closed-form results.

The central check drives the samplers with the *optimal* noise predictor of a Gaussian data distribution
``y0 ~ N(m, s^2)`` (per dimension), for which ``E[eps | y_n] = sqrt(1 - abar)(y_n - sqrt(abar) m) / v`` with
``v = abar s^2 + 1 - abar``. Both samplers must then reproduce ``N(m, s^2)`` up to Monte-Carlo error and their
time-discretisation bias. That bias is not zero for a finite number of steps (each step is linear in ``y``, so the
sampler's output is exactly Gaussian with a mean and variance that a short recursion computes, independently of
the implementation below); it is computed here and shown to vanish as the number of steps grows.
"""

import math

import numpy as np
import pytest
import torch

from forecast.diffusion import GaussianDiffusion
from forecast.errors import ForecastError

M = torch.tensor([1.5, -0.7, 0.0, 0.3], dtype=torch.float64)  # data mean per dimension
S = torch.tensor([0.5, 2.0, 1.0, 0.25], dtype=torch.float64)  # data std per dimension
SAMPLES = 20000


def optimal_eps(d: GaussianDiffusion, m=M, s=S):
    abar_all = d.alphas_cumprod

    def eps_model(y, n):
        assert n.dtype == torch.long and n.shape == (y.shape[0],)
        abar = abar_all[n].to(y)[:, None]
        return (1 - abar).sqrt() * (y - abar.sqrt() * m) / (abar * s**2 + 1 - abar)

    return eps_model


def exact_output_moments(
    abar: np.ndarray, seq: list[int], eta: float, m: float, s: float
) -> tuple[float, float]:
    """Mean and std of a DDIM(eta) chain over ``seq`` driven by the optimal predictor, starting at N(0, 1).

    Written from the DDIM paper's update (Song et al. 2021, eq. 12) with plain floats; DDPM is the case
    ``seq = 0..N-1, eta = 1``.
    """
    mean, var = 0.0, 1.0
    for k in range(len(seq) - 1, -1, -1):
        a = abar[seq[k]]
        ap = abar[seq[k - 1]] if k > 0 else 1.0
        v = a * s * s + 1 - a
        ge, he = math.sqrt(1 - a) / v, -math.sqrt((1 - a) * a) * m / v  # eps = ge * y + he
        g0, h0 = (1 - math.sqrt(1 - a) * ge) / math.sqrt(a), -math.sqrt(1 - a) * he / math.sqrt(a)
        sig2 = eta**2 * (1 - ap) / (1 - a) * (1 - a / ap) if k > 0 else 0.0
        c = math.sqrt(max(1 - ap - sig2, 0.0))
        gain, shift = math.sqrt(ap) * g0 + c * ge, math.sqrt(ap) * h0 + c * he
        mean, var = gain * mean + shift, gain * gain * var + sig2
    return mean, math.sqrt(var)


def sample_moments(d, sampler, steps, eta, seed=0):
    gen = torch.Generator().manual_seed(seed)
    y = d.sample(
        optimal_eps(d),
        (SAMPLES, len(M)),
        sampler=sampler,
        steps=steps,
        eta=eta,
        generator=gen,
        dtype=torch.float64,
    )
    return y.mean(0), y.std(0)


# ---------------------------------------------------------------------------- schedule and forward process
@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_schedule_endpoints_and_monotonicity(schedule):
    d = GaussianDiffusion(steps=200, schedule=schedule)
    abar = d.alphas_cumprod
    assert abar.shape == (200,)
    assert bool((abar[1:] < abar[:-1]).all()), "alpha-bar must decrease strictly with n"
    assert 0.99 < abar[0] < 1.0  # n = 0: almost no noise
    assert abar[-1] < 1e-3  # n = N-1: almost pure noise
    assert bool((d.betas > 0).all()) and bool((d.betas <= 0.999).all())
    torch.testing.assert_close(torch.cumprod(1 - d.betas, 0), abar)


def test_cosine_schedule_matches_nichol_dhariwal_formula():
    steps, s = 1600, 0.008
    d = GaussianDiffusion(steps=steps)
    f = [math.cos((t / steps + s) / (1 + s) * math.pi / 2) ** 2 for t in range(steps + 1)]
    expected = torch.tensor([f[n + 1] / f[0] for n in range(steps)], dtype=torch.float64)
    # The formula holds wherever beta was not clipped at 0.999, i.e. everywhere but the very last step.
    torch.testing.assert_close(d.alphas_cumprod[:-1], expected[:-1], rtol=1e-9, atol=1e-12)
    assert d.betas[-1] == pytest.approx(0.999)


def test_q_sample_marginal_moments():
    d = GaussianDiffusion(steps=100)
    n_values = [0, 30, 99]
    y0 = torch.full((SAMPLES, 3), 2.0, dtype=torch.float64)
    for n in n_values:
        y = d.q_sample(y0, torch.full((SAMPLES,), n))
        abar = float(d.alphas_cumprod[n])
        sd = math.sqrt(1 - abar)
        tol_mean = 5 * sd / math.sqrt(SAMPLES)
        assert torch.allclose(
            y.mean(0), torch.full((3,), 2.0 * math.sqrt(abar), dtype=torch.float64), atol=tol_mean
        )
        assert torch.allclose(
            y.std(0), torch.full((3,), sd, dtype=torch.float64), rtol=5 / math.sqrt(2 * SAMPLES)
        )
    # Given noise: deterministic and exactly sqrt(abar) y0 + sqrt(1 - abar) eps.
    noise = torch.randn(4, 3, dtype=torch.float64)
    n = torch.tensor([0, 5, 50, 99])
    abar = d.alphas_cumprod[n][:, None]
    torch.testing.assert_close(d.q_sample(y0[:4], n, noise), abar.sqrt() * 2.0 + (1 - abar).sqrt() * noise)


def test_training_loss_matches_closed_form_minimum():
    """With the optimal predictor, E||eps - eps*||^2 = E_n[abar s^2 / v]; a zero predictor gives E[eps^2] = 1."""
    d = GaussianDiffusion(steps=100)
    gen = torch.Generator().manual_seed(1)
    y0 = M + S * torch.randn(SAMPLES, len(M), generator=gen, dtype=torch.float64)
    n = torch.randint(0, 100, (SAMPLES,), generator=gen)
    abar = d.alphas_cumprod[n][:, None]
    expected = (abar * S**2 / (abar * S**2 + 1 - abar)).mean()
    loss = d.training_loss(optimal_eps(d), y0, n=n)
    assert float(loss) == pytest.approx(float(expected), abs=0.02)
    zero = lambda y, n: torch.zeros_like(y)  # noqa: E731
    assert float(d.training_loss(zero, y0, loss="l2")) == pytest.approx(1.0, abs=0.03)
    assert float(d.training_loss(zero, y0, loss="l1")) == pytest.approx(math.sqrt(2 / math.pi), abs=0.02)


# ---------------------------------------------------------------------------- samplers
def test_ddim_with_eta_one_and_all_steps_is_the_ddpm_chain():
    d = GaussianDiffusion(steps=50)
    eps = optimal_eps(d)
    a = d.sample(
        eps, (64, 4), sampler="ddpm", generator=torch.Generator().manual_seed(3), dtype=torch.float64
    )
    b = d.sample(
        eps,
        (64, 4),
        sampler="ddim",
        steps=50,
        eta=1.0,
        generator=torch.Generator().manual_seed(3),
        dtype=torch.float64,
    )
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    # ... and eta = 0 is deterministic given the starting noise only.
    c = d.sample(
        eps,
        (64, 4),
        sampler="ddim",
        steps=10,
        eta=0.0,
        generator=torch.Generator().manual_seed(3),
        dtype=torch.float64,
    )
    torch.testing.assert_close(
        c,
        d.sample(
            eps,
            (64, 4),
            sampler="ddim",
            steps=10,
            generator=torch.Generator().manual_seed(3),
            dtype=torch.float64,
        ),
    )


def optimal_y0(d: GaussianDiffusion, m=M, s=S):
    """E[y0 | y_n] for y0 ~ N(m, s^2): the optimal output of a network that predicts y0."""
    abar_all = d.alphas_cumprod

    def y0_model(y, n):
        abar = abar_all[n].to(y)[:, None]
        return m + abar.sqrt() * s**2 * (y - abar.sqrt() * m) / (abar * s**2 + 1 - abar)

    return y0_model


@pytest.mark.parametrize("sampler,steps,eta", [("ddpm", None, 0.0), ("ddim", 10, 0.0), ("ddim", 25, 1.0)])
def test_y0_prediction_gives_the_same_chain_as_eps_prediction(sampler, steps, eta):
    """The optimal y0 predictor and the optimal eps predictor imply the same chain, path by path."""
    d_eps, d_y0 = GaussianDiffusion(steps=50), GaussianDiffusion(steps=50, prediction="y0")

    def run(d, model):
        gen = torch.Generator().manual_seed(2)
        return d.sample(
            model, (256, 4), sampler=sampler, steps=steps, eta=eta, generator=gen, dtype=torch.float64
        )

    torch.testing.assert_close(
        run(d_y0, optimal_y0(d_y0)), run(d_eps, optimal_eps(d_eps)), rtol=1e-7, atol=1e-7
    )
    # Its training loss is the posterior variance of y0: E_n[s^2 (1 - abar) / v].
    gen = torch.Generator().manual_seed(1)
    y0 = M + S * torch.randn(SAMPLES, len(M), generator=gen, dtype=torch.float64)
    n = torch.randint(0, 50, (SAMPLES,), generator=gen)
    abar = d_y0.alphas_cumprod[n][:, None]
    expected = (S**2 * (1 - abar) / (abar * S**2 + 1 - abar)).mean()
    assert float(d_y0.training_loss(optimal_y0(d_y0), y0, n=n)) == pytest.approx(float(expected), rel=0.05)


def optimal_v(d: GaussianDiffusion, m=M, s=S):
    """E[v | y_n] = sqrt(abar) E[eps | y_n] - sqrt(1 - abar) E[y0 | y_n]: the optimal v-predictor."""
    abar_all, eps, y0 = d.alphas_cumprod, optimal_eps(d, m, s), optimal_y0(d, m, s)

    def v_model(y, n):
        abar = abar_all[n].to(y)[:, None]
        return abar.sqrt() * eps(y, n) - (1 - abar).sqrt() * y0(y, n)

    return v_model


@pytest.mark.parametrize("sampler,steps,eta", [("ddpm", None, 0.0), ("ddim", 10, 0.0), ("ddim", 25, 1.0)])
def test_v_prediction_gives_the_same_chain_as_eps_prediction(sampler, steps, eta):
    """The optimal v predictor implies the eps predictor's chain path by path (the conversions are exact)."""
    d_eps, d_v = GaussianDiffusion(steps=50), GaussianDiffusion(steps=50, prediction="v")

    def run(d, model):
        gen = torch.Generator().manual_seed(2)
        return d.sample(
            model, (256, 4), sampler=sampler, steps=steps, eta=eta, generator=gen, dtype=torch.float64
        )

    torch.testing.assert_close(run(d_v, optimal_v(d_v)), run(d_eps, optimal_eps(d_eps)), rtol=1e-7, atol=1e-7)


def test_v_target_and_split_invert_each_other():
    """target(y0, n, eps) is v = sqrt(abar) eps - sqrt(1 - abar) y0, and split(q_sample, v) returns (eps, y0)."""
    d = GaussianDiffusion(steps=30, prediction="v")
    gen = torch.Generator().manual_seed(4)
    y0, eps = (torch.randn(30, 5, generator=gen, dtype=torch.float64) for _ in range(2))
    n = torch.arange(30)
    abar = d.alphas_cumprod[n][:, None]
    v = d.target(y0, n, eps)
    torch.testing.assert_close(v, abar.sqrt() * eps - (1 - abar).sqrt() * y0)
    eps_back, y0_back = d.split(d.q_sample(y0, n, eps), n, v)
    torch.testing.assert_close(eps_back, eps)
    torch.testing.assert_close(y0_back, y0)
    # Its training loss with the optimal predictor is E_n[Var(v | y_n)] = E_n[s^2 / v_n] (v_n = abar s^2 + 1 - abar).
    y0 = M + S * torch.randn(SAMPLES, len(M), generator=gen, dtype=torch.float64)
    n = torch.randint(0, 30, (SAMPLES,), generator=gen)
    abar = d.alphas_cumprod[n][:, None]
    expected = (S**2 / (abar * S**2 + 1 - abar)).mean()
    assert float(d.training_loss(optimal_v(d), y0, n=n)) == pytest.approx(float(expected), rel=0.05)


@pytest.mark.parametrize("prediction", ["eps", "y0", "v"])
def test_min_snr_weights_the_y0_error_by_min_snr_gamma(prediction):
    """Whatever the target, min_snr makes the loss min(SNR, gamma) * (error of the implied y0)^2."""
    d = GaussianDiffusion(steps=40, prediction=prediction, loss_weighting="min_snr", min_snr_gamma=5.0)
    gen = torch.Generator().manual_seed(5)
    y0, noise = (torch.randn(40, 6, generator=gen, dtype=torch.float64) for _ in range(2))
    n = torch.arange(40)
    offset = 0.1 * torch.randn(40, 6, generator=gen, dtype=torch.float64)
    model = lambda y, k: d.target(y0, k, noise) + offset  # noqa: E731
    y_n = d.q_sample(y0, n, noise)
    _, y0_hat = d.split(y_n, n, model(y_n, n))
    abar = d.alphas_cumprod[n][:, None]
    snr = abar / (1 - abar)
    expected = (snr.clamp(max=5.0) * (y0_hat - y0).square()).mean()
    torch.testing.assert_close(d.training_loss(model, y0, n=n, noise=noise), expected)
    assert float(snr.min()) < 5.0 < float(snr.max())  # both sides of gamma are exercised
    uniform = GaussianDiffusion(steps=40, prediction=prediction)
    torch.testing.assert_close(uniform.training_loss(model, y0, n=n, noise=noise), offset.square().mean())


def test_ddim_timesteps_are_evenly_spaced_and_include_both_ends():
    d = GaussianDiffusion(steps=200)
    seq = d.ddim_timesteps(20)
    assert seq[0] == 0 and seq[-1] == 199 and len(seq) == 20
    assert bool((seq.diff() > 0).all()) and int(seq.diff().max() - seq.diff().min()) <= 1
    assert d.ddim_timesteps(200).tolist() == list(range(200))


@pytest.mark.parametrize(
    "sampler,steps,eta",
    [
        ("ddpm", None, 0.0),
        ("ddim", 200, 0.0),
        ("ddim", 200, 1.0),
        ("ddim", 50, 0.0),
        ("ddim", 50, 1.0),
        ("ddim", 10, 0.0),
        ("ddim", 10, 0.5),
    ],
)
def test_samplers_draw_the_distribution_their_update_rule_defines(sampler, steps, eta):
    """Monte-Carlo moments against the exact moments of the discretised chain (5 standard errors)."""
    d = GaussianDiffusion(steps=200)
    seq = list(range(200)) if sampler == "ddpm" else d.ddim_timesteps(steps).tolist()
    mean, std = sample_moments(d, sampler, steps, eta)
    for i in range(len(M)):
        exact_mean, exact_std = exact_output_moments(
            d.alphas_cumprod.numpy(), seq, 1.0 if sampler == "ddpm" else eta, float(M[i]), float(S[i])
        )
        assert abs(float(mean[i]) - exact_mean) < 5 * exact_std / math.sqrt(SAMPLES)
        assert abs(float(std[i]) - exact_std) < 5 * exact_std / math.sqrt(2 * SAMPLES)


@pytest.mark.parametrize("sampler,eta", [("ddpm", 0.0), ("ddim", 0.0), ("ddim", 1.0)])
def test_optimal_predictor_reproduces_the_gaussian(sampler, eta):
    """All N = 200 steps: samples match m and s within 5 standard errors plus a 4% discretisation allowance.

    The allowance is the bias of the discretised chain (computed exactly by ``exact_output_moments``; at most
    3.4% for these data scales at N = 200, and 0.5% at the paper's N = 1600).
    """
    n_steps = 200
    d = GaussianDiffusion(steps=n_steps)
    mean, std = sample_moments(d, sampler, n_steps if sampler == "ddim" else None, eta)
    for i in range(len(M)):
        m, s = float(M[i]), float(S[i])
        _, exact_std = exact_output_moments(
            d.alphas_cumprod.numpy(), list(range(n_steps)), 1.0 if sampler == "ddpm" else eta, m, s
        )
        assert abs(exact_std - s) < 0.04 * s
        assert abs(float(mean[i]) - m) < 5 * s / math.sqrt(SAMPLES) + 1e-3
        assert abs(float(std[i]) - s) < 5 * s / math.sqrt(2 * SAMPLES) + 0.04 * s


def test_discretisation_bias_vanishes_with_many_steps():
    """The spread deficit of the chains falls with the number of steps: 1/N for full chains, 1/S for DDIM.

    (It is larger for data of small scale: strided DDIM under-disperses ensembles, see docs/concepts/rvd.md.)
    """
    full = []
    for n_steps in (100, 400, 1600):
        d = GaussianDiffusion(steps=n_steps)
        _, std = exact_output_moments(d.alphas_cumprod.numpy(), list(range(n_steps)), 1.0, 0.5, 0.5)
        full.append(abs(std - 0.5) / 0.5)
    assert full[0] > full[1] > full[2]
    assert full[2] < 3e-3  # the paper's N = 1600
    assert full[0] / full[2] > 10  # 16x more steps: at least 10x less bias
    d = GaussianDiffusion(steps=1600)
    strided = []
    for steps in (16, 100, 400, 1600):
        _, std = exact_output_moments(
            d.alphas_cumprod.numpy(), d.ddim_timesteps(steps).tolist(), 0.0, 0.5, 0.5
        )
        strided.append(abs(std - 0.5) / 0.5)
    assert strided == sorted(strided, reverse=True)
    assert strided[-1] < 2e-3


def test_clip_x0_bounds_the_sample():
    d = GaussianDiffusion(steps=50, clip_x0=1.0)
    y = d.sample(
        optimal_eps(d, m=torch.zeros(4, dtype=torch.float64), s=torch.full((4,), 3.0, dtype=torch.float64)),
        (256, 4),
        generator=torch.Generator().manual_seed(0),
        dtype=torch.float64,
    )
    assert float(y.abs().max()) <= 1.0 + 1e-9


def test_clip_x0_contains_the_blow_up_of_an_imperfect_predictor():
    """A predictor that is exact except that it saturates at |eps| = 3 (as a network that rarely saw larger noise
    may) makes the unclipped chain explode: near zero signal-to-noise (beta up to 0.999) y0 = (y - sqrt(1 - abar)
    eps) / sqrt(abar) amplifies any error enormously. ``clip_x0`` (the authors' code clamps at 2) contains it.
    """
    d = GaussianDiffusion(steps=50)
    m, s = torch.zeros(4, dtype=torch.float64), torch.full((4,), 0.05, dtype=torch.float64)
    exact = optimal_eps(d, m=m, s=s)
    saturating = lambda y, n: exact(y, n).clamp(-3, 3)  # noqa: E731

    def draw(diffusion):
        return diffusion.sample(
            saturating, (4096, 4), generator=torch.Generator().manual_seed(0), dtype=torch.float64
        )

    assert float(draw(d).std()) > 100 * 0.05  # the data's std is 0.05
    clipped = draw(GaussianDiffusion(steps=50, clip_x0=2.0))
    assert float(clipped.abs().max()) <= 2.0 + 1e-9
    assert float(clipped.std()) == pytest.approx(
        0.05, rel=0.5
    )  # back near the data (within the sampler bias)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ForecastError, match="schedule"):
        GaussianDiffusion(steps=10, schedule="quadratic")
    with pytest.raises(ForecastError, match="steps"):
        GaussianDiffusion(steps=1)
    with pytest.raises(ForecastError, match="prediction"):
        GaussianDiffusion(steps=10, prediction="score")
    with pytest.raises(ForecastError, match="loss_weighting"):
        GaussianDiffusion(steps=10, loss_weighting="snr2")
    with pytest.raises(ForecastError, match="min_snr_gamma"):
        GaussianDiffusion(steps=10, loss_weighting="min_snr", min_snr_gamma=0)
    d = GaussianDiffusion(steps=10)
    eps = optimal_eps(d)
    with pytest.raises(ForecastError, match="sampler"):
        d.sample(eps, (2, 4), sampler="euler")
    with pytest.raises(ForecastError, match="ddpm sampler runs all"):
        d.sample(eps, (2, 4), sampler="ddpm", steps=5)
    with pytest.raises(ForecastError, match="sampling steps"):
        d.sample(eps, (2, 4), sampler="ddim", steps=11)
    with pytest.raises(ForecastError, match="loss"):
        d.training_loss(eps, torch.zeros(2, 4), loss="huber")
    with pytest.raises(ForecastError, match="0..9"):
        d.q_sample(torch.zeros(2, 4), torch.tensor([0, 10]))


def test_a_tiny_residual_is_under_dispersed_even_by_the_optimal_predictor():
    """Why ``model.sigma: auto``: with the paper's sigma = 2 the scaled residual of the vortex street has a scale of
    about 0.008, below the noise of the least noisy step (0.025 at N = 100). Driven by the *exact* denoiser, the
    chains then return a spread of 0.30 of the data's (DDIM with 25 of N = 100 steps, and DDPM over all 100); at
    unit scale, 0.95 and 0.98. Exact moments of the chain (``exact_output_moments``), no sampling.
    """
    d = GaussianDiffusion(steps=100)
    abar = d.alphas_cumprod.numpy()
    chains = {"ddim25": (d.ddim_timesteps(25).tolist(), 0.0), "ddpm": (list(range(100)), 1.0)}
    for seq, eta in chains.values():
        tiny = exact_output_moments(abar, seq, eta, 0.0, 0.008)[1] / 0.008
        unit = exact_output_moments(abar, seq, eta, 0.0, 1.0)[1]
        assert tiny < 0.31 and unit > 0.95


def test_diffusion_steps_off_the_cpu_are_not_read_back():
    # a tensor on the meta device has no values: reading one (the host sync this avoids on a GPU) would raise
    d = GaussianDiffusion(steps=10)
    n = d._check_n(torch.zeros(4, dtype=torch.long, device="meta"), 4)
    assert n.device.type == "meta" and n.shape == (4,)
    with pytest.raises(RuntimeError):
        bool(torch.zeros(4, device="meta").any())  # what a range check there would do
