"""The simulator's fast paths give the same bits as the reference paths they replace."""

import shutil
import subprocess

import numpy as np
import pytest

from simulators.karman import KarmanConfig
from simulators.karman.lattice import build_lattice
from simulators.karman.run import run_frames

# The tiny channel of test_karman.py (32x96 cells, D = 2); an odd frame interval exercises lbmpy's buffer swap.
TINY = dict(frames=5, test_frames=2, size=(32, 32), spinup=16, write_batch=4, time_chunk=2)


def _frames_and_state(lattice, config):
    frames = [frame for frame in run_frames(config, 0, lattice)]
    return frames, lattice.save_state()


def _gpu_present() -> bool:
    """A CUDA device on this machine, whatever the Python packages (torch may be a CPU build)."""
    try:
        import torch

        if torch.cuda.is_available():
            return True
    except Exception:  # noqa: BLE001 - no torch: ask the driver
        pass
    smi = shutil.which("nvidia-smi")
    return bool(smi) and subprocess.run([smi, "-L"], capture_output=True, timeout=30).returncode == 0


def require_cupy() -> None:
    """Skip where there is no GPU; on a GPU machine a missing or broken cupy FAILS the test: lbmpy's GPU target
    needs it, and a GPU check that skips these tests must not count them as passed (as the CF checker's tests
    fail under CI rather than skip)."""
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return
        reason = "cupy sees no CUDA device"
    except Exception as exc:  # noqa: BLE001 - no cupy, no driver or no device
        reason = f"cupy is not usable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    if _gpu_present():
        pytest.fail(f"this machine has a GPU but {reason}: pip install -e '.[gpu]' (cupy) to run the GPU tests")
    pytest.skip(reason)


def _equal_to_rounding(got, want):  # fields of O(0.1-1) summed from 9 PDFs in another order
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


GPU = pytest.param("gpu", marks=pytest.mark.gpu)  # require_cupy() in the test: fails on a GPU without cupy


@pytest.mark.parametrize("target", ["cpu", GPU])
@pytest.mark.parametrize("noise, every", [(0.0, 7), (0.2, 8)], ids=["deterministic", "inflow-noise"])
def test_fast_time_loop_equals_lbmpys_run_bit_for_bit(noise, every, target):
    """On the GPU target the fast path also keeps the PDFs on the device between calls and computes the
    macroscopic fields there (``macroscopic_from_pdfs``): the PDFs stay bit for bit, the fields (the frames, and
    the state's copies of velocity and density) agree with lbmpy's host getter to rounding."""
    if target == "gpu":
        require_cupy()
    config = KarmanConfig(reynolds=(150.0,), inflow_noise=noise, every=every, target=target, **TINY)
    lattice = build_lattice(config, 150.0, noise_seed=3)
    initial = lattice.save_state()
    lattice.reference = True
    reference_frames, reference_state = _frames_and_state(lattice, config)
    lattice.restore_state(initial)
    lattice.reference = False
    frames, state = _frames_and_state(lattice, config)
    assert len(frames) == config.frames_per_run
    fields = {lattice.step.velocity_data_name, lattice.step.density_data_name}
    same = np.testing.assert_array_equal if target == "cpu" else _equal_to_rounding
    for got, want in zip(frames, reference_frames, strict=True):
        for name in want:
            same(got[name], want[name])
    for name, values in reference_state["arrays"].items():
        (same if name in fields else np.testing.assert_array_equal)(state["arrays"][name], values)
    for got, want in zip(state["boundaries"], reference_state["boundaries"], strict=True):
        np.testing.assert_array_equal(got, want)
    assert (
        np.abs(frames[-1]["v"] - frames[0]["v"]).max() > 1e-5
    )  # the flow moved: the comparison means something


