"""Truth ensembles of Kolmogorov flow: K members from the run's lattice state, perturbed below a stored pixel.

At each start (``KolmogorovConfig.truth_init_times``) the run saves its lattice state (both PDF buffers and the
macroscopic fields) at the frame before ``init_time``. Member ``m`` restores it, adds its own perturbation
(``Lattice.perturb`` with ``perturbation_seed``: a velocity field of std ``perturbation`` x U whose mean over
every stored pixel is zero) and runs ``truth_horizon`` frames. The run itself then restores the state and gets
a perturbation of its own (``run_perturbation_seed``) before it goes on, so the verifying test frames are one
more member of the same ensemble (exchangeable with the K), not its unperturbed centre. The group's layout is
shared (``simulators.common.truth``).
"""

from __future__ import annotations

import numpy as np

from simulators.common.flow import FIELDS, run_name
from simulators.kolmogorov.config import KolmogorovConfig
from simulators.kolmogorov.lattice import Lattice
from simulators.kolmogorov.run import sample_frame


def perturbation_seed(run_seed: int, init_time: int, member: int) -> int:
    """The perturbation seed of member ``member`` of the start at ``init_time`` of the run of ``run_seed``."""
    return int(np.random.SeedSequence([run_seed, init_time, member]).generate_state(1)[0])


def run_perturbation_seed(run_seed: int, init_time: int) -> int:
    """The perturbation seed of the run itself at that start (a different entropy list from every member's)."""
    return int(np.random.SeedSequence([run_seed, init_time]).generate_state(1)[0])


def continuations(
    lattice: Lattice, config: KolmogorovConfig, indices: int | list[int], init_time: int
) -> list[dict[str, np.ndarray]]:
    """``[{name: (members, horizon, height, width)}]`` for run ``indices[0]``, forked from the lattice's state
    (that of frame ``init_time - 1``); the lattice is left in that state plus the run's own perturbation."""
    index = indices if isinstance(indices, int) else indices[0]
    run_seed = config.seeds[index]
    saved = lattice.save_state()
    height, width = config.size
    shape = (config.truth_members, config.truth_horizon, height, width)
    out = {name: np.empty(shape, np.float32) for name in FIELDS}
    name = f"{run_name(index)} truth start {init_time}"
    for member in range(config.truth_members):
        lattice.restore_state(saved)
        lattice.perturb(perturbation_seed(run_seed, init_time, member))
        for lead in range(config.truth_horizon):
            lattice.advance(config.every)
            lattice.check_stable(name, lead + 1)
            frame = sample_frame(lattice)
            for field in FIELDS:
                out[field][member, lead] = frame[field]
    lattice.restore_state(saved)
    lattice.perturb(run_perturbation_seed(run_seed, init_time))
    return [out]


def perturbation_seed_coords(config: KolmogorovConfig, sequence: np.ndarray, init_times: np.ndarray) -> dict:
    """The truth group's ``perturbation_seed (init, member)``."""
    seeds = np.array(
        [
            [perturbation_seed(config.seeds[s], int(t), m) for m in range(config.truth_members)]
            for s, t in zip(sequence, init_times)
        ],
        dtype=np.int64,
    )
    attrs = {
        "long_name": "seed of the member's perturbation (kolmogorov.truth.perturbation_seed)",
        "units": "1",
    }
    return {"perturbation_seed": (("init", "member"), seeds, attrs)}
