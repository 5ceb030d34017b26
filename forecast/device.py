"""Choosing where torch runs: ``auto`` prefers CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

import torch

from forecast.errors import ForecastError


def select_device(name: str | None = "auto") -> torch.device:
    """Resolve ``auto``/``cpu``/``cuda``/``cuda:N``/``mps`` to an available ``torch.device``."""
    if name in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ForecastError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ForecastError(f"device {name!r} was asked for but CUDA is not available on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ForecastError(
            f"device {name!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s)"
        )
    if device.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ForecastError("device 'mps' was asked for but MPS is not available on this machine")
    return device


#: CPU flags (Linux /proc/cpuinfo) of native bf16 arithmetic: AVX512-BF16 dot products, AMX tiles
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_supports_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes in bf16 natively (``CPU_BF16_FLAGS``): elsewhere bf16 autocast is emulated and slow.

    Read from the kernel's CPU flags; where there are none (not Linux), from oneDNN's own check.
    """
    try:
        with open(cpuinfo) as f:
            flags = {word for line in f if line.startswith("flags") for word in line.split(":", 1)[1].split()}
    except OSError:
        flags = set()
    if flags:
        return any(flag in flags for flag in CPU_BF16_FLAGS)
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(check()) if check is not None else False


def training_autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``training.precision`` on ``device``; one line where bf16 cannot run fast there.

    ``fp32``: none. ``bf16``: bfloat16, refused on CPUs without ``CPU_BF16_FLAGS`` and on GPUs without bf16.
    ``auto``: ``autocast_dtype`` (bf16 on GPUs that support it, full precision elsewhere).
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        if device.type == "cpu" and not cpu_supports_bf16():
            raise ForecastError(
                f"training.precision bf16 needs a CPU with {' or '.join(CPU_BF16_FLAGS)}; this one has neither: "
                "use fp32"
            )
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ForecastError("training.precision bf16: this GPU does not support bf16; use fp32")
        return torch.bfloat16
    return autocast_dtype(device)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 autocast on GPUs that support it; full precision elsewhere (CPU autocast is slower here)."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None
