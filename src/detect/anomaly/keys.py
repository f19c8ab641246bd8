"""Encode key columns to dense integer ids once, exactly, so kernels see only integers.

``encode_keys([col_a, col_b, ...])`` gives every row an ``int64`` id such that two rows
share an id exactly when they are equal on every column (nulls equal to each other and to
nothing else). Ids are dense (``0 .. n - 1``) in order of first appearance within the
call, so they are stable for one call but not across calls: detectors map them back to
values with ``first`` (the first row carrying each id) and never persist ids.

Each column is hashed once (string columns by :func:`detect.kernels.dns_features.
intern_strings`, faster than Arrow's ``dictionary_encode`` on short keys such as IPs;
other types by ``dictionary_encode``); the codes are combined in
mixed radix (re-densified whenever the radix product could overflow) and the combined
``int64`` codes are hashed once more into dense ids: exact for any number of columns and
any cardinality, no sort.

Examples
--------
>>> import pyarrow as pa
>>> k = encode_keys([pa.array(["a", "b", "a", None]), pa.array([1, 1, 1, 1])])
>>> k.ids.tolist(), k.count
([0, 1, 0, 2], 3)
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detect import arrow_buffers as ab
from detect.kernels.dictionary_codes import chunk_codes
from detect.kernels.dns_features import group_int64, intern_strings

__all__ = ["EncodedKeys", "encode_keys", "encode_values"]

_RADIX_LIMIT = 1 << 62


@dataclass(frozen=True)
class EncodedKeys:
    """Dense ids per row, their number, and one row index per id (``first[id]``)."""

    ids: np.ndarray  # int64, one per row
    count: int
    first: np.ndarray  # int64, row index of the first row carrying each id


def _codes(col: pa.Array | pa.ChunkedArray | list[pa.Array]) -> tuple[np.ndarray, int]:
    """Dictionary codes of one column (null -> its own code), and the code count.

    A list of chunks may mix dictionary and plain string arrays.
    """
    chunks = col if isinstance(col, list) else list(ab.chunks(col))
    if any(pa.types.is_dictionary(c.type) for c in chunks) and all(
        _stringish(c.dictionary.type if pa.types.is_dictionary(c.type) else c.type)
        for c in chunks
    ):
        # dictionary chunks: intern the dictionaries, gather by index (no row decoded)
        codes, n = chunk_codes(chunks)
        if (codes < 0).any():
            codes[codes < 0] = n
            n += 1
        return codes, max(n, 1)
    if isinstance(col, list):
        col = pa.chunked_array(chunks)
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        codes, first = intern_strings(col)
        n = len(first)
        if col.null_count:
            codes[codes < 0] = n
            n += 1
        return codes, max(n, 1)
    enc = pc.dictionary_encode(col, null_encoding="encode")
    n = len(enc.dictionary)
    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return codes, max(n, 1)


def _stringish(typ: pa.DataType) -> bool:
    return pa.types.is_string(typ) or pa.types.is_large_string(typ)


def _densify(codes: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """Dense ids in order of first appearance (one hash pass), and each id's first row."""
    ids, is_first, m = group_int64(codes)
    return ids, max(m, 1), np.flatnonzero(is_first)


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


# --------------------------------------------------------------------------- run helpers
# Shared by the window detectors (scan, long_conn, volume): times in int64 microseconds,
# the watermark carried in the state, the state table's "meta" row.

US = 1_000_000
KIND = "_kind"  # state column: 0 = meta row (watermark in ``_wm``), >= 1 = detector rows
WM = "_wm"


