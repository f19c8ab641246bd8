"""Suricata EVE JSON (NDJSON, or one JSON array of alerts) into canonical batches.

EVE mixes many event types in one file, each with its own sub-object. We parse every
line into one fixed nested layout (``EVE_SCHEMA``, pyarrow's JSON parser with an
explicit schema) so that a block of heterogeneous events becomes one Arrow table,
then map that table to the canonical columns with pyarrow compute, never per row.

Mapped event types: ``flow`` and ``netflow`` (dataset ``flow``), ``dns``, ``http``,
``tls``, ``fileinfo`` (dataset ``files``) and ``alert`` (with the http/dns/tls/email
sub-objects Suricata attaches). Every other type (``stats``, ``anomaly``, ``ssh``,
``smtp``, ``dhcp``, ...) is counted in ``ctx.skipped["eve:<type>"]`` and skipped,
not rejected: it is well-formed telemetry we choose not to map.

Normalisations, each because a consumer compares values across sensors:

* ``timestamp`` and ``flow.start``/``end`` to UTC; offsets may lack the colon
  (``+0300``); timestamps without any offset (old Suricata) are taken as UTC.
* ``tls.fingerprint`` (SHA-1 as ``aa:bb:...``) to lowercase hex without colons, the
  form indicator feeds use, in ``tls.server.hash.sha1``.
* ``tls.version`` ``"TLS 1.2"`` / ``"TLSv1"`` to ECS ``"1.2"`` / ``"1.0"`` (``SSLv3`` to ``"3.0"``;
  :func:`detect.readers.base.ecs_tls_version`).
* ``proto`` lowercased; ``app_proto`` ``"failed"`` (detection failed) is null.
* DNS in all three layouts: v1 (one record per query or answer, flat
  ``rrname``/``rrtype``/``rdata``), v2 (``answers`` list and/or ``grouped``) and v3
  (Suricata 8: ``queries`` list); alerts carry ``dns.query[]`` (v2) or v3 objects.
* Expanded IPv6 text stays as written; ``detect.enrich`` parses addresses once.

Byte and packet counters are mapped for flow records only: an alert's ``flow``
object is a snapshot, and counting it again would double traffic totals.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detect.readers.base import ReadContext, Reject, ecs_tls_version
from detect.readers.jsonlines import JsonBlock, LineFilter, iter_json_blocks
from detect.readers.source import open_binary, read_head
from detect.schema import TIMESTAMP, cast_or_null, conform

__all__ = ["EVE_SCHEMA", "MAX_ARRAY_BYTES", "read_batches", "sniff"]

MAX_ARRAY_BYTES = 256 << 20  # a JSON-array file is loaded whole; beyond this we refuse

_S = pa.string()
_I = pa.int64()


def _struct(**fields: pa.DataType) -> pa.DataType:
    return pa.struct([pa.field(k.removesuffix("_"), v) for k, v in fields.items()])


_DNS_ANSWER = _struct(rrname=_S, rrtype=_S, rdata=_S, ttl=_I)
_DNS_QUERY = _struct(rrname=_S, rrtype=_S)
_GROUPED_TYPES = ("A", "AAAA", "CNAME", "MX", "NS", "PTR", "TXT")
_DNS_FIELDS: dict[str, pa.DataType] = {
    "version": _I,
    "type": _S,
    "id": _I,
    "rrname": _S,
    "rrtype": _S,
    "rcode": _S,
    "rdata": _S,  # v1 answer record
    "ttl": _I,  # v1 answer record
    "answers": pa.list_(_DNS_ANSWER),
    "grouped": pa.struct([pa.field(t, pa.list_(_S)) for t in _GROUPED_TYPES]),
    "queries": pa.list_(_DNS_QUERY),  # v3
}
_DNS = pa.struct(
    [pa.field(k, v) for k, v in _DNS_FIELDS.items()]
    + [
        pa.field("query", pa.list_(_DNS_QUERY)),  # alert, Suricata 5-7
        pa.field("answer", pa.struct([pa.field(k, v) for k, v in _DNS_FIELDS.items()])),
    ]
)

EVE_SCHEMA = pa.schema(
    [
        ("timestamp", _S),
        ("event_type", _S),
        ("flow_id", _I),
        ("host", _S),
        ("in_iface", _S),
        ("src_ip", _S),
        ("src_port", _I),
        ("dest_ip", _S),
        ("dest_port", _I),
        ("proto", _S),
        ("app_proto", _S),
        ("community_id", _S),
        (
            "flow",
            _struct(
                start=_S,
                end=_S,
                state=_S,
                bytes_toserver=_I,
                bytes_toclient=_I,
                pkts_toserver=_I,
                pkts_toclient=_I,
            ),
        ),
        ("netflow", _struct(start=_S, end=_S, bytes=_I, pkts=_I)),
        ("dns", _DNS),
        (
            "http",
            _struct(
                hostname=_S,
                url=_S,
                http_port=_I,
                http_method=_S,
                status=_I,
                http_user_agent=_S,
                http_refer=_S,
                length=_I,
                http_content_type=_S,
                protocol=_S,
            ),
        ),
        (
            "tls",
            _struct(
                sni=_S,
                version=_S,
                subject=_S,
                issuerdn=_S,
                fingerprint=_S,
                ja3=_struct(hash=_S),
                ja3s=_struct(hash=_S),
            ),
        ),
        (
            "fileinfo",
            _struct(filename=_S, magic=_S, mimetype=_S, md5=_S, sha1=_S, sha256=_S, size=_I),
        ),
        (
            "alert",
            _struct(signature_id=_I, signature=_S, category=_S, severity=_I, action=_S),
        ),
        ("email", _struct(from_=_S, to=pa.list_(_S), subject=_S)),
    ]
)

# event_type -> event.dataset; anything else is skipped and counted
DATASETS: Mapping[str, str] = {
    "flow": "flow",
    "netflow": "flow",
    "dns": "dns",
    "http": "http",
    "tls": "tls",
    "fileinfo": "files",
    "alert": "alert",
}

_EVE_KEY = re.compile(rb'"event_type"\s*:\s*"')
# An event type that is skipped anyway: such lines (``stats`` is most of a sensor's
# bytes) are counted and dropped before the JSON parser sees them.
_UNMAPPED_TYPE = re.compile(
    rb'"event_type"\s*:\s*"(?!(?:' + b"|".join(t.encode() for t in DATASETS) + rb')")([^"]+)"'
)
_TS_KEY = re.compile(rb'"timestamp"\s*:\s*"')


# ---------------------------------------------------------------------------------
# sniffing


def _first_line(head: bytes) -> bytes:
    """The first non-blank line of ``head`` (possibly cut off by the head's end)."""
    text = head.removeprefix(b"\xef\xbb\xbf")
    for line in text.split(b"\n"):
        if line.strip():
            return line.strip()
    return b""


def sniff(head: bytes, path: Path) -> bool:
    """True for EVE: JSON lines (or a JSON array) whose first object has ``event_type``
    and ``timestamp``.

    Keys are looked for in the first object's text, so a first line longer than the
    head (a big ``stats`` record) still sniffs.
    """
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"["):
        first = text[1:].lstrip()
        if not first.startswith(b"{"):
            return False
        # the first element ends at the first "}," or "}\n]" we cannot find reliably
        # in a truncated head; the keys of the first object come first in EVE.
        return bool(_EVE_KEY.search(first) and _TS_KEY.search(first))
    line = _first_line(head)
    if not line.startswith(b"{"):
        return False
    if b'"class_uid"' in line:
        return False
    return bool(_EVE_KEY.search(line) and _TS_KEY.search(line))


