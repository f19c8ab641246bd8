"""Mapping a generic table (Parquet, Arrow, CSV, NDJSON) onto the canonical schema.

Generic files carry ECS names already, either flat and dotted (``source.ip``) or as
nested structs (``source: {ip: ...}``); both are accepted. Columns that are not
canonical are ignored; a file without ``@timestamp`` cannot be mapped.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detect.errors import Location, NotTelemetryError
from detect.readers.base import ReadContext
from detect.schema import CANONICAL_SCHEMA, COLUMNS, TIMESTAMP, conform

_CANONICAL = frozenset(COLUMNS)


def flatten_names(schema: pa.Schema) -> list[str]:
    """Every leaf column name, nested structs joined with dots."""
    names: list[str] = []

    def walk(prefix: str, typ: pa.DataType) -> None:
        if pa.types.is_struct(typ):
            for i in range(typ.num_fields):
                child = typ.field(i)
                walk(f"{prefix}.{child.name}", child.type)
        else:
            names.append(prefix)

    for field in schema:
        walk(field.name, field.type)
    return names


def check_mappable(ctx: ReadContext, schema: pa.Schema) -> None:
    """Stop the file when it carries no event time or no canonical column at all."""
    names = flatten_names(schema)
    if "@timestamp" not in names:
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        msg = (
            f"no '@timestamp' column, so events cannot be placed in time (columns: {shown}); "
            "name the event time '@timestamp' (ECS)"
        )
        raise NotTelemetryError(msg, location=Location(ctx.display, None, "@timestamp"))


def _flatten(batch: pa.RecordBatch | pa.Table) -> dict[str, pa.Array]:
    out: dict[str, pa.Array] = {}

    def walk(prefix: str, arr: pa.Array) -> None:
        if pa.types.is_struct(arr.type):
            for i in range(arr.type.num_fields):
                child = arr.type.field(i)
                walk(f"{prefix}.{child.name}", pc.struct_field(arr, [i]))
        elif prefix in _CANONICAL:
            out[prefix] = arr

    for name, col in zip(batch.schema.names, batch.columns, strict=True):
        arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        walk(name, arr)
    return out


def to_timestamp(arr: pa.Array) -> pa.Array:
    """Event times from ISO text, epoch numbers (s, ms, us or ns by magnitude) or timestamps."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_timestamp(arr.type):
        if arr.type.tz is None:
            arr = pc.assume_timezone(arr, "UTC")
        return arr.cast(TIMESTAMP)
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        values = arr.cast(pa.float64()).to_numpy(zero_copy_only=False)
        finite = values[np.isfinite(values)]
        peak = float(np.abs(finite).max()) if finite.size else 0.0
        scale = 1e6 if peak < 1e11 else 1e3 if peak < 1e14 else 1.0 if peak < 1e17 else 1e-3
        micros = np.round(values * scale)
        mask = ~np.isfinite(values)
        if arr.null_count:
            mask |= ~np.asarray(arr.is_valid())
        micros[mask] = 0
        return pa.array(micros.astype(np.int64), type=pa.int64(), mask=mask).cast(TIMESTAMP)
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        return parse_iso_timestamps(arr)
    return arr.cast(TIMESTAMP)


def parse_iso_timestamps(arr: pa.Array) -> pa.Array:
    """ISO 8601 text to UTC microseconds: ``Z``, ``+hh:mm``, ``+hhmm`` or no offset (UTC)."""
    arr = arr.cast(pa.string())
    numeric = pc.match_substring_regex(arr, r"^-?\d+(\.\d*)?$")
    if pc.any(numeric).as_py():
        # epoch numbers written as text (JSON mixing numbers and strings, CSV)
        as_num = pc.if_else(numeric, arr, pa.scalar(None, pa.string())).cast(pa.float64())
        epoch = to_timestamp(as_num)
        if pc.all(pc.or_kleene(numeric, pc.is_null(arr))).as_py():
            return epoch
        iso = parse_iso_timestamps(pc.if_else(numeric, pa.scalar(None, pa.string()), arr))
        if pa.types.is_timestamp(iso.type):
            return pc.if_else(numeric, epoch, iso)
        return pc.if_else(numeric, epoch.cast(pa.string()), iso)
    # "+0000" -> "+00:00"; a space between date and time -> "T"
    fixed = pc.replace_substring_regex(arr, r"([+-]\d\d)(\d\d)$", r"\1:\2")
    fixed = pc.replace_substring_regex(fixed, r"^(\d{4}-\d\d-\d\d) ", r"\1T")
    has_zone = pc.match_substring_regex(fixed, r"(Z|[+-]\d\d:\d\d)$")
    fixed = pc.if_else(has_zone, fixed, pc.binary_join_element_wise(fixed, "Z", ""))
    try:
        return fixed.cast(TIMESTAMP)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # some value is not a time: hand back normalised text, so that the canonical
        # cast rejects exactly the bad rows
        return fixed


def _to_list(arr: pa.Array) -> pa.Array:
    """A text value for a list column: a JSON-ish ``[a, b]`` or ``a,b`` split on commas."""
    if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        return arr
    text = arr.cast(pa.string())
    text = pc.replace_substring_regex(text, r'^\[|\]$|"', "")
    return pc.split_pattern(text, ",")


def map_columns(
    ctx: ReadContext,
    batch: pa.RecordBatch | pa.Table,
    *,
    line_of: Callable[[int], int | None] | int | None,
    raw: Callable[[int], str | None] | None = None,
) -> pa.RecordBatch:
    """One generic batch to one canonical batch; bad values reject their rows."""
    cols = _flatten(batch)
    if "@timestamp" in cols:
        cols["@timestamp"] = to_timestamp(cols["@timestamp"])
    for name in ("dns.answers.data", "email.to.address", "file.x509.alternative_names"):
        if name in cols:
            cols[name] = _to_list(cols[name])
    for name in ("dns.answers.ttl",):
        if name in cols and not pa.types.is_list(cols[name].type):
            cols[name] = pc.split_pattern(cols[name].cast(pa.string()), ",")
    return conform(cols, batch.num_rows, on_bad_rows=ctx.bad_rows(line_of, raw))


def rebatch(batch: pa.RecordBatch | pa.Table, size: int) -> list[pa.RecordBatch]:
    """Slices of at most ``size`` rows."""
    if isinstance(batch, pa.Table):
        return batch.to_batches(max_chunksize=size)
    return [batch.slice(i, size) for i in range(0, batch.num_rows, size)] or []


__all__ = ["CANONICAL_SCHEMA", "check_mappable", "map_columns", "rebatch", "to_timestamp"]
