"""Longest-prefix match vs ``ipaddress`` networks: IPv4 and IPv6, nested and equal prefixes."""

from __future__ import annotations

import ipaddress

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tests import naive

from detect.kernels.prefix_match import build_prefix_index, probe_prefix, v4_length

_MAPPED = b"\x00" * 10 + b"\xff\xff"
# a few base addresses so that prefixes nest and events fall inside them
_BASES = [
    _MAPPED + bytes([10, 1, 2, 3]),
    _MAPPED + bytes([10, 1, 200, 3]),
    _MAPPED + bytes([192, 168, 0, 255]),
    _MAPPED + b"\x00\x00\x00\x00",
    _MAPPED + b"\xff\xff\xff\xff",
    ipaddress.IPv6Address("2001:db8::1").packed,
    ipaddress.IPv6Address("2001:db8:0:1::1").packed,
    b"\x00" * 16,
    b"\xff" * 16,
]
_addr = st.one_of(st.sampled_from(_BASES), st.binary(min_size=16, max_size=16),
                  st.binary(min_size=4, max_size=4).map(lambda b: _MAPPED + b))  # fmt: skip
_net = st.tuples(_addr, st.sampled_from([0, 1, 8, 32, 63, 64, 65, 95, 96, 104, 112, 120, 127, 128]))


@st.composite
def _event(draw: st.DrawFn) -> bytes:
    """An address near a base: the base with some low bytes replaced."""
    base = draw(_addr)
    keep = draw(st.integers(0, 16))
    return base[:keep] + draw(st.binary(min_size=16 - keep, max_size=16 - keep))


@settings(max_examples=300, deadline=None)
@given(
    nets=st.lists(st.one_of(_net, st.none()), max_size=12),
    values=st.lists(st.one_of(st.none(), _event()), max_size=30),
    start=st.integers(0, 9),
    kind=st.sampled_from(["plain", "slice", "chunked", "dictionary"]),
)
@example(nets=[], values=[_BASES[0], None], start=0, kind="plain")
@example(  # nested v4 /8 > /16 > /32, equal prefixes (first wins), ::/0 (not covering v4)
    nets=[(_BASES[0], v4_length(8)), (_BASES[0], v4_length(16)), (_BASES[0], 128),
          (_BASES[0], v4_length(16)), (b"\x00" * 16, 0)],
    values=[*_BASES, _MAPPED + bytes([10, 9, 9, 9]), _MAPPED + bytes([11, 0, 0, 0])],
    start=1,
    kind="slice",
)  # fmt: skip
@example(
    nets=[(b"\xff" * 16, 128), (b"\xff" * 16, 1)],
    values=[b"\xff" * 16, b"\x80" + b"\x00" * 15],
    start=0,
    kind="chunked",
)
@example(nets=[(_MAPPED + b"\x00" * 4, 96)], values=[_BASES[3], _BASES[4], _BASES[7]], start=0,
         kind="dictionary")  # fmt: skip
@example(  # an IPv4 range ending inside ::ffff:0:0/96: the IPv6 key after it is not covered
    nets=[(_MAPPED + b"\x00" * 4, 104)], values=[b" " + b"\x00" * 15, b"\x00" * 10 + b"\x01" * 6],
    start=0, kind="plain",
)  # fmt: skip
def test_matches_ipaddress(
    nets: list[tuple[bytes, int] | None], values: list[bytes | None], start: int, kind: str
) -> None:
    ids = list(range(len(nets)))
    index = build_prefix_index(
        pa.array([n and n[0] for n in nets], pa.binary(16)),
        [n[1] if n else 0 for n in nets],
        ids,
    )
    typ = pa.binary(16)
    if kind == "plain":
        arr = pa.array(values, typ)
    elif kind == "slice":
        arr = pa.array([None] * start + values, typ).slice(start)
    elif kind == "dictionary":
        arr = pa.array(values, typ).dictionary_encode()
    else:
        k = min(start, len(values))
        arr = pa.chunked_array([pa.array(values[:k], typ), pa.array(values[k:], typ)], typ)
    assert probe_prefix(index, arr).tolist() == naive.prefix_ids(values, nets, ids)


