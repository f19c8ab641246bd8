"""RITA v5 beacon statistics per group: one pass over rows grouped by (window, pair).

Implements DETECTORS.md d.1 (activecm/rita ``analysis/beacons.go``, montanaflynn/stats
``Quartile`` / ``MedianAbsoluteDeviation``) for every group at once:

- :func:`group_rows` (from :mod:`detect.kernels.sort_keys`) is a stable counting sort of
  the rows by a dense group id (ids come from the caller, encoded exactly outside the
  kernel);
- :func:`beacon_scores` walks the groups, sorts each group's timestamps and byte counts
  in scratch buffers and computes the eligibility, the timestamp / data-size /
  histogram / duration sub-scores, the beacon score and the bucketed threat score.

Timestamps are microseconds in, and are floored to whole seconds first: RITA keeps
connection times as ``uint32`` seconds, so unique-timestamp counts, intervals, the
Bowley guard (``Q3 - Q1 >= 10``) and the MAD-score guard (``median >= 1``) are in
seconds exactly as there.

Output columns are named by the ``F_*`` (float64 matrix) and ``I_*`` (int64 matrix)
constants; the 24 histogram counts follow ``I_HIST``.
"""

from __future__ import annotations

import math

import numpy as np

from detect.kernels._jit import njit
from detect.kernels.sort_keys import group_rows  # re-exported: the kernel's grouping

__all__ = [
    "F_COLUMNS",
    "I_COLUMNS",
    "beacon_scores",
    "group_rows",
]

US_PER_S = 1_000_000

# float64 outputs, one row per group
F_PERIOD = 0  # median of the sorted non-zero inter-arrival intervals (s)
F_JITTER = 1  # MAD of the same intervals (s)
F_TS_SKEW = 2  # Bowley skewness of the intervals (0 when guarded)
F_TS_MAD_SCORE = 3
F_TS_SCORE = 4
F_DS_MEDIAN = 5  # median originator bytes
F_DS_MAD = 6
F_DS_SKEW = 7
F_DS_MAD_SCORE = 8
F_DS_SCORE = 9
F_HIST_CV_SCORE = 10
F_HIST_BIMODAL_SCORE = 11
F_HIST_SCORE = 12
F_DUR_COVERAGE = 13
F_DUR_CONSISTENCY = 14
F_DUR_SCORE = 15
F_SCORE = 16  # beacon score
F_THREAT = 17  # bucketed threat score B(100 * score; 50, 70, 90, 100)
N_F = 18
F_COLUMNS = (
    "period_s", "jitter_s", "ts_skew", "ts_mad_score", "ts_score",
    "ds_median_bytes", "ds_mad_bytes", "ds_skew", "ds_mad_score", "ds_score",
    "hist_cv_score", "hist_bimodal_score", "hist_score",
    "dur_coverage", "dur_consistency", "dur_score", "score", "threat_score",
)  # fmt: skip

# int64 outputs, one row per group
I_ELIGIBLE = 0  # 1 when scored (>= 4 unique timestamps, fewer than the strobe threshold)
I_COUNT = 1  # connections
I_UNIQUE = 2  # unique timestamps (whole seconds)
I_FIRST_US = 3  # first / last connection time (microseconds)
I_LAST_US = 4
I_TOTAL_BARS = 5  # non-empty histogram bins
I_LONGEST_RUN = 6  # longest run of non-empty bins, wrapping, capped at the bin count
I_HIST = 7  # then ``bins`` histogram counts
I_COLUMNS = ("eligible", "count", "unique", "first_us", "last_us", "total_bars", "longest_run")


@njit
def _sort(a: np.ndarray, n: int) -> None:
    """Sort ``a[:n]`` in place: insertion sort for small or nearly sorted runs (the usual
    group: a few dozen rows, often already in time order), numba's sort above that."""
    if n > 64:
        a[:n].sort()
        return
    for i in range(1, n):
        v = a[i]
        j = i
        while j > 0 and a[j - 1] > v:
            a[j] = a[j - 1]
            j -= 1
        a[j] = v


@njit
def _round3(x: float) -> float:
    """Go ``math.Round(x*1000)/1000``: half away from zero (numpy rounds half to even)."""
    y = x * 1000.0
    t = math.trunc(y)
    if abs(y - t) >= 0.5:
        t += math.copysign(1.0, y)
    return t / 1000.0


@njit
def _ceil3(x: float) -> float:
    return math.ceil(x * 1000.0) / 1000.0


@njit
def _median(a: np.ndarray, lo: int, hi: int) -> float:
    """Median of sorted ``a[lo:hi]`` (montanaflynn: mean of the two middles when even)."""
    n = hi - lo
    m = lo + n // 2
    if n % 2 == 1:
        return a[m]
    return (a[m - 1] + a[m]) / 2.0


