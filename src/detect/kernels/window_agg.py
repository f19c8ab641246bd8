"""Grouped window aggregation over integer-encoded keys: fixed windows and sliding windows.

Keys (source, destination pair, ...) are encoded to dense ``int64`` ids once, upstream
(:mod:`detect.anomaly.keys`); times are ``int64`` (any unit, the caller's); nulls are
excluded upstream. Everything here is exact integer work.

- :func:`fixed_window_agg`: per (group, fixed window ``ts // width``): event count, sum of
  a value column and the exact number of distinct values of a second id column. Without
  a distinct column and with at most ``max(2 n, 65536)`` (group, window) cells (the usual
  case: hosts x hours), one flat pass into dense per-cell arrays, no sort. Otherwise sort
  based: (group, window, value) is packed into one ``int64`` when it fits (it nearly
  always does) and radix argsorted (numpy's sort beyond 44 bits); one flat numba pass
  then counts runs.
- :func:`sliding_window_stats`: for every event of input sorted by (group, ts), the count,
  sum and number of distinct values among its group's events in ``(ts - width, ts]``
  (events tied with ``ts`` included, whichever side of it they sit). Two pointers and a
  per-value counter array: O(n) after the sort.
- :func:`group_ts_order`: the (group, ts) order the sliding kernel needs.
- :func:`interarrival_stats`: per group of sorted input, count and min / mean / max of the
  gaps between consecutive timestamps.
- :func:`ewma_zscores`: per (group, closed window) observations against an exponentially
  weighted mean / variance carried per group, with the empty windows in between folded in
  as zeros (the volume detector's baseline).

Examples
--------
>>> import numpy as np
>>> g = np.array([0, 0, 0, 1]); ts = np.array([0, 5, 12, 3]); port = np.array([1, 2, 1, 7])
>>> a = fixed_window_agg(g, ts, 10, values=np.array([1, 2, 3, 4]), distinct=port)
>>> a.group.tolist(), a.window.tolist(), a.count.tolist(), a.sum.tolist(), a.distinct.tolist()
([0, 0, 1], [0, 1, 0], [2, 1, 1], [3, 3, 4], [2, 1, 1])
>>> s = sliding_window_stats(g, ts, 10, distinct=port)
>>> s.count.tolist(), s.distinct.tolist()
([1, 2, 2, 1], [1, 2, 2, 1])
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from detect.kernels._jit import njit
from detect.kernels.sort_keys import radix_argsort

__all__ = [
    "EwmaOut",
    "FixedAgg",
    "GapStats",
    "SlidingStats",
    "ewma_zscores",
    "fixed_window_agg",
    "group_min_max_sum",
    "group_ts_order",
    "interarrival_stats",
    "sliding_window_stats",
]

_I64_MAX = (1 << 63) - 1
_DENSE_MIN = 1 << 16  # cells a dense aggregation may always use


class FixedAgg(NamedTuple):
    """One row per non-empty (group, window), sorted by (group, window)."""

    group: np.ndarray  # int64
    window: np.ndarray  # int64, window index = ts // width
    count: np.ndarray  # int64
    sum: np.ndarray  # int64 (zeros when no values were given)
    distinct: np.ndarray  # int64 (zeros when no distinct column was given)
    first_ts: np.ndarray  # int64, earliest ts of the run (when ts is given)
    last_ts: np.ndarray  # int64


class SlidingStats(NamedTuple):
    """Per event (in the input order), over its group's events in ``(ts - width, ts]``."""

    count: np.ndarray  # int64
    sum: np.ndarray  # int64
    distinct: np.ndarray  # int64


class EwmaOut(NamedTuple):
    """Per observation: its z-score and the baseline it was compared with."""

    z: np.ndarray  # float64
    mean: np.ndarray  # float64
    var: np.ndarray  # float64
    history: np.ndarray  # int64, windows in the baseline


class GapStats(NamedTuple):
    """Per group present in sorted input: events and inter-arrival gaps."""

    group: np.ndarray  # int64
    count: np.ndarray  # int64, events
    min_gap: np.ndarray  # int64 (0 with fewer than two events)
    max_gap: np.ndarray  # int64
    mean_gap: np.ndarray  # float64 (nan with fewer than two events)


def _bits(n: int) -> int:
    return max(int(n - 1).bit_length(), 0) if n > 1 else 0


