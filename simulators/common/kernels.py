"""Where lbmpy runs a simulator's kernels: the CPU (with OpenMP threads) or a CUDA GPU through cupy."""

from __future__ import annotations

from forecast.errors import ForecastError


def kernel_config(config):
    """pystencils' kernel settings for ``config.target`` (``cpu``/``gpu``) and ``config.threads``."""
    from pystencils import CreateKernelConfig, Target

    if config.target == "gpu":
        try:
            import cupy  # noqa: F401
        except ImportError:
            raise ForecastError("--target gpu needs cupy (pip install cupy-cuda12x) and a CUDA GPU") from None
        return CreateKernelConfig(target=Target.GPU)
    settings = CreateKernelConfig(target=Target.CPU)
    if config.threads and config.threads > 1:
        settings.cpu.openmp.enable = True
        settings.cpu.openmp.num_threads = int(config.threads)
    return settings
