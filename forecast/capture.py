"""Fast repeated calls of a network with fixed shapes: ``torch.compile`` or CUDA graph capture.

The diffusion sampler calls its denoiser hundreds of times per frame with the same input shapes. On a GPU most
of that time goes into kernel launches and Python, not arithmetic, so replaying a recorded graph pays. Modes:

- ``none``: the network as it is (eager);
- ``cudagraph`` (CUDA only): each new combination of input shapes, dtypes and autocast state is run a few times
  to warm up, then recorded once in a ``torch.cuda.CUDAGraph`` whose replays read static input buffers;
- ``compile``: ``torch.compile`` (inductor; on CUDA its ``reduce-overhead`` mode, which also records CUDA
  graphs). The first call compiles: seconds to minutes on a GPU, many minutes on a small CPU;
- ``auto``: ``cudagraph`` on CUDA, ``none`` elsewhere (on a CPU launches are cheap and compiling costs more
  than it saves on a short run).

``channels_last`` (any mode, and on its own with ``none``) feeds the network 4-D tensors in the channels-last
memory format, the layout that cuDNN's bf16 and TF32 convolutions prefer; the caller converts the network's
weights (``RVD.accelerate_sampling`` does). The same values, other kernels: agreement to float rounding.

If compiling or capturing fails, a warning names the reason and the eager network is used from then on: a
forecast is never lost to an accelerator's corner case. Results agree with eager to float rounding (the
kernels differ), not bit for bit; tests/test_capture.py states the tolerance.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch

from forecast.errors import ForecastError

CAPTURE_MODES = ("none", "auto", "cudagraph", "compile")
#: how many input signatures keep a recorded graph (a rollout has its chunk size and maybe one smaller chunk)
_MAX_GRAPHS = 4
_WARMUP_CALLS = 3


def resolve_capture(mode: str, device: torch.device | str) -> str:
    """The mode that will run on ``device``: ``auto`` resolved; ``cudagraph`` off CUDA is an error."""
    if mode not in CAPTURE_MODES:
        raise ForecastError(f"unknown capture mode {mode!r}; use one of {', '.join(CAPTURE_MODES)}")
    device = torch.device(device)
    if mode == "auto":
        return "cudagraph" if device.type == "cuda" else "none"
    if mode == "cudagraph" and device.type != "cuda":
        raise ForecastError(f"capture mode 'cudagraph' needs a CUDA device, not {device.type}")
    return mode


def _flatten(args: tuple) -> list[torch.Tensor]:
    """The tensors of ``args`` (tensors or tuples of tensors), in order."""
    out = []
    for a in args:
        out.extend(a if isinstance(a, tuple | list) else [a])
    return out


def _unflatten(like: tuple, flat: list[torch.Tensor]) -> tuple:
    out, i = [], 0
    for a in like:
        if isinstance(a, tuple | list):
            out.append(tuple(flat[i : i + len(a)]))
            i += len(a)
        else:
            out.append(flat[i])
            i += 1
    return tuple(out)


def _channels_last(args: tuple) -> tuple:
    """``args`` with every 4-D tensor (also inside tuples) in the channels-last memory format."""
    flat = [t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t for t in _flatten(args)]
    return _unflatten(args, flat)


class _Graph:
    """One recorded call: static inputs, the graph, its static output."""

    def __init__(self, fn: Callable[..., torch.Tensor], args: tuple, pool: Any):
        flat = _flatten(args)
        self.inputs = [t.detach().clone() for t in flat]
        static_args = _unflatten(args, self.inputs)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm-up off the capture stream: lazy inits happen here
            for _ in range(_WARMUP_CALLS):
                fn(*static_args)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, pool=pool):
            self.output = fn(*static_args)

    def __call__(self, args: tuple) -> torch.Tensor:
        for static, value in zip(self.inputs, _flatten(args)):
            static.copy_(value)
        self.graph.replay()
        return self.output.clone()  # the next replay overwrites the static output


class CapturedNetwork:
    """``fn(*args)`` (tensors or tuples of tensors, no gradients) run eagerly, compiled or replayed.

    ``backend`` overrides ``torch.compile``'s backend (tests use ``aot_eager``, which traces the network like
    inductor does but needs no C++ compiler). ``channels_last``: 4-D inputs are passed in that memory format.
    """

    def __init__(
        self,
        fn: Callable[..., torch.Tensor],
        mode: str,
        backend: str | None = None,
        channels_last: bool = False,
    ):
        if mode not in CAPTURE_MODES or mode == "auto":
            raise ForecastError(f"capture mode must be resolved first (resolve_capture), got {mode!r}")
        self.fn, self.mode, self.channels_last = fn, mode, channels_last
        self._graphs: OrderedDict[tuple, _Graph] = OrderedDict()
        self._pool = None
        self._backend = backend
        self._compiled = None  # built at the first call, when the device is known

    def __repr__(self) -> str:
        return f"CapturedNetwork(mode={self.mode!r}, channels_last={self.channels_last})"

    def _fall_back(self, exc: BaseException) -> None:
        warnings.warn(
            f"capture mode {self.mode!r} failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
            "running the network eagerly",
            RuntimeWarning,
            stacklevel=3,
        )
        self.mode, self._compiled = "none", None
        self._graphs.clear()

    def __call__(self, *args) -> torch.Tensor:
        if self.channels_last:
            args = _channels_last(args)
        if self.mode == "compile":
            try:
                cuda = _flatten(args)[0].is_cuda
                if self._compiled is None:
                    options = {"backend": self._backend} if self._backend else {}
                    if cuda and not self._backend:
                        options["mode"] = "reduce-overhead"  # inductor's kernels replayed as CUDA graphs
                    self._compiled = torch.compile(self.fn, dynamic=False, **options)
                if cuda:
                    torch.compiler.cudagraph_mark_step_begin()
                return self._compiled(*args).clone()
            except Exception as exc:  # noqa: BLE001 - any compiler failure falls back to eager
                self._fall_back(exc)
        elif self.mode == "cudagraph":
            try:
                with torch.inference_mode():  # the static buffers are inference tensors
                    return self._replay(args)
            except Exception as exc:  # noqa: BLE001 - any capture failure falls back to eager
                self._fall_back(exc)
        return self.fn(*args)

    def _replay(self, args: tuple) -> torch.Tensor:
        flat = _flatten(args)
        device = flat[0].device
        key = (
            tuple((t.shape, t.dtype, t.device) for t in flat),
            torch.is_autocast_enabled(device.type),
            torch.get_autocast_dtype(device.type),
        )
        graph = self._graphs.get(key)
        if graph is None:
            if self._pool is None:
                self._pool = torch.cuda.graph_pool_handle()
            if len(self._graphs) >= _MAX_GRAPHS:
                self._graphs.popitem(last=False)
            graph = self._graphs[key] = _Graph(self.fn, args, self._pool)
        self._graphs.move_to_end(key)
        return graph(args)
