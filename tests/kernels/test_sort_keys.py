"""Sort / group kernels of :mod:`detect.kernels.sort_keys` against naive references."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from detect.kernels.sort_keys import (
    connection_totals,
    group_ts_argsort,
    is_sorted,
    radix_argsort,
    string_hashes,
    unique_mask,
)
from detect.kernels.window_agg import group_ts_order

I64 = st.integers(-(2**63), 2**63 - 1)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**40), max_size=200), st.data())
def test_radix_argsort_is_stable_sort(keys, data):
    a = np.array(keys, np.int64)
    nbits = int(a.max()).bit_length() if len(keys) else 0
    assert radix_argsort(a, nbits).tolist() == sorted(range(len(keys)), key=lambda i: keys[i])
    # refining a given permutation keeps its order among equal keys
    perm = data.draw(st.permutations(range(len(keys))))
    got = radix_argsort(a, nbits, np.array(perm, np.int64)).tolist()
    want = sorted(range(len(keys)), key=lambda j: keys[perm[j]])
    assert got == [perm[j] for j in want]


@settings(max_examples=200, deadline=None)
@given(st.lists(I64, max_size=150))
def test_radix_argsort_64_bits_groups_equal_keys(keys):
    a = np.array(keys, np.int64)
    order = radix_argsort(a, 64)
    assert sorted(order.tolist()) == list(range(len(keys)))
    s = a[order].tolist()
    seen, prev = set(), object()
    for k in s:  # equal keys are contiguous
        if k != prev:
            assert k not in seen
            seen.add(k)
            prev = k


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2**35), st.integers(-(10**12), 10**12)), max_size=150),
    st.booleans(),
)
def test_group_ts_argsort_matches_group_ts_order(rows, sort_ts):
    if sort_ts:
        rows = sorted(rows, key=lambda r: r[1])
    g = np.array([r[0] for r in rows], np.int64)
    t = np.array([r[1] for r in rows], np.int64)
    want = sorted(range(len(rows)), key=lambda i: (rows[i][0], rows[i][1]))
    assert group_ts_argsort(g, t).tolist() == want
    if rows:
        dense = np.unique(g, return_inverse=True)[1].reshape(-1)
        assert group_ts_order(dense, t).tolist() == want


@given(st.lists(I64, max_size=50))
def test_is_sorted(keys):
    assert is_sorted(np.array(keys, np.int64)) == (keys == sorted(keys))


texts = st.lists(
    st.one_of(st.none(), st.text(max_size=6), st.sampled_from(["", "é", "a", "ü\x00", "C1"])),
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(texts, st.integers(0, 3))
def test_string_hashes_equal_values_equal_hashes(values, cut):
    arr = pa.array(values, pa.string()).slice(min(cut, len(values)))
    vals = arr.to_pylist()
    h = string_hashes(arr)
    assert len(h) == len(vals)
    by_value = defaultdict(set)
    for v, x in zip(vals, h.tolist(), strict=True):
        assert (x == 0) == (v is None)
        by_value[v].add(x)
    assert all(len(s) == 1 for s in by_value.values())
    # chunked and dictionary forms hash the same
    chunked = pa.chunked_array([arr.slice(0, len(arr) // 2), arr.slice(len(arr) // 2)])
    assert string_hashes(chunked).tolist() == h.tolist()
    assert string_hashes(arr.dictionary_encode()).tolist() == h.tolist()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.integers(-3, 3), I64), max_size=120))
def test_unique_mask(keys):
    c = Counter(keys)
    assert unique_mask(np.array(keys, np.int64)).tolist() == [c[k] == 1 for k in keys]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 40), min_size=0, max_size=3000),
    st.sampled_from([0, 1, 40, 58, 61]),
    st.integers(0, 2**20),
)
def test_unique_mask_crowded_buckets(small, shift, salt):
    """Keys sharing their top bits (one crowded bucket, sorted in full) or spread over
    them (several radix passes), duplicates common, against a counter."""
    keys = [((k << shift) ^ salt) - (1 << 62) * (k % 3) for k in small]
    keys = [((x + 2**63) % 2**64) - 2**63 for x in keys]  # wrap into int64
    c = Counter(keys)
    assert unique_mask(np.array(keys, np.int64)).tolist() == [c[k] == 1 for k in keys]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),  # pair
            st.integers(0, 4),  # connection within the pair
            st.integers(-(10**12), 10**15),  # duration
            st.integers(-(10**9), 10**9),  # start
            st.integers(-(10**9), 10**9),  # end
        ),
        max_size=100,
    )
)
def test_connection_totals_naive(rows):
    pairs = sorted({r[0] for r in rows})
    pid = {p: i for i, p in enumerate(pairs)}
    conns = sorted({(r[0], r[1]) for r in rows})
    cid = {c: i for i, c in enumerate(conns)}
    arr = [np.array(x, np.int64) for x in zip(*rows, strict=True)] if rows else [np.zeros(0)] * 5
    pair = np.array([pid[r[0]] for r in rows], np.int64)
    conn = np.array([cid[(r[0], r[1])] for r in rows], np.int64)
    got = connection_totals(pair, conn, len(conns), arr[2], arr[3], arr[4], len(pairs))
    longest_of = defaultdict(lambda: -(2**63))
    for r in rows:
        longest_of[(r[0], r[1])] = max(longest_of[(r[0], r[1])], r[2])
    for p in pairs:
        i = pid[p]
        mine = [v for (q, _), v in longest_of.items() if q == p]
        prow = [r for r in rows if r[0] == p]
        want = (
            sum(mine),
            max(mine),
            len(mine),
            len(prow),
            min(r[3] for r in prow),
            max(r[4] for r in prow),
        )
        assert tuple(int(a[i]) for a in got) == want


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),  # pair
            st.integers(-(10**12), 10**15),  # duration
            st.integers(-(10**9), 10**9),  # start
            st.integers(-(10**9), 10**9),  # end
        ),
        max_size=100,
    ),
    st.booleans(),
)
def test_connection_totals_one_row_per_connection(rows, shuffle):
    """Every row its own connection: ids in row order take the fused pass, a permutation
    of them the general one; both against the naive sums."""
    n = len(rows)
    pairs = sorted({r[0] for r in rows})
    pid = {p: i for i, p in enumerate(pairs)}
    pair = np.array([pid[r[0]] for r in rows], np.int64)
    conn = np.arange(n, dtype=np.int64)
    if shuffle and n > 1:
        conn = conn[::-1].copy()
    cols = [np.array([r[k] for r in rows], np.int64) for k in (1, 2, 3)]
    got = connection_totals(pair, conn, n, *cols, len(pairs))
    for p in pairs:
        prow = [r for r in rows if r[0] == p]
        want = (
            sum(r[1] for r in prow),
            max(r[1] for r in prow),
            len(prow),
            len(prow),
            min(r[2] for r in prow),
            max(r[3] for r in prow),
        )
        assert tuple(int(a[pid[p]]) for a in got) == want


@settings(deadline=None, max_examples=200)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(-20, 20)), max_size=60),
    st.sampled_from(["random", "sorted", "nearly"]),
)
def test_dense_group_ts_order_is_a_stable_sort(rows, layout):
    """Every layout (random times, sorted, sorted with a few swaps) gives the stable sort
    by (group, ts): the mending path, the radix path and the sorted path agree."""
    from detect.kernels.sort_keys import dense_group_ts_order

    gid = np.array([r[0] for r in rows], np.int64)
    ts = np.array([r[1] for r in rows], np.int64)
    if layout != "random":
        ts = np.sort(ts)
    if layout == "nearly" and ts.size > 2:
        ts[[0, ts.size // 2]] = ts[[ts.size // 2, 0]]
    m = int(gid.max()) + 1 if gid.size else 0
    got = dense_group_ts_order(gid, m, ts)
    assert got.tolist() == np.lexsort((np.arange(gid.size), ts, gid)).tolist()


def test_dense_group_ts_order_far_from_time_order_takes_the_radix_path():
    from detect.kernels.sort_keys import _mend_groups, dense_group_ts_order

    ts = np.arange(200, dtype=np.int64)[::-1].copy()  # one group, reversed: n^2 / 2 moves
    gid = np.zeros(200, np.int64)
    perm, offsets = np.arange(200, dtype=np.int64), np.array([0, 200], np.int64)
    assert not _mend_groups(perm, offsets, ts, 4 * 200)
    assert dense_group_ts_order(gid, 1, ts).tolist() == list(range(199, -1, -1))
