"""The lattice: domain, boundaries and collision model of 2-D channel flow past a cylinder (lbmpy, D2Q9).

Geometry (lattice units, x downstream, y across)::

    inflow (UBB, uniform U)  |  free-slip wall                              |  outflow (extrapolation)
                             |     O  cylinder (no-slip), D = H/16            |
                             |  free-slip wall                              |

* Uniform inflow at speed U through a velocity bounce-back (UBB) at x = 0, so ``Re = U D / nu`` holds with the
  free-stream speed U. With ``inflow_noise`` > 0 the UBB reads its velocity from a field (``inflow``) that the
  run updates with free-stream turbulence (``noise.py``) every few steps; with 0 it is the constant UBB, so
  the deterministic street is computed exactly as before the option existed.
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
* Batched (``build_batch``): several channels of one Reynolds number stacked along y in one lattice, each with
  its own inlet noise, walls and cylinder: two wall rows between neighbours (a single channel's walls are its
  ghost rows). A fluid cell reads only its own channel (the free-slip walls write the populations it pulls
  from them), so each channel's fluid, all that is stored, should be that of a separate lattice.
* Stepping calls the kernels of lbmpy's two-step time loop directly (``Lattice._run``), with the same calls in
  the same order as ``LatticeBoltzmannStep.run``, so the PDFs are the same bits (tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from forecast.errors import ForecastError
from simulators.common.kernels import kernel_config
from simulators.common.stability import SimulationDiverged, check_velocity  # noqa: F401  (the flow's API)
from simulators.karman.config import KarmanConfig
from simulators.karman.noise import BatchNoise, InflowNoise

OMEGA = sp.Symbol("omega_shear")
INFLOW_ARRAY = "inflow"  # (x, y, 2) velocity the noisy UBB imposes; only the inlet columns are read


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


@dataclass
class Lattice:
    """A ready-to-run channel: the lbmpy step, its fluid mask and its relaxation rate.

    ``advance`` runs the compiled kernels directly (see ``_run``); ``reference`` switches to lbmpy's own
    ``LatticeBoltzmannStep.run`` (the code path before the fast one existed, kept for the tests that show
    that both give the same bits)."""

    config: KarmanConfig
    reynolds: float
    step: object  # lbmpy.lbstep.LatticeBoltzmannStep
    solid: np.ndarray  # (x, y) bool, True inside the cylinder
    noise: InflowNoise | BatchNoise | None = None  # free-stream turbulence at the inlet; None: uniform inflow
    members: int = 1  # channels stacked along y (build_batch), each ``config.grid_height`` cells high
    reference: bool = False  # True: lbmpy's LatticeBoltzmannStep.run (rebuilds its time loop every call)
    _calls: dict = field(default_factory=dict, repr=False)  # id(source PDF array) -> (two-step calls, getter)
    _stale: bool = field(default=False, repr=False)  # the macroscopic fields lag behind the PDFs
    # GPU target: the host's copy of the PDFs lags behind the device's (steps ran since the last download);
    # the macroscopic fields are then computed on the device (_fields_from_device)
    _host_behind: bool = field(default=False, repr=False)

    @property
    def omega(self) -> float:
        return relaxation_rate(self.config, self.reynolds)

    def advance(self, steps: int) -> None:
        """Run ``steps`` lattice steps; the macroscopic fields are brought up to date when next read.

        With inlet noise, the inflow is set from the noise process, held for ``update_interval`` steps, and
        the process advanced, until ``steps`` are done."""
        if self.noise is None:
            self._run(steps)
            return
        while steps > 0:
            chunk = min(steps, self.noise.update_interval)
            self._set_inflow()
            self._run(chunk)
            self.noise.advance(chunk)
            steps -= chunk

    def _run(self, steps: int) -> None:
        """``steps`` lattice steps with exactly the kernel calls of lbmpy's time loop, without rebuilding
        that loop (its argument lists) on every call and without the full-domain macroscopic getter after
        every call. The loop covers two steps (lbmpy's source and target buffers swap each step), so it is
        cached per source buffer; an odd step goes through lbmpy's single step, which swaps the buffers.
        On the GPU target the PDFs stay on the device between calls (lbmpy's own run copies them to the
        host and back around every call): the macroscopic fields are computed there when read, and the PDFs
        are downloaded only when the state is saved or the loop is rebuilt."""
        if self.reference:
            self.step.run(steps)
            return
        calls, _ = self._compiled()
        for _ in range(steps // 2):
            for kernel, kwargs in calls:
                kernel(**kwargs)
        if steps % 2:
            self.step.time_step()
        self.step.time_steps_run += steps
        self._stale = True
        self._host_behind = self.config.target == "gpu"

    def _compiled(self) -> tuple[list, dict]:
        """The two-step kernel calls and the getter's arguments for the current source buffer."""
        step = self.step
        dh = step.data_handling
        arrays = dh.gpu_arrays if self.config.target == "gpu" else dh.cpu_arrays
        key = id(arrays[step.pdf_array_name])
        if key not in self._calls:
            self._download()  # building the loop uploads the host's PDFs: they must be the current ones
            loop = step.get_time_loop()  # swaps twice: the buffers end where they started
            getter = step._getterKernel
            self._calls[key] = (loop._call_data, dh.get_kernel_kwargs(getter, **step.kernel_params)[0])
        return self._calls[key]

    def _refresh(self) -> None:
        """Compute the macroscopic fields from the PDFs if steps ran since they were last computed: with
        lbmpy's getter on the host, or for PDFs on the device there (``_fields_from_device``)."""
        if self._stale:
            if self._host_behind:
                self._fields_from_device()
            else:
                self.step._getterKernel(**self._compiled()[1])
            self._stale = False

    def _fields_from_device(self) -> None:
        """GPU target: density and velocity computed from the device's PDFs (``macroscopic_from_pdfs``: the
        getter's formula, equal to rounding) and copied into the host's field arrays. Three values per cell
        cross the bus instead of the nine PDFs, and no getter runs on the host; the PDFs stay on the device."""
        import cupy

        step = self.step
        dh = step.data_handling
        interior = (slice(1, -1), slice(1, -1))  # lbmpy's getter leaves the ghost layers alone too
        velocity, density = macroscopic_from_pdfs(
            dh.gpu_arrays[step.pdf_array_name][interior], step.method, cupy
        )
        dh.cpu_arrays[step.velocity_data_name][interior] = velocity.get()
        host_density = dh.cpu_arrays[step.density_data_name]
        host_density[interior] = density.get().reshape(host_density[interior].shape)

    def _download(self) -> None:
        """GPU target: copy the device's PDFs to the host if steps ran on the device since the last copy."""
        if self._host_behind:
            self.step.data_handling.to_cpu(self.step.pdf_array_name)
            self._host_behind = False

    def _set_inflow(self) -> None:
        dh = self.step.data_handling
        u, v = self.noise.velocities()
        inflow = dh.cpu_arrays[INFLOW_ARRAY]
        height = self.config.grid_height
        for member in range(
            self.members
        ):  # the ghost layer and the inlet column (the UBB reads the boundary cell)
            rows = slice(
                1 + channel_offset(self.config, member), 1 + channel_offset(self.config, member) + height
            )
            inflow[:2, rows, 0] = u[member * height : (member + 1) * height]
            inflow[:2, rows, 1] = v[member * height : (member + 1) * height]
        if self.config.target == "gpu":  # only the two columns the UBB reads, not the whole field
            import cupy

            dh.gpu_arrays[INFLOW_ARRAY][:2] = cupy.asarray(inflow[:2])

    def _state_arrays(self) -> list[str]:
        step = self.step
        return [step.pdf_array_name, f"{step.name}_pdfTmp", step.velocity_data_name, step.density_data_name]

    def _boundary_data(self) -> list[np.ndarray]:
        """The boundaries' per-link arrays; the extrapolation outflow keeps last step's populations there, so
        they are part of the state (boundaries are laid out first if no step has run yet)."""
        handling = self.step.boundary_handling
        if getattr(handling, "_dirty", False):
            handling.prepare()
        name = handling._index_array_name
        dh = self.step.data_handling
        if self.config.target == "gpu":
            dh.to_cpu(name)
        return [
            array
            for block in dh.iterate(ghost_layers=True)
            for array in block[name].boundary_object_to_index_list.values()
        ]

    def save_state(self) -> dict:
        """A copy of everything the future depends on: the PDFs (both buffers), the macroscopic fields, the
        boundaries' stored populations and the noise process (a fork point for truth ensembles)."""
        self._refresh()
        self._download()  # GPU target: the host's PDFs up to date
        dh = self.step.data_handling
        arrays = {}
        for name in self._state_arrays():
            if name in dh.cpu_arrays:
                arrays[name] = dh.cpu_arrays[name].copy()
            # the GPU target's streaming buffer lives on the device alone
            elif name in getattr(dh, "gpu_arrays", {}):
                arrays[name] = dh.gpu_arrays[name].get()
        return {
            "arrays": arrays,
            "boundaries": [array.copy() for array in self._boundary_data()],
            "noise": self.noise.state() if self.noise is not None else None,
        }

    def restore_state(self, state: dict, noise_seed: int | Sequence[int] | None = None) -> None:
        """Return to a saved state; with ``noise_seed``, the future noise is drawn afresh from that seed (a
        batch: one seed per member)."""
        dh = self.step.data_handling
        for name, values in state["arrays"].items():
            if name in dh.cpu_arrays:
                dh.cpu_arrays[name][...] = values
            else:  # a device-only buffer (GPU target)
                dh.gpu_arrays[name].set(values)
        for array, values in zip(self._boundary_data(), state["boundaries"], strict=True):
            array[...] = values
        if self.config.target == "gpu":
            dh.to_gpu(self.step.boundary_handling._index_array_name)
            for name in state["arrays"]:
                dh.to_gpu(name)  # copies only arrays held on both sides; a device-only one is set above
        if self.noise is not None:
            self.noise.restore(state["noise"], noise_seed)
        self._calls.clear()  # argument lists are rebuilt from the restored arrays
        self._stale = False  # the restored macroscopic fields belong to the restored PDFs
        self._host_behind = False  # the host holds the restored state, and the device a copy of it

    def macroscopic(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Views of (u, v, rho) on the simulation grid, indexed [x, y], ghost layers removed."""
        self._refresh()
        dh = self.step.data_handling
        vel = dh.cpu_arrays[self.step.velocity_data_name][1:-1, 1:-1]
        rho = dh.cpu_arrays[self.step.density_data_name][1:-1, 1:-1]
        if rho.ndim == 3:
            rho = rho[..., 0]
        return vel[..., 0], vel[..., 1], rho

    def check_stable(self, run_name: str, step: int) -> None:
        """Raise SimulationDiverged if the velocity is NaN or runs away."""
        u, v, _ = self.macroscopic()
        run = f"{run_name} (Re = {self.reynolds:g})"
        check_velocity(u, v, run, step, self.omega, self.config.collision, "--scale or --diameter")


def macroscopic_from_pdfs(pdfs, method, xp=np):
    """``(velocity (..., 2), density (...))`` from PDFs ``(..., Q)`` of lbmpy ``method``, with array module ``xp``
    (numpy, or cupy for PDFs on a GPU): the density is the PDFs' sum (plus 1 where lbmpy stores them
    zero-centred, as deviations from the rest weights), the velocity the first moment, divided by the density
    for a compressible method. lbmpy's getter computes the same (tests/test_karman_fast.py)."""
    conserved = method.conserved_quantity_computation
    directions = xp.asarray(np.array(method.stencil, dtype=np.float64))  # (Q, 2)
    density = pdfs.sum(axis=-1) + (1.0 if conserved.zero_centered_pdfs else 0.0)
    momentum = pdfs @ directions
    velocity = momentum / density[..., None] if conserved.compressible else momentum
    return velocity, density


def build_lattice(config: KarmanConfig, reynolds: float, noise_seed: int | None = None) -> Lattice:
    """Create the channel with its boundaries, initialised to the inflow plus a small asymmetric kick.

    ``noise_seed`` seeds the inlet noise (``config.inflow_noise`` > 0; see ``noise.sequence_seed``)."""
    return build_batch(config, reynolds, [noise_seed])


def build_batch(config: KarmanConfig, reynolds: float, noise_seeds: Sequence[int | None]) -> Lattice:
    """``len(noise_seeds)`` channels in one lattice, stacked across the flow (along y), one per noise seed.

    Each channel has its own inlet, walls and cylinder; the free-slip walls between them keep them apart
    (a fluid cell only reads its own channel's cells and the boundary values written from them). One
    seed gives the single channel of ``build_lattice``."""
    members = len(noise_seeds)
    if members < 1:
        raise ForecastError("a batched lattice needs at least one member")
    step = _lbm_step(config, reynolds, members)
    noise = _inflow_noise(config, step, noise_seeds)
    _set_boundaries(step, config, members, noisy=noise is not None)
    _initialise(step, config, members)
    length = config.grid_length
    x = np.arange(length)[:, None] + 0.5
    rows = channel_offset(config, members) - 2
    y = np.arange(rows)[None, :] + 0.5
    solid = np.broadcast_to(_in_cylinder(config, x, y, members), (length, rows)).copy()
    return Lattice(
        config=config, reynolds=float(reynolds), step=step, solid=solid, noise=noise, members=members
    )


def _lbm_step(config: KarmanConfig, reynolds: float, members: int):
    """lbmpy's step on the (length, members * height) domain, shear rate as a kernel parameter."""
    from lbmpy import LBMOptimisation
    from lbmpy.lbstep import LatticeBoltzmannStep

    omega = relaxation_rate(config, reynolds)
    kernel_params = {OMEGA.name: omega}
    if config.collision == "entropic":
        kernel_params["omega_free"] = omega  # start value; the entropic condition sets it per cell
    return LatticeBoltzmannStep(
        domain_size=(config.grid_length, channel_offset(config, members) - 2),
        lbm_config=_lbm_config(config),
        lbm_optimisation=LBMOptimisation(),
        config=kernel_config(config),
        kernel_params=kernel_params,
        name="karman",
    )


def _inflow_noise(config: KarmanConfig, step, noise_seeds: Sequence[int | None]):
    """The inlet noise (one process per channel) and the ``inflow`` field it writes; None without noise."""
    if config.inflow_noise <= 0:
        return None
    D = config.cylinder_diameter
    processes = [
        InflowNoise(
            config.inflow_noise,
            config.velocity,
            config.grid_height,
            config.noise_length * D,
            config.noise_time * config.convective_time,
            0 if seed is None else seed,
        )
        for seed in noise_seeds
    ]
    step.data_handling.add_array(INFLOW_ARRAY, values_per_cell=2, gpu=config.target == "gpu")
    step.data_handling.fill(INFLOW_ARRAY, 0.0, ghost_layers=True)
    return processes[0] if len(processes) == 1 else BatchNoise(processes)


def _set_boundaries(step, config: KarmanConfig, members: int, noisy: bool) -> None:
    """Inflow UBB, extrapolation outflow, free-slip walls (two per channel) and the no-slip cylinders."""
    from lbmpy.boundaries import UBB, ExtrapolationOutflow, FreeSlip, NoSlip
    from pystencils import make_slice

    stencil = step.method.stencil
    boundaries = step.boundary_handling
    if noisy:
        inflow = step.data_handling.fields[INFLOW_ARRAY]
        boundaries.set_boundary(UBB((inflow.center(0), inflow.center(1))), make_slice[0, :])
    else:
        boundaries.set_boundary(UBB((config.velocity, 0.0)), make_slice[0, :])
    boundaries.set_boundary(ExtrapolationOutflow((1, 0), step.method), make_slice[-1, :])
    # slices count ghost layers: index 0 is the ghost row below the domain, where a single channel's wall lies
    height = config.grid_height
    bottom, top = FreeSlip(stencil, (0, 1)), FreeSlip(stencil, (0, -1))  # one kernel each for all channels
    for member in range(members):
        boundaries.set_boundary(bottom, make_slice[:, channel_offset(config, member)])
        boundaries.set_boundary(top, make_slice[:, channel_offset(config, member) + height + 1])
    boundaries.set_boundary(NoSlip(), mask_callback=lambda x, y: _in_cylinder(config, x, y, members))


def channel_offset(config: KarmanConfig, member: int) -> int:
    """First grid row of channel ``member``: each channel has ``grid_height`` fluid rows and a wall row below
    and above (a single channel's walls are the ghost rows -1 and H; between channels they are grid rows)."""
    return member * (config.grid_height + 2)


def _local_y(config: KarmanConfig, y: np.ndarray, members: int) -> np.ndarray:
    """Cell-midpoint y within its channel (its wall rows: -1/2 and H + 1/2, as a single channel's ghosts)."""
    pitch = config.grid_height + 2
    return y - pitch * np.clip((y + 1) // pitch, 0, members - 1)


def _in_cylinder(config: KarmanConfig, x: np.ndarray, y: np.ndarray, members: int = 1) -> np.ndarray:
    """Cell midpoints (x, y) inside a channel's cylinder."""
    cx, cy = config.cylinder_center
    radius = config.cylinder_diameter / 2
    return (x - cx) ** 2 + (_local_y(config, y, members) - cy) ** 2 < radius**2


def _initialise(step, config: KarmanConfig, members: int) -> None:
    """The uniform stream with a small transverse kick behind each cylinder: it breaks the up/down symmetry,
    so shedding starts after a few periods instead of waiting for round-off to grow."""
    length = config.grid_length
    cx, cy = config.cylinder_center
    U, D = config.velocity, config.cylinder_diameter
    dh = step.data_handling
    velocity = dh.cpu_arrays[step.velocity_data_name]
    xg = np.arange(-1, length + 1)[:, None] + 0.5
    yg = np.arange(-1, channel_offset(config, members) - 1)[None, :] + 0.5  # ghost layers included
    yg = _local_y(config, yg, members)
    velocity[..., 0] = U
    velocity[..., 1] = 0.1 * U * np.exp(-((xg - cx - D) ** 2 + (yg - cy) ** 2) / D**2)
    step.set_pdf_fields_from_macroscopic_values()
    # lbmpy allocates the streaming target uninitialised (np.empty); its ghost layers are read before any kernel
    # writes them, so recycled memory (NaN, huge values) could leak in and diverge a healthy run. Start it equal
    # to the source (lbmpy names it after the step: name + "_pdfTmp"). On the GPU target the source is uploaded
    # first: the device's copy is not written until then.
    dh.to_gpu(step.pdf_array_name)  # no-op on the CPU target
    for arrays in (dh.cpu_arrays, getattr(dh, "gpu_arrays", {})):
        if "karman_pdfTmp" in arrays and step.pdf_array_name in arrays:
            arrays["karman_pdfTmp"][...] = arrays[step.pdf_array_name]
