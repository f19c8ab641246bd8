"""scan_runs kernels against plain-Python references."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from detect.kernels.scan_runs import crossing_runs, pair_window_counts

_ROWS = st.lists(
    st.tuples(st.integers(0, 3), st.integers(-50, 50), st.integers(0, 6), st.integers(-1, 4)),
    max_size=60,
)


@settings(deadline=None, max_examples=200)
@given(_ROWS, st.integers(1, 20), st.integers(-60, 60), st.integers(-60, 60), st.booleans())
def test_crossing_runs_matches_naive(rows, report, wm, lo, scalar):
    rows = sorted(rows, key=lambda r: (r[0], r[1]))
    g = np.array([r[0] for r in rows], np.int64)
    ts = np.array([r[1] for r in rows], np.int64)
    distinct = np.array([r[2] for r in rows], np.int64)
    th = np.array([2], np.int64) if scalar else np.array([r[3] for r in rows], np.int64)
    starts, ends = crossing_runs(g, ts, distinct, th, report, wm, lo)
    want = []
    i = 0
    while i < len(rows):
        j = i
        key = (rows[i][0], rows[i][1] // report)
        while j < len(rows) and (rows[j][0], rows[j][1] // report) == key:
            j += 1
        end_w = (key[1] + 1) * report
        t = [int(th[0]) if scalar else rows[k][3] for k in range(i, j)]
        if lo < end_w <= wm and any(t[k - i] >= 0 and rows[k][2] > t[k - i] for k in range(i, j)):
            want.append((i, j))
        i = j
    assert list(zip(starts.tolist(), ends.tolist(), strict=True)) == want


@settings(deadline=None, max_examples=200)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(-30, 30), st.booleans(), st.booleans())),
    st.integers(1, 10),
    st.lists(st.tuples(st.integers(0, 6), st.integers(-4, 4)), unique=True, max_size=6),
)
def test_pair_window_counts_matches_naive(rows, report, want):
    want = sorted(want)
    codes = np.array([r[0] for r in rows], np.int64)
    ts = np.array([r[1] for r in rows], np.int64)
    failed = np.array([r[2] for r in rows], bool)
    known = np.array([r[3] for r in rows], bool)
    f, k = pair_window_counts(
        codes, ts, report, failed, known,
        np.array([w[0] for w in want], np.int64), np.array([w[1] for w in want], np.int64),
    )  # fmt: skip
    for i, (c, w) in enumerate(want):
        mine = [r for r in rows if r[0] == c and r[1] // report == w and r[3]]
        assert k[i] == len(mine)
        assert f[i] == sum(r[2] for r in mine)
