"""Spread calibration: a factor on the ensemble's deviations from its mean, fitted on a validation store.

An ensemble ``x_1 .. x_m`` is widened (or narrowed) about its own mean, lead by lead::

    x_i' = mean(x) + k[V, lead] * (x_i - mean(x))

The ensemble mean, and with it the RMSE of the mean, is unchanged; the spread is multiplied by ``k``. So the
spread-skill ratio ``sqrt((m+1)/m) spread / RMSE`` is multiplied by ``k`` exactly, and the factor that makes it 1
on a set of forecasts is ``1 / ratio`` (``method="spread_skill"``, the default). ``method="fair_crps"`` chooses
the ``k`` with the lowest fair CRPS instead (for a Gaussian forecast the two coincide). ``pooling="lead"`` fits one
factor per variable and lead time; ``pooling="all"`` one per variable for every lead (fewer numbers to fit, so
less noise, when the error of the spread is the same at every lead).

This is post-processing of the output (ensemble inflation), not a change of the sampler: the calibrated frames are
written, not fed back into the model, so the calibrated forecast is exactly ``apply_dataset`` of the raw one with
the same seed.

Honest use. The factors are fitted on forecasts of a **validation store** (the same configuration simulated with
another noise seed: ``experiments/calibration.py --noise-seed``) and applied to the scored store's forecasts;
``check_validation_store`` refuses (one line) a forecast of the scored store itself, or of a store simulated with
the same configuration and noise seed (a copy of it). Nothing is fitted on the test group or the truth ensembles
that are scored.

A fitted calibration is a small JSON file (``CALIBRATION_FILE`` beside a run's checkpoints, or anywhere):
the factors, the method and pooling, and what it was fitted on. ``forecast.rollout.rollout(...,
spread_calibration=...)`` applies it to every init as it is generated and records it in the forecast file's
``spread_calibration`` attribute.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from forecast.atomic import atomic_output
from forecast.errors import ForecastError

#: the file name of a run's spread calibration (beside its checkpoints)
CALIBRATION_FILE = "spread_calibration.json"
#: what a factor is chosen for: a spread-skill ratio of 1, or the lowest fair CRPS
METHODS = ("spread_skill", "fair_crps")
#: one factor per variable and lead, or one per variable for every lead
POOLINGS = ("lead", "all")
#: the kept pooling (issue 31): factors fitted per lead on one validation store's 12 starts did not transfer to a
#: second store (VD: 12 of 16 leads in 0.9-1.1, against 16 with one factor; docs/results/calibration-levers.md)
DEFAULT_POOLING = "all"
#: the forecast file's attribute that records the calibration applied
ATTRIBUTE = "spread_calibration"
#: the range searched by ``method="fair_crps"``
FAIR_CRPS_BOUNDS = (0.2, 5.0)
FORMAT = "forecast spread calibration"


@dataclass(frozen=True)
class SpreadCalibration:
    """Factors ``k[V][lead - 1]`` on the deviations from the ensemble mean, and what they were fitted on."""

    factors: Mapping[str, tuple[float, ...]]
    method: str = "spread_skill"
    pooling: str = DEFAULT_POOLING
    fitted_on: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ForecastError(f"unknown spread calibration method {self.method!r}; choose one of {METHODS}")
        if self.pooling not in POOLINGS:
            raise ForecastError(
                f"unknown spread calibration pooling {self.pooling!r}; choose one of {POOLINGS}"
            )
        if not self.factors:
            raise ForecastError("a spread calibration needs factors for at least one variable")
        for var, values in self.factors.items():
            if not values or not all(
                isinstance(k, int | float) and math.isfinite(k) and k > 0 for k in values
            ):
                raise ForecastError(f"the spread factors of {var!r} must be positive numbers, got {values!r}")

    # ------------------------------------------------------------------ applying
    def lead_factors(self, variable: str, horizon: int) -> np.ndarray:
        """The factors of ``variable`` for leads 1..``horizon``; one line if it has none or too few."""
        if variable not in self.factors:
            raise ForecastError(
                f"the spread calibration has no factors for {variable!r} (it has {', '.join(self.factors)})"
            )
        values = self.factors[variable]
        if horizon > len(values):
            raise ForecastError(
                f"the spread calibration was fitted for {len(values)} leads; this forecast has {horizon}"
            )
        return np.asarray(values[:horizon], dtype=np.float32)

    def check(self, variables, horizon: int, members: int) -> None:
        """One line unless the calibration covers ``variables`` over ``horizon`` leads of ``members`` (>= 2)."""
        if members < 2:
            raise ForecastError("a spread calibration needs an ensemble of at least 2 members")
        for v in variables:
            self.lead_factors(v, horizon)

    def apply(self, fields: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The members of one init widened about their mean: ``fields[V]`` of shape (member, lead_time, ...)."""
        out = {}
        for var, values in fields.items():
            values = np.asarray(values)
            k = self.lead_factors(var, values.shape[1]).reshape((1, -1) + (1,) * (values.ndim - 2))
            mean = values.mean(axis=0, keepdims=True)
            out[var] = (mean + k * (values - mean)).astype(values.dtype, copy=False)
        return out

    def apply_dataset(self, forecast: xr.Dataset, member_dim: str = "member") -> xr.Dataset:
        """A forecast Dataset (``init, member, lead_time, ...``) with every variable calibrated; the result is
        what ``rollout`` writes with this calibration (to float rounding), with the attribute recorded."""
        from forecast.forecast_file import forecast_variables

        out = forecast.copy()
        for var in forecast_variables(forecast, member_dim):
            ens = forecast[var]
            k = xr.DataArray(self.lead_factors(var, ens.sizes["lead_time"]), dims="lead_time")
            mean = ens.mean(member_dim)
            out[var] = (
                (mean + k * (ens - mean)).transpose(*ens.dims).astype(ens.dtype).assign_attrs(ens.attrs)
            )
        out.attrs[ATTRIBUTE] = self.to_json()
        return out

    # ------------------------------------------------------------------ files
    def to_json(self) -> str:
        record = {"format": FORMAT, **asdict(self)}
        record["factors"] = {v: [float(k) for k in values] for v, values in self.factors.items()}
        return json.dumps(record, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "the spread calibration") -> SpreadCalibration:
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ForecastError(f"{source} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(record, dict) or record.get("format") != FORMAT or "factors" not in record:
            raise ForecastError(f"{source} is not a spread calibration (no format {FORMAT!r} and factors)")
        factors = record["factors"]
        if not isinstance(factors, dict) or not all(isinstance(v, list) for v in factors.values()):
            raise ForecastError(f"{source}: factors must map each variable to a list of numbers per lead")
        return cls(
            factors={str(v): tuple(values) for v, values in factors.items()},
            method=record.get("method", "spread_skill"),
            pooling=record.get("pooling", "lead"),
            fitted_on=record.get("fitted_on") or {},
        )

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        with atomic_output(path) as tmp:
            tmp.write_text(self.to_json() + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> SpreadCalibration:
        path = Path(path)
        if path.is_dir():
            path = path / CALIBRATION_FILE
        if not path.is_file():
            raise ForecastError(
                f"no spread calibration at {path}; fit one on a validation store (docs/guide/calibration.md)"
            )
        return cls.from_json(path.read_text(), source=str(path))

    @classmethod
    def of_attributes(cls, attrs: Mapping[str, Any]) -> SpreadCalibration | None:
        """The calibration recorded in a forecast file's (or settings') attributes; None if there is none."""
        text = attrs.get(ATTRIBUTE)
        return cls.from_json(str(text), f"the {ATTRIBUTE} attribute") if text else None


# --------------------------------------------------------------------------------------------------- fitting
def _moments(ens: xr.DataArray, obs: xr.DataArray, member_dim: str) -> tuple[np.ndarray, np.ndarray]:
    """Per lead: the mean unbiased member variance and the mean squared error of the ensemble mean."""
    rest = [d for d in obs.dims if d != "lead_time"]
    variance = ens.var(member_dim, ddof=1).mean(rest).transpose("lead_time")
    mse = ((ens.mean(member_dim) - obs) ** 2).mean(rest).transpose("lead_time")
    return variance.values.astype(np.float64), mse.values.astype(np.float64)


def _spread_skill_factors(ens, obs, member_dim: str, pooling: str) -> np.ndarray:
    m = ens.sizes[member_dim]
    variance, mse = _moments(ens, obs, member_dim)
    corrected = (m + 1) / m * variance
    if pooling == "all":
        return np.full(len(mse), math.sqrt(mse.sum() / corrected.sum()))
    return np.sqrt(mse / corrected)


def _fair_crps_factors(ens, obs, member_dim: str, pooling: str) -> np.ndarray:
    from scipy.optimize import minimize_scalar

    from forecast.metrics.crps import crps_ensemble_array

    order = [d for d in obs.dims if d != "lead_time"]
    x = ens.transpose("lead_time", *order, member_dim).values.astype(np.float64)
    y = obs.transpose("lead_time", *order).values.astype(np.float64)
    mean = x.mean(axis=-1, keepdims=True)

    def crps(k: float, lead: slice) -> float:
        widened = mean[lead] + k * (x[lead] - mean[lead])
        return float(np.mean(crps_ensemble_array(y[lead], widened, axis=-1, fair=True)))

    def best(lead: slice) -> float:
        return float(minimize_scalar(lambda k: crps(k, lead), bounds=FAIR_CRPS_BOUNDS, method="bounded").x)

    if pooling == "all":
        return np.full(x.shape[0], best(slice(None)))
    return np.array([best(slice(i, i + 1)) for i in range(x.shape[0])])


def fit_spread(
    forecast: xr.Dataset,
    method: str = "spread_skill",
    pooling: str = DEFAULT_POOLING,
    member_dim: str = "member",
    fitted_on: Mapping[str, Any] | None = None,
) -> SpreadCalibration:
    """Factors for every variable of ``forecast`` (a forecast Dataset: members and the verifying ``V_obs``)
    that make its spread-skill ratio 1 (``method="spread_skill"``) or its fair CRPS lowest (``"fair_crps"``),
    per lead (``pooling="lead"``) or one per variable (``"all"``). Fit it on a validation store's forecast only
    (``check_validation_store``). ``fitted_on`` is recorded with the factors (the forecast's own attributes:
    store, group, model, checkpoint, members, inits are added)."""
    from forecast.forecast_file import OBS_SUFFIX, forecast_variables

    if method not in METHODS:
        raise ForecastError(f"unknown spread calibration method {method!r}; choose one of {METHODS}")
    if pooling not in POOLINGS:
        raise ForecastError(f"unknown spread calibration pooling {pooling!r}; choose one of {POOLINGS}")
    if forecast.attrs.get(ATTRIBUTE):
        raise ForecastError("this forecast is already spread-calibrated: fit on an uncalibrated one")
    variables = forecast_variables(forecast, member_dim)
    m = forecast[variables[0]].sizes.get(member_dim, 1)
    if m < 2:
        raise ForecastError(f"a spread calibration needs an ensemble of at least 2 members; this one has {m}")
    fit = _spread_skill_factors if method == "spread_skill" else _fair_crps_factors
    factors = {}
    for v in variables:
        ens, obs = forecast[v].load(), forecast[f"{v}{OBS_SUFFIX}"].load()
        if not (np.isfinite(ens.values).all() and np.isfinite(obs.values).all()):
            raise ForecastError(
                f"the forecast of {v!r} or its verifying truth has NaN values: cannot fit on it"
            )
        k = fit(ens, obs, member_dim, pooling)
        if not np.isfinite(k).all() or (k <= 0).any():
            raise ForecastError(f"no finite positive spread factor for {v!r} (an ensemble without spread?)")
        factors[v] = tuple(float(f) for f in k)
    record = {
        key: forecast.attrs[key]
        for key in (
            "source_store",
            "source_group",
            "model",
            "checkpoint",
            "run_dir",
            "sampler",
            "sampling_steps",
        )
        if key in forecast.attrs
    }
    record.update(members=int(m), inits=int(forecast.sizes.get("init", 0)), **(fitted_on or {}))
    return SpreadCalibration(factors, method, pooling, {k: _plain(v) for k, v in record.items()})


def _plain(value):
    """A JSON-ready attribute value (numpy scalars to Python)."""
    return value.item() if isinstance(value, np.generic) else value


# --------------------------------------------------------------------------------------------------- honesty
def store_identity(store: str | os.PathLike) -> str | None:
    """What a simulated store was made with (its ``karman_config`` attribute: the configuration and noise
    seed), or None for a store without one (imported data)."""
    import zarr

    try:
        attrs = zarr.open_group(str(store), mode="r").attrs
    except Exception:  # noqa: BLE001 - a missing or unreadable store: compared by path only
        return None
    config = attrs.get("karman_config")
    return json.dumps(json.loads(config), sort_keys=True) if isinstance(config, str) else None


def check_validation_store(fit_store: str | os.PathLike, scored_store: str | os.PathLike) -> None:
    """One line (ForecastError) if ``fit_store`` is the scored store: the same path, or a store simulated with
    the same configuration and noise seed (the same frames). A validation store differs in its noise seed."""
    if Path(fit_store).resolve() == Path(scored_store).resolve():
        raise ForecastError(
            f"refusing to fit the spread on {fit_store}: it is the scored store (fit on a validation store, "
            "e.g. experiments/calibration.py --noise-seed 1)"
        )
    identity = store_identity(fit_store)
    if identity is not None and identity == store_identity(scored_store):
        raise ForecastError(
            f"refusing to fit the spread on {fit_store}: it was simulated with the scored store's configuration "
            f"and noise seed ({scored_store}), so its frames are the scored ones; use another --noise-seed"
        )


def fit_from_file(
    forecast_file: str | os.PathLike,
    scored_store: str | os.PathLike,
    method: str = "spread_skill",
    pooling: str = DEFAULT_POOLING,
) -> SpreadCalibration:
    """``fit_spread`` of a forecast file made on a validation store, after refusing (one line) one of
    ``scored_store`` (``check_validation_store``)."""
    from forecast.metrics import open_forecast

    forecast = open_forecast(forecast_file)
    try:
        store = forecast.attrs.get("source_store")
        if not store or store == "unknown":
            raise ForecastError(
                f"{forecast_file} does not name its store: cannot check it is not the scored one"
            )
        check_validation_store(store, scored_store)
        return fit_spread(forecast, method, pooling, fitted_on={"forecast_file": str(forecast_file)})
    finally:
        forecast.close()


def calibrate_file(
    forecast_file: str | os.PathLike, calibration: SpreadCalibration, out: str | os.PathLike, source: str = ""
) -> Path:
    """``out``: the uncalibrated ``forecast_file`` with ``calibration`` applied (``apply_dataset``), the same
    members a rollout with the calibration writes (the factors are not fed back into the model), with the
    calibration (and ``source``, its file) recorded in the attributes. Written atomically."""
    from forecast.metrics import open_forecast

    forecast = open_forecast(forecast_file)
    try:
        if forecast.attrs.get(ATTRIBUTE):
            raise ForecastError(f"{forecast_file} is already spread-calibrated")
        calibrated = calibration.apply_dataset(forecast.load())
    finally:
        forecast.close()
    calibrated.attrs["spread_calibration_file"] = source
    calibrated.attrs["history"] = "\n".join(
        filter(
            None, [str(calibrated.attrs.get("history", "")), f"spread calibration applied to {forecast_file}"]
        )
    )
    with atomic_output(out) as tmp:
        calibrated.to_netcdf(tmp)
    return Path(out)


__all__ = [
    "calibrate_file",
    "CALIBRATION_FILE",
    "METHODS",
    "POOLINGS",
    "SpreadCalibration",
    "check_validation_store",
    "fit_from_file",
    "fit_spread",
    "store_identity",
]
