"""The lattice: domain, boundaries and collision model of 2-D channel flow past a cylinder (lbmpy, D2Q9).

Geometry (lattice units, x downstream, y across)::

    inflow (UBB, uniform U)  |  free-slip wall                              |  outflow (extrapolation)
                             |     O  cylinder (no-slip), D = H/16            |
                             |  free-slip wall                              |

* Uniform inflow at speed U through a velocity bounce-back (UBB) at x = 0, so ``Re = U D / nu`` holds with the
  free-stream speed U.
* Free-slip top and bottom walls: no wall boundary layers, and with D/H = 1/16 (6% blockage) the confinement
  raises the shedding frequency by only a few percent.
* An extrapolation (convective) outflow at x = L (lbmpy's ``ExtrapolationOutflow``, Geier et al. 2015, eq. F.2)
  lets vortices leave without being reflected; the channel is ``length_ratio`` (3) stored windows long, so the
  outflow lies far behind the stored window.
* Collision: the cumulant method (Geier et al. 2015) by default; it stays stable at relaxation rates close to 2
  (Re = 1000 at D = 8 gives omega = 1.9976), where single-relaxation-time BGK diverges. MRT and entropic KBC are
  options, SRT is there only for comparison.
* The shear relaxation rate is a kernel parameter, not a constant, so one compiled kernel serves every Reynolds
  number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from forecast.errors import ForecastError
from simulators.karman.config import KarmanConfig

OMEGA = sp.Symbol("omega_shear")
VELOCITY_LIMIT = 0.5  # lattice units; |u| beyond ~c_s means the run has left the LBM's validity


class SimulationDiverged(ForecastError):
    """A run produced NaN or a runaway velocity."""


def relaxation_rate(config: KarmanConfig, reynolds: float) -> float:
    """Shear relaxation rate omega = 1 / (3 nu + 1/2)."""
    return 1.0 / (3.0 * config.viscosity(reynolds) + 0.5)


def _lbm_config(config: KarmanConfig):
    from lbmpy import LBMConfig, LBStencil, Method, Stencil

    stencil = LBStencil(Stencil.D2Q9)
    if config.collision == "cumulant":
        return LBMConfig(stencil=stencil, method=Method.CUMULANT, relaxation_rate=OMEGA, compressible=True)
    if config.collision == "mrt":
        # shear rate from the viscosity; bulk and higher-order moments relaxed at 1 (the usual stable choice)
        return LBMConfig(
            stencil=stencil, method=Method.MRT, relaxation_rates=[OMEGA, 1, 1, 1], compressible=True
        )
    if config.collision == "entropic":
        return LBMConfig(
            stencil=stencil,
            method=Method.TRT_KBC_N4,
            relaxation_rates=[OMEGA, sp.Symbol("omega_free")],
            entropic=True,
            zero_centered=False,
            compressible=True,
        )
    return LBMConfig(stencil=stencil, method=Method.SRT, relaxation_rate=OMEGA, compressible=True)


def _kernel_config(config: KarmanConfig):
    from pystencils import CreateKernelConfig, Target

    if config.target == "gpu":
        try:
            import cupy  # noqa: F401
        except ImportError:
            raise ForecastError("--target gpu needs cupy (pip install cupy-cuda12x) and a CUDA GPU") from None
        return CreateKernelConfig(target=Target.GPU)
    kernel_config = CreateKernelConfig(target=Target.CPU)
    if config.threads and config.threads > 1:
        kernel_config.cpu.openmp.enable = True
        kernel_config.cpu.openmp.num_threads = int(config.threads)
    return kernel_config


@dataclass
class Lattice:
    """A ready-to-run channel: the lbmpy step, its fluid mask and its relaxation rate."""

    config: KarmanConfig
    reynolds: float
    step: object  # lbmpy.lbstep.LatticeBoltzmannStep
    solid: np.ndarray  # (x, y) bool, True inside the cylinder

    @property
    def omega(self) -> float:
        return relaxation_rate(self.config, self.reynolds)

    def advance(self, steps: int) -> None:
        """Run ``steps`` lattice steps (one compiled time loop; macroscopic fields are updated at its end)."""
        self.step.run(steps)

    def macroscopic(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Views of (u, v, rho) on the simulation grid, indexed [x, y], ghost layers removed."""
        dh = self.step.data_handling
        vel = dh.cpu_arrays[self.step.velocity_data_name][1:-1, 1:-1]
        rho = dh.cpu_arrays[self.step.density_data_name][1:-1, 1:-1]
        if rho.ndim == 3:
            rho = rho[..., 0]
        return vel[..., 0], vel[..., 1], rho

    def check_stable(self, run_name: str, step: int) -> None:
        """Raise SimulationDiverged if the velocity is NaN or runs away."""
        u, v, _ = self.macroscopic()
        speed = float(np.sqrt(np.max(u * u + v * v)))
        if not np.isfinite(speed) or speed > VELOCITY_LIMIT:
            what = "NaN" if not np.isfinite(speed) else f"|u| = {speed:.3g} > {VELOCITY_LIMIT}"
            raise SimulationDiverged(
                f"{run_name} (Re = {self.reynolds:g}) diverged at lattice step {step} ({what}, "
                f"omega = {self.omega:.5f}, collision {self.config.collision}): use --collision cumulant, "
                "raise the resolution (--scale or --diameter), or lower --velocity"
            )


