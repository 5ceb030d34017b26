"""Skill scores: the improvement of a forecast over a reference forecast (e.g. persistence, another model).

``skill = 1 - S / S_ref`` for a negatively oriented score S (lower is better) such as the CRPS: 1 is a perfect
forecast, 0 no better than the reference, negative worse. Average the scores first (over inits, space) and
then take the ratio: the ratio of means, not the mean of point-wise ratios, which explodes where S_ref ~ 0.
"""

from __future__ import annotations

import xarray as xr

from forecast.errors import ForecastError
from forecast.metrics.crps import crps_ensemble


def score_ratio(score: xr.DataArray, reference_score: xr.DataArray) -> xr.DataArray:
    """``score / reference_score`` of averaged scores (dims and coordinates must match: no silent broadcasting).

    1: as good as the reference; for a negatively oriented score below 1 is better. Against the oracle (the
    truth ensemble of a known-answer benchmark) it is the factor by which a forecast misses the best possible.
    NaN where the reference score is 0 (undefined: e.g. an oracle whose members all agree, as SM-MNIST's truth
    before its digits first bounce).
    """
    if set(score.dims) != set(reference_score.dims):
        raise ForecastError(
            f"score dims {score.dims} differ from the reference score's dims {reference_score.dims}"
        )
    try:
        score, reference_score = xr.align(score, reference_score, join="exact")
    except ValueError as exc:
        raise ForecastError(f"score and reference coordinates differ: {str(exc).splitlines()[0]}") from None
    return (score / reference_score.where(reference_score != 0)).assign_attrs(
        long_name="score ratio", units="1"
    )


def skill_score(score: xr.DataArray, reference_score: xr.DataArray) -> xr.DataArray:
    """``1 - score / reference_score`` (dims must match exactly: no silent broadcasting)."""
    return (1 - score_ratio(score, reference_score)).assign_attrs(long_name="skill score", units="1")


def crps_skill_score(
    obs: xr.DataArray,
    ens: xr.DataArray,
    reference: xr.DataArray,
    member_dim: str = "member",
    dim=None,
    fair: bool = False,
    skipna: bool = False,
) -> xr.DataArray:
    """CRPS skill score of ``ens`` against the ensemble ``reference`` (same dims; one member = deterministic).

    The CRPS of both is averaged over ``dim`` (default: every dim of ``obs``) before the ratio is taken.
    """
    dims = list(obs.dims) if dim is None else ([dim] if isinstance(dim, str) else list(dim))
    score = crps_ensemble(obs, ens, member_dim, fair=fair and ens.sizes.get(member_dim, 0) > 1, skipna=skipna)
    ref_fair = fair and reference.sizes.get(member_dim, 0) > 1
    ref = crps_ensemble(obs, reference, member_dim, fair=ref_fair, skipna=skipna)
    return skill_score(score.mean(dims, skipna=skipna), ref.mean(dims, skipna=skipna)).assign_attrs(
        long_name="CRPS skill score"
    )
