"""The scores file of docs/formats.md ("Scores file"), built from a forecast Dataset.

For each forecast variable V (averaged over ``init`` and, where present, ``channel``):

=========================  =====================  ==========================================================
variable                   dims                   meaning
=========================  =====================  ==========================================================
``crps_V``                 lead_time, y, x        CRPS per pixel and lead time
``crps_mean_V``            lead_time              the same averaged over space too
``rmse_V``                 lead_time              RMSE of the ensemble mean
``spread_V``               lead_time              ensemble spread (sqrt of the mean unbiased variance)
``spread_skill_V``         lead_time              sqrt((m+1)/m) spread / RMSE (1 = calibrated)
``rank_histogram_V``       lead_time, rank        counts of the truth's rank among the members
``pit_histogram_V``        lead_time, pit_bin     counts of the randomised PIT
``crps_reference_mean_V``  lead_time              (with a reference) the reference's ``crps_mean_V``
``crps_skill_V``           lead_time              (with a reference) 1 - crps_mean_V / crps_reference_mean_V
``ke_spectrum``            lead_time, wavenumber  (when u and v exist) members' kinetic-energy spectrum
``ke_spectrum_obs``        lead_time, wavenumber  the truth's
``divergence_rms``         lead_time              (when u and v exist) RMS divergence of the members
``divergence_rms_obs``     lead_time              the truth's
=========================  =====================  ==========================================================

Attributes name the estimator (``ensemble`` or ``fair``), the ensemble size, the model, the tie-breaking seed.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from forecast.errors import ForecastError
from forecast.metrics.calibration import (
    ensemble_mean_rmse,
    ensemble_spread,
    pit_histogram,
    rank_histogram,
)
from forecast.metrics.crps import crps_ensemble
from forecast.metrics.forecast_file import OBS_SUFFIX, forecast_variables, model_name
from forecast.metrics.physics import divergence, kinetic_energy_spectrum

SCORES_FILE_TYPE = "forecast scores"
_CHECK_PREFIX = "_check_"


def _mean_dims(da: xr.DataArray, keep: tuple[str, ...]) -> list[str]:
    return [d for d in da.dims if d not in keep]


def build_scores(
    ds: xr.Dataset,
    fair: bool = False,
    skipna: bool = False,
    seed: int = 0,
    pit_bins: int = 10,
    reference: xr.Dataset | None = None,
    member_dim: str = "member",
) -> xr.Dataset:
    """The scores of a forecast Dataset as a lazy Dataset (plus ``_check_*`` variables for score_forecast)."""
    names = forecast_variables(ds, member_dim)
    if reference is not None:
        missing = [v for v in names if v not in reference.data_vars or f"{v}{OBS_SUFFIX}" not in reference]
        if missing:
            raise ForecastError(f"the reference forecast lacks the variables {missing}")
    out = {}
    m = int(ds[names[0]].sizes[member_dim])
    for v in names:
        ens, obs = ds[v], ds[f"{v}{OBS_SUFFIX}"]
        if fair and ens.sizes[member_dim] < 2:
            raise ForecastError(
                f"forecast variable {v!r} has {ens.sizes[member_dim]} member; the fair CRPS needs >= 2 "
                "(a one-member, deterministic forecast is scored with the ensemble estimator: its absolute error)"
            )
        units = {"units": ens.attrs["units"]} if "units" in ens.attrs else {}
        crps = crps_ensemble(obs, ens, member_dim, fair=fair, skipna=skipna)
        crps_map = crps.mean(_mean_dims(crps, ("lead_time", "y", "x")), skipna=skipna)
        out[f"crps_{v}"] = crps_map.assign_attrs(long_name=f"CRPS of {v} per pixel and lead time", **units)
        out[f"crps_mean_{v}"] = crps_map.mean(["y", "x"], skipna=skipna).assign_attrs(
            long_name=f"CRPS of {v} per lead time", **units
        )
        per_lead = _mean_dims(obs, ("lead_time",))
        rmse = ensemble_mean_rmse(obs, ens, member_dim, per_lead, skipna)
        spread = ensemble_spread(ens, member_dim, per_lead, skipna)
        out[f"rmse_{v}"] = rmse.assign_attrs(long_name=f"RMSE of the ensemble mean of {v}")
        out[f"spread_{v}"] = spread.assign_attrs(long_name=f"ensemble spread of {v}")
        n = ens.sizes[member_dim]
        out[f"spread_skill_{v}"] = (np.sqrt((n + 1) / n) * spread / rmse).assign_attrs(
            long_name=f"spread-skill ratio of {v}", units="1", finite_ensemble_correction="sqrt((m+1)/m)"
        )
        rank_hist = rank_histogram(obs, ens, member_dim, per_lead, seed, skipna)
        out[f"rank_histogram_{v}"] = rank_hist.assign_attrs(long_name=f"rank histogram of {v}")
        pit_hist = pit_histogram(obs, ens, member_dim, per_lead, pit_bins, seed, skipna)
        out[f"pit_histogram_{v}"] = pit_hist.assign_attrs(long_name=f"PIT histogram of {v}")
        out[f"{_CHECK_PREFIX}nan_{v}"] = ens.isnull().sum() + obs.isnull().sum()
        if reference is not None:
            ref_ens, ref_obs = reference[v], reference[f"{v}{OBS_SUFFIX}"]
            if ref_obs.dims != obs.dims or ref_obs.shape != obs.shape:
                raise ForecastError(
                    f"the reference's {v}{OBS_SUFFIX} has dims {dict(ref_obs.sizes)}, the forecast's {dict(obs.sizes)}"
                )
            ref_fair = fair and ref_ens.sizes.get(member_dim, 0) > 1
            ref_crps = crps_ensemble(
                obs.drop_vars(list(obs.coords)),
                ref_ens.drop_vars(list(ref_ens.coords)),
                member_dim,
                fair=ref_fair,
                skipna=skipna,
            )
            ref_mean = ref_crps.mean(_mean_dims(ref_crps, ("lead_time",)), skipna=skipna)
            ref_mean = (
                ref_mean.assign_coords(lead_time=obs["lead_time"]) if "lead_time" in obs.coords else ref_mean
            )
            out[f"crps_reference_mean_{v}"] = ref_mean.assign_attrs(
                long_name=f"CRPS of the reference forecast of {v} per lead time", **units
            )
            out[f"crps_skill_{v}"] = (1 - out[f"crps_mean_{v}"] / ref_mean).assign_attrs(
                long_name=f"CRPS skill score of {v} against the reference", units="1"
            )
            difference = abs(obs.variable - ref_obs.variable).max() / (1 + abs(obs.variable).max())
            out[f"{_CHECK_PREFIX}reference_{v}"] = xr.DataArray(difference)
    if "u" in names and "v" in names and "channel" not in ds["u"].dims:
        out.update(_physics(ds, member_dim, skipna))
    scores = xr.Dataset(out)
    scores.attrs = {
        "file_type": SCORES_FILE_TYPE,
        "model_name": model_name(ds),
        "estimator": "fair" if fair else "ensemble",
        "estimator_description": (
            "fair (unbiased) ensemble CRPS, E|X-y| - sum|x_i-x_j| / (2m(m-1))"
            if fair
            else "ensemble (empirical CDF) CRPS, E|X-y| - sum|x_i-x_j| / (2m^2), as properscoring.crps_ensemble"
        ),
        "ensemble_size": m,
        "skipna": int(skipna),
        "rank_tie_break_seed": int(seed),
        "spread_skill_correction": "sqrt((m+1)/m)",
        "averaged_over": "init" + (", channel" if "channel" in ds[names[0]].dims else ""),
        "n_init": int(ds.sizes["init"]),
        # how figures orient the maps: video frames (with channels) have row 0 at the top
        "image_origin": "upper" if "channel" in ds[names[0]].dims else "lower",
    }
    if reference is not None:
        scores.attrs["reference_model_name"] = model_name(reference, "reference")
    return scores


def _physics(ds: xr.Dataset, member_dim: str, skipna: bool) -> dict[str, xr.DataArray]:
    u, v = ds["u"], ds["v"]
    u_obs, v_obs = ds[f"u{OBS_SUFFIX}"], ds[f"v{OBS_SUFFIX}"]
    spectrum = kinetic_energy_spectrum(u, v)
    spectrum_obs = kinetic_energy_spectrum(u_obs, v_obs)
    div = divergence(u, v)
    div_obs = divergence(u_obs, v_obs)
    return {
        "ke_spectrum": spectrum.mean(
            _mean_dims(spectrum, ("lead_time", "wavenumber")), skipna=skipna
        ).assign_attrs(spectrum.attrs, long_name="kinetic energy spectrum of the members"),
        "ke_spectrum_obs": spectrum_obs.mean(
            _mean_dims(spectrum_obs, ("lead_time", "wavenumber")), skipna=skipna
        ).assign_attrs(spectrum_obs.attrs, long_name="kinetic energy spectrum of the truth"),
        "divergence_rms": np.sqrt((div**2).mean(_mean_dims(div, ("lead_time",)), skipna=skipna)).assign_attrs(
            div.attrs, long_name="RMS velocity divergence of the members"
        ),
        "divergence_rms_obs": np.sqrt(
            (div_obs**2).mean(_mean_dims(div_obs, ("lead_time",)), skipna=skipna)
        ).assign_attrs(div_obs.attrs, long_name="RMS velocity divergence of the truth"),
    }


def score_forecast(
    ds: xr.Dataset,
    fair: bool = False,
    skipna: bool = False,
    seed: int = 0,
    pit_bins: int = 10,
    reference: xr.Dataset | None = None,
    member_dim: str = "member",
    progress: bool = False,
) -> xr.Dataset:
    """Compute the scores of a forecast Dataset in one pass over the data (streamed if it is dask-backed).

    Raises ForecastError on NaNs without ``skipna`` and on a reference verifying against another truth.
    """
    lazy = build_scores(ds, fair, skipna, seed, pit_bins, reference, member_dim)
    if progress:
        from forecast.metrics._progress import TqdmCallback

        with TqdmCallback(desc="scoring"):
            scores = lazy.compute()
    else:
        scores = lazy.compute()  # one dask graph: every score shares each chunk's read
    for name in [n for n in scores.data_vars if str(n).startswith(_CHECK_PREFIX)]:
        value = float(scores[name])
        check, var = str(name)[len(_CHECK_PREFIX) :].split("_", 1)
        if check == "nan" and value > 0 and not skipna:
            raise ForecastError(
                f"forecast variable {var!r} has {int(value)} missing values (NaN); pass skipna (--skipna) to score without them"
            )
        if check == "reference" and not value <= 1e-6:
            raise ForecastError(
                f"the reference forecast verifies {var!r} against a different truth (relative max difference {value:.3g})"
            )
    return scores.drop_vars([n for n in scores.data_vars if str(n).startswith(_CHECK_PREFIX)])
