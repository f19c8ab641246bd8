"""Window aggregation kernels against naive Python references (hypothesis)."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detect.anomaly.keys import encode_keys
from detect.kernels.window_agg import (
    ewma_zscores,
    fixed_window_agg,
    fixed_window_distinct_count,
    group_ts_order,
    interarrival_stats,
    running_max_before,
    sliding_window_stats,
)

# events: (group, ts, value, distinct id); small ranges so ties and collisions are common
events = st.lists(
    st.tuples(
        st.integers(0, 4),
        st.integers(-50, 200),
        st.integers(-(10**12), 10**12),
        st.integers(0, 9),
    ),
    max_size=120,
)
widths = st.integers(1, 60)


def naive_fixed(ev, width):
    acc = defaultdict(lambda: [0, 0, set(), math.inf, -math.inf])
    for g, t, v, d in ev:
        a = acc[(g, t // width)]
        a[0] += 1
        a[1] += v
        a[2].add(d)
        a[3] = min(a[3], t)
        a[4] = max(a[4], t)
    return sorted((g, w, a[0], a[1], len(a[2]), a[3], a[4]) for (g, w), a in acc.items())


def naive_sliding(ev, width):
    out = []
    for g, t, _v, _d in ev:
        inside = [e for e in ev if e[0] == g and t - width < e[1] <= t]
        out.append((len(inside), sum(e[2] for e in inside), len({e[3] for e in inside})))
    return out


def cols(ev):
    if not ev:
        z = np.zeros(0, np.int64)
        return z, z, z, z
    a = np.array(ev, dtype=object)
    return tuple(np.array(a[:, i].tolist(), dtype=np.int64) for i in range(4))


@settings(max_examples=150, deadline=None)
@given(events, widths)
def test_fixed_window_agg_matches_naive(ev, width):
    g, t, v, d = cols(ev)
    r = fixed_window_agg(g, t, width, values=v, distinct=d)
    got = sorted(zip(*(x.tolist() for x in r), strict=True))
    assert got == naive_fixed(ev, width)
    fg, fw, fd = fixed_window_distinct_count(g, t, width, d)
    assert list(zip(fg.tolist(), fw.tolist(), fd.tolist(), strict=True)) == [
        (x[0], x[1], x[4]) for x in naive_fixed(ev, width)
    ]


@settings(max_examples=150, deadline=None)
@given(events, widths, st.sampled_from([1, 10**5, 10**9]))
def test_fixed_window_agg_without_distinct_matches_naive(ev, width, spread):
    """No distinct column: the dense per-cell path (few cells) and the radix-sorted path
    (groups spread so that cells outnumber rows), both sorted by (group, window)."""
    g, t, v, _d = cols(ev)
    r = fixed_window_agg(g * spread, t, width, values=v)
    got = list(zip(*(x.tolist() for x in r), strict=True))
    want = [(gg * spread, w, c, s, 0, f, la) for gg, w, c, s, _n, f, la in naive_fixed(ev, width)]
    assert got == want
    r = fixed_window_agg(g * spread, t, width)  # count / first / last only
    assert r.count.tolist() == [x[2] for x in want] and r.sum.tolist() == [0] * len(want)


@settings(max_examples=150, deadline=None)
@given(events, widths)
def test_sliding_window_matches_naive(ev, width):
    g, t, v, d = cols(ev)
    order = group_ts_order(g, t)
    ev_sorted = [ev[i] for i in order.tolist()]
    s = sliding_window_stats(g[order], t[order], width, values=v[order], distinct=d[order])
    got = list(zip(s.count.tolist(), s.sum.tolist(), s.distinct.tolist(), strict=True))
    assert got == naive_sliding(ev_sorted, width)


@settings(max_examples=100, deadline=None)
@given(events)
def test_interarrival_matches_naive(ev):
    g, t, _v, _d = cols(ev)
    order = group_ts_order(g, t)
    r = interarrival_stats(g[order], t[order])
    by = defaultdict(list)
    for gi, ti, _, _ in ev:
        by[gi].append(ti)
    assert r.group.tolist() == sorted(by)
    for j, gi in enumerate(r.group.tolist()):
        ts = sorted(by[gi])
        gaps = np.diff(ts)
        assert r.count[j] == len(ts)
        if len(ts) > 1:
            assert (r.min_gap[j], r.max_gap[j]) == (gaps.min(), gaps.max())
            assert r.mean_gap[j] == pytest.approx(gaps.mean())
        else:
            assert math.isnan(r.mean_gap[j])


def test_empty_single_group_and_ties():
    z = np.zeros(0, np.int64)
    assert fixed_window_agg(z, z, 5).count.size == 0
    assert sliding_window_stats(z, z, 5).count.size == 0
    g = np.zeros(4, np.int64)
    t = np.array([10, 10, 10, 15])
    s = sliding_window_stats(g, t, 5, distinct=np.array([1, 2, 1, 3]))
    # all three ties see each other; ts=15 sees (10, 15] only
    assert s.count.tolist() == [3, 3, 3, 1]
    assert s.distinct.tolist() == [2, 2, 2, 1]
    with pytest.raises(ValueError, match="sorted"):
        sliding_window_stats(g, t[::-1].copy(), 5)


def test_large_group_ids_and_sparse_windows():
    g = np.array([0, 2**40, 2**40, 5], np.int64)
    t = np.array([0, 10**15, 10**15 + 1, -(10**15)], np.int64)
    r = fixed_window_agg(g, t, 1, distinct=np.array([0, 2**50, 3, 3]))
    assert sorted(
        zip(r.group.tolist(), r.window.tolist(), r.distinct.tolist(), strict=True)
    ) == sorted([(0, 0, 1), (2**40, 10**15, 1), (2**40, 10**15 + 1, 1), (5, -(10**15), 1)])


def naive_ewma(obs, alpha, min_history, max_gap, z_min, x_min, x_always=math.inf):
    """obs: list of (group, window, x) sorted; returns z per obs."""
    st_ = {}
    out = []
    for g, w, x in obs:
        mean, var, n, last = st_.get(g, (0.0, 0.0, 0, 0))
        if n:
            gap = w - last - 1
            if gap > max_gap:
                n = 0
            else:
                for _ in range(gap):
                    d = -mean
                    mean += alpha * d
                    var = (1 - alpha) * (var + alpha * d * d)
                    n += 1
        if n == 0:
            out.append(math.nan)
            st_[g] = (float(x), 0.0, 1, w) if x < x_always else (0.0, 0.0, 0, w)
            continue
        z = math.nan
        if n >= min_history:
            d = x - mean
            z = (
                d / math.sqrt(var)
                if var > 0
                else (math.inf if d > 0 else -math.inf if d < 0 else 0.0)
            )
        out.append(z)
        if not ((z >= z_min and x >= x_min) or x >= x_always):
            d = x - mean
            mean += alpha * d
            var = (1 - alpha) * (var + alpha * d * d)
        st_[g] = (mean, var, n + 1, w)
    return out


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 40), st.integers(0, 10**6)), max_size=60),
    st.floats(0.01, 0.9),
    st.integers(0, 5),
    st.integers(0, 10),
    st.sampled_from([math.inf, 5e5]),
)
def test_ewma_matches_naive(obs, alpha, min_history, max_gap, x_always):
    obs = sorted({(g, w): x for g, w, x in obs}.items())
    obs = [(g, w, x) for (g, w), x in obs]
    g = np.array([o[0] for o in obs], np.int64)
    w = np.array([o[1] for o in obs], np.int64)
    x = np.array([o[2] for o in obs], np.float64)
    mean, var = np.zeros(4), np.zeros(4)
    n_seen, last = np.zeros(4, np.int64), np.zeros(4, np.int64)
    z = ewma_zscores(
        g,
        w,
        x,
        mean,
        var,
        n_seen,
        last,
        alpha=alpha,
        min_history=min_history,
        max_gap=max_gap,
        z_min=3.0,
        x_min=10.0,
        x_always=x_always,
    ).z
    want = naive_ewma(obs, alpha, min_history, max_gap, 3.0, 10.0, x_always)
    np.testing.assert_allclose(z, np.array(want, dtype=np.float64), rtol=1e-9)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", None, "ü", ""]),
            st.sampled_from([1, 2, None]),
            st.sampled_from([b"\x00" * 16, b"\xff" * 16, None]),
        ),
        max_size=50,
    )
)
def test_encode_keys_exact(rows):
    cols_ = [
        pa.array([r[0] for r in rows], pa.string()),
        pa.array([r[1] for r in rows]),
        pa.array([r[2] for r in rows], pa.binary(16)),
    ]
    k = encode_keys(cols_)
    assert k.ids.shape[0] == len(rows)
    assert k.count == len(set(rows))
    seen = {}
    for r, i in zip(rows, k.ids.tolist(), strict=True):
        assert seen.setdefault(r, i) == i
    assert sorted(seen.values()) == list(range(k.count))
    for i, f in enumerate(k.first.tolist()):
        assert k.ids[f] == i and rows.index(rows[f]) == f


def naive_group_min_max_sum(gid, m, first, last, count):
    rep, lo, hi, tot = [-1] * m, [0] * m, [0] * m, [0] * m
    for i, g in enumerate(gid):
        if rep[g] < 0:
            rep[g], lo[g], hi[g] = i, first[i], last[i]
        lo[g], hi[g] = min(lo[g], first[i]), max(hi[g], last[i])
        tot[g] += count[i]
    return [rep, lo, hi, tot]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 6),
            st.integers(-(10**15), 10**15),
            st.integers(-(10**15), 10**15),
            st.integers(0, 10**6),
        ),
        max_size=80,
    )
)
def test_group_min_max_sum_matches_naive(rows):
    from detect.kernels.dns_features import group_int64
    from detect.kernels.window_agg import group_min_max_sum

    keys = np.array([r[0] for r in rows], np.int64)
    gid, _, m = group_int64(keys)
    cols = [np.array([r[k] for r in rows], np.int64) for k in (1, 2, 3)]
    got = group_min_max_sum(gid, m, *cols)
    want = naive_group_min_max_sum(gid.tolist(), m, *(c.tolist() for c in cols))
    assert [a.tolist() for a in got] == want


@settings(deadline=None, max_examples=200)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(-50, 50),
                          st.integers(0, 9), st.integers(1, 4)), max_size=40))  # fmt: skip
def test_sorted_runs_reduce_matches_reduceat(rows):
    from detect.kernels.window_agg import sorted_runs_reduce

    a = np.array([r[0] for r in rows], np.int64)
    b = np.array([r[1] for r in rows], np.int64)
    first = np.array([r[2] for r in rows], np.int64)
    last = first + np.array([r[3] for r in rows], np.int64)
    count = np.array([r[4] for r in rows], np.int64)
    order = np.lexsort((b, a))
    got = sorted_runs_reduce(order, a, b, first, last, count)
    if not rows:
        assert all(x.size == 0 for x in got)
        return
    ao, bo = a[order], b[order]
    starts = np.flatnonzero(np.r_[True, (ao[1:] != ao[:-1]) | (bo[1:] != bo[:-1])])
    want = (
        starts, ao[starts], bo[starts], np.minimum.reduceat(first[order], starts),
        np.maximum.reduceat(last[order], starts), np.add.reduceat(count[order], starts),
    )  # fmt: skip
    for g, w in zip(got, want, strict=True):
        assert g.tolist() == w.tolist()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(-(2**62), 2**62)), max_size=40))
def test_running_max_before_matches_naive(rows: list[tuple[bool, int]]) -> None:
    new = np.array([True] * bool(rows) + [b for b, _ in rows[1:]], dtype=bool)
    values = np.array([v for _, v in rows], dtype=np.int64)
    want, reach = [], None
    for first, v in zip(new.tolist(), values.tolist(), strict=True):
        if first:
            reach = None
        want.append(2**63 - 1 if reach is None else reach)
        reach = v if reach is None else max(reach, v)
    assert running_max_before(new, values).tolist() == want
