"""Our LPIPS and I3D against the reference implementations, on fixed inputs with the same weights.

The pretrained backbones cannot be downloaded here, so both sides get the same (seeded random) weights: what is
compared is the computation (input scaling, feature normalisation, linear heads, SAME padding, pooling).
- LPIPS: the `lpips` package (`pip install --no-deps lpips`); its AlexNet comes from torchvision, which has no
  CPU build here, so a stand-in `torchvision.models.alexnet` hands it our feature stack (same torchvision layout).
- I3D: the PyTorch port of the Kinetics-400 I3D as shipped in the `cd-fvd` package (`pip install --no-deps
  cd-fvd`), loaded from its file without importing the package (which needs torchvision).
Each test is skipped where its reference package is not installed.
"""

import importlib.util
import sys
import types
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


def _reference_i3d_module():
    spec = importlib.util.find_spec("cdfvd")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("cd-fvd (the reference I3D port) is not installed")
    path = Path(spec.submodule_search_locations[0]) / "third_party" / "i3d" / "pytorch_i3d.py"
    module_spec = importlib.util.spec_from_file_location("reference_pytorch_i3d", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _compare_i3d(shape, pre_pool=False):
    from forecast.metrics.networks.i3d import I3D

    reference = _reference_i3d_module().InceptionI3d(400, in_channels=3).eval().double()
    generator = torch.Generator().manual_seed(0)
    state = reference.state_dict()
    for key, value in state.items():  # non-trivial batch-norm statistics
        if key.endswith("running_mean"):
            value.copy_(torch.randn(value.shape, generator=generator) * 0.1)
        elif key.endswith("running_var"):
            value.copy_(torch.rand(value.shape, generator=generator) + 0.5)
    reference.load_state_dict(state)
    ours = I3D(bn_eps=1e-5).double()  # the port's batch-norm epsilon
    ours.load_state_dict(state, strict=True)  # the port's parameter names load as they are
    video = torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        if pre_pool:  # the reference's final 7x7 pool needs 224x224 frames; compare what comes before it
            x = video
            for name in ours.names:
                x = getattr(ours, name)(x)
            torch.testing.assert_close(x, reference.extract_pre_pool_features(video), rtol=1e-10, atol=1e-12)
        else:
            torch.testing.assert_close(ours(video), reference(video), rtol=1e-10, atol=1e-12)


def test_i3d_matches_the_reference_port_small_odd_sizes():
    _compare_i3d((1, 3, 10, 40, 52), pre_pool=True)


@pytest.mark.slow
def test_i3d_matches_the_reference_port_at_224():
    _compare_i3d((2, 3, 16, 224, 224))


def lpips_package(monkeypatch, features):
    """The `lpips` package, imported afresh with a stand-in `torchvision.models.alexnet` whose `features` are
    ``features`` (our stack, torchvision's layout): torchvision has no CPU build here."""
    models = types.ModuleType("torchvision.models")
    models.alexnet = lambda pretrained=False, **kwargs: types.SimpleNamespace(features=features)
    torchvision = types.ModuleType("torchvision")
    torchvision.models = models
    monkeypatch.setitem(sys.modules, "torchvision", torchvision)
    monkeypatch.setitem(sys.modules, "torchvision.models", models)
    for name in [m for m in sys.modules if m == "lpips" or m.startswith("lpips.")]:
        monkeypatch.delitem(sys.modules, name)
    import lpips

    return lpips


def test_lpips_matches_the_reference_package(monkeypatch):
    if importlib.util.find_spec("lpips") is None:
        pytest.skip("the lpips package is not installed")
    from forecast.metrics.networks.alexnet import LPIPS, alexnet_features

    torch.manual_seed(0)
    features = alexnet_features()
    lpips = lpips_package(monkeypatch, features)
    reference = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False).eval()
    ours = LPIPS()
    ours.load_weights({f"features.{k}": v for k, v in features.state_dict().items()}, reference.state_dict())
    generator = torch.Generator().manual_seed(1)
    a = torch.rand((4, 3, 64, 64), generator=generator) * 2 - 1
    b = (a + 0.3 * torch.randn((4, 3, 64, 64), generator=generator)).clamp(-1, 1)
    with torch.no_grad():
        torch.testing.assert_close(ours(a, b), reference(a, b).flatten(), rtol=1e-5, atol=1e-7)
