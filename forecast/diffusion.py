"""Gaussian diffusion: noise schedules, the forward process, the training loss and the samplers.

Pure math, no networks. A noise predictor is any callable ``eps_model(y_n, n) -> eps`` where ``n`` is a
``LongTensor`` of shape ``(batch,)``; a model's conditioning (context, ``mu``) is closed over by the caller.

Indexing. The paper numbers the diffusion steps ``1..N``; here they are ``n = 0..N-1`` (``n = 0`` the least
noisy), so ``alphas_cumprod[n]`` is the paper's ``alpha-bar_{n+1}`` and "the step before ``n = 0``" is the data
itself (``alpha-bar = 1``).

Reverse variance. Equation (7) of the paper leaves the reverse variance as a hyperparameter ``gamma``; its
Algorithm 2 prints the noise scale as ``(1 - abar_{n-1}) / (1 - abar_n) * beta_n``, i.e. the posterior
*variance* ``beta-tilde_n`` where a standard deviation belongs (and ``1/sqrt(abar_n)`` where Ho et al. have
``1/sqrt(alpha_n)``). We use Ho et al.'s ancestral step with ``gamma_n = beta-tilde_n``, the variance of the
true posterior ``q(y_{n-1} | y_n, y_0)``: the choice for which the sampler is exact in the limit of many steps
(see ``tests/test_diffusion.py``, which drives the samplers with the optimal predictor of a Gaussian).

Few-step sampling. ``dpmpp2m`` is DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided
Sampling of Diffusion Probabilistic Models", algorithm 2): the probability-flow ODE written in the log
signal-to-noise ratio ``lambda = log(sqrt(abar) / sqrt(1 - abar))`` and the network's y0 prediction, integrated
exactly in its linear part and to second order (multistep: the previous step's y0 is reused, one network
evaluation per step) in the rest. Over the same strided steps as DDIM (DDIM is its first-order case), ``steps``
steps cost ``steps`` evaluations: the last one denoises to the data (``sigma = 0``, as DDIM's last step does).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from forecast.errors import ForecastError

EpsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

SCHEDULES = ("cosine", "linear")
PREDICTIONS = ("eps", "y0", "v")
#: weighting of the training loss over noise levels: ``uniform`` (equation 9: the plain error of the prediction
#: target) or ``min_snr`` (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR Weighting Strategy")
LOSS_WEIGHTINGS = ("uniform", "min_snr")
SAMPLERS = ("ddpm", "ddim", "dpmpp2m")
#: samplers that integrate the probability-flow ODE: deterministic given the starting noise, no ``eta``
ODE_SAMPLERS = ("dpmpp2m",)
LOSSES = ("l2", "l1")


def cosine_betas(steps: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal's cosine schedule: ``abar(t) = cos^2((t/N + s)/(1 + s) * pi/2)``, normalised to 1 at t=0."""
    t = torch.arange(steps + 1, dtype=torch.float64) / steps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    abar = f / f[0]
    betas = 1 - abar[1:] / abar[:-1]
    return betas.clamp(min=0.0, max=max_beta)


