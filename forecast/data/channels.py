"""How the variables of a field store become model channels, and back.

A model sees one tensor ``(..., channel, y, x)`` of normalised values. ``ChannelLayout`` records which store
variable (and which of its channels, for RGB video) each model channel holds, together with the per-channel
mean and standard deviation computed on the ``train`` group. Training saves it in the run directory
(``normalization.json``); rollout uses the same layout to read context frames and to write forecasts back in
physical units, so the two can never disagree.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

import numpy as np
import xarray as xr

from forecast.errors import ForecastError
from forecast.field_store import reading


@dataclass(frozen=True)
class ChannelLayout:
    variables: tuple[str, ...]
    #: one entry per model channel: (variable, index along the variable's ``channel`` dim or None)
    channels: tuple[tuple[str, int | None], ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    height: int
    width: int
    attrs: dict[str, dict] = field(default_factory=dict)  # per-variable attributes (units, long_name)

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_dataset(cls, ds: xr.Dataset, variables: list[str] | tuple[str, ...]) -> ChannelLayout:
        """Build the layout and its statistics from a (train) dataset; statistics are computed lazily."""
        missing = [v for v in variables if v not in ds.data_vars]
        if missing:
            raise ForecastError(f"variables {missing} are not in the store (it has {sorted(ds.data_vars)})")
        channels: list[tuple[str, int | None]] = []
        means: list[float] = []
        stds: list[float] = []
        source = ds.encoding.get("source", "(in memory)")
        for var in variables:
            da = ds[var]
            with reading(source, var):  # a damaged chunk: one line naming the store and the variable
                if "channel" in da.dims:
                    reduce_dims = [d for d in da.dims if d != "channel"]
                    m = da.astype("float64").mean(reduce_dims, skipna=False).values
                    s = da.astype("float64").std(reduce_dims, skipna=False).values
                    for c in range(da.sizes["channel"]):
                        channels.append((var, c))
                        means.append(float(m[c]))
                        stds.append(float(s[c]))
                else:
                    channels.append((var, None))
                    means.append(float(da.astype("float64").mean(skipna=False).values))
                    stds.append(float(da.astype("float64").std(skipna=False).values))
        if not all(np.isfinite(means)) or not all(np.isfinite(stds)):
            raise ForecastError(
                f"variables {list(variables)} contain NaN or infinite values in the train group"
            )
        # A constant channel (std 0) is kept as it is rather than divided by zero.
        stds = [s if s > 0 else 1.0 for s in stds]
        attrs = {
            v: {k: ds[v].attrs[k] for k in ("units", "long_name") if k in ds[v].attrs} for v in variables
        }
        return cls(
            variables=tuple(variables),
            channels=tuple(channels),
            mean=tuple(means),
            std=tuple(stds),
            height=int(ds.sizes["y"]),
            width=int(ds.sizes["x"]),
            attrs=attrs,
        )

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    # ---------------------------------------------------------------- persistence
    def to_json(self, path: str | os.PathLike) -> None:
        with open(path, "w") as f:
            json.dump(asdict(self), f, indent=2)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> ChannelLayout:
        try:
            with open(path) as f:
                d = json.load(f)
            return cls(
                variables=tuple(d["variables"]),
                channels=tuple((v, c) for v, c in d["channels"]),
                mean=tuple(d["mean"]),
                std=tuple(d["std"]),
                height=int(d["height"]),
                width=int(d["width"]),
                attrs=d.get("attrs", {}),
            )
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise ForecastError(f"cannot read normalisation statistics {path}: {exc}") from None

    # ---------------------------------------------------------------- checks
    def check_compatible(self, ds: xr.Dataset, name: str = "store") -> None:
        """Refuse a dataset whose variables, channels or frame size differ from this layout's."""
        missing = [v for v in self.variables if v not in ds.data_vars]
        if missing:
            raise ForecastError(f"{name} lacks variables {missing} that the model was trained on")
        if (ds.sizes["y"], ds.sizes["x"]) != (self.height, self.width):
            raise ForecastError(
                f"{name} has frames of {ds.sizes['y']}x{ds.sizes['x']}, the model was trained on "
                f"{self.height}x{self.width}"
            )
        for var in self.variables:
            n_expected = sum(1 for v, _ in self.channels if v == var)
            has_channel = "channel" in ds[var].dims
            n_found = ds[var].sizes["channel"] if has_channel else 1
            if n_found != n_expected or has_channel != (self.channels_of(var)[0] is not None):
                raise ForecastError(
                    f"{name}: variable {var!r} has {n_found} channels, the model expects {n_expected}"
                )

    def channels_of(self, var: str) -> list[int | None]:
        return [c for v, c in self.channels if v == var]

    # ---------------------------------------------------------------- conversion
    def _stats(self, ndim: int) -> tuple[np.ndarray, np.ndarray]:
        shape = (self.n_channels,) + (1,) * 2
        mean = np.asarray(self.mean, dtype=np.float32).reshape(shape)
        std = np.asarray(self.std, dtype=np.float32).reshape(shape)
        return mean, std

    def stack(self, ds: xr.Dataset) -> np.ndarray:
        """Normalised float32 array ``(..., channel, y, x)`` from a dataset (selection) with the layout's variables.

        Leading dims are those of the variables less ``channel``/``y``/``x`` (e.g. ``sequence, time``).
        """
        parts = []
        for var, c in self.channels:
            da = ds[var]
            if c is not None:
                da = da.isel(channel=c)
            parts.append(np.asarray(da.values, dtype=np.float32))
        stacked = np.stack(parts, axis=-3)
        mean, std = self._stats(stacked.ndim)
        return (stacked - mean) / std

    def unstack(self, array: np.ndarray) -> dict[str, np.ndarray]:
        """Physical-unit arrays per variable from a normalised ``(..., channel, y, x)`` array.

        Variables with a ``channel`` dim come back as ``(..., channel, y, x)``, the others as ``(..., y, x)``.
        """
        if array.shape[-3] != self.n_channels:
            raise ForecastError(f"array has {array.shape[-3]} channels, the layout has {self.n_channels}")
        mean, std = self._stats(array.ndim)
        physical = np.asarray(array, dtype=np.float32) * std + mean
        out: dict[str, np.ndarray] = {}
        for var in self.variables:
            idx = [i for i, (v, _) in enumerate(self.channels) if v == var]
            if self.channels[idx[0]][1] is None:
                out[var] = physical[..., idx[0], :, :]
            else:
                out[var] = physical[..., idx, :, :]
        return out