# ---------------------------------------------------------------------------------
# JSON rows with a type-coercing fallback (shared with the OCSF reader)


class _UncoercibleError(ValueError):
    pass


def _coerce(value: object, typ: pa.DataType, where: str) -> object:
    """``value`` made to fit ``typ``: ``"200"`` for an int, ``80`` for a string, ...

    Only used for the few lines pyarrow rejects under the explicit schema (old
    Suricata writes ``http.status`` as a string), so per-row Python is fine here.
    """
    if value is None:
        return None
    if pa.types.is_struct(typ):
        if not isinstance(value, dict):
            msg = f"{where}: expected an object, got {json.dumps(value)[:60]}"
            raise _UncoercibleError(msg)
        return {
            f.name: _coerce(value[f.name], f.type, f"{where}.{f.name}".lstrip("."))
            for f in typ
            if f.name in value
        }
    if pa.types.is_list(typ):
        items = value if isinstance(value, list) else [value]
        return [_coerce(v, typ.value_type, f"{where}[]") for v in items]
    if pa.types.is_string(typ):
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return json.dumps(value)
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if pa.types.is_integer(typ):
        if isinstance(value, bool):
            msg = f"{where}: expected an integer, got {value!r}"
            raise _UncoercibleError(msg)
        if isinstance(value, int):
            if not -(1 << 63) <= value < (1 << 63):
                msg = f"{where}: integer out of range: {value}"
                raise _UncoercibleError(msg)
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,18}\s*", value):
            return int(value)
        msg = f"{where}: expected an integer, got {json.dumps(value)[:60]}"
        raise _UncoercibleError(msg)
    if pa.types.is_floating(typ):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            msg = f"{where}: expected a number, got {json.dumps(value)[:60]}"
            raise _UncoercibleError(msg) from None
    if pa.types.is_boolean(typ):
        if isinstance(value, bool):
            return value
        msg = f"{where}: expected true or false, got {json.dumps(value)[:60]}"
        raise _UncoercibleError(msg)
    return value