def build_lattice(config: KarmanConfig, reynolds: float) -> Lattice:
    """Create the channel with its boundaries, initialised to the inflow plus a small asymmetric kick."""
    from lbmpy import LBMOptimisation
    from lbmpy.boundaries import UBB, ExtrapolationOutflow, FreeSlip, NoSlip
    from lbmpy.lbstep import LatticeBoltzmannStep
    from pystencils import make_slice

    length, height = config.grid_length, config.grid_height
    omega = relaxation_rate(config, reynolds)
    kernel_params = {OMEGA.name: omega}
    if config.collision == "entropic":
        kernel_params["omega_free"] = omega  # start value; the entropic condition sets it per cell
    step = LatticeBoltzmannStep(
        domain_size=(length, height),
        lbm_config=_lbm_config(config),
        lbm_optimisation=LBMOptimisation(),
        config=_kernel_config(config),
        kernel_params=kernel_params,
        name="karman",
    )
    stencil = step.method.stencil
    boundaries = step.boundary_handling
    U = config.velocity
    boundaries.set_boundary(UBB((U, 0.0)), make_slice[0, :])
    boundaries.set_boundary(ExtrapolationOutflow((1, 0), step.method), make_slice[-1, :])
    boundaries.set_boundary(FreeSlip(stencil, (0, 1)), make_slice[:, 0])
    boundaries.set_boundary(FreeSlip(stencil, (0, -1)), make_slice[:, -1])

    cx, cy = config.cylinder_center
    radius = config.cylinder_diameter / 2
    boundaries.set_boundary(NoSlip(), mask_callback=lambda x, y: (x - cx) ** 2 + (y - cy) ** 2 < radius**2)
    x = np.arange(length)[:, None] + 0.5
    y = np.arange(height)[None, :] + 0.5
    solid = np.broadcast_to((x - cx) ** 2 + (y - cy) ** 2 < radius**2, (length, height)).copy()

    # Start from the uniform stream with a small transverse kick behind the cylinder: it breaks the up/down
    # symmetry, so shedding starts after a few periods instead of waiting for round-off to grow.
    dh = step.data_handling
    velocity = dh.cpu_arrays[step.velocity_data_name]
    xg = np.arange(-1, length + 1)[:, None] + 0.5
    yg = np.arange(-1, height + 1)[None, :] + 0.5
    D = config.cylinder_diameter
    velocity[..., 0] = U
    velocity[..., 1] = 0.1 * U * np.exp(-((xg - cx - D) ** 2 + (yg - cy) ** 2) / D**2)
    step.set_pdf_fields_from_macroscopic_values()
    # lbmpy allocates the streaming target uninitialised (np.empty); its ghost layers are read before any kernel
    # writes them, so recycled memory (NaN, huge values) could leak in and diverge a healthy run. Start it equal
    # to the source (lbmpy names it after the step: name + "_pdfTmp").
    for arrays in (dh.cpu_arrays, getattr(dh, "gpu_arrays", {})):
        if "karman_pdfTmp" in arrays and step.pdf_array_name in arrays:
            arrays["karman_pdfTmp"][...] = arrays[step.pdf_array_name]
    return Lattice(config=config, reynolds=float(reynolds), step=step, solid=solid)
