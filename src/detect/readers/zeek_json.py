"""Zeek JSON-lines logs -> canonical batches.

Covers the layouts seen in the wild: Zeek's JSON writer and corelight json-streaming-logs
(dotted keys ``id.orig_h``, ISO-8601 ``ts``, ``_path``), OTRF/Security-Datasets
(underscore keys ``id_orig_h``, epoch-float ``ts``, ``@stream``/``@system``), unset fields
omitted or null. The log path of a row is its ``_path``/``@stream`` value, else the file
name (rotated names included, see ``zeek_fields.path_from_filename``).

Lines are parsed block by block by ``jsonlines.iter_json_blocks``; a file whose head shows
one log path is parsed with an explicit Arrow schema of just the fields its mapping reads
(fast, and a field such as ssh's numeric ``version`` cannot clash with http's textual one).
A file mixing paths is parsed with type inference. ``#`` lines (btest banners) are skipped,
other lines that are not JSON are rejected with their line number and text.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detect import schema
from detect.readers import zeek_fields as zf
from detect.readers.base import ReadContext, Reject
from detect.readers.jsonlines import JsonBlock, iter_json_blocks
from detect.readers.source import read_head
from detect.schema import RowProblem, cast_or_null

PATH_KEYS = ("_path", "@stream")
OBSERVER_KEYS = ("_node_name", "@system", "_system_name")

_KEY = re.compile(rb'"((?:[^"\\]|\\.)*)"\s*:')
_ZEEKISH = frozenset(
    [b"uid", b"fuid", b"id.orig_h", b"id_orig_h", b"fingerprint", b"conn_uids", b"tx_hosts"]
)
_EPOCH = r"^[0-9]+(\.[0-9]+)?$"
_ISO_ZONE = r"([Zz]|[+-][0-9]{2}:?[0-9]{2})$"
_ISO = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    + r"([Zz]|[+-][0-9]{2}:?[0-9]{2})?$"
)

_ARROW_OF_KIND: dict[str, pa.DataType] = {
    zf.INTERVAL: pa.float64(),
    zf.BOOL: pa.bool_(),
    zf.INT: pa.int64(),
    zf.UINT: pa.uint64(),
    zf.STRING: pa.string(),
    zf.STRING_LIST: pa.list_(pa.string()),
    zf.FLOAT_LIST: pa.list_(pa.float64()),
}


def sniff(head: bytes, path: Path) -> bool:
    """True when the first JSON object looks like a Zeek record.

    It has ``_path`` or ``@stream``, or ``uid`` with ``id.orig_h``/``id_orig_h``, or ``ts``
    with another Zeek-only key. Keys are found by pattern, so a first line that is not
    valid JSON (btest's masked ``ts``) still sniffs. Suricata EVE (``event_type``) does not.
    """
    for raw in head.split(b"\n", 64)[:64]:
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        if not line.startswith(b"{"):
            return False
        keys = set(_KEY.findall(line))
        if b"event_type" in keys:
            return False
        if keys & {b"_path", b"@stream"}:
            return True
        if b"uid" in keys and keys & {b"id.orig_h", b"id_orig_h"}:
            return True
        return b"ts" in keys and bool(keys & _ZEEKISH)
    return False


def read_batches(ctx: ReadContext) -> Iterator[pa.RecordBatch]:
    """Canonical batches of at most ``ctx.batch_size`` rows from one Zeek JSON-lines file."""
    return zf.rebatch(_batches(ctx), ctx.batch_size)


def _batches(ctx: ReadContext) -> Iterator[pa.RecordBatch]:
    file_path = zf.path_from_filename(ctx.path)
    heads = _head_objects(ctx)
    head_paths = {p for obj in heads for p in (obj.get(k) for k in PATH_KEYS) if isinstance(p, str)}
    explicit = None
    if len(head_paths) <= 1:
        path = next(iter(head_paths), None) or file_path or "unknown"
        explicit = _explicit_schema(path, heads)
    inner = dataclasses.replace(ctx, reject=_skip_comments(ctx))
    for block in iter_json_blocks(inner, explicit_schema=explicit):
        yield from _block(ctx, block, file_path or "unknown")


def _skip_comments(ctx: ReadContext) -> Callable[[Reject], None]:
    """Reject callback that drops ``#`` comment lines instead of reporting them."""

    def reject(r: Reject) -> None:
        if r.raw is not None and r.raw.lstrip().startswith("#"):
            return
        ctx.reject(r)

    return reject


def _head_objects(ctx: ReadContext, limit: int = 50) -> list[dict[str, object]]:
    """The first parseable objects of the file, to choose time types and the path."""
    out: list[dict[str, object]] = []
    for raw in read_head(ctx.path).split(b"\n")[:-1][:limit]:
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


def _explicit_schema(path: str, heads: list[dict[str, object]]) -> pa.Schema:
    """Only the fields ``path``'s mapping reads, both spellings; time fields typed as found."""
    fields: dict[str, pa.DataType] = {k: pa.string() for k in (*PATH_KEYS, *OBSERVER_KEYS)}
    for name in sorted(zf.source_fields(path)):
        kind = zf.kind_of(name) or zf.STRING
        for spelling in zf.spellings(name):
            if kind == zf.TIME:
                fields[spelling] = _time_type(spelling, heads)
            else:
                fields[spelling] = _ARROW_OF_KIND[kind]
    return pa.schema(list(fields.items()))


def _time_type(name: str, heads: list[dict[str, object]]) -> pa.DataType:
    for obj in heads:
        value = obj.get(name)
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            return pa.float64()
        if isinstance(value, str):
            return pa.string()
    return pa.string()


def _block(ctx: ReadContext, block: JsonBlock, file_path: str) -> Iterator[pa.RecordBatch]:
    table = block.table
    n = table.num_rows
    if n == 0:
        return
    paths = _row_paths(table, file_path)
    unique = paths.unique()
    if len(unique) == 1:
        yield _group(ctx, block, str(unique[0]), np.arange(n), None)[0]
        return
    # several log paths in one block: map each apart, then restore the file's row order
    parts: list[pa.RecordBatch] = []
    order: list[np.ndarray] = []
    for value in unique.to_pylist():
        idx = np.flatnonzero(np.asarray(pc.equal(paths, value)))
        batch, kept = _group(ctx, block, value, idx, pa.array(idx))
        parts.append(batch)
        order.append(idx[kept])
    positions = np.argsort(np.concatenate(order), kind="stable")
    if len(positions):
        merged = pa.Table.from_batches(parts).combine_chunks()
        yield merged.take(pa.array(positions)).combine_chunks().to_batches()[0]


def _row_paths(table: pa.Table, file_path: str) -> pa.Array:
    found = [
        table.column(k).combine_chunks().cast(pa.string())
        for k in PATH_KEYS
        if k in table.column_names
    ]
    default = pa.array(np.full(table.num_rows, file_path, dtype=object), pa.string())
    return pc.coalesce(*found, default) if found else default


def _group(
    ctx: ReadContext,
    block: JsonBlock,
    path: str,
    idx: np.ndarray,
    take: pa.Array | None,
) -> tuple[pa.RecordBatch, np.ndarray]:
    table = block.table if take is None else block.table.take(take)
    problems: list[RowProblem] = []
    wanted = {s for f in zf.source_fields(path) for s in zf.spellings(f)} | set(OBSERVER_KEYS)
    columns: dict[str, pa.Array] = {}
    for name in table.column_names:
        if name not in wanted:
            continue
        arr = table.column(name).combine_chunks()
        if arr.null_count == len(arr):
            continue  # absent (explicit schema) or omitted everywhere: let the other spelling win
        columns[name] = _normalise(arr, name, zf.kind_of(name) or zf.STRING, problems)
    return zf.finish_rows(
        ctx,
        path,
        columns,
        table.num_rows,
        problems,
        line_of=lambda i: block.line_of(int(idx[i])),
        raw=lambda i: block.raw(int(idx[i])),
    )


def _normalise(arr: pa.Array, name: str, kind: str, problems: list[RowProblem]) -> pa.Array:
    """One parsed JSON column -> the Zeek logical type ``zeek_fields`` expects."""
    typ = arr.type
    if pa.types.is_null(typ):
        target = schema.TIMESTAMP if kind == zf.TIME else _ARROW_OF_KIND.get(kind, pa.string())
        return pa.nulls(len(arr), target)
    if kind == zf.TIME:
        if pa.types.is_timestamp(typ):
            return arr.cast(pa.timestamp("us", tz=typ.tz)).cast(schema.TIMESTAMP)
        if pa.types.is_integer(typ) or pa.types.is_floating(typ):
            return zf.epoch_to_timestamp(arr)
        return _iso_times(arr.cast(pa.string()), name, problems)
    if kind == zf.INTERVAL and not pa.types.is_floating(typ):
        return _cast_or_reject(arr, pa.float64(), name, problems)
    if kind == zf.BOOL and not pa.types.is_boolean(typ):
        return _cast_or_reject(arr, pa.bool_(), name, problems)
    if kind in (zf.STRING_LIST, zf.FLOAT_LIST) and not pa.types.is_list(typ):
        # a scalar where Zeek logs a set: a one-element list
        return pa.ListArray.from_arrays(
            pa.array(np.arange(len(arr) + 1, dtype=np.int32)),
            arr.cast(pa.string()),
            mask=arr.is_null() if arr.null_count else None,
        )
    if kind == zf.STRING and not pa.types.is_string(typ):
        return _cast_or_reject(arr, pa.string(), name, problems)
    return arr


def _iso_times(arr: pa.Array, name: str, problems: list[RowProblem]) -> pa.Array:
    """ISO-8601 text -> timestamp[us, UTC]; text without a zone is taken as UTC.

    Epoch seconds written as text (a block where type inference met both spellings) are
    accepted too.
    """
    try:
        return arr.cast(schema.TIMESTAMP)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    numeric = pc.fill_null(pc.match_substring_regex(arr, _EPOCH), False)
    has_zone = pc.fill_null(pc.match_substring_regex(arr, _ISO_ZONE), True)
    zoned = pc.if_else(has_zone, arr, pc.binary_join_element_wise(arr, "Z", ""))
    ok = pc.or_(numeric, pc.fill_null(pc.match_substring_regex(zoned, _ISO), True))
    bad = pc.invert(ok)
    _report(arr, bad, name, "not an ISO-8601 time", problems)
    nulls = pa.nulls(len(arr), pa.string())
    iso = pc.if_else(pc.or_(bad, numeric), nulls, zoned)
    try:
        parsed = iso.cast(schema.TIMESTAMP)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        parsed = _cast_or_reject(iso, schema.TIMESTAMP, name, problems)
    if not numeric.true_count:
        return parsed
    epoch = zf.epoch_to_timestamp(pc.if_else(numeric, arr, nulls).cast(pa.float64()))
    return pc.if_else(numeric, epoch, parsed)


def _cast_or_reject(
    arr: pa.Array, target: pa.DataType, name: str, problems: list[RowProblem]
) -> pa.Array:
    out, bad = cast_or_null(name, arr, target)
    problems.extend(bad)
    return out


def _report(
    arr: pa.Array, bad: pa.Array, name: str, reason: str, problems: list[RowProblem]
) -> None:
    bad = pc.fill_null(bad, False)
    for i in np.flatnonzero(np.asarray(bad)):
        problems.append(RowProblem(int(i), name, str(arr[int(i)].as_py()), reason))