@dataclass
class JsonRows:
    """Parsed rows in file order, each with its 1-based line and original text."""

    table: pa.Table
    lines: np.ndarray
    raw: Callable[[int], str | None]

    def line_of(self, row: int) -> int:
        return int(self.lines[row])


def _parse_rescued(
    ctx: ReadContext, schema: pa.Schema, pending: list[Reject]
) -> tuple[pa.Table | None, np.ndarray, list[str]]:
    """Re-parse lines pyarrow rejected, after coercing their values to ``schema``.

    Lines that are not JSON objects, or whose values cannot be coerced, are real
    rejects and go to ``ctx.reject``.
    """
    rows: list[dict] = []
    lines: list[int] = []
    raws: list[str] = []
    struct = pa.struct(list(schema))
    for r in pending:
        try:
            obj = json.loads(r.raw) if r.raw is not None else None
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            ctx.reject(r)
            continue
        try:
            fixed = _coerce(obj, struct, "")
        except _UncoercibleError as e:
            where = str(e).split(":", 1)[0]
            ctx.reject(replace(r, reason=f"value does not fit: {e}", column=where))
            continue
        rows.append(fixed)  # type: ignore[arg-type]
        lines.append(r.line or 0)
        raws.append(r.raw or "")
    if not rows:
        return None, np.empty(0, dtype=np.int64), []
    try:
        table = pa.Table.from_pylist(rows, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as e:
        for r in pending:
            if r.line in lines:
                ctx.reject(replace(r, reason=f"value does not fit: {e}"))
        return None, np.empty(0, dtype=np.int64), []
    return table, np.asarray(lines, dtype=np.int64), raws


def iter_json_rows(ctx: ReadContext, schema: pa.Schema) -> Iterator[JsonRows]:
    """``iter_json_blocks`` with a second chance for lines whose types differ.

    pyarrow rejects a whole line when one value has another JSON type than the
    explicit schema says; such lines are coerced in Python and merged back in line
    order. Only lines that are not JSON objects, or hold values that cannot fit
    (a port of ``"http"``), are rejected.
    """
    pending: list[Reject] = []
    inner = replace(ctx, reject=pending.append)

    def rescued() -> JsonRows | None:
        if not pending:
            return None
        table, lines, raws = _parse_rescued(ctx, schema, pending)
        pending.clear()
        if table is None:
            return None
        return JsonRows(table, lines, lambda i: raws[i])

    def dropped(m: re.Match[bytes]) -> None:
        ctx.skipped[f"eve:{m.group(1).decode('utf-8', 'replace')}"] += 1

    line_filter = LineFilter(_UNMAPPED_TYPE, dropped)
    for block in iter_json_blocks(inner, explicit_schema=schema, line_filter=line_filter):
        extra = rescued()
        if extra is None:
            yield JsonRows(block.table, block.line_numbers, block.raw)
        else:
            yield _merge(block, extra)
    extra = rescued()
    if extra is not None:
        yield extra


def _merge(block: JsonBlock, extra: JsonRows) -> JsonRows:
    """Block rows and rescued rows, back in line order."""
    table = pa.concat_tables([block.table, extra.table.cast(block.table.schema)])
    lines = np.concatenate([block.line_numbers, extra.lines])
    order = np.argsort(lines, kind="stable")
    n_block = block.table.num_rows

    def raw(i: int) -> str | None:
        j = int(order[i])
        return block.raw(j) if j < n_block else extra.raw(j - n_block)

    return JsonRows(table.take(pa.array(order)), lines[order], raw)


# ---------------------------------------------------------------------------------
# JSON arrays (the wrccdc alert samples)


def _array_elements(ctx: ReadContext) -> tuple[list[object], list[int]]:
    """Elements of a JSON-array file, each with the line it starts on."""
    with open_binary(ctx.path) as f:
        data = f.read(MAX_ARRAY_BYTES + 1)
    if len(data) > MAX_ARRAY_BYTES:
        msg = (
            f"JSON array larger than {MAX_ARRAY_BYTES >> 20} MiB cannot be loaded; "
            "convert it to JSON lines first (jq -c '.[]')"
        )
        raise ctx.error(msg)
    text = data.decode("utf-8", "surrogateescape").removeprefix("\ufeff")
    decoder = json.JSONDecoder()
    ws = re.compile(r"\s*")
    pos = ws.match(text, 0).end()  # type: ignore[union-attr]
    pos += 1  # the "["
    elements: list[object] = []
    starts: list[int] = []
    line, counted = 1, 0
    while True:
        pos = ws.match(text, pos).end()  # type: ignore[union-attr]
        if pos >= len(text):
            msg = "JSON array is not closed (truncated file?)"
            raise ctx.error(msg, line=line + text.count("\n", counted, pos))
        if text[pos] == "]" and not elements:
            break
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            msg = f"invalid JSON in array: {e.msg}"
            raise ctx.error(msg, line=e.lineno) from e
        elements.append(obj)
        starts.append(line)
        pos = ws.match(text, end).end()  # type: ignore[union-attr]
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        if pos < len(text) and text[pos] == "]":
            break
        msg = "expected ',' or ']' after an array element"
        raise ctx.error(msg, line=line + text.count("\n", counted, pos))
    return elements, starts


def _is_array(ctx: ReadContext) -> bool:
    return read_head(ctx.path, 4096).removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"[")


