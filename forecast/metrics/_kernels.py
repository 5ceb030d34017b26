"""Compiled per-point kernels (numba) behind the ensemble scores.

Every kernel works on a 3-D view ``ens[a, b, member]`` of any memory layout and a 2-D ``obs[a, b]``: the
callers collapse the loop dimensions without copying where the layout allows (see ``_kernel_views.py``). Points are
processed in small blocks whose members are first gathered into a contiguous scratch buffer, so the member axis
may have any stride (the forecast file stores ``member`` second, not last) and nothing of size m x m is formed.
The CRPS sorts the members of a whole block at once with a sorting network (O(m log^2 m) comparators, each a
vectorised min/max over the block), the fastest sort for ensemble sizes up to a few hundred.
Arithmetic is float64 inside; the output array's dtype decides the stored precision.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import njit

_BLOCK = 256  # points gathered at a time: 256 x m float64 stays in L1/L2 for the usual ensemble sizes
_INSERTION_MAX = 32  # insertion sort beats the library sort for short rows
NETWORK_MAX_MEMBERS = (
    4096  # measured: the network beats per-point sorting (and properscoring) up to m = 1000 at least
)


@njit(cache=True, nogil=True)
def _sort_prefix(row, k):
    """Sort ``row[:k]`` in place (insertion sort for short rows)."""
    if k <= _INSERTION_MAX:
        for j in range(1, k):
            v = row[j]
            i = j - 1
            while i >= 0 and row[i] > v:
                row[i + 1] = row[i]
                i -= 1
            row[i + 1] = v
    else:
        row[:k].sort()


@njit(cache=True, nogil=True)
def _gather(ens, a, b0, nb, buf):
    m = ens.shape[2]
    if ens.strides[2] <= ens.strides[1]:  # members adjacent in memory: read point by point
        for i in range(nb):
            for j in range(m):
                buf[i, j] = ens[a, b0 + i, j]
    else:  # member-major layout (the forecast file's): read each member's run of points
        for j in range(m):
            for i in range(nb):
                buf[i, j] = ens[a, b0 + i, j]


@functools.lru_cache(maxsize=64)
def sorting_network(m: int) -> np.ndarray:
    """Comparators ``(i, j)``, i < j, of Batcher's odd-even merge sort for ``m`` keys (``(n_comparators, 2)``).

    Built for the next power of two and restricted to indices below ``m``: the missing keys act as +inf,
    which never move, so the comparators touching them are no-ops. 63 comparators sort 16 keys, 1104 sort 100.
    """
    n = 1
    while n < m:
        n *= 2
    pairs = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return np.array([(a, b) for a, b in pairs if b < m], dtype=np.int64).reshape(-1, 2)


@njit(cache=True, nogil=True)
def _crps_sorted_row(row, k, fair):
    """CRPS from the members of one point, already centred on the observation and sorted: ``row[:k]``."""
    sum_abs = 0.0
    sum_weighted = 0.0
    for j in range(k):
        d = row[j]
        sum_abs += abs(d)
        sum_weighted += (2 * j - k + 1) * d
    if fair:
        return sum_abs / k - sum_weighted / (k * (k - 1.0))
    return sum_abs / k - sum_weighted / (k * np.float64(k))


@njit(cache=True, nogil=True)
def _crps_point_by_point(obs, ens, a, b0, nb, fair, skipna, row, out):
    """The careful path for a block with missing values: each point's members filtered and sorted alone."""
    m = ens.shape[2]
    for i in range(nb):
        y = np.float64(obs[a, b0 + i])
        k = 0
        missing = False
        infinite = np.isinf(y)
        all_equal_y = True  # every member equals y (only matters when y is infinite)
        for j in range(m):
            v = np.float64(ens[a, b0 + i, j])
            if np.isnan(v):
                missing = True
            else:
                infinite |= np.isinf(v)
                all_equal_y &= v == y
                row[k] = v - y
                k += 1
        if np.isnan(y) or (missing and not skipna) or k == 0 or (fair and k < 2):
            out[a, b0 + i] = np.nan
            continue
        if infinite:
            # int (F - 1{y <= z})^2 dz: an infinite member or observation leaves a step of height >= 1/k over
            # an infinite range, so the CRPS is +inf, unless y and every member are the same infinity (0).
            out[a, b0 + i] = 0.0 if all_equal_y else np.inf
            continue
        _sort_prefix(row, k)
        out[a, b0 + i] = _crps_sorted_row(row, k, fair)