def test_many_prefixes_threads() -> None:
    """Enough prefixes that the bucket tables matter; threads give the same answer."""
    rng = np.random.default_rng(11)
    n = 3000
    nets = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    nets[: n // 2, :12] = np.frombuffer(_MAPPED, np.uint8)
    nets[n // 2 :, :4] = [0x20, 0x01, 0x0D, 0xB8]
    lens = np.where(np.arange(n) < n // 2, rng.integers(104, 129, n), rng.integers(32, 129, n))
    events = nets[rng.integers(0, n, 20_000)].copy()
    events[:, 14:] = rng.integers(0, 256, (len(events), 2))
    index = build_prefix_index(nets, lens, np.arange(n))
    got = probe_prefix(index, events)
    assert np.array_equal(got, probe_prefix(index, events, threads=2))
    sub = slice(0, 300)
    want = naive.prefix_ids(
        [bytes(e) for e in events[sub]],
        [(bytes(a), int(b)) for a, b in zip(nets, lens, strict=True)],
        list(range(n)),
    )  # fmt: skip
    assert got[sub].tolist() == want


@pytest.mark.parametrize("family", ["v4", "v6"])
def test_dense_buckets_and_table_sizes(family: str) -> None:
    """Many boundaries in one first-level bucket (forward search) and many empty buckets."""
    rng = np.random.default_rng(5)
    n = 4000
    base = np.frombuffer(_MAPPED + bytes([10, 1, 2, 0]) if family == "v4" else
                         ipaddress.IPv6Address("2001:db8::").packed, np.uint8)  # fmt: skip
    nets = np.tile(base, (n, 1))
    # a dense cluster of /128s (/32s) inside one /112 (/24), plus prefixes spread widely
    nets[: n // 2, 15] = rng.integers(0, 256, n // 2)
    nets[n // 2 :, 12 if family == "v4" else 2 :] = rng.integers(
        0, 256, (n - n // 2, 4 if family == "v4" else 14)
    )
    lens = np.where(np.arange(n) < n // 2, 128, rng.integers(96 if family == "v4" else 16, 129, n))
    events = np.concatenate([nets[rng.integers(0, n, 3000)], np.tile(base, (1000, 1))])
    events[:, 14:] ^= rng.integers(0, 4, (len(events), 2)).astype(np.uint8)
    events[-500:, 12 if family == "v4" else 2 :] = rng.integers(
        0, 256, (500, 4 if family == "v4" else 14)
    )
    index = build_prefix_index(nets, lens, np.arange(n))
    got = probe_prefix(index, events)
    want = naive.prefix_ids(
        [bytes(e) for e in events],
        [(bytes(a), int(b)) for a, b in zip(nets, lens, strict=True)],
        list(range(n)),
    )
    assert got.tolist() == want


def test_wrapper_validates() -> None:
    with pytest.raises(ValueError, match="outside 0-128"):
        build_prefix_index(np.zeros((1, 16), np.uint8), [129], [1])
    with pytest.raises(ValueError, match="same length"):
        build_prefix_index(np.zeros((1, 16), np.uint8), [1, 2], [1])


def test_kernel_callable_from_njit() -> None:
    from detect.kernels._jit import njit
    from detect.kernels.ip_set import as_lanes
    from detect.kernels.prefix_match import _probe_prefix

    index = build_prefix_index(np.zeros((1, 16), np.uint8), [0], [3])

    @njit
    def total(lanes, idx):
        out = np.empty(lanes.shape[0], np.int32)
        _probe_prefix(lanes, np.ones(lanes.shape[0], np.bool_), idx[0], idx[1], idx[2], idx[3],
                      idx[4], out)  # fmt: skip
        return out.sum()

    assert total(as_lanes(np.ones((4, 16), np.uint8)), tuple(index)) == 12