def _as_i64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int64)


# --------------------------------------------------------------------------- dense groups


@njit
def _group_reduce(gid, m, first, last, count):
    rep = np.full(m, -1, dtype=np.int64)
    lo = np.zeros(m, dtype=np.int64)
    hi = np.zeros(m, dtype=np.int64)
    total = np.zeros(m, dtype=np.int64)
    for i in range(gid.shape[0]):
        g = gid[i]
        if rep[g] < 0:
            rep[g] = i
            lo[g] = first[i]
            hi[g] = last[i]
        else:
            lo[g] = min(lo[g], first[i])
            hi[g] = max(hi[g], last[i])
        total[g] += count[i]
    return rep, lo, hi, total


def group_min_max_sum(
    gid: np.ndarray, m: int, first: np.ndarray, last: np.ndarray, count: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per dense group id ``0 .. m-1`` (every id present): the first row carrying it, the
    min of ``first``, the max of ``last`` and the sum of ``count``, in one pass.

    >>> r = group_min_max_sum(np.array([1, 0, 1]), 2, np.array([5, 2, 3]),
    ...                       np.array([5, 2, 9]), np.array([1, 1, 2]))
    >>> [a.tolist() for a in r]
    [[1, 0], [2, 3], [2, 9], [1, 3]]
    """
    return _group_reduce(_as_i64(gid), int(m), _as_i64(first), _as_i64(last), _as_i64(count))


# --------------------------------------------------------------------------- fixed windows


@njit
def _runs_packed(packed, shift, ts_sorted, has_ts):
    """Runs of ``packed >> shift`` in sorted packed keys: start, count, distinct low parts."""
    n = packed.shape[0]
    starts = np.empty(n, np.int64)
    counts = np.empty(n, np.int64)
    distinct = np.empty(n, np.int64)
    first_ts = np.empty(n, np.int64)
    last_ts = np.empty(n, np.int64)
    r = -1
    for i in range(n):
        k = packed[i]
        if i == 0 or (k >> shift) != (packed[i - 1] >> shift):
            r += 1
            starts[r] = i
            counts[r] = 0
            distinct[r] = 0
            if has_ts:
                first_ts[r] = ts_sorted[i]
                last_ts[r] = ts_sorted[i]
        counts[r] += 1
        if i == 0 or k != packed[i - 1]:
            distinct[r] += 1
        if has_ts:
            t = ts_sorted[i]
            first_ts[r] = min(first_ts[r], t)
            last_ts[r] = max(last_ts[r], t)
    m = r + 1
    return starts[:m], counts[:m], distinct[:m], first_ts[:m], last_ts[:m]


@njit
def _dense_agg(comp, ts, values, has_values, ncells):
    """Per cell id of ``comp`` (below ``ncells``): count, sum, min / max ts; present cells."""
    counts = np.zeros(ncells, np.int64)
    sums = np.zeros(ncells, np.int64)
    first = np.zeros(ncells, np.int64)
    last = np.zeros(ncells, np.int64)
    for i in range(comp.shape[0]):
        c = comp[i]
        t = ts[i]
        if counts[c] == 0:
            first[c] = t
            last[c] = t
        else:
            first[c] = min(first[c], t)
            last[c] = max(last[c], t)
        counts[c] += 1
        if has_values:
            sums[c] += values[i]
    m = 0
    for c in range(ncells):
        if counts[c]:
            m += 1
    cells = np.empty(m, np.int64)
    j = 0
    for c in range(ncells):
        if counts[c]:
            cells[j] = c
            j += 1
    return cells, counts[cells], sums[cells], first[cells], last[cells]


@njit
def _runs_sum(packed, shift, values_sorted):
    """Per run of ``packed >> shift``: sum of ``values_sorted``."""
    n = packed.shape[0]
    sums = np.empty(n, np.int64)
    r = -1
    for i in range(n):
        if i == 0 or (packed[i] >> shift) != (packed[i - 1] >> shift):
            r += 1
            sums[r] = 0
        sums[r] += values_sorted[i]
    return sums[: r + 1]


def fixed_window_agg(
    group: np.ndarray,
    ts: np.ndarray,
    width: int,
    *,
    values: np.ndarray | None = None,
    distinct: np.ndarray | None = None,
) -> FixedAgg:
    """Count / sum / exact distinct count per (group, ``ts // width``); see module docstring.

    ``group`` and ``distinct`` are non-negative integer ids (dense is best); ``values`` are
    summed as ``int64``. The input needs no particular order.
    """
    group = _as_i64(group)
    ts = _as_i64(ts)
    n = group.shape[0]
    if width <= 0:
        msg = f"width must be positive, got {width}"
        raise ValueError(msg)
    if n == 0:
        z = np.zeros(0, np.int64)
        return FixedAgg(z, z, z, z, z, z, z)
    win = ts // width
    wmin = int(win.min())
    nwin = int(win.max()) - wmin + 1
    ngroup = int(group.max()) + 1
    comp = group * nwin + (win - wmin) if ngroup * nwin < _I64_MAX else None
    if comp is None:  # astronomically sparse: densify (group, window) first
        _, comp = np.unique(np.stack([group, win]), axis=1, return_inverse=True)
        comp = comp.astype(np.int64).reshape(-1)
    if distinct is None and ngroup * nwin <= max(2 * n, _DENSE_MIN):
        # few (group, window) cells: aggregate into dense per-cell arrays, no sort at all
        vals = _as_i64(values) if values is not None else group
        cells, counts, sums, first_ts, last_ts = _dense_agg(
            comp, ts, vals, values is not None, ngroup * nwin
        )
        z = np.zeros(cells.shape[0], np.int64)
        return FixedAgg(cells // nwin, cells % nwin + wmin, counts, sums, z, first_ts, last_ts)
    dshift = 0
    if distinct is not None:
        d = _as_i64(distinct)
        ncomp = int(comp.max()) + 1
        nd = int(d.max()) + 1 if n else 1
        dshift = _bits(nd)
        if dshift and ncomp >= (1 << (62 - dshift)):
            _, d = np.unique(d, return_inverse=True)
            d = d.astype(np.int64).reshape(-1)
            dshift = _bits(int(d.max()) + 1)
        if ncomp >= (1 << (62 - dshift)):
            _, comp = np.unique(comp, return_inverse=True)
            comp = comp.astype(np.int64).reshape(-1)
        packed = (comp << dshift) | d
    else:
        packed = comp
    # One sort; ts (for first / last seen) and values need the permutation, counts do not.
    nbits = _bits(int(packed.max()) + 1)
    order = radix_argsort(packed, nbits) if nbits <= 44 else np.argsort(packed, kind="stable")
    packed_s = packed[order]
    ts_s = ts[order]
    starts, counts, dist, first_ts, last_ts = _runs_packed(packed_s, dshift, ts_s, True)
    sums = (
        _runs_sum(packed_s, dshift, _as_i64(values)[order])
        if values is not None
        else np.zeros(starts.shape[0], np.int64)
    )
    if distinct is None:
        dist = np.zeros(starts.shape[0], np.int64)
    rows = order[starts]
    return FixedAgg(group[rows], win[rows], counts, sums, dist, first_ts, last_ts)


@njit
def _radix_sort(keys, nbits):
    """LSD radix sort of non-negative int64 keys below ``2**nbits``, 11-bit digits."""
    n = keys.shape[0]
    a = keys.copy()
    b = np.empty_like(a)
    counts = np.empty(2048, np.int64)
    shift = 0
    while shift < nbits:
        counts[:] = 0
        for i in range(n):
            counts[(a[i] >> shift) & 2047] += 1
        total = 0
        for d in range(2048):
            c = counts[d]
            counts[d] = total
            total += c
        for i in range(n):
            d = (a[i] >> shift) & 2047
            b[counts[d]] = a[i]
            counts[d] += 1
        a, b = b, a
        shift += 11
    return a


def fixed_window_distinct_count(
    group: np.ndarray, ts: np.ndarray, width: int, distinct: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fast path of :func:`fixed_window_agg` for distinct counts only: sort keys, no argsort.

    The packed keys are radix sorted (at most 4 passes of 11 bits) when they fit in 44 bits.

    Returns ``(group, window, distinct)`` per non-empty (group, window), sorted.
    """
    group = _as_i64(group)
    ts = _as_i64(ts)
    d = _as_i64(distinct)
    if group.shape[0] == 0:
        z = np.zeros(0, np.int64)
        return z, z, z
    win = ts // width
    wmin = int(win.min())
    nwin = int(win.max()) - wmin + 1
    dshift = _bits(int(d.max()) + 1)
    ngroup = int(group.max()) + 1
    if ngroup * nwin >= (1 << (62 - dshift)):
        a = fixed_window_agg(group, ts, width, distinct=d)
        return a.group, a.window, a.distinct
    packed = ((group * nwin + (win - wmin)) << dshift) | d
    nbits = _bits(ngroup * nwin) + dshift
    # LSD radix sort (11-bit digits) while it needs few passes, else numpy's sort
    packed = _radix_sort(packed, nbits) if nbits <= 44 else np.sort(packed)
    _starts, _counts, dist, _f, _l = _runs_packed(packed, dshift, packed, False)
    comp = packed[_starts] >> dshift
    return comp // nwin, comp % nwin + wmin, dist


# --------------------------------------------------------------------------- sliding windows


def group_ts_order(group: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Stable permutation sorting rows by (group, ts)."""
    group = _as_i64(group)
    ts = _as_i64(ts)
    n = group.shape[0]
    if n == 0:
        return np.zeros(0, np.int64)
    tmin = int(ts.min())
    tbits = _bits(int(ts.max()) - tmin + 1)
    if (int(group.max()) + 1) < (1 << (62 - tbits)):
        return np.argsort((group << tbits) | (ts - tmin), kind="stable")
    return np.lexsort((ts, group))


@njit
def _is_sorted_group_ts(group, ts):
    for i in range(1, group.shape[0]):
        if group[i] < group[i - 1] or (group[i] == group[i - 1] and ts[i] < ts[i - 1]):
            return False
    return True


@njit
def _sliding(group, ts, width, values, has_values, dist, n_dist, has_dist):
    n = group.shape[0]
    out_count = np.empty(n, np.int64)
    out_sum = np.empty(n, np.int64)
    out_dist = np.empty(n, np.int64)
    counters = np.zeros(n_dist if has_dist else 1, np.int64)
    left = 0
    hi = 0
    cnt = 0
    total = 0
    nd = 0
    for i in range(n):
        g = group[i]
        if i == 0 or g != group[i - 1]:
            if has_dist:
                for j in range(left, hi):
                    counters[dist[j]] = 0
            left = i
            hi = i
            cnt = 0
            total = 0
            nd = 0
        t = ts[i]
        while hi < n and group[hi] == g and ts[hi] <= t:
            cnt += 1
            if has_values:
                total += values[hi]
            if has_dist:
                v = dist[hi]
                if counters[v] == 0:
                    nd += 1
                counters[v] += 1
            hi += 1
        lo_t = t - width
        while ts[left] <= lo_t:
            cnt -= 1
            if has_values:
                total -= values[left]
            if has_dist:
                v = dist[left]
                counters[v] -= 1
                if counters[v] == 0:
                    nd -= 1
            left += 1
        out_count[i] = cnt
        out_sum[i] = total
        out_dist[i] = nd
    return out_count, out_sum, out_dist


def sliding_window_stats(
    group: np.ndarray,
    ts: np.ndarray,
    width: int,
    *,
    values: np.ndarray | None = None,
    distinct: np.ndarray | None = None,
) -> SlidingStats:
    """Per event: count, sum and distinct values of its group within ``(ts - width, ts]``.

    The input must be sorted by (group, ts) (:func:`group_ts_order`); ``distinct`` holds
    non-negative ids, best dense (a counter array of ``max + 1`` entries is allocated).
    """
    group = _as_i64(group)
    ts = _as_i64(ts)
    n = group.shape[0]
    if width <= 0:
        msg = f"width must be positive, got {width}"
        raise ValueError(msg)
    if n == 0:
        z = np.zeros(0, np.int64)
        return SlidingStats(z, z, z)
    if not _is_sorted_group_ts(group, ts):
        msg = "sliding_window_stats needs input sorted by (group, ts); see group_ts_order"
        raise ValueError(msg)
    vals = _as_i64(values) if values is not None else np.zeros(1, np.int64)
    d = _as_i64(distinct) if distinct is not None else np.zeros(1, np.int64)
    nd = int(d.max()) + 1 if distinct is not None else 1
    c, s, k = _sliding(
        group, ts, np.int64(width), vals, values is not None, d, nd, distinct is not None
    )
    return SlidingStats(c, s, k)


# --------------------------------------------------------------------------- gaps


@njit
def _gaps(group, ts):
    n = group.shape[0]
    g_out = np.empty(n, np.int64)
    cnt = np.empty(n, np.int64)
    mn = np.empty(n, np.int64)
    mx = np.empty(n, np.int64)
    tot = np.empty(n, np.float64)
    r = -1
    for i in range(n):
        if i == 0 or group[i] != group[i - 1]:
            r += 1
            g_out[r] = group[i]
            cnt[r] = 0
            mn[r] = 0
            mx[r] = 0
            tot[r] = 0.0
        else:
            gap = ts[i] - ts[i - 1]
            if cnt[r] == 1 or gap < mn[r]:
                mn[r] = gap
            mx[r] = max(mx[r], gap)
            tot[r] += gap
        cnt[r] += 1
    m = r + 1
    mean = np.empty(m, np.float64)
    for j in range(m):
        mean[j] = tot[j] / (cnt[j] - 1) if cnt[j] > 1 else np.nan
    return g_out[:m], cnt[:m], mn[:m], mx[:m], mean


def interarrival_stats(group: np.ndarray, ts: np.ndarray) -> GapStats:
    """Per group of input sorted by (group, ts): events and min / max / mean gap."""
    group = _as_i64(group)
    ts = _as_i64(ts)
    if group.shape[0] == 0:
        z = np.zeros(0, np.int64)
        return GapStats(z, z, z, z, np.zeros(0, np.float64))
    if not _is_sorted_group_ts(group, ts):
        msg = "interarrival_stats needs input sorted by (group, ts)"
        raise ValueError(msg)
    return GapStats(*_gaps(group, ts))


# --------------------------------------------------------------------------- EWMA baselines


@njit
def _ewma(
    group,
    window,
    x,
    mean,
    var,
    n_seen,
    last,
    alpha,
    min_history,
    max_gap,
    z_min,
    x_min,
    x_always,
    z_out,
    m_out,
    v_out,
    h_out,
):
    n = group.shape[0]
    for i in range(n):
        g = group[i]
        w = window[i]
        if n_seen[g] > 0:
            gap = w - last[g] - 1
            if gap > max_gap:
                n_seen[g] = 0
            else:
                for _ in range(gap):
                    d = 0.0 - mean[g]
                    mean[g] = mean[g] + alpha * d
                    var[g] = (1.0 - alpha) * (var[g] + alpha * d * d)
                    n_seen[g] += 1
        last[g] = w
        m_out[i] = mean[g]
        v_out[i] = var[g]
        h_out[i] = n_seen[g]
        if n_seen[g] == 0:
            m_out[i] = 0.0
            v_out[i] = 0.0
            z_out[i] = np.nan
            if x[i] < x_always:  # one that fires whatever the baseline does not start it
                mean[g] = x[i]
                var[g] = 0.0
                n_seen[g] = 1
            continue
        z = np.nan
        if n_seen[g] >= min_history:
            d = x[i] - mean[g]
            if var[g] > 0.0:
                z = d / np.sqrt(var[g])
            elif d > 0.0:
                z = np.inf
            elif d < 0.0:
                z = -np.inf
            else:
                z = 0.0
        z_out[i] = z
        n_seen[g] += 1
        if (z >= z_min and x[i] >= x_min) or x[i] >= x_always:
            continue  # an outlier that fires is kept out of the baseline
        d = x[i] - mean[g]
        mean[g] = mean[g] + alpha * d
        var[g] = (1.0 - alpha) * (var[g] + alpha * d * d)


def ewma_zscores(
    group: np.ndarray,
    window: np.ndarray,
    x: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    n_seen: np.ndarray,
    last: np.ndarray,
    *,
    alpha: float,
    min_history: int,
    max_gap: int,
    z_min: float = np.inf,
    x_min: float = 0.0,
    x_always: float = np.inf,
) -> EwmaOut:
    """z-score of each observation against its group's EWMA baseline, updating it in place.

    Observations (``x`` per (group, window), sorted by group then window, windows strictly
    increasing per group) are compared with the baseline built from the group's earlier
    windows, the empty windows between them folded in as 0 (a gap of more than ``max_gap``
    windows restarts the baseline). Baseline arrays are indexed by group id and updated in
    place: ``mean``, ``var`` (float64), ``n_seen`` (windows folded in, int64; 0 = none yet)
    and ``last`` (last window seen, int64). The update is ``d = x - mean; mean += a*d;
    var = (1 - a)*(var + a*d*d)`` (West / Finch incremental EWMA variance). An observation
    that fires (``z >= z_min`` and ``x >= x_min``, or ``x >= x_always``: fires whatever the
    baseline) is not folded in, so an exfiltration does not raise the bar for the next one.
    Returns ``z`` (float64; nan before ``min_history`` windows; +-inf when the baseline
    variance is 0 and ``x`` differs from the mean) with the baseline each observation was
    compared with (mean, variance, windows in it).
    """
    n = group.shape[0]
    z = np.empty(n, np.float64)
    m_out, v_out, h_out = np.empty(n, np.float64), np.empty(n, np.float64), np.empty(n, np.int64)
    if group.shape[0]:
        _ewma(
            _as_i64(group),
            _as_i64(window),
            np.ascontiguousarray(x, np.float64),
            mean,
            var,
            n_seen,
            last,
            float(alpha),
            int(min_history),
            int(max_gap),
            float(z_min),
            float(x_min),
            float(x_always),
            z,
            m_out,
            v_out,
            h_out,
        )
    return EwmaOut(z, m_out, v_out, h_out)


@njit
def _sorted_runs_reduce(order, key_a, key_b, first, last, count):
    n = order.shape[0]
    starts = np.empty(n, np.int64)
    ga = np.empty(n, np.int64)
    gb = np.empty(n, np.int64)
    gf = np.empty(n, np.int64)
    gl = np.empty(n, np.int64)
    gc = np.empty(n, np.int64)
    m = -1
    pa_, pb = np.int64(0), np.int64(0)
    for j in range(n):
        i = order[j]
        a = key_a[i]
        b = key_b[i]
        if m < 0 or a != pa_ or b != pb:
            m += 1
            starts[m] = j
            ga[m] = a
            gb[m] = b
            gf[m] = first[i]
            gl[m] = last[i]
            gc[m] = count[i]
            pa_, pb = a, b
        else:
            gf[m] = min(gf[m], first[i])
            gl[m] = max(gl[m], last[i])
            gc[m] += count[i]
    m += 1
    return starts[:m], ga[:m], gb[:m], gf[:m], gl[:m], gc[:m]


def sorted_runs_reduce(
    order: np.ndarray,
    key_a: np.ndarray,
    key_b: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    count: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Runs of equal ``(key_a, key_b)`` along ``order`` (rows sorted by those keys), reduced
    in one pass: ``(starts, a, b, min first, max last, sum count)`` per run, ``starts``
    as positions in ``order``. The same as gathering each column by ``order`` and calling
    ``np.minimum.reduceat`` and friends, without the temporaries.

    >>> r = sorted_runs_reduce(np.array([2, 0, 1]), np.array([1, 1, 0]), np.array([5, 5, 5]),
    ...                        np.array([7, 3, 9]), np.array([8, 4, 9]), np.array([1, 2, 1]))
    >>> [x.tolist() for x in r]
    [[0, 1], [0, 1], [5, 5], [9, 3], [9, 8], [1, 3]]
    """
    return _sorted_runs_reduce(
        _as_i64(order), _as_i64(key_a), _as_i64(key_b), _as_i64(first), _as_i64(last),
        _as_i64(count),
    )  # fmt: skip


@njit
def _running_max_before(new_segment, values, out):
    reach = np.int64(0)
    for i in range(values.shape[0]):
        if new_segment[i]:
            out[i] = np.iinfo(np.int64).max  # nothing before the segment's first row
            reach = values[i]
        else:
            out[i] = reach
            reach = max(reach, values[i])


def running_max_before(new_segment: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row, the max of ``values`` over the earlier rows of its segment (rows grouped
    contiguously, ``new_segment`` true at each segment's first row, where the result is
    the int64 maximum). A sweep over intervals sorted by start uses it: a row starting
    after the running max end of the rows before it leaves a gap.

    >>> running_max_before(np.array([True, False, False, True]), np.array([5, 3, 9, 1])).tolist()
    [9223372036854775807, 5, 5, 9223372036854775807]
    """
    values = _as_i64(values)
    out = np.empty(values.shape[0], np.int64)
    _running_max_before(np.ascontiguousarray(new_segment, np.bool_), values, out)
    return out
