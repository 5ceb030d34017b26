"""Timings of the perceptual metrics against their reference implementations, in the same run.

    OMP_NUM_THREADS=1 python experiments/benchmarks/bench_perceptual.py [--quick]

- Frechet distance: ours (symmetric eigendecompositions) vs the direct formula with scipy.linalg.sqrtm, at the
  feature sizes of FVD (400 logits) and of I3D pooled features (1024); also the agreement of the two values.
- LPIPS: ours vs the `lpips` package (where installed; its torchvision AlexNet is stood in by ours, with the
  same random weights), 64x64 frames.
- I3D: ours vs the published PyTorch port shipped in `cd-fvd` (where installed), 16 frames at 224x224.
- Import: SM-MNIST from the builtin digits, sequences per second.
Ratios > 1 mean ours is faster.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import scipy.linalg

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from forecast.metrics.fvd import feature_statistics, frechet_distance  # noqa: E402


def compare(ours, reference, repeat: int = 5) -> tuple[float, object, float, object]:
    """Best-of-``repeat`` times of two functions, calls interleaved so that load changes hit both alike."""
    best = [float("inf"), float("inf")]
    results = [None, None]
    for _ in range(repeat):
        for i, fn in enumerate((ours, reference)):
            start = time.perf_counter()
            results[i] = fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best[0], results[0], best[1], results[1]


def bench_frechet(dims: list[int]) -> None:
    rng = np.random.default_rng(0)
    for d in dims:
        a, b = rng.normal(size=(2 * d, d)), rng.normal(size=(2 * d, d)) + 0.1
        s1, s2 = feature_statistics(a), feature_statistics(b)

        def direct(s1=s1, s2=s2):
            return float(
                np.sum((s1[0] - s2[0]) ** 2)
                + np.trace(s1[1] + s2[1] - 2 * scipy.linalg.sqrtm(s1[1] @ s2[1]).real)
            )

        t_ours, ours, t_ref, ref = compare(lambda s1=s1, s2=s2: frechet_distance(*s1, *s2), direct)
        print(
            f"frechet d={d:5d}: ours {t_ours * 1e3:8.1f} ms  scipy.sqrtm {t_ref * 1e3:8.1f} ms  "
            f"ratio {t_ref / t_ours:5.2f}  relative difference {abs(ours - ref) / abs(ref):.1e}"
        )


def bench_lpips() -> None:
    import torch

    from forecast.metrics.networks.alexnet import LPIPS, alexnet_features

    if importlib.util.find_spec("lpips") is None:
        print("lpips: reference package not installed (pip install --no-deps lpips); skipped")
        return
    torch.manual_seed(0)
    features = alexnet_features()
    models = types.ModuleType("torchvision.models")
    models.alexnet = lambda pretrained=False, **kw: types.SimpleNamespace(features=features)
    tv = types.ModuleType("torchvision")
    tv.models = models
    sys.modules.update({"torchvision": tv, "torchvision.models": models})
    import lpips

    reference = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()
    ours = LPIPS()
    ours.load_weights({f"features.{k}": v for k, v in features.state_dict().items()}, reference.state_dict())
    a, b = torch.rand(64, 3, 64, 64) * 2 - 1, torch.rand(64, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        t_ours, x, t_ref, y = compare(lambda: ours(a, b), lambda: reference(a, b).flatten())
    print(
        f"lpips 64 frames 64x64: ours {t_ours * 1e3:7.1f} ms  lpips package {t_ref * 1e3:7.1f} ms  "
        f"ratio {t_ref / t_ours:5.2f}  max difference {float((x - y).abs().max()):.1e}"
    )


def bench_i3d(frames: int, size: int) -> None:
    import torch

    from forecast.metrics.networks.i3d import I3D

    spec = importlib.util.find_spec("cdfvd")
    if spec is None:
        print("i3d: reference port not installed (pip install --no-deps cd-fvd); skipped")
        return
    path = Path(spec.submodule_search_locations[0]) / "third_party" / "i3d" / "pytorch_i3d.py"
    module_spec = importlib.util.spec_from_file_location("reference_i3d", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    reference = module.InceptionI3d(400, in_channels=3).eval()
    ours = I3D(bn_eps=1e-5)
    ours.load_state_dict(reference.state_dict())
    video = torch.rand(2, 3, frames, size, size) * 2 - 1
    with torch.no_grad():
        t_ours, x, t_ref, y = compare(lambda: ours(video), lambda: reference(video), repeat=2)
    print(
        f"i3d 2 videos {frames}x{size}x{size}: ours {t_ours:6.2f} s  port {t_ref:6.2f} s  ratio "
        f"{t_ref / t_ours:5.2f}  max difference {float((x - y).abs().max()):.1e}"
    )


def bench_import(sequences: int) -> None:
    from forecast.data.importers.smmnist import import_smmnist

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        import_smmnist(
            "builtin",
            Path(tmp) / "s.zarr",
            length=30,
            sequences={"train": sequences, "test": sequences // 10},
            progress=False,
        )
        elapsed = time.perf_counter() - start
    total = sequences + sequences // 10
    print(
        f"import smmnist: {total} sequences of 30 frames 64x64 in {elapsed:.2f} s ({total / elapsed:.0f} seq/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    args = parser.parse_args()
    bench_frechet([64, 400] if args.quick else [400, 1024])
    bench_lpips()
    bench_i3d(*((9, 224) if args.quick else (16, 224)))  # the port's final pool needs 224x224
    bench_import(50 if args.quick else 500)


if __name__ == "__main__":
    main()
