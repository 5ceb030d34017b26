"""The lattice: a doubly periodic square driven by Kolmogorov forcing (lbmpy, D2Q9).

* Body force ``F_x = A sin(2 pi n (y + 1/2) / L)`` at cell centres (``y`` the cell index), compiled into the
  collision as an expression of the cell counter, with ``A`` and the shear relaxation rate as kernel parameters
  (one compiled kernel per collision model serves every Re). The forcing model is lbmpy's default for the method
  (Guo for SRT/TRT/MRT, the central-moment forcing of the cumulant method); the stored velocity is the
  half-force-corrected one that lbmpy's getter computes.
* Collision: the cumulant method (Geier et al. 2015) by default; TRT (magic parameter 3/16), MRT and SRT are
  options.
* Initial state (``initialise``): rest plus a random, smooth velocity field of one seed (Gaussian-filtered white
  noise, std 0.1 U): runs that differ by seed are different trajectories of the same attractor once the spin-up
  has forgotten the start.
* ``perturb`` adds a tiny velocity perturbation to the populations (the equilibrium's first-order change,
  ``3 w_i rho c_i . du``, which leaves the density and the non-equilibrium part unchanged) whose mean over every
  stored pixel (``scale`` x ``scale`` block) is zero: the truth members' and the twin runs' perturbation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from forecast.errors import ForecastError
from simulators.common.kernels import kernel_config
from simulators.common.stability import SimulationDiverged, check_velocity  # noqa: F401  (the flow's API)
from simulators.kolmogorov.config import KolmogorovConfig

OMEGA = sp.Symbol("omega_shear")
AMPLITUDE = sp.Symbol("forcing_amplitude")
NAME = "kolmogorov"


def relaxation_rate(config: KolmogorovConfig) -> float:
    """Shear relaxation rate omega = 1 / (3 nu + 1/2)."""
    return 1.0 / (3.0 * config.viscosity + 0.5)


def _force(config: KolmogorovConfig) -> tuple:
    """``(F_x, 0)`` as an expression of the cell counter (ghost layer first: interior cell j has ctr_1 = j + 1)."""
    import pystencils as ps

    y = ps.tcast(ps.y_, "float64") - sp.Rational(1, 2)
    return (AMPLITUDE * sp.sin(2 * sp.pi * config.wavenumber * y / config.grid_size), 0)


def _lbm_config(config: KolmogorovConfig):
    from lbmpy import LBMConfig, LBStencil, Method, Stencil

    common = {"stencil": LBStencil(Stencil.D2Q9), "compressible": True, "force": _force(config)}
    if config.collision == "cumulant":
        return LBMConfig(method=Method.CUMULANT, relaxation_rate=OMEGA, **common)
    if config.collision == "trt":
        # the magic parameter Lambda = (1/omega - 1/2)(1/omega_odd - 1/2) = 3/16
        odd = (4 - 2 * OMEGA) / (4 - OMEGA)
        return LBMConfig(method=Method.TRT, relaxation_rates=[OMEGA, odd], **common)
    if config.collision == "mrt":
        return LBMConfig(method=Method.MRT, relaxation_rates=[OMEGA, 1, 1, 1], **common)
    return LBMConfig(method=Method.SRT, relaxation_rate=OMEGA, **common)


@dataclass
class Lattice:
    """A ready-to-run periodic square: the lbmpy step and its config."""

    config: KolmogorovConfig
    step: object  # lbmpy.lbstep.LatticeBoltzmannStep
    members: int = 1  # runs in this lattice (always one; the shared orchestration asks)

    @property
    def omega(self) -> float:
        return relaxation_rate(self.config)

    @property
    def _dh(self):
        return self.step.data_handling

    def advance(self, steps: int) -> None:
        """Run ``steps`` lattice steps (lbmpy's time loop; the macroscopic fields are computed after it)."""
        self.step.run(steps)

    def _state_arrays(self) -> list[str]:
        step = self.step
        return [step.pdf_array_name, f"{NAME}_pdfTmp", step.velocity_data_name, step.density_data_name]

    def save_state(self) -> dict:
        """A copy of everything the future depends on: both PDF buffers and the macroscopic fields."""
        if self.config.target == "gpu":
            self._dh.all_to_cpu()
        return {name: self._dh.cpu_arrays[name].copy() for name in self._state_arrays()}

    def restore_state(self, state: dict) -> None:
        for name, values in state.items():
            self._dh.cpu_arrays[name][...] = values
        if self.config.target == "gpu":
            self._dh.all_to_gpu()

    def macroscopic(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Views of (u, v, rho) on the simulation grid, indexed [x, y], ghost layers removed."""
        vel = self._dh.cpu_arrays[self.step.velocity_data_name][1:-1, 1:-1]
        rho = self._dh.cpu_arrays[self.step.density_data_name][1:-1, 1:-1]
        if rho.ndim == 3:
            rho = rho[..., 0]
        return vel[..., 0], vel[..., 1], rho

    def perturb(self, seed: int, amplitude: float | None = None) -> None:
        """Add a velocity perturbation of std ``amplitude`` (default ``config.perturbation``) x U, white in
        space with its mean over every stored pixel removed, to the populations (see the module docstring)."""
        config = self.config
        amplitude = config.perturbation if amplitude is None else amplitude
        n, s = config.grid_size, config.scale
        if s < 2:
            raise ForecastError("a perturbation below a stored pixel needs --scale >= 2 (cells per pixel)")
        du = np.random.default_rng(seed).standard_normal((n, n, 2))
        blocks = du.reshape(n // s, s, n // s, s, 2)
        du = (blocks - blocks.mean(axis=(1, 3), keepdims=True)).reshape(n, n, 2)
        du *= amplitude * config.velocity
        method = self.step.method
        weights = np.array([float(w) for w in method.weights])
        directions = np.array(method.stencil, dtype=np.float64)  # (Q, 2)
        _, _, rho = self.macroscopic()
        pdfs = self._dh.cpu_arrays[self.step.pdf_array_name]
        pdfs[1:-1, 1:-1] += 3.0 * weights * rho[..., None] * (du @ directions.T)
        self._dh.cpu_arrays[f"{NAME}_pdfTmp"][...] = pdfs
        if config.target == "gpu":
            self._dh.all_to_gpu()
        self.step.post_run()  # the macroscopic fields of the perturbed populations

    def check_stable(self, run_name: str, step: int) -> None:
        """Raise SimulationDiverged if the velocity is NaN or runs away."""
        u, v, _ = self.macroscopic()
        run = f"{run_name} (Re = {self.config.reynolds:g})"
        check_velocity(u, v, run, step, self.omega, self.config.collision, "--scale or --size")


def build_lattice(config: KolmogorovConfig, seed: int) -> Lattice:
    """The periodic square with its forcing, initialised from ``seed`` (``initialise``)."""
    from lbmpy import LBMOptimisation
    from lbmpy.lbstep import LatticeBoltzmannStep

    n = config.grid_size
    step = LatticeBoltzmannStep(
        domain_size=(n, n),
        periodicity=True,
        lbm_config=_lbm_config(config),
        lbm_optimisation=LBMOptimisation(),
        config=kernel_config(config),
        kernel_params={OMEGA.name: relaxation_rate(config), AMPLITUDE.name: config.amplitude},
        name=NAME,
    )
    lattice = Lattice(config=config, step=step)
    initialise(lattice, seed)
    return lattice


def random_velocity(config: KolmogorovConfig, seed: int) -> np.ndarray:
    """(L, L, 2) smooth random velocity of std 0.1 U: white noise filtered to wavenumbers up to 2n."""
    n = config.grid_size
    noise = np.random.default_rng(seed).standard_normal((2, n, n))
    k = np.fft.fftfreq(n, 1.0 / n)
    kk = np.hypot(k[:, None], k[None, :])
    smooth = np.real(np.fft.ifft2(np.fft.fft2(noise) * np.exp(-((kk / (2 * config.wavenumber)) ** 2))))
    smooth /= smooth.std(axis=(1, 2), keepdims=True)
    return 0.1 * config.velocity * np.moveaxis(smooth, 0, -1)


def initialise(lattice: Lattice, seed: int) -> None:
    """Rest plus ``random_velocity(seed)``, at unit density, set as the equilibrium populations."""
    step, dh = lattice.step, lattice.step.data_handling
    dh.cpu_arrays[step.density_data_name][...] = 1.0
    velocity = dh.cpu_arrays[step.velocity_data_name]
    velocity[...] = 0.0
    velocity[1:-1, 1:-1] = random_velocity(lattice.config, seed)
    step.set_pdf_fields_from_macroscopic_values()
    # lbmpy allocates the streaming target uninitialised (np.empty): start it equal to the source
    dh.cpu_arrays[f"{NAME}_pdfTmp"][...] = dh.cpu_arrays[step.pdf_array_name]
    if lattice.config.target == "gpu":
        dh.all_to_gpu()
