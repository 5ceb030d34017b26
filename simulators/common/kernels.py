"""Where lbmpy runs a simulator's kernels: the CPU (with OpenMP threads) or a CUDA GPU through cupy."""

from __future__ import annotations

import os

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


#: the string-hash seed that processes spawned for simulations get (unless the user has set one)
KERNEL_HASH_SEED = "0"


def reproducible_kernel_code() -> None:
    """Give the processes this one spawns from now on a fixed string-hash seed (``PYTHONHASHSEED``), unless
    one is set already.

    pystencils writes a kernel's C code in an order that follows Python's string hashing, which is random per
    process; its compiled-kernel cache is keyed by that code. So a new process wrote the same kernel in another
    order, missed the cache and compiled it again: about a second per kernel, eight kernels per lattice, in
    every worker of every simulation. With one seed the code is the same in every process and each kernel is
    compiled once per machine. This process's own hashing is unchanged (it was fixed when it started)."""
    os.environ.setdefault("PYTHONHASHSEED", KERNEL_HASH_SEED)