@njit(cache=True, nogil=True)
def _sort_block(buf, network, nb):
    """Sort the columns ``buf[:, :nb]`` (member-major) by the comparators of ``network``: each compare-exchange is
    a vectorised min/max over the block's points."""
    for c in range(network.shape[0]):
        low = buf[network[c, 0]]
        high = buf[network[c, 1]]
        for i in range(nb):
            x, z = low[i], high[i]
            low[i] = x if x < z else z
            high[i] = z if x < z else x


@njit(cache=True, nogil=True)
def crps_kernel(obs, ens, network, fair, skipna, out, use_network=True):
    """CRPS of each point: ``mean|x_i - y| - c * sum_i (2i - m - 1) x_(i)`` over the sorted members.

    ``c = 1/m^2`` is the empirical-CDF (properscoring) estimator, ``c = 1/(m(m-1))`` the fair one; this is
    ``sum_ij |x_i - x_j| = 2 sum_i (2i - m - 1) x_(i)`` applied to members centred on the observation, which
    avoids cancellation when values are large compared with the spread. A block of points is gathered
    member-major (``buf[member, point]``) and sorted by the comparators of ``network`` applied to all its
    points at once: each compare-exchange is a vectorised min/max over contiguous memory, which is what makes
    this several times faster than sorting point by point. Blocks with missing or infinite values, and every
    block when ``use_network`` is off (very large ensembles, where O(m log m) per-point sorting wins), take the
    per-point path.
    """
    n_a, n_b, m = ens.shape
    buf = np.empty((m, _BLOCK), dtype=np.float64)
    row = np.empty(m, dtype=np.float64)
    sum_abs = np.empty(_BLOCK, dtype=np.float64)
    sum_weighted = np.empty(_BLOCK, dtype=np.float64)
    member_major = ens.strides[2] > ens.strides[1]
    # the fair score of a single member is undefined (NaN, on the per-point path): no division by m - 1 = 0
    scale = 1.0 / (m * (m - 1.0)) if fair and m > 1 else 1.0 / (m * np.float64(m))
    for a in range(n_a):
        for b0 in range(0, n_b, _BLOCK):
            nb = min(_BLOCK, n_b - b0)
            special = False  # a missing or infinite value somewhere in the block
            if member_major:  # the forecast file's layout: each member's points are contiguous
                for j in range(m):
                    for i in range(nb):
                        v = np.float64(ens[a, b0 + i, j]) - np.float64(obs[a, b0 + i])
                        special |= not np.isfinite(v)
                        buf[j, i] = v
            else:
                for i in range(nb):
                    y = np.float64(obs[a, b0 + i])
                    for j in range(m):
                        v = np.float64(ens[a, b0 + i, j]) - y
                        special |= not np.isfinite(v)
                        buf[j, i] = v
            if special or not use_network or (fair and m < 2):
                _crps_point_by_point(obs, ens, a, b0, nb, fair, skipna, row, out)
                continue
            _sort_block(buf, network, nb)
            for i in range(nb):
                sum_abs[i] = 0.0
                sum_weighted[i] = 0.0
            for j in range(m):
                weight = 2.0 * j - m + 1.0
                sorted_j = buf[j]
                for i in range(nb):
                    sum_abs[i] += abs(sorted_j[i])
                    sum_weighted[i] += weight * sorted_j[i]
            for i in range(nb):
                out[a, b0 + i] = sum_abs[i] / m - scale * sum_weighted[i]


@njit(cache=True, nogil=True)
def _uniform_hash(index, seed):
    """A uniform number in [0, 1) from (position, seed): splitmix64, so results do not depend on chunking."""
    z = np.uint64(index) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(0x632BE59BD9B4E019)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return np.float64(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, nogil=True)
