"""Cheap ``select`` for the detectors: project first, filter only when a row must go.

A canonical batch has ~80 columns; filtering it before projecting copies them all. Here
the dataset test runs once per dictionary value (``event.dataset`` is dictionary
encoded), a batch with no wanted dataset returns at once, and a batch whose rows are all
kept is projected without a copy (the usual case: conn batches for conn detectors).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["dataset_mask", "keep_rows"]


def _single(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col


def dataset_mask(
    col: pa.Array | pa.ChunkedArray, datasets: Sequence[str], *, null_ok: bool
) -> np.ndarray | None:
    """Rows whose dataset is one of ``datasets`` (nulls: ``null_ok``); None: every row."""
    col = _single(col)
    n = len(col)
    value_set = pa.array(list(datasets), pa.string())
    if pa.types.is_dictionary(col.type):
        dictionary = col.dictionary.cast(pa.string())
        hit = pc.fill_null(pc.is_in(dictionary, value_set=value_set), False)
        hit = pc.or_(hit, pc.and_(pc.is_null(dictionary), pa.scalar(null_ok)))
        table = np.append(np.asarray(hit.to_numpy(zero_copy_only=False), dtype=bool), null_ok)
        indices = col.indices
        if indices.null_count:
            indices = pc.fill_null(indices.cast(pa.int64()), len(table) - 1)
        idx = indices.to_numpy(zero_copy_only=False)
        if table[:-1].all() and (null_ok or not col.indices.null_count):
            return None
        if not table.any():
            return np.zeros(n, dtype=bool)
        return table[idx]
    m = pc.is_in(col.cast(pa.string()), value_set=value_set)
    m = pc.fill_null(m, null_ok)
    out = np.asarray(m.to_numpy(zero_copy_only=False), dtype=bool)
    return None if out.all() else out


def keep_rows(
    batch: pa.RecordBatch | pa.Table,
    required: Sequence[str],
    datasets: Sequence[str] | None,
    *,
    null_dataset_ok: bool = True,
) -> np.ndarray | None:
    """Rows with every ``required`` column valid and a wanted dataset; None: every row.

    ``datasets`` empty or None, or no ``event.dataset`` column: any dataset.
    """
    mask = None
    if datasets and "event.dataset" in batch.schema.names:
        mask = dataset_mask(batch.column("event.dataset"), datasets, null_ok=null_dataset_ok)
        if mask is not None and not mask.any():
            return mask
    for c in required:
        col = batch.column(c)
        if col.null_count:
            v = np.asarray(pc.is_valid(col).to_numpy(zero_copy_only=False), dtype=bool)
            mask = v if mask is None else mask & v
    return mask