def linear_betas(steps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """Ho et al.'s linear schedule, rescaled from their N = 1000 so that any N spans the same noise range."""
    scale = 1000.0 / steps
    return torch.linspace(beta_start * scale, beta_end * scale, steps, dtype=torch.float64).clamp(max=0.999)


def _expand(coef: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-batch coefficients ``(batch,)`` broadcast against ``like`` ``(batch, ...)``."""
    return coef.reshape(-1, *([1] * (like.dim() - 1)))


class GaussianDiffusion:
    """The diffusion process of DDPM with its DDPM (ancestral) and DDIM samplers.

    Schedules are computed in float64 and cast to the data's dtype and device where they are used.
    """

    def __init__(
        self,
        steps: int = 1600,
        schedule: str = "cosine",
        clip_x0: float | None = None,
        prediction: str = "eps",
        loss_weighting: str = "uniform",
        min_snr_gamma: float = 5.0,
    ):
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 2:
            raise ForecastError(f"diffusion steps must be an integer >= 2, got {steps!r}")
        if schedule not in SCHEDULES:
            raise ForecastError(f"unknown diffusion schedule {schedule!r}; use one of {', '.join(SCHEDULES)}")
        if clip_x0 is not None and not (isinstance(clip_x0, int | float) and clip_x0 > 0):
            raise ForecastError(f"diffusion clip_x0 must be a positive number or null, got {clip_x0!r}")
        if prediction not in PREDICTIONS:
            raise ForecastError(
                f"unknown diffusion prediction {prediction!r}; use one of {', '.join(PREDICTIONS)}"
            )
        if loss_weighting not in LOSS_WEIGHTINGS:
            raise ForecastError(
                f"unknown diffusion loss_weighting {loss_weighting!r}; use one of {', '.join(LOSS_WEIGHTINGS)}"
            )
        if (
            isinstance(min_snr_gamma, bool)
            or not isinstance(min_snr_gamma, int | float)
            or not min_snr_gamma > 0
        ):
            raise ForecastError(f"diffusion min_snr_gamma must be a positive number, got {min_snr_gamma!r}")
        self.steps = steps
        #: what the network outputs: the noise (eps, the paper), the clean residual (y0, the released code's
        #: "pred_true" option) or the velocity v = sqrt(abar) eps - sqrt(1 - abar) y0 (Salimans & Ho 2022);
        #: samplers convert any of them into both eps and y0
        self.prediction = prediction
        #: ``min_snr``: each noise level's squared error is weighted so that, written as an error of y0, its weight
        #: is min(SNR_n, gamma) with SNR_n = abar_n / (1 - abar_n) (uniform eps-prediction weights it by SNR_n)
        self.loss_weighting = loss_weighting
        self.min_snr_gamma = float(min_snr_gamma)
        self.schedule = schedule
        #: optional clamp of the predicted y0 during sampling (the authors' code clamps at 2); None = exact math
        self.clip_x0 = None if clip_x0 is None else float(clip_x0)

        self.betas = cosine_betas(steps) if schedule == "cosine" else linear_betas(steps)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)
        self.alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]])
        # Variance of the true posterior q(y_{n-1} | y_n, y_0): the reverse variance gamma_n we use.
        self.posterior_variance = self.betas * (1 - self.alphas_cumprod_prev) / (1 - self.alphas_cumprod)
        #: half the log signal-to-noise ratio, lambda_n = log(sqrt(abar_n) / sqrt(1 - abar_n)): DPM-Solver's time.
        #: For the cosine schedule it is the continuous-time lambda(t) at t = (n + 1) / N wherever beta was not
        #: clipped (all but the last step, where lambda(1) = -inf and the clipped abar keeps it finite)
        self.log_snr = 0.5 * (torch.log(self.alphas_cumprod) - torch.log1p(-self.alphas_cumprod))
        self._cache: dict[tuple[torch.device, torch.dtype], dict[str, torch.Tensor]] = {}

    def __repr__(self) -> str:
        return (
            f"GaussianDiffusion(steps={self.steps}, schedule={self.schedule!r}, clip_x0={self.clip_x0}, "
            f"prediction={self.prediction!r}, loss_weighting={self.loss_weighting!r})"
        )

    # ------------------------------------------------------------------ helpers
    def _table(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """The schedule table ``name`` on ``like``'s device and dtype (cached, so sampling loops stay on device)."""
        key = (like.device, like.dtype)
        if key not in self._cache:
            names = ("betas", "alphas", "alphas_cumprod", "alphas_cumprod_prev", "posterior_variance")
            self._cache[key] = {k: getattr(self, k).to(device=like.device, dtype=like.dtype) for k in names}
        return self._cache[key][name]

    def _at(self, name: str, n: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return _expand(self._table(name, like)[n.to(like.device)], like)

    def _check_n(self, n: torch.Tensor, batch: int) -> torch.Tensor:
        n = torch.as_tensor(n)
        if n.dim() == 0:
            n = n.expand(batch)
        if n.shape != (batch,):
            raise ForecastError(f"diffusion step n must have shape ({batch},), got {tuple(n.shape)}")
        if n.dtype not in (torch.int64, torch.int32):
            raise ForecastError(f"diffusion step n must be an integer tensor, got {n.dtype}")
        # the values are checked on the CPU only: reading them back from an accelerator would synchronise the
        # host with it at every training step (there, n comes from torch.randint or the samplers' own indices)
        if n.device.type == "cpu" and (bool((n < 0).any()) or bool((n >= self.steps).any())):
            raise ForecastError(f"diffusion step n must lie in 0..{self.steps - 1}")
        return n.long()

    # ------------------------------------------------------------------ forward process
    def q_sample(self, y0: torch.Tensor, n: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Draw ``y_n ~ q(y_n | y0) = N(sqrt(abar_n) y0, (1 - abar_n) I)``."""
        n = self._check_n(n, y0.shape[0])
        if noise is None:
            noise = torch.randn_like(y0)
        abar = self._at("alphas_cumprod", n, y0)
        return abar.sqrt() * y0 + (1 - abar).sqrt() * noise

    def predict_y0(self, y_n: torch.Tensor, n: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Invert the forward process given the noise: ``y0 = (y_n - sqrt(1 - abar_n) eps) / sqrt(abar_n)``."""
        abar = self._at("alphas_cumprod", n, y_n)
        return (y_n - (1 - abar).sqrt() * eps) / abar.sqrt()

    def target(self, y0: torch.Tensor, n: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """What the network is trained to output for ``y_n = q_sample(y0, n, noise)``: eps, y0 or v."""
        if self.prediction == "eps":
            return noise
        if self.prediction == "y0":
            return y0
        abar = self._at("alphas_cumprod", n, y0)
        return abar.sqrt() * noise - (1 - abar).sqrt() * y0

    def split(
        self, y_n: torch.Tensor, n: torch.Tensor, out: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The noise and the clean residual ``(eps, y0)`` that the network's output ``out`` at ``(y_n, n)`` implies.

        Exact inverses of ``q_sample`` and ``target``: with v-prediction, ``y0 = sqrt(abar) y_n - sqrt(1 - abar) v``
        and ``eps = sqrt(1 - abar) y_n + sqrt(abar) v``.
        """
        abar = self._at("alphas_cumprod", n, y_n)
        if self.prediction == "eps":
            return out, self.predict_y0(y_n, n, out)
        if self.prediction == "y0":
            return (y_n - abar.sqrt() * out) / (1 - abar).sqrt(), out
        return (1 - abar).sqrt() * y_n + abar.sqrt() * out, abar.sqrt() * y_n - (1 - abar).sqrt() * out

    def loss_weights(self, n: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Per-sample weights ``(batch, 1, ...)`` of the squared error of the prediction target (all 1: uniform).

        An error ``e`` of y0 is an error ``sqrt(SNR) e`` of eps and ``sqrt(SNR + 1) e`` of v. ``min_snr`` divides
        those factors out and applies ``min(SNR, gamma)``: weight ``min(SNR, gamma) / SNR`` (eps),
        ``min(SNR, gamma)`` (y0), ``min(SNR, gamma) / (SNR + 1)`` (v).
        """
        if self.loss_weighting == "uniform":
            return torch.ones_like(self._at("alphas_cumprod", n, like))
        abar = self._at("alphas_cumprod", n, like)
        snr = abar / (1 - abar)
        clipped = snr.clamp(max=self.min_snr_gamma)
        if self.prediction == "eps":
            return clipped / snr
        if self.prediction == "y0":
            return clipped
        return clipped / (snr + 1)

    def training_loss(
        self,
        eps_model: EpsModel,
        y0: torch.Tensor,
        n: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        loss: str = "l2",
    ) -> torch.Tensor:
        """One term of equation (9): ``|| eps - eps_model(y_n, n) ||`` (mean over elements), ``n`` uniform if None.

        With ``prediction="y0"`` (or ``"v"``) the network's target is ``y0`` (or ``v``) instead of the noise; with
        ``loss_weighting="min_snr"`` each sample's error is weighted by ``loss_weights``.
        """
        if loss not in LOSSES:
            raise ForecastError(f"unknown diffusion loss {loss!r}; use one of {', '.join(LOSSES)}")
        batch = y0.shape[0]
        if n is None:
            n = torch.randint(0, self.steps, (batch,), device=y0.device)
        n = self._check_n(n, batch).to(y0.device)
        if noise is None:
            noise = torch.randn_like(y0)
        y_n = self.q_sample(y0, n, noise)
        error = eps_model(y_n, n) - self.target(y0, n, noise)
        per_element = error.square() if loss == "l2" else error.abs()
        if self.loss_weighting != "uniform":
            # l1: the weight applies to |e| as it does to e^2 (a choice; min-SNR is defined for l2)
            per_element = per_element * self.loss_weights(n, y0)
        return per_element.mean()

    # ------------------------------------------------------------------ samplers
    def ddim_timesteps(self, steps: int) -> torch.Tensor:
        """``steps`` evenly spaced diffusion indices from 0 to N-1 inclusive (ascending)."""
        if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= self.steps:
            raise ForecastError(f"sampling steps must be an integer in 1..{self.steps}, got {steps!r}")
        if steps == 1:
            return torch.tensor([self.steps - 1])
        return torch.linspace(0, self.steps - 1, steps, dtype=torch.float64).round().long()

    def log_snr_timesteps(self, steps: int) -> torch.Tensor:
        """``steps`` distinct diffusion indices from 0 to N-1, as evenly spaced in ``log_snr`` as integers allow.

        DPM-Solver's "logSNR" spacing: the solver's error is governed by its steps in lambda, and the cosine
        schedule's lambda changes fastest at both ends, where even index strides leave the largest gaps. The
        grid spans lambda_0 .. lambda_{N-2} and the solver starts at N-1 as every sampler does: the last lambda
        is set by the clip of beta at 0.999 (the schedule's own is -inf), and spacing up to it would spend several
        evaluations on the last few, almost pure-noise, steps. Each index is the nearest to its target, then
        pushed up (from the data end) and down (from the noise end) just enough that all are distinct.
        """
        self.ddim_timesteps(steps)  # validates the count
        if steps <= 2:
            return torch.tensor([0, self.steps - 1][-steps:])
        log_snr = self.log_snr[:-1]
        targets = torch.linspace(float(log_snr[0]), float(log_snr[-1]), steps - 1, dtype=torch.float64)
        seq = sorted(int((log_snr - x).abs().argmin()) for x in targets.tolist()) + [self.steps - 1]
        for k in range(1, steps):
            seq[k] = max(seq[k], seq[k - 1] + 1)
        for k in range(steps - 1, -1, -1):
            seq[k] = min(seq[k], self.steps - steps + k)
        return torch.tensor(seq, dtype=torch.long)

    @torch.no_grad()
    def sample(
        self,
        eps_model: EpsModel,
        shape: tuple[int, ...] | torch.Size,
        sampler: str = "ddpm",
        steps: int | None = None,
        eta: float = 0.0,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        progress: bool = False,
        start: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Generate ``y0`` of ``shape`` from ``y_{N-1} ~ N(0, I)`` (or from ``start``, a given ``y_{N-1}``).

        ``ddpm``: ancestral sampling over all N steps (``steps`` must be None or N). ``ddim``: ``steps``
        strided steps (None: all N) with stochasticity ``eta`` (0: deterministic; 1 with all N steps: the
        same chain as ``ddpm``). ``dpmpp2m``: DPM-Solver++(2M) over the same ``steps`` strided steps
        (deterministic; ``eta`` must be 0). ``steps`` network evaluations either way (``ddpm``: N).
        """
        self.check_sampler(sampler, steps, eta)
        if generator is not None and device is None:
            device = generator.device
        dtype = dtype or torch.get_default_dtype()
        if start is None:
            y = torch.randn(tuple(shape), generator=generator, device=device, dtype=dtype)
        elif tuple(start.shape) != tuple(shape):
            raise ForecastError(f"start has shape {tuple(start.shape)}, expected {tuple(shape)}")
        else:
            y = start.to(device=device or start.device, dtype=dtype)
        if sampler == "ddpm":
            return self._ddpm(eps_model, y, generator, progress)
        if sampler == "dpmpp2m":
            return self._dpmpp2m(eps_model, y, self.log_snr_timesteps(steps or self.steps), progress)
        return self._ddim(eps_model, y, self.ddim_timesteps(steps or self.steps), eta, generator, progress)

    def check_sampler(self, sampler: str, steps: int | None, eta: float = 0.0) -> None:
        """Raise a one-line ``ForecastError`` unless ``sampler`` can run ``steps`` steps with ``eta``."""
        if sampler not in SAMPLERS:
            raise ForecastError(f"unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}")
        if sampler == "ddpm" and steps not in (None, self.steps):
            raise ForecastError(
                f"the ddpm sampler runs all {self.steps} diffusion steps; use sampler 'ddim' for {steps} steps"
            )
        if steps is not None:
            self.ddim_timesteps(steps)  # validates the count
        if not eta >= 0:
            raise ForecastError(f"eta must be >= 0, got {eta!r}")
        if sampler in ODE_SAMPLERS and eta != 0:
            raise ForecastError(
                f"the {sampler} sampler is deterministic (an ODE solver): eta must be 0, got {eta}"
            )

    def _predict(
        self, eps_model: EpsModel, y: torch.Tensor, n: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's noise and the y0 it implies (clamped if ``clip_x0``; eps is then made consistent)."""
        out = eps_model(y, n).to(y.dtype)
        eps, y0 = self.split(y, n, out)
        if self.clip_x0 is not None:
            abar = self._at("alphas_cumprod", n, y)
            y0 = y0.clamp(-self.clip_x0, self.clip_x0)
            eps = (y - abar.sqrt() * y0) / (1 - abar).sqrt()
        return eps, y0

    def _ddpm(self, eps_model: EpsModel, y: torch.Tensor, generator, progress: bool) -> torch.Tensor:
        batch = y.shape[0]
        for i in tqdm(range(self.steps - 1, -1, -1), desc="ddpm", disable=not progress, leave=False):
            n = torch.full((batch,), i, device=y.device, dtype=torch.long)
            _, y0 = self._predict(eps_model, y, n)
            # Mean of q(y_{n-1} | y_n, y0) at the predicted y0 (equal to Ho et al.'s eps form without clipping).
            beta, alpha = self._at("betas", n, y), self._at("alphas", n, y)
            abar, abar_prev = self._at("alphas_cumprod", n, y), self._at("alphas_cumprod_prev", n, y)
            mean = (abar_prev.sqrt() * beta * y0 + alpha.sqrt() * (1 - abar_prev) * y) / (1 - abar)
            if i > 0:
                noise = torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)
                y = mean + self._at("posterior_variance", n, y).sqrt() * noise
            else:
                y = mean  # the last step returns the mean: no noise is added to the data
        return y

    def _ddim(
        self, eps_model: EpsModel, y: torch.Tensor, timesteps: torch.Tensor, eta: float, generator, progress
    ):
        batch = y.shape[0]
        abar_all = self._table("alphas_cumprod", y)
        seq = timesteps.tolist()
        for k in tqdm(range(len(seq) - 1, -1, -1), desc="ddim", disable=not progress, leave=False):
            n = torch.full((batch,), seq[k], device=y.device, dtype=torch.long)
            eps, y0 = self._predict(eps_model, y, n)
            abar = abar_all[seq[k]]
            abar_prev = abar_all[seq[k - 1]] if k > 0 else torch.ones((), dtype=y.dtype, device=y.device)
            # Song et al. (eq. 12/16): sigma^2 = eta^2 * (1 - abar_prev)/(1 - abar) * (1 - abar/abar_prev).
            var = eta**2 * (1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)
            y = abar_prev.sqrt() * y0 + (1 - abar_prev - var).clamp(min=0).sqrt() * eps
            if k > 0 and eta > 0:
                y = y + var.sqrt() * torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)
        return y

    def _dpmpp2m(self, eps_model: EpsModel, y: torch.Tensor, timesteps: torch.Tensor, progress: bool):
        """DPM-Solver++(2M) from ``timesteps[-1]`` down to ``timesteps[0]``, then a last denoising step.

        From ``s`` to ``t`` (``h = lambda_t - lambda_s > 0``):
        ``y_t = sigma_t / sigma_s * y_s - alpha_t * expm1(-h) * D`` with ``D`` the y0 predicted at ``s`` (the
        first step, first order) or its linear extrapolation ``(1 + 1/(2r)) y0_s - 1/(2r) y0_prev`` with
        ``r = h_prev / h`` (the multistep second-order correction). The last step goes to ``sigma = 0``, where
        ``h`` is infinite and the update is the predicted y0 itself.
        """
        batch = y.shape[0]
        # coefficients from the float64 tables: lambda differences of nearby steps lose digits in float32
        abar_all, log_snr = self.alphas_cumprod, self.log_snr
        seq = timesteps.tolist()
        y0_prev, h_prev = None, None
        for k in tqdm(range(len(seq) - 1, -1, -1), desc="dpmpp2m", disable=not progress, leave=False):
            n = torch.full((batch,), seq[k], device=y.device, dtype=torch.long)
            _, y0 = self._predict(eps_model, y, n)
            if k == 0:
                return y0
            s, t = seq[k], seq[k - 1]
            h = float(log_snr[t] - log_snr[s])
            if y0_prev is None:
                data = y0
            else:
                r = h_prev / h
                data = (1 + 1 / (2 * r)) * y0 - (1 / (2 * r)) * y0_prev
            ratio = math.sqrt((1 - float(abar_all[t])) / (1 - float(abar_all[s])))
            y = ratio * y - math.sqrt(float(abar_all[t])) * math.expm1(-h) * data
            y0_prev, h_prev = y0, h
        return y