@njit
def _stat_score(a: np.ndarray, n: int, dev: np.ndarray, default_mad: float) -> tuple:
    """S(x, d) of sorted ``a[:n]`` (n >= 3): (score, bowley, mad, mad_score, median)."""
    half = n // 2
    if n % 2 == 0:
        q1 = _median(a, 0, half)
        q3 = _median(a, half, n)
    else:
        q1 = _median(a, 0, half)
        q3 = _median(a, half + 1, n)
    q2 = _median(a, 0, n)
    num = q1 + q3 - 2 * q2
    den = q3 - q1
    skew = 0.0
    if den >= 10 and q2 != q1 and q2 != q3:  # noqa: PLR1714 (numba: no tuple `in`)
        skew = num / den
    skew_score = 1.0 - abs(skew)
    # MAD: |a - q2| is two sorted runs (left of the median reversed, right of it);
    # merge them only up to the middle instead of sorting the deviations
    split = half
    while split > 0 and a[split - 1] >= q2:
        split -= 1
    while split < n and a[split] < q2:
        split += 1
    i = split - 1  # left run, walking down
    j = split  # right run, walking up
    for t in range(half + 1):
        if j >= n or (i >= 0 and q2 - a[i] <= a[j] - q2):
            dev[t] = q2 - a[i]
            i -= 1
        else:
            dev[t] = a[j] - q2
            j += 1
    mad = dev[half] if n % 2 == 1 else (dev[half - 1] + dev[half]) / 2.0
    mad_score = default_mad
    if q2 >= 1:
        mad_score = (q2 - mad) / q2
    if mad_score < 0 or math.isnan(mad_score):
        mad_score = 0.0
    return _round3((skew_score + mad_score) / 2.0), skew, mad, mad_score, q2


