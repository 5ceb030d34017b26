import pytest
import torch

from forecast.device import autocast_dtype, select_device
from forecast.errors import ForecastError


def test_auto_falls_back_to_an_available_device():
    device = select_device("auto")
    if torch.cuda.is_available():
        assert device.type == "cuda"
    else:
        assert device.type in ("cpu", "mps")
    assert select_device("cpu") == torch.device("cpu")
    assert autocast_dtype(torch.device("cpu")) is None


def test_unavailable_or_unknown_device_is_a_clear_error():
    with pytest.raises(ForecastError, match="unknown device"):
        select_device("tpu7")
    if not torch.cuda.is_available():
        with pytest.raises(ForecastError, match="CUDA is not available"):
            select_device("cuda")
