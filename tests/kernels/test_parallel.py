"""The chunked multi-thread driver: in-order results identical to one thread."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from detect.kernels.domain_suffix import build_domain_index, probe_domain_suffix
from detect.kernels.parallel import probe_ids, probe_pairs, row_ranges, run_row_ranges
from detect.kernels.string_set import build_string_set, probe_string_set


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 10_000), threads=st.integers(1, 8), min_rows=st.integers(1, 3000))
def test_row_ranges_tile_in_order(n: int, threads: int, min_rows: int) -> None:
    ranges = row_ranges(n, threads, min_rows=min_rows)
    assert ranges[0][0] == 0
    assert ranges[-1][1] == n
    assert all(a < b or n == 0 for a, b in ranges)
    assert all(ranges[i][1] == ranges[i + 1][0] for i in range(len(ranges) - 1))
    assert len(ranges) <= max(1, threads * 4)


def test_run_row_ranges_keeps_order() -> None:
    out = run_row_ranges(np.arange, 100_000, threads=4, min_rows=1000)
    assert len(out) > 1
    assert np.array_equal(np.concatenate(out), np.arange(100_000))


def test_set_kernels_same_on_threads() -> None:
    rng = np.random.default_rng(0)
    keys = [f"k{i}.example.com" for i in range(500)]
    values = pa.chunked_array(
        [pa.array([keys[i] if i < 500 else f"x{i}.org" for i in rng.integers(0, 1000, 150_000)])
         for _ in range(3)]
    )  # fmt: skip
    sset = build_string_set(pa.array(keys), np.arange(500))
    assert np.array_equal(probe_string_set(sset, values), probe_string_set(sset, values, threads=3))
    dom = build_domain_index(pa.array(["example.com", *keys[:10]]), np.arange(11))
    one = probe_domain_suffix(dom, values)
    three = probe_domain_suffix(dom, values, threads=3)
    assert all(np.array_equal(a, b) for a, b in zip(one, three, strict=True))
    assert one[0].max() > 300_000  # rows keep their offset across chunks


def test_drivers_empty_and_null_chunks() -> None:
    empty = pa.chunked_array([], pa.string())
    assert probe_ids(empty, lambda c: np.zeros(len(c), np.int32)).tolist() == []
    rows, ids = probe_pairs(empty, lambda c: (np.zeros(0, np.int64), np.zeros(0, np.int32)))
    assert len(rows) == len(ids) == 0
    nulls = pa.array([None, None], pa.string()).dictionary_encode()
    sset = build_string_set(pa.array(["a"]), [1])
    assert probe_string_set(sset, nulls).tolist() == [-1, -1]
    dom = build_domain_index(pa.array(["a"]), [1])
    assert len(probe_domain_suffix(dom, nulls)[0]) == 0
