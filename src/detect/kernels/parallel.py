"""Run a probe kernel over row ranges on N threads, and over Arrow chunks and dictionaries.

Why threads and not processes: every kernel is compiled ``nogil`` (see ``_jit``), so
a thread pool runs them truly in parallel on shared, zero-copy numpy views of the
Arrow buffers, with no pickling. Results are written or concatenated in row order,
so they are identical to a one-thread run (tested in ``tests/kernels/test_parallel.py``).

This module also holds the two Arrow-level drivers every set kernel shares, so that
chunked arrays (chunks in turn, row offsets kept) and dictionary arrays (match the
dictionary once, gather by index) are handled in one place:

- :func:`probe_ids` for kernels that give one indicator id (or -1) per row;
- :func:`probe_pairs` for kernels that give any number of ``(row, id)`` pairs.

Examples
--------
>>> import numpy as np
>>> out = np.zeros(10, np.int64)
>>> def fill(a, b):
...     out[a:b] = np.arange(a, b) * 2
>>> _ = run_row_ranges(fill, 10, threads=3, min_rows=2)
>>> out.tolist()
[0, 2, 4, 6, 8, 10, 12, 14, 16, 18]
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import TypeVar

import numpy as np
import pyarrow as pa

from detect import arrow_buffers as ab

__all__ = ["probe_ids", "probe_pairs", "row_ranges", "run_row_ranges"]

T = TypeVar("T")

MIN_ROWS = 65_536  # below this a thread costs more than it saves
RANGES_PER_THREAD = 4  # a few ranges per thread even out uneven rows (long strings, hits)


def row_ranges(n: int, threads: int, *, min_rows: int = MIN_ROWS) -> list[tuple[int, int]]:
    """Split ``range(n)`` into contiguous ``(start, stop)`` pieces, in order.

    One piece when ``threads <= 1`` or ``n`` is small; otherwise up to
    ``threads * RANGES_PER_THREAD`` pieces of at least ``min_rows`` rows.
    """
    if threads <= 1 or n <= min_rows:
        return [(0, n)]
    pieces = max(1, min(threads * RANGES_PER_THREAD, n // max(min_rows, 1)))
    bounds = np.linspace(0, n, pieces + 1).astype(np.int64)
    return [(int(a), int(b)) for a, b in pairwise(bounds) if b > a]


def run_row_ranges(
    fn: Callable[[int, int], T], n: int, *, threads: int = 1, min_rows: int = MIN_ROWS
) -> list[T]:
    """Call ``fn(start, stop)`` for every piece of :func:`row_ranges`; results in row order.

    ``fn`` must only read shared inputs and write its own rows of any shared output.
    """
    ranges = row_ranges(n, threads, min_rows=min_rows)
    if len(ranges) == 1:
        return [fn(*ranges[0])]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(fn, a, b) for a, b in ranges]
        return [f.result() for f in futures]


def _gather_ids(per_entry: np.ndarray, parts: ab.DictionaryParts) -> np.ndarray:
    """Row ids of a dictionary array from the ids of its dictionary entries; -1 under nulls."""
    idx = parts.indices.astype(np.intp, copy=False)
    if len(per_entry) == 0:  # only possible when every row is null
        return np.full(len(idx), -1, dtype=np.int32)
    if parts.validity is not None:
        idx = np.where(parts.validity, idx, 0)
    out = per_entry[idx]
    if parts.validity is not None:
        out[~parts.validity] = -1
    return out


def probe_ids(
    arr: pa.Array | pa.ChunkedArray,
    probe_plain: Callable[[pa.Array], np.ndarray],
) -> np.ndarray:
    """Per-row int32 ids (-1: no match) of ``arr`` from a probe of plain (non-dictionary) arrays.

    Chunks are probed in turn and concatenated; a dictionary chunk is probed on its
    dictionary once and the result gathered with the indices (null index: -1).
    """
    parts: list[np.ndarray] = []
    for chunk in ab.chunks(arr):
        if pa.types.is_dictionary(chunk.type):
            dparts = ab.dictionary_parts(chunk)
            parts.append(_gather_ids(probe_plain(dparts.dictionary), dparts))
        else:
            parts.append(probe_plain(chunk))
    if not parts:
        return np.zeros(0, dtype=np.int32)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _expand_dictionary_pairs(
    rows: np.ndarray, ids: np.ndarray, n_entries: int, parts: ab.DictionaryParts
) -> tuple[np.ndarray, np.ndarray]:
    """Event-row pairs of a dictionary array from ``(entry, id)`` pairs of its dictionary.

    Pairs are grouped per dictionary entry (CSR), then every non-null row takes the
    group of its code: all vectorised numpy, no per-row Python.
    """
    order = np.argsort(rows, kind="stable")
    rows, ids = rows[order], ids[order]
    counts = np.bincount(rows, minlength=n_entries).astype(np.int64)
    starts = np.zeros(n_entries + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    idx = parts.indices.astype(np.intp, copy=False)
    if n_entries == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    if parts.validity is not None:
        idx = np.where(parts.validity, idx, 0)
    per_row = counts[idx]
    if parts.validity is not None:
        per_row[~parts.validity] = 0
    total = int(per_row.sum())
    out_rows = np.repeat(np.arange(len(idx), dtype=np.int64), per_row)
    first = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(per_row, out=first[1:])
    within = np.arange(total, dtype=np.int64) - np.repeat(first[:-1], per_row)
    out_ids = ids[np.repeat(starts[idx], per_row) + within]
    return out_rows, out_ids


def probe_pairs(
    arr: pa.Array | pa.ChunkedArray,
    probe_plain: Callable[[pa.Array], tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """All ``(row, id)`` pairs of ``arr``, rows int64 ascending, from a probe of plain arrays.

    ``probe_plain`` returns pairs with rows relative to its chunk; this adds each
    chunk's row offset. A dictionary chunk is probed on its dictionary once.
    """
    rows_parts: list[np.ndarray] = []
    ids_parts: list[np.ndarray] = []
    base = 0
    for chunk in ab.chunks(arr):
        if pa.types.is_dictionary(chunk.type):
            dparts = ab.dictionary_parts(chunk)
            drows, dids = probe_plain(dparts.dictionary)
            rows, ids = _expand_dictionary_pairs(drows, dids, len(dparts.dictionary), dparts)
        else:
            rows, ids = probe_plain(chunk)
        rows_parts.append(rows + base if base else rows)
        ids_parts.append(ids)
        base += len(chunk)
    if not rows_parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
    if len(rows_parts) == 1:
        return rows_parts[0], ids_parts[0]
    return np.concatenate(rows_parts), np.concatenate(ids_parts)
