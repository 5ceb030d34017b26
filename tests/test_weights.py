"""Finding pretrained weights in the standard places, failing clearly, and loading them safely."""

import pickle

import pytest

from forecast.errors import ForecastError
from forecast.metrics.weights import (
    ALEXNET,
    I3D_KINETICS,
    MissingWeightsError,
    find_weights,
    load_state_dict,
)

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv("FORECAST_WEIGHTS", raising=False)


def test_missing_weights_name_the_file_and_the_places(tmp_path):
    with pytest.raises(ForecastError) as info:
        find_weights(I3D_KINETICS, download=False)
    message = str(info.value)
    assert "rgb_imagenet.pt" in message and "FORECAST_WEIGHTS" in message
    assert str(tmp_path / "torch_home" / "hub" / "checkpoints") in message
    assert "\n" not in message
    # the brief form (for tables): the file, without the places searched
    assert isinstance(info.value, MissingWeightsError) and message.startswith(
        info.value.brief + ": looked in"
    )
    assert "rgb_imagenet.pt" in info.value.brief and "torch_home" not in info.value.brief


def test_search_order(tmp_path, monkeypatch):
    cache = tmp_path / "torch_home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save({"w": torch.ones(1)}, cache / "rgb_imagenet.pt")
    assert find_weights(I3D_KINETICS, download=False) == cache / "rgb_imagenet.pt"
    env = tmp_path / "env"
    env.mkdir()
    torch.save({"w": torch.ones(1)}, env / "rgb_imagenet.pt")
    monkeypatch.setenv("FORECAST_WEIGHTS", str(env))
    assert find_weights(I3D_KINETICS, download=False) == env / "rgb_imagenet.pt"
    given = tmp_path / "given"
    given.mkdir()
    torch.save({"w": torch.ones(1)}, given / "rgb_imagenet.pt")
    assert find_weights(I3D_KINETICS, given, download=False) == given / "rgb_imagenet.pt"
    with pytest.raises(ForecastError, match="weights folder not found"):
        find_weights(I3D_KINETICS, tmp_path / "nope", download=False)


def test_hash_of_torchvision_names_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("FORECAST_WEIGHTS", str(tmp_path))
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / ALEXNET.filename)
    with pytest.raises(ForecastError, match="sha256"):
        find_weights(ALEXNET, download=False)


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickled_code_is_refused(tmp_path, capsys):
    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump({"w": Payload()}, fh)
    with pytest.raises(ForecastError, match="cannot load weights .*evil.pt safely"):
        load_state_dict(tmp_path / "evil.pt")
    assert "must never run" not in capsys.readouterr().out
    torch.save([torch.ones(1)], tmp_path / "list.pt")
    with pytest.raises(ForecastError, match="does not hold a state dict"):
        load_state_dict(tmp_path / "list.pt")


def test_alias_names_are_found(tmp_path, monkeypatch):
    monkeypatch.setenv("FORECAST_WEIGHTS", str(tmp_path))
    torch.save({"w": torch.ones(1)}, tmp_path / "i3d_pretrained_400.pt")
    assert find_weights(I3D_KINETICS, download=False).name == "i3d_pretrained_400.pt"