@njit
def beacon_scores(
    ts_us: np.ndarray,
    nbytes: np.ndarray,
    perm: np.ndarray,
    offsets: np.ndarray,
    win_start_s: np.ndarray,
    win_end_s: np.ndarray,
    bins: int,
    unique_threshold: int,
    strobe_threshold: int,
    mode_sensitivity: float,
    bimodal_outlier_removal: int,
    bimodal_min_hours: int,
    dur_min_hours: int,
    dur_ideal_hours: int,
    w_ts: float,
    w_ds: float,
    w_dur: float,
    w_hist: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Sub-scores of every group: ``(floats[G, N_F], ints[G, I_HIST + bins])``.

    ``ts_us`` / ``nbytes`` (int64 / float64) are the rows, ``perm`` / ``offsets`` as from
    :func:`group_rows`, ``win_start_s`` / ``win_end_s`` each group's window W in whole
    seconds (histogram range and coverage denominator). Ineligible groups have
    ``I_ELIGIBLE = 0`` and zero scores (their counts and first / last are still set).
    """
    n_groups = offsets.shape[0] - 1
    fo = np.zeros((n_groups, N_F), dtype=np.float64)
    io = np.zeros((n_groups, I_HIST + bins), dtype=np.int64)
    biggest = 0
    for g in range(n_groups):
        biggest = max(biggest, offsets[g + 1] - offsets[g])
    tsb = np.empty(biggest, dtype=np.int64)
    fa = np.empty(biggest, dtype=np.float64)
    dev = np.empty(biggest, dtype=np.float64)
    hist = np.zeros(bins, dtype=np.int64)
    bucket = np.zeros(bins, dtype=np.int64)
    if bimodal_min_hours < 6:
        bimodal_min_hours = 11
    for g in range(n_groups):
        lo = offsets[g]
        n = offsets[g + 1] - lo
        if n == 0:
            continue
        for i in range(n):
            tsb[i] = ts_us[perm[lo + i]]
        _sort(tsb, n)
        io[g, I_COUNT] = n
        io[g, I_FIRST_US] = tsb[0]
        io[g, I_LAST_US] = tsb[n - 1]
        # whole seconds (floor), as RITA's uint32 ts
        for i in range(n):
            tsb[i] = tsb[i] // US_PER_S  # floor division, as Python
        uniq = 1
        for i in range(1, n):
            if tsb[i] != tsb[i - 1]:
                uniq += 1
        io[g, I_UNIQUE] = uniq
        if uniq < unique_threshold or n >= strobe_threshold or uniq < 4:
            continue
        io[g, I_ELIGIBLE] = 1

        # timestamp score: sorted non-zero intervals
        m = 0
        for i in range(1, n):
            d = tsb[i] - tsb[i - 1]
            if d > 0:
                fa[m] = d
                m += 1
        _sort(fa, m)
        ts_score, ts_skew, ts_mad, ts_mad_score, ts_med = _stat_score(fa, m, dev, 1.0)
        fo[g, F_PERIOD] = ts_med
        fo[g, F_JITTER] = ts_mad
        fo[g, F_TS_SKEW] = ts_skew
        fo[g, F_TS_MAD_SCORE] = ts_mad_score
        fo[g, F_TS_SCORE] = ts_score

        # data-size score: originator bytes per connection
        for i in range(n):
            fa[i] = nbytes[perm[lo + i]]
        _sort(fa, n)
        ds_score, ds_skew, ds_mad, ds_mad_score, ds_med = _stat_score(fa, n, dev, 0.0)
        fo[g, F_DS_MEDIAN] = ds_med
        fo[g, F_DS_MAD] = ds_mad
        fo[g, F_DS_SKEW] = ds_skew
        fo[g, F_DS_MAD_SCORE] = ds_mad_score
        fo[g, F_DS_SCORE] = ds_score

        # histogram over W: RITA's walk over float bin edges (last edge = We)
        ws = win_start_s[g]
        we = win_end_s[g]
        step = float(we - ws) / float(bins)
        hist[:] = 0
        cur = 0
        next_edge = float(ws) + step if bins > 1 else float(we)
        for i in range(n):
            t = float(tsb[i])
            if t < next_edge:
                hist[cur] += 1
                continue
            for j in range(cur + 1, bins):
                cur = j
                next_edge = float(we) if j + 1 == bins else float(ws) + float(j + 1) * step
                if t < next_edge:
                    break
            hist[cur] += 1
        total_bars = 0
        largest = 0
        total = 0
        for k in range(bins):
            io[g, I_HIST + k] = hist[k]
            total += hist[k]
            if hist[k] > 0:
                total_bars += 1
            largest = max(largest, hist[k])
        # longest run of non-empty bins, scanning twice to wrap around
        longest = 0
        run = 0
        for i in range(2 * bins):
            if hist[i % bins] > 0:
                run += 1
            else:
                longest = max(longest, run)
                run = 0
        longest = min(max(longest, run), bins)
        io[g, I_TOTAL_BARS] = total_bars
        io[g, I_LONGEST_RUN] = longest
        # coefficient of variation over all bins (population std)
        mean = float(total) / float(bins)
        sd = 0.0
        for k in range(bins):
            sd += (float(hist[k]) - mean) * (float(hist[k]) - mean)
        cv = math.sqrt(sd / float(bins)) / abs(mean)
        cv_score = 0.0 if cv > 1.0 else min(1.0, _round3(1.0 - cv))
        # bimodal fit: bars grouped by height into buckets of ceil(max * sensitivity)
        bin_size = math.ceil(float(largest) * mode_sensitivity)
        nb = 0
        for k in range(bins):
            if hist[k] > 0:
                bucket[nb] = np.int64(math.floor(float(hist[k]) / bin_size) * bin_size)
                nb += 1
        c1 = 0
        c2 = 0
        for a in range(nb):
            first = True
            for b in range(a):
                if bucket[b] == bucket[a]:
                    first = False
                    break
            if not first:
                continue
            c = 0
            for b in range(a, nb):
                if bucket[b] == bucket[a]:
                    c += 1
            if c > c1:
                c2 = c1
                c1 = c
            elif c > c2:
                c2 = c
        fit = 0.0
        if total_bars >= bimodal_min_hours:
            fit = float(c1 + c2) / max(float(total_bars - bimodal_outlier_removal), 1.0)
        bimodal = min(1.0, _round3(fit))
        hist_score = max(cv_score, bimodal)
        fo[g, F_HIST_CV_SCORE] = cv_score
        fo[g, F_HIST_BIMODAL_SCORE] = bimodal
        fo[g, F_HIST_SCORE] = hist_score

        # duration score
        coverage = 0.0
        consistency = 0.0
        dur_score = 0.0
        if total_bars >= dur_min_hours:
            coverage = min(1.0, _ceil3(float(tsb[n - 1] - tsb[0]) / float(we - ws)))
            consistency = min(1.0, _ceil3(float(longest) / float(dur_ideal_hours)))
            dur_score = max(coverage, consistency)
        fo[g, F_DUR_COVERAGE] = coverage
        fo[g, F_DUR_CONSISTENCY] = consistency
        fo[g, F_DUR_SCORE] = dur_score

        score = _round3(ts_score * w_ts + ds_score * w_ds + dur_score * w_dur + hist_score * w_hist)
        fo[g, F_SCORE] = score
        # bucketed threat score, thresholds 50 / 70 / 90 / 100 in percent
        v = 100.0 * score
        threat = 0.0
        if v < 50.0:
            threat = 0.0
        elif v < 70.0:
            threat = (20.0 + (v - 50.0) / (70.0 - 50.0) * (40.0 - 20.0)) / 100.0
        elif v < 90.0:
            threat = (40.0 + (v - 70.0) / (90.0 - 70.0) * (60.0 - 40.0)) / 100.0
        else:
            threat = (60.0 + (min(v, 100.0) - 90.0) / (100.0 - 90.0) * (80.0 - 60.0)) / 100.0
        fo[g, F_THREAT] = threat
    return fo, io