def iter_array_rows(ctx: ReadContext, schema: pa.Schema) -> Iterator[JsonRows]:
    """The elements of a JSON-array file, through the same parser as JSON lines.

    The elements are written out as JSON lines to a temporary file so that parsing,
    coercion and rejects are exactly those of the NDJSON path; line numbers in
    rejects are mapped back to the line each element starts on.
    """
    elements, starts = _array_elements(ctx)
    line_of = np.asarray([0, *starts], dtype=np.int64)  # NDJSON line i -> array line

    def remap(r: Reject) -> None:
        line = int(line_of[r.line]) if r.line is not None and r.line < len(line_of) else None
        ctx.reject(replace(r, path=ctx.display, line=line))

    with tempfile.TemporaryDirectory(prefix="detect-eve-") as tmp:
        lines_path = Path(tmp) / "elements.jsonl"
        with lines_path.open("w", encoding="utf-8", errors="surrogateescape") as out:
            for obj in elements:
                out.write(json.dumps(obj, separators=(",", ":"), ensure_ascii=False))
                out.write("\n")
        del elements
        inner = ReadContext(
            path=lines_path, batch_size=ctx.batch_size, reject=remap, skipped=ctx.skipped
        )
        for rows in iter_json_rows(inner, schema):
            rows.lines = line_of[rows.lines]
            yield rows


# ---------------------------------------------------------------------------------
# vectorised helpers


def field(table: pa.Table | pa.RecordBatch, path: str, typ: pa.DataType = _S) -> pa.Array:
    """The nested column ``a.b.c`` of ``table``; nulls of ``typ`` when any part is absent."""
    first, *rest = path.split(".")
    if first not in table.column_names:
        return pa.nulls(table.num_rows, typ)
    arr = table.column(first)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    for name in rest:
        arr = field_of(arr, name, typ)
    return arr


def field_of(arr: pa.Array, name: str, typ: pa.DataType = _S) -> pa.Array:
    """Child ``name`` of a struct array; nulls of ``typ`` when absent."""
    if not pa.types.is_struct(arr.type) or arr.type.get_field_index(name) < 0:
        return pa.nulls(len(arr), typ)
    return pc.struct_field(arr, name)


