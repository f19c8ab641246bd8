"""The Arrow buffer views agree with pyarrow's own view of the same array, slices included."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from detect import arrow_buffers as ab

_texts = st.lists(st.one_of(st.none(), st.text(max_size=8)), max_size=40)
_STRING_TYPES = [pa.string(), pa.large_string(), pa.binary(), pa.large_binary()]


def _rows(buf: ab.StringBuffers) -> list[bytes | None]:
    n = len(buf.offsets) - 1
    valid = ab.validity_or_ones(buf.validity, n)
    return [
        bytes(buf.data[buf.offsets[i] : buf.offsets[i + 1]]) if valid[i] else None for i in range(n)
    ]


def _encoded(values: list[str | None]) -> list[bytes | None]:
    return [None if v is None else v.encode() for v in values]


@settings(max_examples=200, deadline=None)
@given(values=_texts, start=st.integers(0, 17), typ=st.sampled_from(_STRING_TYPES))
@example(values=[], start=0, typ=pa.string())
@example(values=[None] * 9, start=3, typ=pa.large_string())
def test_string_buffers(values: list[str | None], start: int, typ: pa.DataType) -> None:
    k = min(start, len(values))
    arr = pa.array(
        _encoded(values) if pa.types.is_binary(typ) or pa.types.is_large_binary(typ) else values,
        type=typ,
    ).slice(k)
    buf = ab.string_buffers(arr)
    assert buf.offsets.dtype == (np.int64 if "large" in str(typ) else np.int32)
    assert _rows(buf) == _encoded(values[k:])
    if arr.null_count == 0:
        assert buf.validity is None
    else:
        assert buf.validity.tolist() == arr.is_valid().to_pylist()


@settings(max_examples=100, deadline=None)
@given(parts=st.lists(_texts, max_size=4))
def test_chunked_string_buffers(parts: list[list[str | None]]) -> None:
    chunked = pa.chunked_array([pa.array(p, pa.string()) for p in parts], type=pa.string())
    flat = [v for p in parts for v in p]
    assert _rows(ab.string_buffers(chunked)) == _encoded(flat)
    assert [r for c in ab.chunks(chunked) for r in _rows(ab.string_buffers(c))] == _encoded(flat)


def test_string_buffers_of_all_null_and_empty() -> None:
    assert _rows(ab.string_buffers(pa.nulls(5, pa.string()))) == [None] * 5
    assert _rows(ab.string_buffers(pa.array([], pa.string()))) == []


def test_string_buffers_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="string or binary"):
        ab.string_buffers(pa.array([1, 2]))


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.binary(min_size=4, max_size=4)), max_size=30),
    start=st.integers(0, 11),
)
def test_fixed_binary_round_trip(values: list[bytes | None], start: int) -> None:
    arr = pa.array(values, pa.binary(4)).slice(min(start, len(values)))
    buf = ab.fixed_binary_buffers(arr)
    assert buf.values.shape == (len(arr), 4)
    valid = ab.validity_or_ones(buf.validity, len(arr))
    assert [
        bytes(r) if v else None for r, v in zip(buf.values, valid, strict=True)
    ] == arr.to_pylist()
    assert ab.fixed_binary_array(buf.values, buf.validity).to_pylist() == arr.to_pylist()


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.integers(0, 65535)), max_size=30),
    start=st.integers(0, 11),
)
def test_primitive_buffers(values: list[int | None], start: int) -> None:
    arr = pa.array(values, pa.uint16()).slice(min(start, len(values)))
    vals, validity = ab.primitive_buffers(arr)
    valid = ab.validity_or_ones(validity, len(arr))
    assert vals.dtype == np.uint16
    assert [int(x) if v else None for x, v in zip(vals, valid, strict=True)] == arr.to_pylist()


@settings(max_examples=100, deadline=None)
@given(values=_texts, start=st.integers(0, 11))
def test_dictionary_parts(values: list[str | None], start: int) -> None:
    arr = pa.array(values, pa.string()).dictionary_encode().slice(min(start, len(values)))
    parts = ab.dictionary_parts(arr)
    dictionary = parts.dictionary.to_pylist()
    valid = ab.validity_or_ones(parts.validity, len(arr))
    got = [dictionary[i] if v else None for i, v in zip(parts.indices, valid, strict=True)]
    assert got == arr.to_pylist()


def test_dictionary_parts_of_chunks_with_different_dictionaries() -> None:
    chunked = pa.chunked_array(
        [pa.array(["a", "b"]).dictionary_encode(), pa.array(["c", None, "a"]).dictionary_encode()]
    )
    parts = ab.dictionary_parts(chunked)
    dictionary = parts.dictionary.to_pylist()
    valid = ab.validity_or_ones(parts.validity, 5)
    assert [dictionary[i] if v else None for i, v in zip(parts.indices, valid, strict=True)] == [
        "a",
        "b",
        "c",
        None,
        "a",
    ]


@settings(max_examples=100, deadline=None)
@given(values=_texts, large=st.booleans())
def test_string_array_from_buffers(values: list[str | None], large: bool) -> None:
    data = b"".join(v.encode() for v in values if v is not None)
    lengths = [0 if v is None else len(v.encode()) for v in values]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64 if large else np.int32)
    validity = np.array([v is not None for v in values], dtype=bool)
    arr = ab.string_array(offsets, np.frombuffer(data, np.uint8), validity)
    arr.validate(full=True)
    assert arr.type == (pa.large_string() if large else pa.string())
    assert arr.to_pylist() == values


def test_map_chunks_keeps_layout() -> None:
    chunked = pa.chunked_array([pa.array(["a"]), pa.array(["b", "c"])])
    out = ab.map_chunks(lambda c: pa.array([len(c)] * len(c)), chunked)
    assert isinstance(out, pa.ChunkedArray) and out.num_chunks == 2
    assert out.to_pylist() == [1, 2, 2]


@settings(max_examples=100, deadline=None)
@given(
    parts=st.lists(st.tuples(_texts, st.booleans()), min_size=1, max_size=4),
    data=st.data(),
)
def test_take_decoded_matches_python(parts, data) -> None:
    chunks = [
        pa.array(v, pa.string()).dictionary_encode() if d else pa.array(v, pa.string())
        for v, d in parts
    ]
    typ = pa.dictionary(pa.int32(), pa.string())
    col = pa.chunked_array([c.cast(typ) for c in chunks], typ)
    flat = [v for p, _ in parts for v in p]
    rows = data.draw(st.lists(st.integers(0, max(len(flat) - 1, 0)), max_size=30)) if flat else []
    out = ab.take_decoded(col, np.array(rows, np.int64))
    assert out.type == pa.string()
    assert out.to_pylist() == [flat[i] for i in rows]
