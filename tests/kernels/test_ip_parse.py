"""IP text parsing and formatting vs ``ipaddress``, on every Arrow layout the kernel meets."""

from __future__ import annotations

import ipaddress

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tests import naive

from detect import arrow_buffers as ab
from detect.enrich import bin_to_ip, ip_to_bin
from detect.kernels.ip_parse import format_ips, is_ipv4_mapped, parse_ips

EDGE_CASES = [
    "",
    "1.2.3.4",
    "0.0.0.0",
    "255.255.255.255",
    "256.1.1.1",
    "01.2.3.4",
    "1.2.3.04",
    "1.2.3",
    "1.2.3.4.5",
    "1..2.3",
    ".1.2.3",
    "1.2.3.4.",
    " 1.2.3.4",
    "1.2.3.4 ",
    "1.2.3.4/32",
    "١.2.3.4",
    "::",
    ":::",
    "::1",
    "1::",
    ":1::",
    "::1:",
    "1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7::",
    "::2:3:4:5:6:7:8",
    "1::2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7",
    "1::2::3",
    "ABCD:EF01::",
    "abcd:ef01::",
    "0001:0002::",
    "00001::",
    "g::",
    "::ffff:1.2.3.4",
    "::ffff:1.2.3.04",
    "::1.2.3.4",
    "1:2:3:4:5:6:1.2.3.4",
    "1:2:3:4:5:6:7:1.2.3.4",
    "::1:2:3:4:5:1.2.3.4",
    "::1:2:3:4:5:6:1.2.3.4",
    "1.2.3.4::",
    "1:1.2.3.4",
    "64:ff9b::8.8.8.8",
    "fe80::1%eth0",
    "fe80::1%",
    "fe80::1%a%b",
    "fe80::1%é",
    "1.2.3.4%eth0",
    "::1%1/2",
    "%eth0",
    "::%x",
    "1:2:3:4:5:6:7:8%25",
    ":",
    "1:",
    ":1",
    "::ffff:",
    "::1.2.3",
    "1::2:3:4:5:6:7",
]

_v4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
_v6 = st.one_of(
    st.integers(0, 2**128 - 1),
    st.lists(st.sampled_from([0, 0, 0, 1, 0xFFFF, 0x2001, 0xDB8]), min_size=8, max_size=8).map(
        lambda hs: int.from_bytes(b"".join(h.to_bytes(2, "big") for h in hs), "big")
    ),
).map(ipaddress.IPv6Address)


@st.composite
def _v6_text(draw: st.DrawFn) -> str:
    """Valid IPv6 text in the spellings sensors write: compressed, exploded, upper, dotted."""
    addr = draw(_v6)
    form = draw(st.sampled_from(["compressed", "exploded", "upper", "dotted", "zone", "zeros"]))
    if form == "compressed":
        return str(addr)
    if form == "exploded":
        return addr.exploded
    if form == "upper":
        return str(addr).upper()
    if form == "dotted":
        head = str(ipaddress.IPv6Address(int(addr) & ~0xFFFFFFFF))
        head = head[:-1] if head.endswith("::") else head.rsplit(":", 2)[0] + ":"
        return head + str(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    if form == "zone":
        return (
            str(addr) + "%" + draw(st.text(min_size=1, max_size=5).filter(lambda s: "%" not in s))
        )
    return ":".join(
        h.lstrip("0").rjust(draw(st.integers(1, 4)), "0") or "0" for h in addr.exploded.split(":")
    )


_garbage = st.one_of(
    st.text(alphabet="0123456789abcdefABCDEF:.%/ xg", max_size=45),
    st.text(max_size=20),
)


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    """A valid address with one character inserted, deleted or replaced."""
    text = draw(st.one_of(_v4.map(str), _v6_text()))
    i = draw(st.integers(0, len(text)))
    c = draw(st.sampled_from(list("0:.f%9a/ ")))
    op = draw(st.sampled_from(["ins", "del", "rep"]))
    if op == "ins":
        return text[:i] + c + text[i:]
    if op == "del":
        return text[:i] + text[i + 1 :]
    return text[:i] + c + text[i + 1 :]


_ip_text = st.one_of(_v4.map(str), _v6_text(), _garbage, _mutated(), st.sampled_from(EDGE_CASES))
_values = st.lists(st.one_of(st.none(), _ip_text), max_size=40)


def _expected(values: list[str | None]) -> list[bytes | None]:
    return [naive.ip_to_bytes(v) for v in values]


def test_edge_cases_match_ipaddress() -> None:
    assert ip_to_bin(pa.array(EDGE_CASES)).to_pylist() == _expected(EDGE_CASES)


@settings(max_examples=300, deadline=None)
@given(values=_values, start=st.integers(0, 9), large=st.booleans())
@example(values=[], start=0, large=False)
@example(values=[None, None, None], start=1, large=False)
@example(values=["", "1.2.3.4", None, "::1"] * 3, start=5, large=True)
def test_parse_matches_ipaddress(values: list[str | None], start: int, large: bool) -> None:
    arr = pa.array(values, type=pa.large_string() if large else pa.string())
    k = min(start, len(values))
    sliced = arr.slice(k)  # offset off a byte boundary of the validity bitmap
    assert ip_to_bin(sliced).to_pylist() == _expected(values[k:])
    buf = ab.string_buffers(sliced)
    out, ok = parse_ips(buf.offsets, buf.data, buf.validity)
    want = _expected(values[k:])
    assert ok.tolist() == [w is not None for w in want]
    assert [bytes(r) if o else None for r, o in zip(out, ok, strict=True)] == want
    assert not out[~ok].any()


@settings(max_examples=100, deadline=None)
@given(parts=st.lists(_values, max_size=4))
def test_parse_chunked_and_dictionary(parts: list[list[str | None]]) -> None:
    chunked = pa.chunked_array([pa.array(p, pa.string()) for p in parts], type=pa.string())
    flat = [v for p in parts for v in p]
    assert ip_to_bin(chunked).to_pylist() == _expected(flat)
    dictionary = pa.array(flat, pa.string()).dictionary_encode()
    assert ip_to_bin(dictionary).to_pylist() == _expected(flat)


_bytes16 = st.one_of(
    st.binary(min_size=16, max_size=16),
    _v6.map(lambda a: a.packed),
    _v4.map(lambda a: b"\x00" * 10 + b"\xff\xff" + a.packed),
)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.one_of(st.none(), _bytes16), max_size=40), start=st.integers(0, 9))
@example(values=[b"\x00" * 16, b"\x00" * 15 + b"\x01", b"\x00" * 10 + b"\xff" * 6], start=0)
def test_format_matches_ipaddress(values: list[bytes | None], start: int) -> None:
    arr = pa.array(values, type=pa.binary(16)).slice(min(start, len(values)))
    expected = [naive.bytes_to_ip(v) for v in arr.to_pylist()]
    text = bin_to_ip(arr)
    assert text.to_pylist() == expected
    assert ip_to_bin(text).to_pylist() == arr.to_pylist()  # round trip