def parse_timestamps(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """ISO-8601 text to ``timestamp[us, UTC]``, with a mask of unparseable rows.

    Accepts ``+03:00``, ``+0300``, ``Z`` and no offset at all (taken as UTC).
    Vectorised; a per-row pass runs only when the vectorised cast fails.
    """
    n = len(arr)
    bad = np.zeros(n, dtype=bool)
    if pa.types.is_timestamp(arr.type):
        return arr.cast(TIMESTAMP), bad
    if arr.null_count == n:
        return pa.nulls(n, TIMESTAMP), bad
    arr = pc.utf8_trim_whitespace(arr.cast(pa.string()))
    no_offset = pc.match_substring_regex(arr, r"[T ]\d\d:\d\d(:\d\d(\.\d*)?)?$")
    if pc.any(no_offset).as_py():
        arr = pc.if_else(no_offset, pc.binary_join_element_wise(arr, "Z", ""), arr)
    out, problems = cast_or_null("timestamp", arr, TIMESTAMP)
    bad[[p.row for p in problems]] = True
    return out, bad


def duration_ns(start: pa.Array, end: pa.Array) -> pa.Array:
    """``end - start`` in nanoseconds (null when either is missing)."""
    s, _ = parse_timestamps(start)
    e, _ = parse_timestamps(end)
    us = pc.subtract(e.cast(pa.int64()), s.cast(pa.int64()))
    return pc.multiply(us, 1000)


def _rebuild_list(values: pa.Array, parents: np.ndarray, n: int, valid: pa.Array) -> pa.Array:
    """A list array of ``n`` rows from flat ``values`` and their (sorted) row index."""
    counts = np.bincount(parents, minlength=n) if len(parents) else np.zeros(n, np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    mask = pc.invert(valid) if valid.null_count == 0 else pc.invert(pc.fill_null(valid, False))
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=mask)


def list_field(
    lists: pa.Array, name: str, *, keep: pa.Array | None = None, drop_null: bool = True
) -> pa.Array:
    """``[x[name] for x in row]`` for a list<struct> column, without null elements.

    ``keep`` (a boolean per flattened element) selects elements instead, so that two
    fields of the same elements (``rdata``, ``ttl``) stay aligned.
    """
    n = len(lists)
    if not pa.types.is_list(lists.type):
        return pa.nulls(n, pa.list_(pa.string()))
    flat = pc.list_flatten(lists)
    parents = np.asarray(pc.list_parent_indices(lists))
    vals = field_of(flat, name) if pa.types.is_struct(flat.type) else flat
    ok = pc.is_valid(vals) if drop_null else pa.array(np.ones(len(vals), dtype=bool))
    if keep is not None:
        ok = pc.and_(ok, pc.fill_null(keep, False))
    ok_np = np.asarray(ok)
    return _rebuild_list(vals.filter(ok), parents[ok_np], n, pc.is_valid(lists))


def concat_lists(arrays: list[pa.Array]) -> pa.Array:
    """Row-wise concatenation of list<string> columns; null where all are null."""
    n = len(arrays[0])
    values, parents = [], []
    valid = pa.array(np.zeros(n, dtype=bool))
    for arr in arrays:
        if not pa.types.is_list(arr.type):
            continue
        flat = pc.list_flatten(arr)
        idx = np.asarray(pc.list_parent_indices(arr))
        ok = np.asarray(pc.is_valid(flat))
        values.append(flat.filter(pa.array(ok)).cast(pa.string()))
        parents.append(idx[ok])
        valid = pc.or_(valid, pc.is_valid(arr))
    if not values:
        return pa.nulls(n, pa.list_(pa.string()))
    flat_parents = np.concatenate(parents)
    order = np.argsort(flat_parents, kind="stable")
    flat_values = pa.concat_arrays(values).take(pa.array(order))
    return _rebuild_list(flat_values, flat_parents[order], n, valid)


def first_item(lists: pa.Array) -> pa.Array:
    """``row[0]`` of a list column (null for a null or empty list)."""
    n = len(lists)
    if not pa.types.is_list(lists.type):
        return pa.nulls(n, _S)
    parents = np.asarray(pc.list_parent_indices(lists))
    firsts = np.flatnonzero(np.diff(parents, prepend=-1) != 0)
    index = np.full(n, -1, dtype=np.int64)
    index[parents[firsts]] = firsts
    return pc.list_flatten(lists).take(pa.array(index, mask=index < 0))


def first_of(lists: pa.Array, name: str) -> pa.Array:
    """``row[0][name]`` of a list<struct> column (null for a null or empty list)."""
    if not pa.types.is_list(lists.type):
        return pa.nulls(len(lists), _S)
    return field_of(first_item(lists), name)


def as_list(arr: pa.Array) -> pa.Array:
    """Each non-null value as a one-element list (null stays null)."""
    n = len(arr)
    valid = pc.is_valid(arr)
    parents = np.flatnonzero(np.asarray(valid))
    return _rebuild_list(arr.filter(valid), parents, n, valid)


def where(mask: pa.Array, arr: pa.Array) -> pa.Array:
    """``arr`` where ``mask`` is true, else null."""
    return pc.if_else(mask, arr, pa.nulls(len(arr), arr.type))


def _null_if_empty(arr: pa.Array) -> pa.Array:
    return where(pc.greater(pc.fill_null(pc.utf8_length(arr), 0), 0), arr)


# ---------------------------------------------------------------------------------
# mapping


def _dns_columns(dns: pa.Array) -> dict[str, pa.Array]:
    """Canonical dns.* columns from one DNS object array (any of the three layouts)."""

    def f(name: str) -> pa.Array:
        return field_of(dns, name)

    queries = f("queries")
    alert_query = f("query")
    name = pc.coalesce(f("rrname"), first_of(queries, "rrname"), first_of(alert_query, "rrname"))
    qtype = pc.coalesce(f("rrtype"), first_of(queries, "rrtype"), first_of(alert_query, "rrtype"))
    answers = f("answers")
    grouped = f("grouped")
    from_answers = list_field(answers, "rdata")
    if pa.types.is_list(answers.type):
        has_rdata = pc.is_valid(field_of(pc.list_flatten(answers), "rdata"))
        ttl_answers = list_field(answers, "ttl", keep=has_rdata, drop_null=False)
    else:
        ttl_answers = pa.nulls(len(dns), pa.list_(pa.int64()))
    from_grouped = concat_lists([field_of(grouped, t) for t in _GROUPED_TYPES])
    data = pc.coalesce(from_answers, from_grouped, as_list(f("rdata").cast(pa.string())))
    ttl = pc.coalesce(
        ttl_answers.cast(pa.list_(pa.float64())),
        as_list(f("ttl").cast(pa.float64())),
    )
    is_request = pc.is_in(f("type"), value_set=pa.array(["query", "request"]))
    return {
        "dns.id": f("id"),
        "dns.question.name": name,
        "dns.question.type": qtype,
        "dns.response_code": where(pc.invert(pc.fill_null(is_request, False)), f("rcode")),
        "dns.answers.data": data,
        "dns.answers.ttl": ttl,
    }


def _url_columns(http: pa.Array, dest_ip: pa.Array, dest_port: pa.Array) -> dict[str, pa.Array]:
    host = field_of(http, "hostname")
    url = field_of(http, "url")
    port = field_of(http, "http_port")
    # without a Host header, the URL names the server by its address (as the Zeek reader)
    ip = dest_ip.cast(pa.string())
    ip = pc.if_else(pc.match_substring(ip, ":"), pc.binary_join_element_wise("[", ip, "]", ""), ip)
    server_port = dest_port.cast(pa.string())
    ip = pc.if_else(pc.fill_null(pc.equal(server_port, "80"), True), ip,
                    pc.binary_join_element_wise(ip, server_port, ":"))  # fmt: skip
    authority = pc.if_else(pc.fill_null(pc.not_equal(host, ""), False), host, ip)
    parts = (
        pc.extract_regex(
            url, r"^(?:[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*)?(?P<path>[^?#]*)(?:\?(?P<query>[^#]*))?"
        )
        if len(url) and url.null_count < len(url)
        else None
    )
    if parts is None:
        path = query = pa.nulls(len(url), pa.string())
    else:
        path = pc.struct_field(parts, "path")
        query = where(
            pc.fill_null(pc.match_substring(url, "?"), False), pc.struct_field(parts, "query")
        )
    absolute = pc.fill_null(pc.match_substring_regex(url, r"^[A-Za-z][A-Za-z0-9+.-]*://"), False)
    port_text = pc.binary_join_element_wise(":", port.cast(pa.string()), "")
    port_text = pc.if_else(pc.fill_null(pc.not_equal(host, ""), False), port_text, "")
    built = pc.binary_join_element_wise(
        "http://", authority, pc.fill_null(port_text, ""), url, "", null_handling="emit_null"
    )
    return {
        "url.domain": host,
        "url.path": _null_if_empty(path),
        "url.query": query,
        "url.port": port,
        "url.full": pc.if_else(absolute, url, built),
        "http.request.method": field_of(http, "http_method"),
        "http.response.status_code": field_of(http, "status"),
        "user_agent.original": field_of(http, "http_user_agent"),
        "http.request.referrer": field_of(http, "http_refer"),
        "http.response.body.bytes": field_of(http, "length"),
        "http.response.mime_type": field_of(http, "http_content_type"),
        "http.version": pc.replace_substring_regex(field_of(http, "protocol"), r"^HTTP/", ""),
    }


def to_canonical(t: pa.Table, display: str, *, ts: pa.Array | None = None) -> dict[str, pa.Array]:
    """Canonical columns for a table of mapped EVE events (``EVE_SCHEMA`` layout).

    ``ts`` is the already parsed ``timestamp`` column, when the caller has it.
    """
    n = t.num_rows
    et = field(t, "event_type")
    keys = pa.array(list(DATASETS))
    dataset = pa.array(list(DATASETS.values())).take(pc.index_in(et, value_set=keys))
    is_flow = pc.fill_null(pc.equal(et, "flow"), False)
    is_netflow = pc.fill_null(pc.equal(et, "netflow"), False)
    is_alert = pc.fill_null(pc.equal(et, "alert"), False)
    if ts is None:
        ts, _ = parse_timestamps(field(t, "timestamp"))

    flow, netflow = field(t, "flow"), field(t, "netflow")
    duration = pc.coalesce(
        where(is_flow, duration_ns(field_of(flow, "start"), field_of(flow, "end"))),
        where(is_netflow, duration_ns(field_of(netflow, "start"), field_of(netflow, "end"))),
    )
    app_proto = field(t, "app_proto")
    app_proto = where(pc.fill_null(pc.not_equal(app_proto, "failed"), True), app_proto)
    from_type = where(pc.is_in(et, value_set=pa.array(["dns", "http", "tls"])), et)

    cols: dict[str, pa.Array] = {
        "@timestamp": ts,
        "event.dataset": dataset,
        "event.kind": pc.if_else(is_alert, "alert", "event"),
        "event.id": field(t, "flow_id").cast(pa.string()),
        "event.duration": duration,
        "observer.name": pc.coalesce(field(t, "host"), field(t, "in_iface")),
        "log.file.path": pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, dtype=np.int32)), pa.array([display])
        ),
        "source.ip": field(t, "src_ip"),
        "source.port": field(t, "src_port"),
        "destination.ip": field(t, "dest_ip"),
        "destination.port": field(t, "dest_port"),
        "network.transport": pc.utf8_lower(field(t, "proto")),
        "network.protocol": pc.utf8_lower(pc.coalesce(app_proto, from_type)),
        "network.community_id": field(t, "community_id"),
        "network.connection.state": where(is_flow, field_of(flow, "state")),
        "source.bytes": pc.coalesce(
            where(is_flow, field_of(flow, "bytes_toserver")),
            where(is_netflow, field_of(netflow, "bytes")),
        ),
        "destination.bytes": where(is_flow, field_of(flow, "bytes_toclient")),
        "source.packets": pc.coalesce(
            where(is_flow, field_of(flow, "pkts_toserver")),
            where(is_netflow, field_of(netflow, "pkts")),
        ),
        "destination.packets": where(is_flow, field_of(flow, "pkts_toclient")),
    }

    dns = field(t, "dns")
    dns_cols = _dns_columns(dns)
    answer = field_of(dns, "answer")  # alert, Suricata 7: dns.answer {...}
    if pa.types.is_struct(answer.type) and answer.null_count < n:
        from_answer = _dns_columns(answer)
        dns_cols = {k: pc.coalesce(v, from_answer[k]) for k, v in dns_cols.items()}
    cols.update(dns_cols)
    cols.update(_url_columns(field(t, "http"), field(t, "dest_ip"), field(t, "dest_port")))

    tls = field(t, "tls")
    fingerprint = field_of(tls, "fingerprint")
    cols.update(
        {
            "tls.server.name": field_of(tls, "sni"),
            "tls.version": ecs_tls_version(field_of(tls, "version")),
            "tls.server.subject": field_of(tls, "subject"),
            "tls.server.issuer": field_of(tls, "issuerdn"),
            "tls.server.hash.sha1": pc.utf8_lower(pc.replace_substring(fingerprint, ":", "")),
            "tls.client.ja3": field_of(field_of(tls, "ja3"), "hash"),
            "tls.server.ja3s": field_of(field_of(tls, "ja3s"), "hash"),
        }
    )
    fileinfo = field(t, "fileinfo")
    cols.update(
        {
            "file.name": field_of(fileinfo, "filename"),
            "file.mime_type": pc.coalesce(
                field_of(fileinfo, "mimetype"), field_of(fileinfo, "magic")
            ),
            "file.size": field_of(fileinfo, "size"),
            "file.hash.md5": field_of(fileinfo, "md5"),
            "file.hash.sha1": field_of(fileinfo, "sha1"),
            "file.hash.sha256": field_of(fileinfo, "sha256"),
        }
    )
    email = field(t, "email")
    cols.update(
        {
            "email.from.address": field_of(email, "from"),
            "email.to.address": field_of(email, "to"),
            "email.subject": field_of(email, "subject"),
        }
    )
    alert = field(t, "alert")
    cols.update(
        {
            "rule.id": field_of(alert, "signature_id").cast(pa.string()),
            "rule.name": field_of(alert, "signature"),
            "rule.category": field_of(alert, "category"),
            "event.severity": field_of(alert, "severity"),
            "event.action": field_of(alert, "action"),
        }
    )
    return {k: v for k, v in cols.items() if v.null_count < n or k == "@timestamp"}


