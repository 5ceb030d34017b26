"""The simulator's fast paths give the same bits as the reference paths they replace."""

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


@pytest.mark.parametrize("noise, every", [(0.0, 7), (0.2, 8)], ids=["deterministic", "inflow-noise"])
def test_fast_time_loop_equals_lbmpys_run_bit_for_bit(noise, every):
    config = KarmanConfig(reynolds=(150.0,), inflow_noise=noise, every=every, **TINY)
    lattice = build_lattice(config, 150.0, noise_seed=3)
    initial = lattice.save_state()
    lattice.reference = True
    reference_frames, reference_state = _frames_and_state(lattice, config)
    lattice.restore_state(initial)
    lattice.reference = False
    frames, state = _frames_and_state(lattice, config)
    assert len(frames) == config.frames_per_run
    for got, want in zip(frames, reference_frames, strict=True):
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])
    for name, values in reference_state["arrays"].items():
        np.testing.assert_array_equal(state["arrays"][name], values)
    for got, want in zip(state["boundaries"], reference_state["boundaries"], strict=True):
        np.testing.assert_array_equal(got, want)
    assert np.abs(frames[-1]["v"] - frames[0]["v"]).max() > 1e-5  # the flow moved: the comparison means something
