"""Benchmark: what a CRPS (energy-score) training term on sampled members would cost, against a training step.

    python experiments/benchmarks/crps_term_cost.py [--members 2] [--steps 1 4] [--repeat 2]

Issue 31's "training aimed at the distribution": a CRPS or energy-score term on a few members *sampled* during
training (what CRPS-trained weather ensembles do) needs each member drawn by the sampler with gradients, through
every sampling step, for every future frame of the window. This measures, on the calibration table's RVD
(``experiments/calibration.py``, cpu-small: dim 32, 32x32 frames, batch 4, windows of 2 + 3 frames), in one run:

- one training step of today's loss (forward and backward of ``RVD.loss``);
- the extra term: ``--members`` members per window for each of the 3 future frames (teacher forcing, as the
  loss), each drawn by DDIM with ``--steps`` steps from pure noise with gradients, the fair energy score of the
  members against the frame, forward and backward.

It prints each time and its ratio to the training step (timings under load are noisy; the ratio is measured in
the same run). Nothing is trained: the networks are freshly initialised, which does not change the cost.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

import calibration  # noqa: E402

from forecast.models import build_model  # noqa: E402
from forecast.training.config import resolve_config  # noqa: E402


def energy_score_term(model, window: torch.Tensor, n_context: int, members: int, steps: int) -> torch.Tensor:
    """The fair energy score of ``members`` sampled frames per future frame (teacher forcing), with gradients."""
    batch = window.shape[0]
    frames = window.repeat_interleave(members, dim=0)  # each window's members are rows of one batch
    state = model.initial_state(frames.shape[0], *frames.shape[-2:], frames.device)
    for t in range(n_context):
        state = model.observe(state, frames[:, t])
    diffusion, total = model.diffusion, frames.new_zeros(())
    for t in range(n_context, frames.shape[1]):
        noise = torch.randn_like(frames[:, t])
        y0 = diffusion._ddim(model._eps_model(model.denoiser, state, state.mu), noise,
                             diffusion.ddim_timesteps(steps), 0.0, None, False)  # fmt: skip
        x = (state.mu + model.residual_scale(tuple(frames.shape[-2:])) * y0).view(batch, members, -1)
        truth = window[:, t].reshape(batch, 1, -1)
        skill = (x - truth).norm(dim=-1).mean()
        spread = torch.cdist(x, x).sum() / (batch * members * (members - 1))
        total = total + skill - spread / 2
        state = model.observe(state, frames[:, t])
    return total / (frames.shape[1] - n_context)


def best_time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=2, help="members sampled per window (default 2)")
    parser.add_argument(
        "--steps", type=int, nargs="+", default=[1, 4], help="DDIM steps of the sampled members"
    )
    parser.add_argument("--repeat", type=int, default=2, help="timed runs of each (the best is printed)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    config = resolve_config(calibration.row_config(calibration.ROWS[0], calibration.SCALES["cpu-small"]))
    model = build_model(config, 3).train()
    n_context, future = config["data"]["context_frames"], config["data"]["future_frames"]
    window = torch.randn(4, n_context + future, 3, 32, 32)

    def train_step():
        model.zero_grad()
        model.loss(window, n_context).backward()

    train_step()  # warm-up
    reference = best_time(train_step, args.repeat)
    print(
        f"threads {torch.get_num_threads()}; training step (batch 4, {n_context} + {future} frames): {reference:.2f} s"
    )
    for steps in args.steps:

        def term(steps: int = steps) -> None:
            model.zero_grad()
            energy_score_term(model, window, n_context, args.members, steps).backward()

        seconds = best_time(term, args.repeat)
        print(
            f"energy-score term, {args.members} members x DDIM-{steps} with gradients: {seconds:.2f} s "
            f"= {seconds / reference:.1f} x a training step"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
