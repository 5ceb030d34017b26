"""Property-based tests (hypothesis) of the metrics against their definitions, on generated ensembles.

Inputs: ties (small integers), constant ensembles, one member, NaN with and without ``skipna``, infinities,
float16/32/64, the member axis at any position. References: the CRPS integral itself, evaluated exactly for
the step CDF of an ensemble; properscoring and scoringrules; the ranks counted by hand. Example counts are
stated per test (``max_examples``); the profiles of tests/conftest.py make the default run deterministic.
"""

import math

import numpy as np
import properscoring as ps
import pytest
import scoringrules as sr
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast.metrics import crps_ensemble, crps_ensemble_array, rank_and_pit, rank_histogram, spread_skill_ratio

DTYPES = [np.float16, np.float32, np.float64]
# small integers make ties between members and with the observation common; width=16 floats are exact in
# every dtype, so the reference sees the very values the metric sees
FINITE = st.one_of(st.integers(-3, 3).map(float), st.floats(-60, 60, width=16))
SPECIAL = st.sampled_from([np.nan, np.inf, -np.inf])


@st.composite
def ensembles(draw, specials: bool = False, max_members: int = 9, min_members: int = 1):
    """(obs, ens, axis): ``ens`` has the members along ``axis``, ``obs`` the other axes (1 or 2 of them)."""
    dtype = draw(st.sampled_from(DTYPES))
    m = draw(st.integers(min_members, max_members))
    shape = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=2)))
    n = math.prod(shape)
    element = st.one_of(FINITE, SPECIAL) if specials else FINITE
    rows = []
    for _ in range(n):
        row = draw(st.lists(element, min_size=m, max_size=m))
        if draw(st.integers(0, 3)) == 0:  # a constant ensemble at a quarter of the points
            row = [row[0]] * m
        rows.append(row)
    obs = np.array(draw(st.lists(element, min_size=n, max_size=n)), dtype=dtype).reshape(shape)
    axis = draw(st.integers(0, len(shape)))
    ens = np.moveaxis(np.array(rows, dtype=dtype).reshape(*shape, m), -1, axis)
    return obs, ens, axis


def crps_by_integral(y: float, members: list[float]) -> float:
    """``int (F(z) - 1{z >= y})^2 dz`` for the step CDF F of ``members``: exact, interval by interval."""
    m = len(members)
    knots = sorted(set(members) | {y})
    pieces = []
    for lo, hi in zip(knots[:-1], knots[1:]):  # F and the step are constant on [lo, hi)
        f = sum(x <= lo for x in members) / m
        pieces.append((f - (1.0 if lo >= y else 0.0)) ** 2 * (hi - lo))
    return math.fsum(pieces)


def expected_crps(y: float, members: list[float], fair: bool, skipna: bool) -> float:
    """The CRPS the documentation promises (crps_ensemble_array), point by point, in float64."""
    if skipna:
        members = [x for x in members if not math.isnan(x)]
    if math.isnan(y) or any(math.isnan(x) for x in members) or not members or (fair and len(members) < 2):
        return math.nan
    values = [y, *members]
    if any(math.isinf(v) for v in values):
        return 0.0 if all(x == y for x in members) else math.inf
    if not fair:
        return crps_by_integral(y, members)
    return float(sr.crps_ensemble(y, np.array(members), estimator="fair"))


def _points(obs, ens, axis):
    """float64 (obs, members) per point, in the row-major order of ``obs``."""
    members = np.moveaxis(ens, axis, -1).astype(np.float64).reshape(-1, ens.shape[axis])
    return list(zip(obs.astype(np.float64).ravel().tolist(), members.tolist()))


def _assert_close(got, want, dtype, scale):
    """float16/32 are scored in float32; the tolerance is relative to the values' magnitude."""
    tol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, equal_nan=True)