# The default collision in the fast suite; the others compile kernels of their own on a fresh machine (4-7 s each
# in CI), so they run with the long checks.
@pytest.mark.parametrize(
    "collision", ["cumulant", *(pytest.param(c, marks=pytest.mark.slow) for c in ("mrt", "srt", "entropic"))]
)
def test_macroscopic_fields_from_pdfs_equal_lbmpys_getter(collision):
    """The formula the GPU target evaluates on the device, here with numpy on the host's PDFs (zero-centred
    storage for three methods, plain for the entropic one; all compressible), after noisy steps."""
    from simulators.karman.lattice import macroscopic_from_pdfs

    config = KarmanConfig(reynolds=(150.0,), inflow_noise=0.2, collision=collision, **TINY)
    lattice = build_lattice(config, 150.0, noise_seed=3)
    lattice.advance(37)
    u, v, rho = lattice.macroscopic()  # lbmpy's getter
    pdfs = lattice.step.data_handling.cpu_arrays[lattice.step.pdf_array_name][1:-1, 1:-1]
    velocity, density = macroscopic_from_pdfs(pdfs, lattice.step.method)
    _equal_to_rounding(density, rho)
    _equal_to_rounding(velocity[..., 0], u)
    _equal_to_rounding(velocity[..., 1], v)
    assert np.abs(v).max() > 1e-4  # a flow with a transverse component: the comparison means something


class _DeviceArray(np.ndarray):
    """A host array posing as a cupy one (``.get()`` copies it to the host), for the GPU path's CPU test."""

    def get(self):
        return np.asarray(self).copy()


def test_fields_from_device_fill_the_hosts_field_arrays(monkeypatch):
    """The GPU target's read of the fields (``Lattice._fields_from_device``), run on the CPU with the host's
    PDFs posing as the device's: the host's velocity and density arrays get the getter's values, the ghost
    layers untouched, and the host's PDFs are not read."""
    import sys
    import types

    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(asarray=np.asarray))
    config = KarmanConfig(reynolds=(150.0,), inflow_noise=0.2, **TINY)
    lattice = build_lattice(config, 150.0, noise_seed=3)
    lattice.advance(37)
    want = [field.copy() for field in lattice.macroscopic()]  # lbmpy's getter
    step = lattice.step
    dh = step.data_handling
    device_pdfs = dh.cpu_arrays[step.pdf_array_name].copy().view(_DeviceArray)
    monkeypatch.setattr(dh, "gpu_arrays", {step.pdf_array_name: device_pdfs}, raising=False)
    dh.cpu_arrays[step.pdf_array_name][...] = np.nan  # a stale host copy must not be read
    for name in (step.velocity_data_name, step.density_data_name):
        dh.cpu_arrays[name][...] = -7.0
    lattice._stale = lattice._host_behind = True  # as after steps on the device
    for got, expected in zip(lattice.macroscopic(), want, strict=True):
        _equal_to_rounding(got, expected)
    assert (dh.cpu_arrays[step.velocity_data_name][0] == -7.0).all()  # a ghost layer, as the getter leaves it
    assert lattice._host_behind  # the PDFs were not downloaded


@pytest.mark.gpu
def test_gpu_target_computes_the_cpu_flow():
    """The same kernels compiled for CUDA: the same flow to rounding (other compilers contract other FMAs)."""
    require_cupy()
    frames = {}
    for target in ("cpu", "gpu"):
        config = KarmanConfig(reynolds=(150.0,), inflow_noise=0.2, every=8, target=target, **TINY)
        frames[target] = list(run_frames(config, 0, build_lattice(config, 150.0, noise_seed=3)))
    for gpu, cpu in zip(frames["gpu"], frames["cpu"], strict=True):
        for name in cpu:
            np.testing.assert_allclose(gpu[name], cpu[name], rtol=0, atol=1e-9)
    assert np.abs(frames["gpu"][-1]["v"] - frames["gpu"][0]["v"]).max() > 1e-5  # the flow moved