def rank_kernel(obs, ens, index, seed, skipna, rank_out, pit_out):
    """Rank of the observation among the members and its randomised PIT value.

    With ``n_less`` members below and ``n_tie`` equal to the observation, a uniform ``u`` (hashed from the
    point's global index and the seed) gives ``pit = (n_less + u (n_tie + 1)) / (k + 1)`` and
    ``rank = floor(pit (k + 1))``: ties are broken uniformly at random, reproducibly. A point whose observation
    is missing, or that lacks members without ``skipna``, gets rank -1 and PIT NaN; with ``skipna`` a point
    that lacks members gets the PIT among the k members it has, but rank -1 (the histogram needs all m).
    """
    n_a, n_b, m = ens.shape
    buf = np.empty((_BLOCK, m), dtype=np.float64)
    for a in range(n_a):
        for b0 in range(0, n_b, _BLOCK):
            nb = min(_BLOCK, n_b - b0)
            _gather(ens, a, b0, nb, buf)
            for i in range(nb):
                y = np.float64(obs[a, b0 + i])
                k = 0
                n_less = 0
                n_tie = 0
                missing = False
                for j in range(m):
                    v = buf[i, j]
                    if np.isnan(v):
                        missing = True
                        continue
                    k += 1
                    if v < y:
                        n_less += 1
                    elif v == y:
                        n_tie += 1
                if np.isnan(y) or (missing and not skipna) or k == 0:
                    rank_out[a, b0 + i] = -1
                    pit_out[a, b0 + i] = np.nan
                    continue
                u = _uniform_hash(index[a, b0 + i], seed)
                pit = (n_less + u * (n_tie + 1.0)) / (k + 1.0)
                pit_out[a, b0 + i] = pit
                # A rank among fewer members would land in the wrong bin of an (m + 1)-bin histogram.
                rank_out[a, b0 + i] = -1 if missing else min(int(np.floor(pit * (k + 1.0))), k)


@njit(cache=True, nogil=True)
def _finite_sorted(values, skipna, row):
    """Copy ``values`` into ``row``, sorted; returns (count, missing, n_pos_inf, n_neg_inf)."""
    k = 0
    missing = False
    n_pos = 0
    n_neg = 0
    for j in range(values.shape[0]):
        v = np.float64(values[j])
        if np.isnan(v):
            missing = True
        elif np.isinf(v):
            if v > 0:
                n_pos += 1
            else:
                n_neg += 1
        else:
            row[k] = v
            k += 1
    _sort_prefix(row, k)
    return k, missing, n_pos, n_neg


@njit(cache=True, nogil=True)
def _mean_pair_distance(row, k):
    """``sum_{i != j} |x_i - x_j| / (k (k - 1))`` of sorted ``row[:k]`` (0 for a single, point-mass member)."""
    if k < 2:
        return 0.0
    total = 0.0
    for i in range(k):
        total += (2.0 * i - k + 1.0) * row[i]
    return 2.0 * total / (k * (k - 1.0))