@settings(max_examples=200)
@given(ensembles(specials=True), st.booleans(), st.booleans())
def test_crps_is_the_integral_definition(case, fair, skipna):
    """Standard CRPS = the integral of (F - 1{z >= y})^2 on every generated point; fair CRPS = scoringrules'
    fair estimator; NaN, infinity and too-few-member points as documented; float16 is scored in float32."""
    obs, ens, axis = case
    got = crps_ensemble_array(obs, ens, axis=axis, fair=fair, skipna=skipna)
    assert got.shape == obs.shape
    assert got.dtype == (np.float64 if obs.dtype == np.float64 else np.float32)
    want = np.array([expected_crps(y, xs, fair, skipna) for y, xs in _points(obs, ens, axis)])
    finite = np.abs(np.concatenate([obs.ravel(), ens.ravel()]).astype(np.float64))
    scale = finite[np.isfinite(finite)].max(initial=1.0)
    _assert_close(got.ravel(), want, obs.dtype, scale)


@settings(max_examples=100)
@given(ensembles(min_members=2))
def test_fair_is_at_most_standard_and_equal_only_for_a_point_mass(case):
    obs, ens, axis = case
    standard = crps_ensemble_array(obs, ens, axis=axis).astype(np.float64)
    fair = crps_ensemble_array(obs, ens, axis=axis, fair=True).astype(np.float64)
    scale = np.abs(ens.astype(np.float64)).max(initial=1.0)
    tol = 1e-12 * scale if ens.dtype == np.float64 else 1e-5 * scale
    assert (fair <= standard + tol).all()
    spread = np.ptp(ens.astype(np.float64), axis=axis)
    # the gap is sum|xi - xj| / (2 m^2 (m - 1)) >= max|xi - xj| / m^3 (one pair at least): never zero unless
    # every member is the same
    m = ens.shape[axis]
    assert (standard - fair >= spread / m**3 - tol).all()


@settings(max_examples=100)
@given(ensembles(max_members=6), st.booleans())
def test_crps_of_a_point_mass_is_the_absolute_error(case, fair):
    obs, ens, axis = case
    point_mass = np.broadcast_to(np.expand_dims(np.take(ens, 0, axis=axis), axis), ens.shape)
    m = ens.shape[axis]
    got = crps_ensemble_array(obs, point_mass, axis=axis, fair=fair)
    error = np.abs(obs.astype(np.float64) - np.take(ens, 0, axis=axis).astype(np.float64))
    want = np.full(obs.shape, np.nan) if fair and m == 1 else error
    _assert_close(got, want, obs.dtype, np.abs(ens.astype(np.float64)).max(initial=1.0))


@settings(max_examples=60)
@given(ensembles(max_members=6))
def test_crps_matches_properscoring_and_scoringrules(case):
    obs, ens, axis = case
    obs64, ens64 = obs.astype(np.float64), np.moveaxis(ens.astype(np.float64), axis, -1)
    got = crps_ensemble_array(obs64, ens64)
    np.testing.assert_allclose(got, ps.crps_ensemble(obs64, ens64), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got, sr.crps_ensemble(obs64, ens64, estimator="qd"), rtol=1e-10, atol=1e-10)


@settings(max_examples=40)
@given(ensembles(specials=True), st.booleans(), st.integers(0, 2**31))
def test_crps_and_ranks_of_labelled_arrays_match_the_numpy_form(case, skipna, seed):
    """The xarray front end with the member dim at any position, dask-chunked or not, gives the numpy result."""
    obs, ens, axis = case
    dims = [f"d{i}" for i in range(obs.ndim)]
    obs_da = xr.DataArray(obs, dims=dims)
    ens_da = xr.DataArray(ens, dims=dims[:axis] + ["member"] + dims[axis:])
    want = crps_ensemble_array(obs, ens, axis=axis, skipna=skipna)
    np.testing.assert_array_equal(crps_ensemble(obs_da, ens_da, skipna=skipna).values, want)
    chunked = crps_ensemble(obs_da.chunk(1), ens_da.chunk(1), skipna=skipna)
    np.testing.assert_array_equal(chunked.values, want)
    # the tie-breaking draw is hashed from the point's position: chunking does not change a rank
    rank, _ = rank_and_pit(obs_da, ens_da, seed=seed, skipna=skipna)
    rank_chunked, _ = rank_and_pit(obs_da.chunk(1), ens_da.chunk(1), seed=seed, skipna=skipna)
    np.testing.assert_array_equal(rank.values, rank_chunked.values)


