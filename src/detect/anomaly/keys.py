"""Encode key columns to dense integer ids once, exactly, so kernels see only integers.

``encode_keys([col_a, col_b, ...])`` gives every row an ``int64`` id such that two rows
share an id exactly when they are equal on every column (nulls equal to each other and to
nothing else). Ids are dense (``0 .. n - 1``) and follow the lexicographic order of the
per-column dictionary codes, which depends only on first appearance within the call, so
ids are stable for one call but not across calls: detectors map them back to values with
``first`` (a row index holding each id) and never persist ids.

Each column is hashed once by Arrow (``dictionary_encode``); the codes are combined in
mixed radix and re-densified with a sort whenever the radix product could overflow, so
the result is exact for any number of columns and any cardinality.

Examples
--------
>>> import pyarrow as pa
>>> k = encode_keys([pa.array(["a", "b", "a", None]), pa.array([1, 1, 1, 1])])
>>> k.ids.tolist(), k.count
([0, 1, 0, 2], 3)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["EncodedKeys", "encode_keys", "encode_values"]

_RADIX_LIMIT = 1 << 62


@dataclass(frozen=True)
class EncodedKeys:
    """Dense ids per row, their number, and one row index per id (``first[id]``)."""

    ids: np.ndarray  # int64, one per row
    count: int
    first: np.ndarray  # int64, row index of the first row carrying each id


def _codes(col: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, int]:
    """Dictionary codes of one column (null -> its own code), and the code count."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    enc = pc.dictionary_encode(col, null_encoding="encode")
    n = len(enc.dictionary)
    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return codes, max(n, 1)


def _densify(codes: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    uniq, first, inv = np.unique(codes, return_index=True, return_inverse=True)
    return inv.astype(np.int64, copy=False).reshape(-1), max(len(uniq), 1), first


def encode_keys(columns: list[pa.Array | pa.ChunkedArray]) -> EncodedKeys:
    """Dense ``int64`` ids for the rows of ``columns`` (all the same length), exact."""
    if not columns:
        msg = "encode_keys needs at least one column"
        raise ValueError(msg)
    n_rows = len(columns[0])
    if n_rows == 0:
        return EncodedKeys(np.zeros(0, np.int64), 0, np.zeros(0, np.int64))
    acc, radix = _codes(columns[0])
    for col in columns[1:]:
        if len(col) != n_rows:
            msg = "key columns differ in length"
            raise ValueError(msg)
        codes, n = _codes(col)
        if radix * n >= _RADIX_LIMIT:
            acc, radix, _ = _densify(acc)
        acc = acc * n + codes
        radix *= n
    ids, count, first = _densify(acc)
    return EncodedKeys(ids, count, first.astype(np.int64, copy=False))


def encode_values(col: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, int]:
    """Dense ``int64`` ids of one column's values (for distinct counting), and their count."""
    if len(col) == 0:
        return np.zeros(0, np.int64), 0
    codes, n = _codes(col)
    return codes, n
