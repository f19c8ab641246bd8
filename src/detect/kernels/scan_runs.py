"""Scan detector passes over rows sorted by (group, time), fused to avoid temporaries.

At 10M rows every numpy temporary is 80 MB of fresh pages; the scan detector built
about a dozen per kind (report window, closed mask, crossing mask, run breaks, a
reduceat) and spent more time there than in its sliding-window kernel. These loops
compute the same answers in one pass each.

- :func:`crossing_runs`: the (group, report window) runs of sorted rows that hold a
  crossing (distinct count over the threshold in a closed window);
- :func:`pair_window_counts`: failed / known connection counts of a few (source,
  window) pairs, over all rows.
"""

from __future__ import annotations

import numpy as np

from detect.kernels._jit import njit

__all__ = ["crossing_runs", "pair_window_counts"]


@njit
def crossing_runs(
    g: np.ndarray,
    ts: np.ndarray,
    distinct: np.ndarray,
    threshold: np.ndarray,
    report: int,
    wm: int,
    lo: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, ends)`` of the runs of equal ``(g, ts // report)`` that hold a crossing.

    Rows are sorted by ``g`` then ``ts``. A row crosses when its report window
    ``[w * report, (w + 1) * report)`` is closed (its end is ``<= wm`` and ``> lo``),
    its threshold is ``>= 0`` and ``distinct`` is above it. ``threshold`` holds one value
    per row, or a single value for all.
    """
    n = g.shape[0]
    one = threshold.shape[0] == 1
    starts = np.empty(16, np.int64)
    ends = np.empty(16, np.int64)
    k = 0
    a = 0
    while a < n:
        w = ts[a] // report
        end_w = (w + 1) * report
        closed = end_w <= wm and end_w > lo
        hit = False
        b = a
        while b < n and g[b] == g[a] and ts[b] < end_w:  # ts ascends within a group
            if closed and not hit:
                t = threshold[0] if one else threshold[b]
                if t >= 0 and distinct[b] > t:
                    hit = True
            b += 1
        if hit:
            if k == starts.shape[0]:
                starts = np.concatenate((starts, np.empty(k, np.int64)))
                ends = np.concatenate((ends, np.empty(k, np.int64)))
            starts[k] = a
            ends[k] = b
            k += 1
        a = b
    return starts[:k], ends[:k]


@njit
def pair_window_counts(
    codes: np.ndarray,
    ts: np.ndarray,
    report: int,
    failed: np.ndarray,
    known: np.ndarray,
    want_codes: np.ndarray,
    want_windows: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per wanted ``(code, window)`` pair: rows with ``failed`` and rows with ``known``.

    ``want_codes`` / ``want_windows`` are sorted by code then window (a few pairs: the
    findings'); one pass over the rows with a per-code index of the wanted windows.
    """
    m = want_codes.shape[0]
    f_out = np.zeros(m, np.int64)
    k_out = np.zeros(m, np.int64)
    if m == 0:
        return f_out, k_out
    top = 0
    for i in range(m):
        top = max(top, want_codes[i])
    first = np.full(top + 2, -1, np.int64)  # first wanted pair of each code
    for i in range(m - 1, -1, -1):
        first[want_codes[i]] = i
    for r in range(codes.shape[0]):
        c = codes[r]
        if c > top or first[c] < 0:
            continue
        w = ts[r] // report
        j = first[c]
        while j < m and want_codes[j] == c:
            if want_windows[j] == w:
                if known[r]:
                    k_out[j] += 1
                    if failed[r]:
                        f_out[j] += 1
                break
            j += 1
    return f_out, k_out
