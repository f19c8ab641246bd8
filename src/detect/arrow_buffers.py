"""Zero-copy numpy views of Arrow buffers: the one module that touches Arrow memory layout.

Kernels (``detect.kernels``) take plain numpy arrays; this module turns Arrow arrays
into those arrays and back, so the details of the Arrow format (``arr.offset`` of a
slice, validity bitmaps starting off a byte boundary, 32- and 64-bit string offsets,
chunked arrays, dictionary encoding) are handled in one place and tested once.

Conventions, shared by every helper:

- Views are zero-copy where Arrow allows it; the only copies are the validity mask
  (a bitmap is unpacked to one ``bool`` per row) and combining chunks, both noted.
- ``validity`` is ``None`` when the array has no nulls, otherwise a ``bool`` array
  of ``len(arr)`` with ``True`` for a valid row. Kernels that need a mask anyway
  use :func:`validity_or_ones`.
- String offsets are *not* rebased: ``data[offsets[i]:offsets[i + 1]]`` is row ``i``
  of the (sliced) array. This keeps slices zero-copy.

Examples
--------
>>> import pyarrow as pa
>>> buf = string_buffers(pa.array(["ab", None, "c"]).slice(1))
>>> buf.offsets.tolist(), buf.validity.tolist()
([2, 2, 3], [False, True])
>>> bytes(buf.data[buf.offsets[1]:buf.offsets[2]])
b'c'
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np
import pyarrow as pa

__all__ = [
    "DictionaryParts",
    "FixedBinaryBuffers",
    "StringBuffers",
    "chunks",
    "dictionary_parts",
    "fixed_binary_array",
    "fixed_binary_buffers",
    "map_chunks",
    "primitive_buffers",
    "string_array",
    "string_buffers",
    "take_decoded",
    "validity_bitmap",
    "validity_mask",
    "validity_or_ones",
]

_EMPTY_U8 = np.zeros(0, dtype=np.uint8)


class StringBuffers(NamedTuple):
    """Views of a string/binary array: row ``i`` is ``data[offsets[i]:offsets[i + 1]]``."""

    offsets: np.ndarray  # int32 or int64, length n + 1, not rebased to 0
    data: np.ndarray  # uint8, the whole value buffer
    validity: np.ndarray | None  # bool, length n, or None without nulls


class FixedBinaryBuffers(NamedTuple):
    """Views of a fixed_size_binary(w) array as an ``(n, w)`` uint8 matrix."""

    values: np.ndarray  # uint8, shape (n, width)
    validity: np.ndarray | None


class DictionaryParts(NamedTuple):
    """A dictionary array split so that work is done once per dictionary entry."""

    dictionary: pa.Array  # the distinct values (may itself hold nulls)
    indices: np.ndarray  # integer codes, length n; undefined where validity is False
    validity: np.ndarray | None  # validity of the indices (not of the dictionary values)


def chunks(arr: pa.Array | pa.ChunkedArray) -> Iterator[pa.Array]:
    """Yield the contiguous pieces of ``arr``: itself for an Array, its chunks otherwise."""
    if isinstance(arr, pa.ChunkedArray):
        yield from arr.chunks
    else:
        yield arr


def map_chunks(
    fn: Callable[[pa.Array], pa.Array], arr: pa.Array | pa.ChunkedArray
) -> pa.Array | pa.ChunkedArray:
    """Apply ``fn`` to every chunk of ``arr``; keeps the chunk layout, so nothing is combined.

    The way to run a buffer-level kernel over a chunked column without copying it
    into one array first (fletcher's ``apply_per_chunk``).
    """
    if isinstance(arr, pa.ChunkedArray):
        out = [fn(c) for c in arr.chunks]
        if not out:
            return pa.chunked_array([], type=fn(pa.array([], type=arr.type)).type)
        return pa.chunked_array(out)
    return fn(arr)


def _single(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous Array; combining several chunks copies (documented on callers)."""
    if isinstance(arr, pa.ChunkedArray):
        if arr.num_chunks == 1:
            return arr.chunk(0)
        return arr.combine_chunks()
    return arr


def take_decoded(arr: pa.Array | pa.ChunkedArray, rows: np.ndarray) -> pa.Array:
    """Rows ``rows`` of ``arr`` as one plain array, dictionary chunks decoded.

    ``ChunkedArray.take`` unifies the dictionaries of all chunks first (a hash of every
    entry of every chunk: seconds for a few hundred batches); this takes per chunk from
    the chunk's own dictionary and decodes only the rows taken.

    >>> a, b = pa.array(["a", "b"]).dictionary_encode(), pa.array(["c"]).dictionary_encode()
    >>> take_decoded(pa.chunked_array([a, b]), np.array([2, 0])).to_pylist()
    ['c', 'a']
    """
    parts = list(chunks(arr))
    rows = np.asarray(rows, np.int64)

    def plain(a: pa.Array) -> pa.Array:
        return a.dictionary_decode() if pa.types.is_dictionary(a.type) else a

    if len(parts) == 1:
        return plain(parts[0].take(pa.array(rows)))
    typ = arr.type.value_type if pa.types.is_dictionary(arr.type) else arr.type
    if rows.size == 0:
        return pa.array([], typ)
    bounds = np.cumsum([0] + [len(c) for c in parts])
    which = np.searchsorted(bounds, rows, "right") - 1
    order = np.argsort(which, kind="stable")
    w = which[order]
    cuts = np.r_[np.flatnonzero(np.r_[True, w[1:] != w[:-1]]), w.size]
    pieces = [
        plain(parts[int(w[a])].take(pa.array(rows[order[a:b]] - bounds[w[a]])))
        for a, b in itertools.pairwise(cuts)
    ]
    out = pa.concat_arrays([p.cast(typ) for p in pieces])
    if np.all(order[1:] > order[:-1]):
        return out
    back = np.empty_like(order)
    back[order] = np.arange(order.size)
    return out.take(pa.array(back))


def validity_mask(arr: pa.Array) -> np.ndarray | None:
    """Validity of ``arr`` as ``bool`` per row (``True`` = valid), ``None`` without nulls.

    Honours ``arr.offset`` at bit granularity, so slices starting mid-byte are right.
    """
    n = len(arr)
    if arr.null_count == 0:
        return None
    if arr.type == pa.null():
        return np.zeros(n, dtype=np.bool_)
    bitmap = arr.buffers()[0]
    if bitmap is None:  # defensive: nulls without a bitmap cannot happen for our types
        return np.zeros(n, dtype=np.bool_)
    start = arr.offset // 8
    shift = arr.offset % 8
    nbytes = (shift + n + 7) // 8
    raw = np.frombuffer(bitmap, dtype=np.uint8, count=nbytes, offset=start)
    bits = np.unpackbits(raw, bitorder="little")[shift : shift + n]
    return bits.view(np.bool_)


def validity_or_ones(validity: np.ndarray | None, n: int) -> np.ndarray:
    """A concrete mask for kernels, which take an array rather than ``None``."""
    if validity is None:
        return np.ones(n, dtype=np.bool_)
    return validity


def validity_bitmap(validity: np.ndarray | None) -> pa.Buffer | None:
    """Pack a ``bool`` mask into an Arrow validity bitmap (``None`` stays ``None``)."""
    if validity is None:
        return None
    return pa.py_buffer(np.packbits(np.asarray(validity, dtype=np.bool_), bitorder="little"))


def string_buffers(arr: pa.Array | pa.ChunkedArray) -> StringBuffers:
    """Offsets, data and validity of a string, large_string, binary or large_binary array.

    A chunked array with several chunks is combined first (a copy); use
    :func:`map_chunks` or :func:`chunks` to stay zero-copy.
    """
    arr = _single(arr)
    typ = arr.type
    if pa.types.is_string(typ) or pa.types.is_binary(typ):
        off_dtype: type[np.integer] = np.int32
    elif pa.types.is_large_string(typ) or pa.types.is_large_binary(typ):
        off_dtype = np.int64
    else:
        msg = f"expected a string or binary array, got {typ}; cast it or decode the dictionary"
        raise TypeError(msg)
    n = len(arr)
    bufs = arr.buffers()
    if bufs[1] is None:  # zero-length arrays may come without an offsets buffer
        offsets = np.zeros(n + 1, dtype=off_dtype)
    else:
        offsets = np.frombuffer(bufs[1], dtype=off_dtype, count=arr.offset + n + 1)[arr.offset :]
    data = _EMPTY_U8 if bufs[2] is None else np.frombuffer(bufs[2], dtype=np.uint8)
    return StringBuffers(offsets, data, validity_mask(arr))


def fixed_binary_buffers(arr: pa.Array | pa.ChunkedArray) -> FixedBinaryBuffers:
    """An ``(n, width)`` uint8 view of a fixed_size_binary array (chunks combined: a copy)."""
    arr = _single(arr)
    if not pa.types.is_fixed_size_binary(arr.type):
        msg = f"expected a fixed_size_binary array, got {arr.type}"
        raise TypeError(msg)
    width = arr.type.byte_width
    n = len(arr)
    buf = arr.buffers()[1]
    if buf is None or n == 0:
        values = np.zeros((n, width), dtype=np.uint8)
    else:
        flat = np.frombuffer(buf, dtype=np.uint8, count=(arr.offset + n) * width)
        values = flat[arr.offset * width :].reshape(n, width)
    return FixedBinaryBuffers(values, validity_mask(arr))


def primitive_buffers(arr: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray | None]:
    """Values and validity of a fixed-width numeric array; values under nulls are undefined."""
    arr = _single(arr)
    typ = arr.type
    if not (pa.types.is_integer(typ) or pa.types.is_floating(typ)):
        msg = f"expected an integer or floating array, got {typ}"
        raise TypeError(msg)
    dtype = np.dtype(typ.to_pandas_dtype())
    n = len(arr)
    buf = arr.buffers()[1]
    if buf is None or n == 0:
        return np.zeros(n, dtype=dtype), validity_mask(arr)
    values = np.frombuffer(buf, dtype=dtype, count=arr.offset + n)[arr.offset :]
    return values, validity_mask(arr)


def dictionary_parts(arr: pa.Array | pa.ChunkedArray) -> DictionaryParts:
    """Dictionary, integer indices and validity of a dictionary array.

    The way to run a kernel on a dictionary column is to run it once on
    ``dictionary`` and gather the per-entry result with ``indices``. A chunked
    array whose chunks carry different dictionaries is unified first (a copy).
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.unify_dictionaries() if arr.num_chunks > 1 else arr
        arr = _single(arr)
    if not pa.types.is_dictionary(arr.type):
        msg = f"expected a dictionary array, got {arr.type}"
        raise TypeError(msg)
    indices, validity = primitive_buffers(arr.indices)
    return DictionaryParts(arr.dictionary, indices, validity)


def string_array(
    offsets: np.ndarray,
    data: np.ndarray,
    validity: np.ndarray | None = None,
) -> pa.Array:
    """Build a string (int32 offsets) or large_string (int64 offsets) array from numpy buffers.

    Offsets must start at 0 and index into ``data``; no per-row Python, no copy of
    ``data`` beyond what ``pa.py_buffer`` needs (none for a contiguous array).
    """
    offsets = np.ascontiguousarray(offsets)
    if offsets.dtype == np.int32:
        typ = pa.string()
    elif offsets.dtype == np.int64:
        typ = pa.large_string()
    else:
        msg = f"offsets must be int32 or int64, got {offsets.dtype}"
        raise TypeError(msg)
    n = len(offsets) - 1
    null_count = 0 if validity is None else int(n - np.count_nonzero(validity))
    bitmap = validity_bitmap(validity) if null_count else None
    return pa.Array.from_buffers(
        typ,
        n,
        [bitmap, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data, dtype=np.uint8))],
        null_count=null_count,
    )


def fixed_binary_array(values: np.ndarray, validity: np.ndarray | None = None) -> pa.Array:
    """Build a fixed_size_binary(width) array from an ``(n, width)`` uint8 matrix."""
    if values.ndim != 2 or values.dtype != np.uint8:
        msg = f"values must be a 2-d uint8 array, got {values.dtype} with shape {values.shape}"
        raise TypeError(msg)
    n, width = values.shape
    null_count = 0 if validity is None else int(n - np.count_nonzero(validity))
    bitmap = validity_bitmap(validity) if null_count else None
    return pa.Array.from_buffers(
        pa.binary(width),
        n,
        [bitmap, pa.py_buffer(np.ascontiguousarray(values))],
        null_count=null_count,
    )
