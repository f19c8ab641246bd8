"""Codes of a string column that arrives as dictionary chunks, without decoding its rows.

Batches read from logs carry their own dictionary per column (organisation names, event
types, a destination's text form). Decoding every row to intern it again costs a string
copy and a hash per row; interning the dictionaries (a few entries per batch) and mapping
each chunk's indices through them costs one integer gather per row. The ids are
renumbered in order of first appearance over the rows, so they equal what
:func:`~detect.kernels.dns_features.intern_strings` gives on the decoded column.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from detect import arrow_buffers as ab
from detect.kernels._jit import njit
from detect.kernels.dns_features import intern_strings

__all__ = ["chunk_codes"]


@njit
def _renumber(entry_code, indices, valid, has_valid, seen, out, start, m):
    """Rows ``indices`` of one chunk: the entry's global code, renumbered by first
    appearance (``seen`` maps global code -> id, -1 = not yet); -1 for nulls."""
    for i in range(indices.size):
        if has_valid and not valid[i]:
            out[start + i] = -1
            continue
        g = entry_code[indices[i]]
        if g < 0:  # a null dictionary entry
            out[start + i] = -1
            continue
        k = seen[g]
        if k < 0:
            k = m
            seen[g] = m
            m += 1
        out[start + i] = k
    return m


def _entries(chunk: pa.Array) -> pa.Array:
    """The strings a chunk's indices point into: its dictionary, or the chunk itself."""
    return chunk.dictionary if pa.types.is_dictionary(chunk.type) else chunk


def chunk_codes(chunks: list[pa.Array]) -> tuple[np.ndarray, int]:
    """Dense ``int64`` codes of the rows of ``chunks`` (dictionary-encoded or plain string
    arrays, any mix) in order of first appearance, -1 for nulls; and the code count.

    >>> a = pa.array(["x", "y", "x"]).dictionary_encode()
    >>> b = pa.array(["z", None, "y"]).dictionary_encode()
    >>> codes, n = chunk_codes([b, a])
    >>> codes.tolist(), n
    ([0, -1, 1, 2, 1, 2], 3)
    """
    chunks = [c for c in chunks if len(c)]
    if not chunks:
        return np.zeros(0, np.int64), 0
    entries = [_entries(c) for c in chunks]
    large = any(pa.types.is_large_string(e.type) for e in entries)
    typ = pa.large_string() if large else pa.string()
    entry_codes, first = intern_strings(pa.chunked_array([e.cast(typ) for e in entries], typ))
    seen = np.full(len(first), -1, np.int64)
    out = np.empty(sum(len(c) for c in chunks), np.int64)
    m, start, at = 0, 0, 0
    for chunk, entry in zip(chunks, entries, strict=True):
        own = entry_codes[at : at + len(entry)]
        at += len(entry)
        if pa.types.is_dictionary(chunk.type):
            indices, valid = ab.primitive_buffers(chunk.indices)
        else:
            indices, valid = np.arange(len(chunk), dtype=np.int64), ab.validity_mask(chunk)
        has_valid = valid is not None
        valid = valid if has_valid else np.ones(0, np.bool_)
        m = _renumber(own, indices, valid, has_valid, seen, out, start, m)
        start += len(chunk)
    return out, m
