"""Unicode case folding of Arrow strings vs Python's ``str.casefold``, on every layout."""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from detect import arrow_buffers as ab
from detect.kernels.casefold import (
    casefold,
    casefold_buffers,
    casefold_str,
    casefold_table,
    folds_into_ascii,
)

_SURROGATES = range(0xD800, 0xE000)
_ALL = [chr(c) for c in range(0x110000) if c not in _SURROGATES]
# every code point that folds, the usual suspects first (ß ẞ İ ς ligatures Cherokee ΐ)
_SPECIAL = "ßẞİıςΣσﬁﬀﬃſKÅꭰꮿᏸΐŉǰ"
_FOLDING = sorted({*_SPECIAL, *(chr(c) for c in casefold_table().code_points)})

_char = st.one_of(
    st.characters(codec="utf-8"),  # any code point but surrogates, astral included
    st.sampled_from(_FOLDING),
    st.sampled_from("AZaz@[`{ .-/09"),
)
_text = st.text(_char, max_size=24)
_value = st.one_of(st.none(), _text, st.sampled_from(["", "Straße", "GROẞ", "İstanbul", "ΌΣΟΣ"]))


def _want(values: list[str | None]) -> list[str | None]:
    return [None if v is None else v.casefold() for v in values]


def layout(values: list[str | None], kind: str, start: int, *, large: bool):
    typ = pa.large_string() if large else pa.string()
    if kind == "plain":
        return pa.array(values, typ)
    if kind == "slice":  # junk before and after, the offset mid validity byte
        return pa.array(["JUNK", None] * start + values + ["ẞ"], typ).slice(2 * start, len(values))
    k = min(start, len(values))
    return pa.chunked_array([pa.array(values[:k], typ), pa.array(values[k:], typ)], typ)


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(_value, max_size=30),
    kind=st.sampled_from(["plain", "slice", "chunked"]),
    start=st.integers(0, 9),
    large=st.booleans(),
)
@example(values=[], kind="plain", start=0, large=False)
@example(values=[None, None], kind="slice", start=3, large=True)
@example(values=["", "ẞ", "", "İ"], kind="chunked", start=2, large=False)
@example(values=["ABC ß", "ΐ" * 300 + "x", None, "ﬃ" * 50], kind="slice", start=1, large=False)
def test_matches_python(values: list[str | None], kind: str, start: int, large: bool) -> None:
    arr = layout(values, kind, start, large=large)
    got = casefold(arr)
    assert got.type == arr.type
    assert type(got) is type(arr)
    if isinstance(arr, pa.ChunkedArray):
        assert [len(c) for c in got.chunks] == [len(c) for c in arr.chunks]
    got.validate(full=True)
    assert got.to_pylist() == _want(values)


def test_every_code_point() -> None:
    """All 1,112,064 scalar values, one string each and all in one string."""
    arr = pa.array(_ALL)
    assert casefold(arr).to_pylist() == [c.casefold() for c in _ALL]
    whole = "".join(_ALL)
    assert casefold(pa.array([whole, whole[::-1]], pa.large_string())).to_pylist() == [
        whole.casefold(),
        whole[::-1].casefold(),
    ]


def test_examples() -> None:
    got = casefold(pa.array(["Straße", "GROẞ", "ﬁLE.EXE", "ΌΣΟΣ ς", "ꮳꮃꭹ", "İ", None, ""]))
    assert got.to_pylist() == ["strasse", "gross", "file.exe", "όσοσ σ", "ᏣᎳᎩ", "i̇", None, ""]


def test_ascii_only_and_growth() -> None:
    """The all-ASCII pass, and an output 3x its input (forces the buffer to grow)."""
    ascii_vals = ["HeLLo.EXAMPLE.com", "", None, "@[`{ AZ az"] * 100
    assert casefold(pa.array(ascii_vals)).to_pylist() == _want(ascii_vals)
    grow = ["a" * 7 + "ΐ" * 2000, "İ" * 500, None, "ẞ" * 10]
    assert casefold(pa.array(grow)).to_pylist() == _want(grow)