def test_is_ipv4_mapped() -> None:
    values = ip_to_bin(pa.array(["1.2.3.4", "::ffff:0:0", "::fffe:1.2.3.4", "::"]))
    buf = ab.fixed_binary_buffers(values)
    assert is_ipv4_mapped(buf.values).tolist() == [True, True, False, False]


def test_wrapper_validates() -> None:
    with pytest.raises(TypeError, match="offsets"):
        parse_ips(np.zeros(3, np.float64), np.zeros(0, np.uint8))
    with pytest.raises(ValueError, match="validity"):
        parse_ips(np.zeros(3, np.int32), np.zeros(0, np.uint8), np.ones(5, bool))
    with pytest.raises(TypeError, match=r"\(n, 16\)"):
        format_ips(np.zeros((2, 4), np.uint8))


def test_kernel_callable_from_njit() -> None:
    from detect.kernels._jit import njit
    from detect.kernels.ip_parse import _parse_ips

    @njit
    def count_valid(offsets, data, validity):
        out = np.zeros((len(offsets) - 1, 16), np.uint8)
        valid = np.empty(len(offsets) - 1, np.bool_)
        _parse_ips(offsets, data, validity, out, valid)
        return valid.sum()

    buf = ab.string_buffers(pa.array(["1.2.3.4", "x", "::1"]))
    assert count_valid(buf.offsets, buf.data, np.ones(3, np.bool_)) == 2


@settings(max_examples=500, deadline=None)
@given(
    text=st.one_of(
        st.text("0123456789.", max_size=16),
        st.lists(st.integers(0, 300).map(str), min_size=1, max_size=5).map(".".join),
        st.builds(lambda a: str(ipaddress.IPv4Address(a)), st.integers(0, 2**32 - 1)),
    ).map(str.encode),
    after=st.binary(max_size=10).map(lambda b: b + b"1.2.3.45678901"),
)
@example(text=b"1.2.3.4", after=b"5.6.7.8")
@example(text=b"255.255.255.25", after=b"5")
@example(text=b"1.2.3.", after=b"4")
def test_fast_v4_ignores_bytes_after_the_row(text: bytes, after: bytes) -> None:
    """The branch-free IPv4 path reads past the row end: what follows must not matter."""
    from detect.kernels.ip_parse import _parse_v4, _parse_v4_fast

    data = np.frombuffer(text + after + b"\x00" * 8, np.uint8)
    want = _parse_v4(data, 0, len(text))
    assert _parse_v4_fast(data, 0, len(text)) == (want if len(text) else -1)
    try:
        expected = int(ipaddress.IPv4Address(text.decode()))
    except ValueError:
        expected = -1
    assert want == expected
    # and through the wrapper, where rows are followed by other rows' text
    offsets = np.array([0, len(text), len(text) + len(after)], np.int32)
    values, valid = parse_ips(offsets, np.frombuffer(text + after, np.uint8))
    assert bool(valid[0]) == (expected >= 0)
    if expected >= 0:
        assert bytes(values[0]) == ipaddress.IPv6Address(f"::ffff:{text.decode()}").packed
    else:
        assert not values[0].any()