@njit(cache=True, nogil=True)
def energy_distance_kernel(ens_a, ens_b, skipna, out):
    """Per point: ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` of the members of ``ens_a`` (N, m), ``ens_b`` (N, K).

    The within-ensemble terms are U-statistics (pairs i != j), so the estimate is unbiased for the distance
    between the two distributions (0 when they are equal, whatever m and K); a one-member ensemble is a
    point mass (its within term is 0). The cross term comes from a merge of the two sorted ensembles, O(m + K)
    after sorting. Missing values: NaN without ``skipna``, otherwise left out. Infinite members give +inf
    where the two ensembles put different fractions of their members at +inf or at -inf, NaN otherwise.
    """
    n, m = ens_a.shape
    k_b = ens_b.shape[1]
    x = np.empty(m, dtype=np.float64)
    y = np.empty(k_b, dtype=np.float64)
    for p in range(n):
        kx, miss_x, pos_x, neg_x = _finite_sorted(ens_a[p], skipna, x)
        ky, miss_y, pos_y, neg_y = _finite_sorted(ens_b[p], skipna, y)
        nx, ny = kx + pos_x + neg_x, ky + pos_y + neg_y
        if ((miss_x or miss_y) and not skipna) or nx == 0 or ny == 0:
            out[p] = np.nan
            continue
        if pos_x + neg_x + pos_y + neg_y > 0:
            differ = pos_x * ny != pos_y * nx or neg_x * ny != neg_y * nx
            out[p] = np.inf if differ else np.nan
            continue
        shift = x[0]  # the distance is shift-invariant: centring keeps precision for large values
        for i in range(kx):
            x[i] -= shift
        for i in range(ky):
            y[i] -= shift
        total_x = 0.0
        for i in range(kx):
            total_x += x[i]
        cross = 0.0
        below = 0  # members of x below y[j]
        below_sum = 0.0
        for j in range(ky):
            while below < kx and x[below] < y[j]:
                below_sum += x[below]
                below += 1
            cross += y[j] * below - below_sum + (total_x - below_sum) - y[j] * (kx - below)
        out[p] = 2.0 * cross / (kx * np.float64(ky)) - _mean_pair_distance(x, kx) - _mean_pair_distance(y, ky)


@njit(cache=True, nogil=True)
def _summary_point(obs, ens, i, l, p, fair, skipna, full, row):  # noqa: E741
    """The careful per-point path of ``summary_kernel`` (a block with a missing or infinite value).

    Returns (crps, ensemble-mean error, member variance, n_less, n_tie, k, missing, n_nan) with the conventions of
    ``crps_kernel``, ``xarray``'s ``mean``/``var(ddof=1)`` (NaN propagating without ``skipna``) and ``rank_kernel``.
    """
    m = ens.shape[1]
    y = np.float64(obs[i, l, p])
    k = 0
    n_less = 0
    n_tie = 0
    n_nan = 1 if np.isnan(y) else 0
    missing = False
    infinite = np.isinf(y)
    all_equal_y = True
    total = 0.0
    for j in range(m):
        v = np.float64(ens[i, j, l, p])
        if np.isnan(v):
            missing = True
            n_nan += 1
            continue
        infinite |= np.isinf(v)
        all_equal_y &= v == y
        if v < y:
            n_less += 1
        elif v == y:
            n_tie += 1
        row[k] = v
        total += v
        k += 1
    error = np.nan
    variance = np.nan
    if full:  # ensemble mean and unbiased variance, as xarray's mean / var(ddof=1) with or without skipna
        if not ((missing and not skipna) or k == 0):
            error = total / k - y
        if m == 1:
            variance = 0.0 * np.float64(ens[i, 0, l, p])  # a one-member forecast: 0, NaN where its value is
        elif not ((missing and not skipna) or k < 2):
            mean = total / k
            squares = 0.0
            for j in range(k):
                squares += (row[j] - mean) ** 2
            variance = squares / (k - 1.0)
    # the CRPS, as crps_kernel's per-point path
    if np.isnan(y) or (missing and not skipna) or k == 0 or (fair and k < 2):
        crps = np.nan
    elif infinite:
        crps = 0.0 if all_equal_y else np.inf
    else:
        for j in range(k):
            row[j] -= y
        _sort_prefix(row, k)
        crps = _crps_sorted_row(row, k, fair)
    return crps, error, variance, n_less, n_tie, k, missing, n_nan


@njit(cache=True, nogil=True)
def _add(total, count, index, value, skipna):
    """``total[index] += value`` and count it; with ``skipna`` a NaN is left out (xarray's ``mean(skipna)``)."""
    if skipna and np.isnan(value):
        return
    total[index] += value
    count[index] += 1