# ---------------------------------------------------------------------------------
# reading


def _select(ctx: ReadContext, rows: JsonRows) -> tuple[pa.Table, np.ndarray, pa.Array]:
    """Keep mapped events; count skipped types; reject rows without type or time.

    Returns the kept table, the kept rows' positions in ``rows`` and their parsed
    timestamps.
    """
    t = rows.table
    et = field(t, "event_type")
    has_type = np.asarray(pc.is_valid(et))
    mapped = np.asarray(pc.fill_null(pc.is_in(et, value_set=pa.array(list(DATASETS))), False))
    other = has_type & ~mapped
    if other.any():
        for item in pc.value_counts(et.filter(pa.array(other))).to_pylist():
            ctx.skipped[f"eve:{item['values']}"] += item["counts"]
    for i in np.flatnonzero(~has_type):
        ctx.reject(
            Reject(
                ctx.display,
                rows.line_of(i),
                "not an EVE event: no event_type",
                rows.raw(i),
                "event_type",
            )
        )
    idx = np.flatnonzero(mapped)
    sub = t if len(idx) == t.num_rows else t.take(pa.array(idx))
    ts_text = field(sub, "timestamp")
    ts, _ = parse_timestamps(ts_text)
    ok = np.asarray(pc.is_valid(ts))
    if not ok.all():
        for j in np.flatnonzero(~ok):
            value = ts_text[j].as_py()
            reason = (
                "EVE event without a timestamp"
                if value is None
                else f"unparseable timestamp {value!r}"
            )
            i = int(idx[j])
            ctx.reject(Reject(ctx.display, rows.line_of(i), reason, rows.raw(i), "timestamp"))
        keep = pa.array(ok)
        sub, idx, ts = sub.filter(keep), idx[ok], ts.filter(keep)
    return sub, idx, ts


def _batches(
    ctx: ReadContext, rows_iter: Iterator[JsonRows], display: str
) -> Iterator[pa.RecordBatch]:
    for rows in rows_iter:
        table, idx, ts = _select(ctx, rows)
        for start in range(0, table.num_rows, ctx.batch_size):
            piece = table.slice(start, ctx.batch_size).combine_chunks()
            piece_idx = idx[start : start + ctx.batch_size]
            cols = to_canonical(piece, display, ts=ts.slice(start, ctx.batch_size))
            batch = conform(
                cols,
                piece.num_rows,
                on_bad_rows=ctx.bad_rows(
                    lambda i, pi=piece_idx, r=rows: r.line_of(int(pi[i])),
                    lambda i, pi=piece_idx, r=rows: r.raw(int(pi[i])),
                ),
            )
            if batch.num_rows:
                yield batch


def read_batches(ctx: ReadContext) -> Iterator[pa.RecordBatch]:
    """Canonical batches of at most ``ctx.batch_size`` rows from one EVE file."""
    if _is_array(ctx):
        yield from _batches(ctx, iter_array_rows(ctx, EVE_SCHEMA), ctx.display)
    else:
        yield from _batches(ctx, iter_json_rows(ctx, EVE_SCHEMA), ctx.display)
