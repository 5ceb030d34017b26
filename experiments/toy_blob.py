"""A minute-scale check that RVD learns: a Gaussian blob moving one pixel per frame (16x16, periodic in x).

    python experiments/toy_blob.py [--train-steps 250] [--prediction eps|y0] [--mu-loss-weight 0]
        [--kind rvd] [--clip-x0 2] [--seed 0]

Trains a small RVD (dim 8, two levels, N = 50) with Adam on fresh random windows of 2 + 2 frames, then prints
the RMSE against the true third frame of 16 test sequences for: ``mu``, one DDPM-sampled frame, persistence (the
last context frame) and the blank background. Used for the figures in docs/concepts/rvd.md.
"""

from __future__ import annotations

import argparse
import time

import torch

from forecast.models import build_model

SIZE = 16


def moving_blobs(batch: int, length: int, gen: torch.Generator) -> torch.Tensor:
    """(batch, time, 1, y, x) frames of a blob moving one pixel right per frame, background -1, peak 2."""
    x0 = torch.randint(0, SIZE, (batch,), generator=gen).float()
    y0 = torch.randint(4, SIZE - 4, (batch,), generator=gen).float()
    yy, xx = torch.meshgrid(torch.arange(SIZE).float(), torch.arange(SIZE).float(), indexing="ij")
    frames = []
    for t in range(length):
        dx = torch.remainder(xx[None] - (x0 + t)[:, None, None] + SIZE / 2, SIZE) - SIZE / 2
        frames.append(3 * torch.exp(-(dx**2 + (yy[None] - y0[:, None, None]) ** 2) / 4.0) - 1)
    return torch.stack(frames, 1)[:, :, None]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-steps", type=int, default=250)
    p.add_argument("--prediction", default="eps", choices=["eps", "y0"])
    p.add_argument("--mu-loss-weight", type=float, default=0.0)
    p.add_argument("--kind", default="rvd", choices=["rvd", "vd", "simple_rvd"])
    p.add_argument("--clip-x0", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    torch.manual_seed(args.seed)
    model = build_model(
        {
            "model": {"kind": args.kind, "dim": 8, "denoiser_mults": [1, 2], "transform_mults": [1, 2],
                      "mu_loss_weight": args.mu_loss_weight},
            "diffusion": {"steps": 50, "clip_x0": args.clip_x0, "prediction": args.prediction},
        },
        1,
    )  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(args.seed + 1)
    start = time.perf_counter()
    for _ in range(args.train_steps):
        loss = model.loss(moving_blobs(8, 4, gen), n_context=2)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    test = moving_blobs(16, 3, torch.Generator().manual_seed(99))
    model.eval()
    with torch.no_grad():
        state = model.initial_state(16, SIZE, SIZE, "cpu")
        state = model.observe(model.observe(state, test[:, 0]), test[:, 1])
        drawn = model.sample_next(state, generator=torch.Generator().manual_seed(0))

    def rmse(x: torch.Tensor) -> float:
        return (x - test[:, 2]).pow(2).mean().sqrt().item()

    print(
        f"{args.kind} prediction={args.prediction} mu_loss_weight={args.mu_loss_weight} "
        f"after {args.train_steps} steps ({time.perf_counter() - start:.0f} s, last loss {loss.item():.4f}): RMSE "
        f"mu {rmse(state.mu):.3f}, ddpm sample {rmse(drawn):.3f}, persistence {rmse(test[:, 1]):.3f}, "
        f"blank {rmse(torch.full_like(drawn, -1.0)):.3f}"
    )


if __name__ == "__main__":
    main()