@njit(cache=True, nogil=True)
def summary_kernel(
    obs, ens, index, network, use_network, fair, skipna, full, seed,
    crps_sum, crps_count, error_sum, error_count, var_sum, var_count, rank_counts, pit_counts,
):  # fmt: skip
    """Every per-point score of an ensemble from one pass over its members, added into per-lead sums.

    ``obs[init, lead, point]``, ``ens[init, member, lead, point]`` (any strides; the forecast file's layout is
    contiguous along ``point``), ``index[init, lead, point]`` the point's row-major position in the whole
    observation (the rank tie-break's hash, as ``rank_kernel``). Per point, the members of a block of 256 points
    are gathered member-major and sorted once by the comparators of ``network``; the sorted members give the CRPS
    (``crps_kernel``'s formula, ``fair`` or not), the ensemble-mean error and the unbiased member variance, and the
    counts below/equal to the observation give the rank and randomised PIT (``rank_kernel``'s formulas). Added:

    - ``crps_sum, crps_count [lead, point]``: CRPS summed over inits;
    - ``error_sum, error_count [lead]``: squared ensemble-mean error; ``var_sum, var_count [lead]``: variance;
    - ``rank_counts [lead, m + 1]``, ``pit_counts [lead, bins]``: the histograms.

    ``full`` off: the CRPS only. ``use_network`` off (very large ensembles): every point sorted alone. With ``skipna`` NaN values are left out of every sum (counts say how many went
    in), as xarray's ``mean(skipna=True)``; without it they propagate. Blocks with a missing or infinite value
    take the per-point path (``_summary_point``). Returns the number of NaN values of ``obs`` and ``ens``.
    """
    n_init, m, n_lead, n_point = ens.shape
    bins = pit_counts.shape[1]
    buf = np.empty((m, _BLOCK), dtype=np.float64)
    row = np.empty(m, dtype=np.float64)
    acc_abs = np.empty(_BLOCK, dtype=np.float64)
    acc_weighted = np.empty(_BLOCK, dtype=np.float64)
    acc_sum = np.empty(_BLOCK, dtype=np.float64)
    n_less = np.empty(_BLOCK, dtype=np.int64)
    n_tie = np.empty(_BLOCK, dtype=np.int64)
    scale = 1.0 / (m * (m - 1.0)) if fair and m > 1 else 1.0 / (m * np.float64(m))
    n_nan = 0
    for i in range(n_init):
        for l in range(n_lead):  # noqa: E741
            for p0 in range(0, n_point, _BLOCK):
                nb = min(_BLOCK, n_point - p0)
                special = False
                for j in range(m):  # gathered member-major, centred on the observation
                    for q in range(nb):
                        d = np.float64(ens[i, j, l, p0 + q]) - np.float64(obs[i, l, p0 + q])
                        special |= not np.isfinite(d)
                        buf[j, q] = d
                if special or not use_network or (fair and m < 2):
                    for q in range(nb):
                        p = p0 + q
                        crps, error, variance, less, tie, k, missing, nan = _summary_point(
                            obs, ens, i, l, p, fair, skipna, full, row
                        )
                        n_nan += nan
                        _add(crps_sum[l], crps_count[l], p, crps, skipna)
                        if full:
                            _add(error_sum, error_count, l, error * error, skipna)
                            _add(var_sum, var_count, l, variance, skipna)
                            y = obs[i, l, p]
                            if np.isnan(y) or (missing and not skipna) or k == 0:
                                continue
                            _count_rank(
                                index[i, l, p], seed, less, tie, k, missing, l, rank_counts, pit_counts, bins
                            )
                    continue
                _sort_block(buf, network, nb)
                # every sum below is a loop over the block's points: vectorised, no branches
                for q in range(nb):
                    acc_abs[q] = 0.0
                    acc_weighted[q] = 0.0
                    acc_sum[q] = 0.0
                    n_less[q] = 0
                    n_tie[q] = 0
                for j in range(m):
                    weight = 2.0 * j - m + 1.0
                    sorted_j = buf[j]
                    for q in range(nb):
                        d = sorted_j[q]
                        acc_abs[q] += abs(d)
                        acc_weighted[q] += weight * d
                        acc_sum[q] += d
                        n_less[q] += d < 0
                        n_tie[q] += d == 0
                for q in range(nb):
                    crps_sum[l, p0 + q] += acc_abs[q] / m - scale * acc_weighted[q]
                    crps_count[l, p0 + q] += 1
                if not full:
                    continue
                for q in range(nb):  # the ensemble-mean error (of the centred members) and the variance
                    acc_sum[q] /= m
                    acc_abs[q] = 0.0
                if m > 1:
                    for j in range(m):
                        sorted_j = buf[j]
                        for q in range(nb):
                            acc_abs[q] += (sorted_j[q] - acc_sum[q]) ** 2
                error_total = 0.0
                var_total = 0.0
                for q in range(nb):
                    error_total += acc_sum[q] * acc_sum[q]
                    var_total += acc_abs[q]
                error_sum[l] += error_total
                error_count[l] += nb
                var_sum[l] += var_total / (m - 1.0) if m > 1 else 0.0
                var_count[l] += nb
                for q in range(nb):
                    _count_rank(
                        index[i, l, p0 + q],
                        seed,
                        n_less[q],
                        n_tie[q],
                        m,
                        False,
                        l,
                        rank_counts,
                        pit_counts,
                        bins,
                    )
    return n_nan


