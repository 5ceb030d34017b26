"""Perfect-model truth ensembles of the street: K continuations of a run from its exact state at test starts.

At each start (``KarmanConfig.truth_init_times``) the run saves its whole state (both PDF buffers, the
macroscopic fields, the inlet-noise process), computes ``truth_members`` continuations of ``truth_horizon``
frames, each with its own future noise (``noise.member_seed``), and then restores the saved state, noise
generator included, so the run itself goes on exactly as if it had not forked: its test frames are one more
draw from the same distribution (the verifying truth of docs/formats.md). The group's layout is shared
(``simulators.common.truth``).
"""

from __future__ import annotations

import numpy as np

from simulators.common.flow import FIELDS, run_name
from simulators.karman.config import KarmanConfig
from simulators.karman.lattice import Lattice
from simulators.karman.noise import member_seed, sequence_seed
from simulators.karman.run import sample_frame


def continuations(
    lattice: Lattice, config: KarmanConfig, indices: int | list[int], init_time: int
) -> list[dict[str, np.ndarray]]:
    """``{name: (members, horizon, height, width)}`` per run of ``indices`` (the runs of a batched lattice,
    in channel order; one index: a single run), forked from the lattice's current state, which is the state
    of frame ``init_time - 1``; the lattice is left exactly in that state. Member ``m`` of every run is
    computed in the same launch."""
    indices = [indices] if isinstance(indices, int) else list(indices)
    saved = lattice.save_state()
    seeds = [sequence_seed(config.noise_seed, index) for index in indices]
    height, width = config.size
    shape = (config.truth_members, config.truth_horizon, height, width)
    out = [{name: np.empty(shape, np.float32) for name in FIELDS} for _ in indices]
    name = f"{', '.join(run_name(i) for i in indices)} truth start {init_time}"
    for member in range(config.truth_members):
        member_seeds = [member_seed(seed, init_time, member) for seed in seeds]
        lattice.restore_state(saved, noise_seed=member_seeds[0] if lattice.members == 1 else member_seeds)
        for lead in range(config.truth_horizon):
            lattice.advance(config.every)
            lattice.check_stable(name, lead + 1)
            for channel, run in enumerate(out):
                frame = sample_frame(lattice, channel)
                for field in FIELDS:
                    run[field][member, lead] = frame[field]
    lattice.restore_state(saved)
    return out


def member_seed_coords(config: KarmanConfig, sequence: np.ndarray, init_times: np.ndarray) -> dict:
    """The truth group's ``noise_seed (init, member)``: the seeds of the members' future inlet noise."""
    seeds = np.array(
        [
            [member_seed(sequence_seed(config.noise_seed, s), int(t), m) for m in range(config.truth_members)]
            for s, t in zip(sequence, init_times)
        ],
        dtype=np.int64,
    )
    return {
        "noise_seed": (
            ("init", "member"),
            seeds,
            {"long_name": "seed of the member's future inlet noise (noise.member_seed)", "units": "1"},
        )
    }