def ts_us(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """``timestamp[us]`` column as ``int64`` microseconds (nulls must be filtered before)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_timestamp(col.type) and col.type.unit != "us":
        col = col.cast(pa.timestamp("us", tz=col.type.tz))
    return col.cast(pa.int64()).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def state_watermark(state: pa.Table | None) -> int | None:
    """The watermark a previous run left in ``state`` (None: no run yet)."""
    if state is None or state.num_rows == 0 or WM not in state.column_names:
        return None
    kinds = state.column(KIND).to_numpy(zero_copy_only=False)
    meta = np.flatnonzero(kinds == 0)
    if meta.size == 0:
        return None
    v = state.column(WM)[int(meta[0])].as_py()
    return None if v is None else int(v)


def state_part(
    state: pa.Table | None, kind: int, columns: list[str], *, view: bool = False
) -> pa.Table | None:
    """The rows of one kind from a state table, projected to ``columns`` (None if absent).

    ``view``: a zero-copy slice when the kind's rows are contiguous (as :func:`make_state`
    writes them), for a part the caller only reads: a slice keeps the state's buffers
    alive, so a part carried into the next state unchanged is better copied (default).
    """
    if state is None or state.num_rows == 0:
        return None
    if view:
        kinds = state.column(KIND).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(kinds == kind)
        if rows.size == 0:
            return None
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        if hi - lo == rows.size:
            return state.select(columns).slice(lo, hi - lo)
    part = state.filter(pc.equal(state.column(KIND), kind)).select(columns)
    return part if part.num_rows else None


def make_state(schema: pa.Schema, watermark: int | None, parts: dict[int, pa.Table]) -> pa.Table:
    """One state table: a meta row holding the watermark, then each part tagged by kind.

    ``schema`` lists every detector column (all nullable); parts fill their own columns.
    """
    full = pa.schema([pa.field(KIND, pa.int8()), pa.field(WM, pa.int64()), *schema])
    tables = [pa.table({KIND: pa.array([0], pa.int8()), WM: pa.array([watermark], pa.int64())})]
    for kind, t in parts.items():
        if t is None or t.num_rows == 0:
            continue
        cols = {
            KIND: pa.array(np.full(t.num_rows, kind, np.int8)),
            WM: pa.nulls(t.num_rows, pa.int64()),
        }
        cols.update({name: t.column(name) for name in t.column_names})
        tables.append(pa.table(cols))
    out = []
    for t in tables:
        arrays = [
            t.column(f.name).cast(f.type)
            if f.name in t.column_names
            else pa.nulls(t.num_rows, f.type)
            for f in full
        ]
        out.append(pa.Table.from_arrays(arrays, schema=full))
    return pa.concat_tables(out)


_HOLD: contextvars.ContextVar[bool] = contextvars.ContextVar("watermark_held", default=False)


@contextlib.contextmanager
def watermark_held() -> Iterator[None]:
    """Within it, a detector's ``run`` folds rows into its state but closes no window:
    the watermark stays where the state had it. For a flush in the middle of a run, whose
    later inputs (another file of the same hours) may be older than this one's end."""
    token = _HOLD.set(True)
    try:
        yield
    finally:
        _HOLD.reset(token)


def watermark_is_held() -> bool:
    """Whether :func:`watermark_held` is in force (detectors with their own watermark)."""
    return _HOLD.get()


def next_watermark(
    prev: int | None, max_ts: int | None, lateness_us: int, window_us: int, *, final: bool
) -> int | None:
    """``max(prev, max_ts - lateness)``; with ``final``, at least the end of max_ts's window;
    ``prev`` while :func:`watermark_held`."""
    if _HOLD.get():
        return prev
    cands = [w for w in (prev,) if w is not None]
    if max_ts is not None:
        cands.append(max_ts - lateness_us)
        if final:
            cands.append((max_ts // window_us + 1) * window_us)
    return max(cands) if cands else None


def iso_us(t: int) -> str:
    """ISO 8601 UTC text of microseconds since the epoch (for evidence), 4-digit years."""
    import datetime as _dt

    d = _dt.datetime(1970, 1, 1) + _dt.timedelta(microseconds=int(t))
    return d.isoformat(timespec="microseconds") + "Z"


def null_mask(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Null mask of an Arrow column as numpy bool."""
    return np.asarray(pc.is_null(col).to_numpy(zero_copy_only=False), dtype=bool)


def findings_table(rows: list[dict[str, object]]) -> pa.Table:
    """A ``FINDINGS_SCHEMA`` table from dicts whose times are int64 microseconds."""
    from detect.anomaly.base import FINDINGS_SCHEMA, TS

    cols = {}
    for f in FINDINGS_SCHEMA:
        vals = [r[f.name] for r in rows]
        cols[f.name] = (
            pa.array(vals, pa.int64()).cast(TS) if f.type == TS else pa.array(vals, f.type)
        )
    return pa.Table.from_pydict(cols, schema=FINDINGS_SCHEMA)