@njit(cache=True, nogil=True)
def _count_rank(position, seed, n_less, n_tie, k, missing, l, rank_counts, pit_counts, bins):  # noqa: E741
    """Add one point's rank and randomised PIT to the histograms of lead ``l`` (``rank_kernel``'s formulas)."""
    u = _uniform_hash(position, seed)
    pit = (n_less + u * (n_tie + 1.0)) / (k + 1.0)
    which = int(np.floor(pit * bins))
    pit_counts[l, min(max(which, 0), bins - 1)] += 1
    if not missing:  # a rank among fewer members would land in the wrong bin of an (m + 1)-bin histogram
        rank_counts[l, min(int(np.floor(pit * (k + 1.0))), k)] += 1


@njit(cache=True, nogil=True)
def divergence_square_kernel(u, v, dx, dy, skipna, total, count):
    """Per lead, the sum and count of ``(du/dx + dv/dy)^2`` over frames ``u[frame, lead, y, x]`` (and ``v``).

    The derivatives are ``numpy.gradient``'s for uniform spacing ``dx``, ``dy`` with ``edge_order=2``: centred
    differences inside, second-order one-sided at the edges (at least 3 points per axis). NaN is left out with
    ``skipna`` and propagates without it, as xarray's ``mean``.
    """
    n_frame, n_lead, ny, nx = u.shape
    for f in range(n_frame):
        for l in range(n_lead):  # noqa: E741
            for y in range(ny):
                for x in range(nx):
                    if x == 0:
                        du = (
                            (-1.5 / dx) * u[f, l, y, 0]
                            + (2.0 / dx) * u[f, l, y, 1]
                            + (-0.5 / dx) * u[f, l, y, 2]
                        )
                    elif x == nx - 1:
                        du = (
                            (0.5 / dx) * u[f, l, y, x - 2]
                            + (-2.0 / dx) * u[f, l, y, x - 1]
                            + (1.5 / dx) * u[f, l, y, x]
                        )
                    else:
                        du = (np.float64(u[f, l, y, x + 1]) - u[f, l, y, x - 1]) / (2.0 * dx)
                    if y == 0:
                        dv = (
                            (-1.5 / dy) * v[f, l, 0, x]
                            + (2.0 / dy) * v[f, l, 1, x]
                            + (-0.5 / dy) * v[f, l, 2, x]
                        )
                    elif y == ny - 1:
                        dv = (
                            (0.5 / dy) * v[f, l, y - 2, x]
                            + (-2.0 / dy) * v[f, l, y - 1, x]
                            + (1.5 / dy) * v[f, l, y, x]
                        )
                    else:
                        dv = (np.float64(v[f, l, y + 1, x]) - v[f, l, y - 1, x]) / (2.0 * dy)
                    d = du + dv
                    if skipna and np.isnan(d):
                        continue
                    total[l] += d * d
                    count[l] += 1