@pytest.mark.gpu
def test_gpu_target_sheds_at_the_cpu_strouhal_number(tmp_path):
    """Issue 13: the same Strouhal number on both targets, over ~15 shedding periods of the default geometry at
    128x128 (the slow CPU test of tests/test_karman_physics.py, at Re 150 only); and Williamson's within 10%."""
    require_cupy()
    from forecast.field_store import open_field_store
    from simulators.karman import generate
    from simulators.karman.analysis import strouhal_number, williamson_strouhal

    measured = {}
    for target in ("cpu", "gpu"):
        config = KarmanConfig(reynolds=(150.0,), frames=120, test_frames=8, size=(128, 128), target=target)
        generate(tmp_path / f"{target}.zarr", config, scheduler="synchronous", progress=False)
        measured[target] = strouhal_number(open_field_store(tmp_path / f"{target}.zarr", "train"), 0)
    print(f"St on the CPU {measured['cpu']:.5f}, on the GPU {measured['gpu']:.5f}, Williamson "
          f"{williamson_strouhal(150.0):.5f}")  # fmt: skip
    assert abs(measured["gpu"] / measured["cpu"] - 1) < 1e-3
    assert abs(measured["gpu"] / williamson_strouhal(150.0) - 1) < 0.10


@pytest.mark.slow  # three lattice builds
def test_batched_runs_equal_separate_runs_in_the_fluid_with_their_truth(tmp_path):
    # two runs at one Reynolds number (different noise seeds) in one lattice against one lattice each
    from forecast.field_store import open_field_store
    from simulators.karman import generate
    from simulators.karman.analysis import probe_series

    truth = dict(truth_members=2, truth_inits=1, truth_horizon=2, truth_context=1)
    options = {**TINY, "test_frames": 3, "every": 8}
    config = KarmanConfig(reynolds=(150.0, 150.0), inflow_noise=0.2, **options, **truth)
    batched_config = KarmanConfig(**{**config.__dict__, "batch": 2})
    generate(tmp_path / "separate.zarr", config, scheduler="synchronous", progress=False)
    result = generate(tmp_path / "batched.zarr", batched_config, scheduler="synchronous", progress=False)
    assert [r.lattice_runs for r in result.runs] == [2, 2]
    # every stored row is fluid (a channel's walls lie outside it): bit for bit
    rows = dict.fromkeys(("u", "v", "rho", "vorticity"), slice(None))
    for group in ("train", "test"):
        separate = open_field_store(tmp_path / "separate.zarr", group).load()
        batched = open_field_store(tmp_path / "batched.zarr", group).load()
        for name, inner in rows.items():
            np.testing.assert_array_equal(
                batched[name].values[..., inner, :], separate[name].values[..., inner, :]
            )
        # the runs differ (their own noise): the comparison is not of two copies of one run
        assert np.abs(separate["v"].values[0] - separate["v"].values[1]).max() > 1e-5
    for sequence in (0, 1):  # the Strouhal number's input, the wake probe, is the same signal
        np.testing.assert_array_equal(
            probe_series(open_field_store(tmp_path / "batched.zarr", "test"), sequence).values,
            probe_series(open_field_store(tmp_path / "separate.zarr", "test"), sequence).values,
        )
    import xarray as xr

    separate_truth = xr.open_zarr(str(tmp_path / "separate.zarr"), group="truth", consolidated=False).load()
    batched_truth = xr.open_zarr(str(tmp_path / "batched.zarr"), group="truth", consolidated=False).load()
    for name, inner in rows.items():
        np.testing.assert_array_equal(
            batched_truth[name].values[..., inner, :], separate_truth[name].values[..., inner, :]
        )


def test_batches_group_runs_by_reynolds_number():
    from simulators.karman.parallel import batches

    config = KarmanConfig(reynolds=(150.0, 200.0, 150.0, 150.0, 200.0), batch=2, **TINY, every=8)
    assert batches(config, [0, 1, 2, 3, 4]) == [[0, 2], [3], [1, 4]]
    assert batches(KarmanConfig(reynolds=(150.0, 150.0), **TINY, every=8), [0, 1]) == [[0], [1]]
