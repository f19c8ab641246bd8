"""IP set membership vs a Python dict of 16-byte keys, on every Arrow layout."""

from __future__ import annotations

import ipaddress

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tests import naive

from detect.kernels.ip_set import build_ip_set, probe_ip_set

_MAPPED = b"\x00" * 10 + b"\xff\xff"
_POOL = [
    _MAPPED + bytes([10, 0, 0, 1]),
    _MAPPED + bytes([10, 0, 0, 2]),
    ipaddress.IPv6Address("2001:db8::1").packed,
    b"\x00" * 16,
    b"\xff" * 16,  # the empty-slot marker: must still work as an indicator
    bytes([0xFF] * 8 + [0] * 8),
]
_ip = st.one_of(
    st.sampled_from(_POOL),
    st.binary(min_size=4, max_size=4).map(lambda b: _MAPPED + b),
    st.binary(min_size=16, max_size=16),
)
LAYOUTS = ["plain", "slice", "chunked", "dictionary", "numpy"]


def layout(values: list[bytes | None], kind: str, start: int) -> object:
    typ = pa.binary(16)
    if kind == "plain":
        return pa.array(values, typ)
    if kind == "slice":
        return pa.array([_POOL[0], None] * start + values, typ).slice(2 * start)
    if kind == "dictionary":
        return pa.array(values, typ).dictionary_encode()
    k = min(start, len(values))
    return pa.chunked_array([pa.array(values[:k], typ), pa.array(values[k:], typ)], typ)


@settings(max_examples=300, deadline=None)
@given(
    keys=st.lists(st.one_of(_ip, st.none()), max_size=12),
    values=st.lists(st.one_of(st.none(), _ip), max_size=30),
    kind=st.sampled_from(LAYOUTS),
    start=st.integers(0, 9),
)
@example(keys=[], values=[], kind="plain", start=0)
@example(keys=_POOL, values=[None, *_POOL, None], kind="slice", start=3)
@example(keys=[_POOL[0], _POOL[0]], values=[_POOL[0]], kind="plain", start=0)
@example(keys=[b"\xff" * 16], values=[b"\xff" * 16, b"\x00" * 16], kind="numpy", start=0)
def test_matches_dict(
    keys: list[bytes | None], values: list[bytes | None], kind: str, start: int
) -> None:
    ids = list(range(1, len(keys) + 1))
    index = build_ip_set(pa.array(keys, pa.binary(16)), ids)
    want = naive.ip_set_ids(values, keys, ids)
    if kind == "numpy":
        matrix = np.zeros((len(values), 16), np.uint8)
        for i, v in enumerate(values):
            if v is not None:
                matrix[i] = np.frombuffer(v, np.uint8)
        valid = np.array([v is not None for v in values], bool)
        assert probe_ip_set(index, matrix, validity=valid).tolist() == want
    else:
        assert probe_ip_set(index, layout(values, kind, start)).tolist() == want


def test_threads_identical_and_v6() -> None:
    rng = np.random.default_rng(7)
    keys = rng.integers(0, 256, (5000, 16), dtype=np.uint8)
    events = rng.integers(0, 256, (400_000, 16), dtype=np.uint8)
    events[::7] = keys[rng.integers(0, 5000, len(events[::7]))]
    index = build_ip_set(keys, np.arange(5000))
    one = probe_ip_set(index, events)
    assert np.array_equal(one, probe_ip_set(index, events, threads=3))
    assert (one >= 0).sum() >= len(events[::7])
    table = {bytes(k): i for i, k in reversed(list(enumerate(keys)))}
    assert one[:2000].tolist() == [table.get(bytes(e), -1) for e in events[:2000]]


def test_wrapper_validates() -> None:
    with pytest.raises(TypeError, match=r"\(n, 16\)"):
        build_ip_set(np.zeros((2, 4), np.uint8), [1, 2])
    with pytest.raises(ValueError, match="ids"):
        build_ip_set(np.zeros((2, 16), np.uint8), [1])


def test_kernel_callable_from_njit() -> None:
    from detect.kernels._jit import njit
    from detect.kernels.ip_set import _probe_ip_set, as_lanes

    index = build_ip_set(np.ones((1, 16), np.uint8), [9])

    @njit
    def hits(lanes, keys, ids, filt, all_ones, v4_table, v4_filter, v4_text_filter):
        out = np.empty(lanes.shape[0], np.int32)
        valid = np.ones(lanes.shape[0], np.bool_)
        _probe_ip_set(
            lanes,
            valid,
            False,
            keys,
            ids,
            filt,
            all_ones,
            v4_table,
            v4_filter,
            v4_text_filter,
            out,
        )
        return (out == 9).sum()

    events = np.ones((3, 16), np.uint8)
    events[1, 0] = 2
    assert hits(as_lanes(events), *index) == 2


def test_ipv4_table_mixed_with_v6_and_nulls() -> None:
    """Many IPv4 keys (long probe runs in the IPv4 table) beside IPv6 keys, nulls between."""
    rng = np.random.default_rng(11)
    v4 = np.zeros((20_000, 16), np.uint8)
    v4[:, 10:12] = 0xFF
    v4[:, 12:] = rng.integers(0, 256, (20_000, 4), dtype=np.uint8)
    v4[:50, 12:] = 0  # 0.0.0.0 and duplicates: the first id wins
    v6 = rng.integers(0, 256, (3000, 16), dtype=np.uint8)
    keys = np.concatenate([v4, v6])
    events = np.concatenate(
        [
            keys[rng.integers(0, len(keys), 30_000)],
            rng.integers(0, 256, (30_000, 16), dtype=np.uint8),
        ]
    )
    events[rng.random(len(events)) < 0.5, :12] = v4[0, :12]  # random IPv4 misses too
    rng.shuffle(events)
    valid = rng.random(len(events)) > 0.1
    index = build_ip_set(keys, np.arange(len(keys)))
    want = naive.ip_set_ids(
        [bytes(e) if ok else None for e, ok in zip(events, valid, strict=True)],
        [bytes(k) for k in keys],
        list(range(len(keys))),
    )
    assert probe_ip_set(index, events, validity=valid).tolist() == want
    assert probe_ip_set(index, events, validity=valid, threads=2).tolist() == want
    assert sum(w >= 0 for w in want) > 20_000