@settings(max_examples=120)
@given(ensembles(specials=True), st.booleans(), st.integers(0, 2**31))
def test_ranks_lie_among_the_tied_members_and_the_histogram_counts_every_case(case, skipna, seed):
    """Rank in [members below, members below + members tied]; PIT in the matching interval of [0, 1]; the
    histogram has m + 1 bins summing to the number of points with a rank (truth and all members present)."""
    obs, ens, axis = case
    dims = [f"d{i}" for i in range(obs.ndim)]
    obs_da = xr.DataArray(obs, dims=dims)
    ens_da = xr.DataArray(ens, dims=dims[:axis] + ["member"] + dims[axis:])
    rank, pit = rank_and_pit(obs_da, ens_da, seed=seed, skipna=skipna)
    m = ens.shape[axis]
    ranked = 0
    for (y, xs), r, p in zip(_points(obs, ens, axis), rank.values.ravel(), pit.values.ravel()):
        present = [x for x in xs if not math.isnan(x)]
        if math.isnan(y) or not present or (len(present) < m and not skipna):
            assert r == -1 and math.isnan(p)
            continue
        below = sum(x < y for x in present)
        tied = sum(x == y for x in present)
        k = len(present)
        assert below / (k + 1) <= p <= (below + tied + 1) / (k + 1)
        if k < m:  # members missing (skipna): a PIT, but no rank among m
            assert r == -1
        else:
            assert below <= r <= below + tied
            ranked += 1
    hist = rank_histogram(obs_da, ens_da, seed=seed, skipna=skipna)
    assert hist.sizes["rank"] == m + 1 and (hist.values >= 0).all()
    assert int(hist.sum()) == ranked
    np.testing.assert_array_equal(hist.values, np.bincount(rank.values[rank.values >= 0], minlength=m + 1))


@settings(max_examples=12)
@given(st.integers(1, 20), st.integers(0, 2**32 - 1), st.sampled_from([np.float32, np.float64]))
def test_spread_skill_of_exchangeable_draws_is_near_one(m, seed, dtype):
    """Truth and members drawn from the same distribution (its centre and width vary from point to point): the
    corrected ratio is 1 and the uncorrected one sqrt(m / (m + 1)). With 40,000 points the ratio's standard
    error is about 0.005 (0.0044-0.0052 measured over 40 seeds each at m = 2, 3, 8, 20), so the tolerance of
    0.04 is 8 standard errors: a failure is a bug, not bad luck, whatever the seed."""
    rng = np.random.default_rng(seed)
    n = 40_000
    centre, width = rng.normal(0, 5, n), rng.uniform(0.5, 2.0, n)
    draws = (centre[:, None] + width[:, None] * rng.standard_normal((n, m + 1))).astype(dtype)
    obs = xr.DataArray(draws[:, 0], dims="point")
    ens = xr.DataArray(draws[:, 1:], dims=("point", "member"))
    ratio = spread_skill_ratio(obs, ens).item()
    if m == 1:  # a one-member forecast states no spread
        assert ratio == 0.0
        return
    assert ratio == pytest.approx(1.0, abs=0.04)
    raw = spread_skill_ratio(obs, ens, finite_ensemble_correction=False).item()
    assert raw == pytest.approx(math.sqrt(m / (m + 1)), abs=0.04)