def test_null_rows_with_bytes_underneath() -> None:
    """A null row may have bytes behind it; they stay hidden and offsets stay right."""
    data = "AẞBİC".encode()
    offsets = np.array([0, 1, 4, 5, 7, 8], np.int32)
    validity = np.array([True, False, True, False, True])
    arr = ab.string_array(offsets, np.frombuffer(data, np.uint8), validity)
    assert casefold(arr).to_pylist() == ["a", None, "b", None, "c"]


def test_empty_and_all_null() -> None:
    assert casefold(pa.array([], pa.string())).to_pylist() == []
    assert casefold(pa.array([None] * 9, pa.large_string())).to_pylist() == [None] * 9
    empty = pa.chunked_array([], pa.string())
    assert casefold(empty).type == pa.string()
    assert len(casefold(empty)) == 0


def test_rejects_non_string() -> None:
    with pytest.raises(TypeError):
        casefold(pa.array([b"A"]))


_byte_rows = st.lists(
    st.one_of(
        st.binary(max_size=12),
        _text.map(str.encode),
        st.lists(
            st.sampled_from([0x80, 0xBF, 0xC2, 0xC3, 0xE0, 0xED, 0xF0, 0xF4, 0xFF, 0x41]),
            max_size=8,
        ).map(bytes),
        st.sampled_from(  # cut 'ẞ', a surrogate, past U+10FFFF, overlong 'A' (2, 3, 4 bytes)
            [
                "ẞ".encode()[:2],
                b"\xed\xa0\x80",
                b"\xf4\x90\x80\x80",
                b"\xc1\x81",
                b"\xe0\x81\x81",
                b"\xf0\x80\x81\x81",
                b"\xe1\xba\x9e",
            ]
        ),
    ),
    max_size=20,
)


@settings(max_examples=300, deadline=None)
@given(rows=_byte_rows, large=st.booleans())
@example(rows=[b"\xe1\xba", b"\x9eA", "ẞ".encode()], large=False)  # 'ẞ' split over two rows
@example(rows=[b"\xe0\x81\x81\xe0\x83\x80\xf0\x80\x84\x80\xc1\x81"], large=True)  # overlong A, À, Ā
def test_invalid_utf8_copied_through(rows: list[bytes], large: bool) -> None:
    """Malformed bytes are kept (as ``surrogateescape`` keeps them); valid parts fold."""
    offsets = np.zeros(len(rows) + 1, np.int64 if large else np.int32)
    offsets[1:] = np.cumsum([len(r) for r in rows])
    data = np.frombuffer(b"".join(rows), np.uint8)
    out_off, out = casefold_buffers(offsets, data)
    got = [bytes(out[out_off[i] : out_off[i + 1]]) for i in range(len(rows))]
    esc = "surrogateescape"
    assert got == [r.decode("utf-8", esc).casefold().encode("utf-8", esc) for r in rows]
    assert out_off.dtype == offsets.dtype
    assert out_off[-1] == len(out)


def test_table_is_python_and_fast() -> None:
    t0 = time.perf_counter()
    table = casefold_table.__wrapped__()
    assert time.perf_counter() - t0 < 0.3
    cps = table.code_points
    assert np.all(np.diff(cps) > 0)
    want = [c for c in range(0x110000) if c not in _SURROGATES and chr(c).casefold() != chr(c)]
    assert cps.tolist() == want
    for k, c in enumerate(cps.tolist()):
        folded = bytes(table.data[table.offsets[k] : table.offsets[k + 1]])
        assert folded == chr(c).casefold().encode()
        assert table.slots[table.pages[c >> 8] + (c & 0xFF)] == k
    assert casefold_table() is casefold_table()


def test_casefold_str() -> None:
    assert casefold_str("Straße İ ﬁ") == "Straße İ ﬁ".casefold()
    assert casefold(pa.array(["Straße İ ﬁ"])).to_pylist() == [casefold_str("Straße İ ﬁ")]


def test_folds_into_ascii_is_every_such_code_point() -> None:
    """Brute force over every code point: non-ASCII whose ``casefold`` holds an ASCII char."""
    want = {
        chr(c).encode("utf-8", "surrogatepass")
        for c in range(0x80, 0x110000)
        if any(ord(x) < 0x80 for x in chr(c).casefold())
    }
    assert set(folds_into_ascii()) == want
