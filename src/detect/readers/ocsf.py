"""OCSF network events (JSON lines, or nested Parquet as Amazon Security Lake stores it).

Supported classes (OCSF 1.1, category 4 "Network Activity"):

* 4001 Network Activity -> ``event.dataset`` ``flow``
* 4002 HTTP Activity    -> ``http``
* 4003 DNS Activity     -> ``dns``

Other ``class_uid`` values are counted in ``ctx.skipped["ocsf:class_uid:<uid>"]`` and
skipped. Records are nested objects; we keep them nested in Arrow (the JSON parser
with an explicit schema, or Parquet's own nested columns) and pull leaves out with
``pyarrow.compute.struct_field``, never per row.

Where the mapping comes from: the attribute names and meanings of the OCSF 1.1
classes and objects (``network_activity``, ``http_activity``, ``dns_activity``;
``network_endpoint``, ``network_connection_info``, ``network_traffic``, ``tls``,
``fingerprint``, ``http_request``, ``http_response``, ``url``, ``dns_query``,
``dns_answer``, ``metadata``, ``product``, ``cloud``, ``account``) at
https://schema.ocsf.io/1.1.0, and the ECS field definitions for the canonical side.
The choices that need a reason:

* ``time`` is epoch milliseconds (OCSF ``timestamp_t``); ``time_dt`` (the datetime
  profile, text or a Parquet timestamp) is used when ``time`` is absent.
* ``duration`` is milliseconds; without it, ``end_time - start_time``.
* ``traffic.bytes_out`` / ``packets_out`` are "sent from the source to the
  destination", hence ``source.bytes`` / ``source.packets``; ``*_in`` the reverse.
* ``rcode_id`` (IANA number) gives ``dns.response_code`` in the usual upper-case
  spelling (``NXDOMAIN``), so OCSF and Suricata/Zeek agree; ``rcode`` text (upper-
  cased) only when the id is missing or 99 (Other).
* ``tls.certificate.fingerprints[]`` with ``algorithm_id`` 2 (SHA-1) / 3 (SHA-256)
  give the certificate hashes, lowercase hex without colons.
* ``observer.name`` is ``metadata.product.name`` (the sensor product; Security Lake
  has one source per object); ``organization.name`` is ``cloud.account.uid``, else
  ``metadata.tenant_uid``.
* ``action`` (Allowed/Denied) lowercased is ``event.action``, as for Suricata alerts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from detect.readers.base import ReadContext, Reject
from detect.readers.source import read_head
from detect.readers.suricata_eve import (
    JsonRows,
    field,
    field_of,
    first_item,
    iter_json_rows,
    list_field,
    parse_timestamps,
    where,
)
from detect.schema import TIMESTAMP, conform

__all__ = ["CLASSES", "OCSF_SCHEMA", "read_batches", "sniff"]

PARQUET_MAGIC = b"PAR1"

CLASSES: Mapping[int, str] = {4001: "flow", 4002: "http", 4003: "dns"}
_PROTOCOL_NUMBERS: Mapping[int, str] = {
    1: "icmp",
    6: "tcp",
    17: "udp",
    58: "ipv6-icmp",
    132: "sctp",
}
# IANA DNS RCODEs, as Suricata and Zeek spell them (OCSF rcode_id uses the numbers)
_RCODES: Mapping[int, str] = {
    0: "NOERROR",
    1: "FORMERR",
    2: "SERVFAIL",
    3: "NXDOMAIN",
    4: "NOTIMP",
    5: "REFUSED",
    6: "YXDOMAIN",
    7: "YXRRSET",
    8: "NXRRSET",
    9: "NOTAUTH",
    10: "NOTZONE",
    11: "DSOTYPENI",
    16: "BADVERS",
    17: "BADKEY",
    18: "BADTIME",
    19: "BADMODE",
    20: "BADNAME",
    21: "BADALG",
    22: "BADTRUNC",
    23: "BADCOOKIE",
}
_SHA1, _SHA256 = 2, 3  # OCSF fingerprint algorithm_id

_S, _I = pa.string(), pa.int64()


def _struct(**fields: pa.DataType) -> pa.DataType:
    return pa.struct([pa.field(k, v) for k, v in fields.items()])


_ENDPOINT = _struct(ip=_S, port=_I, mac=_S, hostname=_S)
_FINGERPRINT = _struct(algorithm=_S, algorithm_id=_I, value=_S)

# The subset of OCSF 1.1 we read; the JSON parser ignores everything else.
OCSF_SCHEMA = pa.schema(
    [
        ("class_uid", _I),
        ("activity_name", _S),
        ("time", _I),
        ("time_dt", _S),
        ("start_time", _I),
        ("end_time", _I),
        ("duration", _I),
        ("severity_id", _I),
        ("action", _S),
        ("app_name", _S),
        (
            "metadata",
            _struct(uid=_S, tenant_uid=_S, version=_S, product=_struct(name=_S, vendor_name=_S)),
        ),
        ("cloud", _struct(account=_struct(uid=_S))),
        ("src_endpoint", _ENDPOINT),
        ("dst_endpoint", _ENDPOINT),
        (
            "connection_info",
            _struct(protocol_name=_S, protocol_num=_I, community_uid=_S),
        ),
        (
            "traffic",
            _struct(bytes_in=_I, bytes_out=_I, packets_in=_I, packets_out=_I),
        ),
        (
            "tls",
            _struct(
                sni=_S,
                version=_S,
                ja3_hash=_FINGERPRINT,
                ja3s_hash=_FINGERPRINT,
                certificate=_struct(subject=_S, issuer=_S, fingerprints=pa.list_(_FINGERPRINT)),
            ),
        ),
        (
            "http_request",
            _struct(
                http_method=_S,
                user_agent=_S,
                referrer=_S,
                version=_S,
                url=_struct(
                    hostname=_S, path=_S, port=_I, query_string=_S, scheme=_S, url_string=_S
                ),
            ),
        ),
        ("http_response", _struct(code=_I, content_type=_S, length=_I)),
        ("query", _struct(hostname=_S, type=_S, **{"class": _S}, packet_uid=_I)),
        ("answers", pa.list_(_struct(rdata=_S, ttl=_I, type=_S))),
        ("rcode", _S),
        ("rcode_id", _I),
    ]
)

_LineOf = Callable[[int], int | None]
_Raw = Callable[[int], str | None]

_CLASS_UID = re.compile(rb'"class_uid"\s*:\s*(\d+)')


def sniff(head: bytes, path: Path) -> bool:
    """True for OCSF: JSON lines whose first object has ``class_uid`` 4001/4002/4003, or
    a Parquet file whose schema has a ``class_uid`` column."""
    if head.startswith(PARQUET_MAGIC):
        try:
            return "class_uid" in pq.read_schema(path).names
        except (OSError, pa.ArrowException):
            return False
    text = head.removeprefix(b"\xef\xbb\xbf")
    line = next((ln.strip() for ln in text.split(b"\n") if ln.strip()), b"")
    if not line.startswith(b"{"):
        return False
    m = _CLASS_UID.search(line)
    return bool(m and int(m.group(1)) in CLASSES)


# ---------------------------------------------------------------------------------
# mapping


def _epoch_ms(arr: pa.Array) -> pa.Array:
    """OCSF ``timestamp_t`` (epoch ms, any integer type) or a real timestamp, to UTC."""
    if pa.types.is_timestamp(arr.type):
        return arr.cast(TIMESTAMP)
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        us = pc.multiply(arr.cast(pa.int64()), 1000)
        return us.cast(TIMESTAMP)
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), TIMESTAMP)
    return parse_timestamps(arr)[0]


def _ms_to_ns(arr: pa.Array) -> pa.Array:
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.int64())
    return pc.multiply(arr.cast(pa.int64()), 1_000_000)


def _lookup(ids: pa.Array, table: Mapping[int, str]) -> pa.Array:
    """``table[id]`` per row, null when the id is unknown."""
    keys = pa.array(list(table), pa.int64())
    return pa.array(list(table.values())).take(pc.index_in(ids.cast(pa.int64()), keys))


def _fingerprint(fps: pa.Array, algorithm_id: int) -> pa.Array:
    """The value of the first fingerprint with ``algorithm_id``, normalised hex."""
    if not pa.types.is_list(fps.type):
        return pa.nulls(len(fps), _S)
    flat = pc.list_flatten(fps)
    keep = pc.equal(field_of(flat, "algorithm_id", _I).cast(pa.int64()), algorithm_id)
    values = list_field(fps, "value", keep=keep)
    return pc.utf8_lower(pc.replace_substring(first_item(values).cast(_S), ":", ""))


def _lower(arr: pa.Array) -> pa.Array:
    return pc.utf8_lower(arr.cast(_S))


def to_canonical(t: pa.Table | pa.RecordBatch, display: str) -> dict[str, pa.Array]:
    """Canonical columns for OCSF 4001/4002/4003 records (nested, any source)."""
    n = t.num_rows
    cls = field(t, "class_uid", _I).cast(pa.int64())
    time = _epoch_ms(field(t, "time", _I))
    if time.null_count:
        time = pc.coalesce(time, _epoch_ms(field(t, "time_dt")))
    duration = _ms_to_ns(field(t, "duration", _I))
    span = pc.subtract(
        field(t, "end_time", _I).cast(pa.int64()), field(t, "start_time", _I).cast(pa.int64())
    )
    proto_num = field(t, "connection_info.protocol_num", _I)
    default_protocol = where(pc.not_equal(cls, 4001), _lookup(cls, CLASSES))

    url = field(t, "http_request.url")
    host = field_of(url, "hostname")
    path = field_of(url, "path")
    query = field_of(url, "query_string")
    port = field_of(url, "port", _I)
    built = pc.binary_join_element_wise(
        pc.fill_null(field_of(url, "scheme"), "http"),
        "://",
        host,
        pc.fill_null(pc.binary_join_element_wise(":", port.cast(_S), ""), ""),
        pc.fill_null(path, ""),
        pc.fill_null(pc.binary_join_element_wise("?", query, ""), ""),
        "",
        null_handling="emit_null",
    )
    rcode_id = field(t, "rcode_id", _I)
    fps = field(t, "tls.certificate.fingerprints", pa.list_(_FINGERPRINT))
    cols: dict[str, pa.Array] = {
        "@timestamp": time,
        "event.dataset": _lookup(cls, CLASSES),
        "event.kind": pa.array(["event"] * n),
        "event.id": field(t, "metadata.uid"),
        "event.duration": pc.coalesce(duration, _ms_to_ns(span)),
        "event.action": _lower(field(t, "action")),
        "event.severity": field(t, "severity_id", _I),
        "observer.name": field(t, "metadata.product.name"),
        "organization.name": pc.coalesce(
            field(t, "cloud.account.uid").cast(_S), field(t, "metadata.tenant_uid").cast(_S)
        ),
        "log.file.path": pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, dtype=np.int32)), pa.array([display])
        ),
        "source.ip": field(t, "src_endpoint.ip"),
        "source.port": field(t, "src_endpoint.port", _I),
        "source.mac": field(t, "src_endpoint.mac"),
        "destination.ip": field(t, "dst_endpoint.ip"),
        "destination.port": field(t, "dst_endpoint.port", _I),
        "destination.mac": field(t, "dst_endpoint.mac"),
        "network.transport": pc.coalesce(
            _lower(field(t, "connection_info.protocol_name")),
            _lookup(proto_num, _PROTOCOL_NUMBERS),
        ),
        "network.protocol": pc.coalesce(_lower(field(t, "app_name")), default_protocol),
        "network.community_id": field(t, "connection_info.community_uid"),
        "source.bytes": field(t, "traffic.bytes_out", _I),
        "destination.bytes": field(t, "traffic.bytes_in", _I),
        "source.packets": field(t, "traffic.packets_out", _I),
        "destination.packets": field(t, "traffic.packets_in", _I),
        # TLS (any network class may carry it)
        "tls.server.name": field(t, "tls.sni"),
        "tls.version": field(t, "tls.version"),
        "tls.client.ja3": field(t, "tls.ja3_hash.value"),
        "tls.server.ja3s": field(t, "tls.ja3s_hash.value"),
        "tls.server.subject": field(t, "tls.certificate.subject"),
        "tls.server.issuer": field(t, "tls.certificate.issuer"),
        "tls.server.hash.sha1": _fingerprint(fps, _SHA1),
        "tls.server.hash.sha256": _fingerprint(fps, _SHA256),
        # HTTP Activity
        "url.full": pc.coalesce(field_of(url, "url_string"), built),
        "url.domain": host,
        "url.path": path,
        "url.query": query,
        "url.port": port,
        "http.request.method": field(t, "http_request.http_method"),
        "http.request.referrer": field(t, "http_request.referrer"),
        "http.version": pc.replace_substring_regex(field(t, "http_request.version"), r"^HTTP/", ""),
        "user_agent.original": field(t, "http_request.user_agent"),
        "http.response.status_code": field(t, "http_response.code", _I),
        "http.response.mime_type": field(t, "http_response.content_type"),
        "http.response.body.bytes": field(t, "http_response.length", _I),
        # DNS Activity
        "dns.id": field(t, "query.packet_uid", _I),
        "dns.question.name": field(t, "query.hostname"),
        "dns.question.type": field(t, "query.type"),
        "dns.question.class": field(t, "query.class"),
        "dns.response_code": pc.coalesce(
            _lookup(rcode_id, _RCODES), pc.utf8_upper(field(t, "rcode").cast(_S))
        ),
        "dns.answers.data": list_field(field(t, "answers", pa.list_(_S)), "rdata"),
        "dns.answers.ttl": _answer_ttls(field(t, "answers", pa.list_(_S))),
    }
    return {k: v for k, v in cols.items() if v.null_count < n or k == "@timestamp"}


def _answer_ttls(answers: pa.Array) -> pa.Array:
    """TTLs aligned with ``dns.answers.data`` (answers without rdata are left out)."""
    if not pa.types.is_list(answers.type) or not pa.types.is_struct(answers.type.value_type):
        return pa.nulls(len(answers), pa.list_(pa.float64()))
    has_rdata = pc.is_valid(field_of(pc.list_flatten(answers), "rdata"))
    ttl = list_field(answers, "ttl", keep=has_rdata, drop_null=False)
    return ttl.cast(pa.list_(pa.float64()))


# ---------------------------------------------------------------------------------
# reading


def _select(
    ctx: ReadContext, t: pa.Table | pa.RecordBatch, line_of: _LineOf, raw: _Raw
) -> tuple[pa.Table | pa.RecordBatch, np.ndarray]:
    """Keep supported classes; count the others; reject records without ``class_uid``."""
    cls = field(t, "class_uid", _I)
    has = np.asarray(pc.is_valid(cls))
    supported = np.asarray(
        pc.fill_null(pc.is_in(cls.cast(pa.int64()), pa.array(list(CLASSES), pa.int64())), False)
    )
    other = has & ~supported
    if other.any():
        for item in pc.value_counts(cls.filter(pa.array(other))).to_pylist():
            ctx.skipped[f"ocsf:class_uid:{item['values']}"] += item["counts"]
    for i in np.flatnonzero(~has):
        ctx.reject(
            Reject(ctx.display, line_of(i), "not an OCSF event: no class_uid", raw(i), "class_uid")
        )
    idx = np.flatnonzero(supported)
    if len(idx) == t.num_rows:
        return t, idx
    return t.take(pa.array(idx)), idx


def _emit(
    ctx: ReadContext, t: pa.Table | pa.RecordBatch, line_of: _LineOf, raw: _Raw
) -> Iterator[pa.RecordBatch]:
    kept, idx = _select(ctx, t, line_of, raw)
    for start in range(0, kept.num_rows, ctx.batch_size):
        piece = kept.slice(start, ctx.batch_size)
        if isinstance(piece, pa.Table):
            piece = piece.combine_chunks()
        piece_idx = idx[start : start + ctx.batch_size]
        cols = to_canonical(piece, ctx.display)
        missing_time = np.flatnonzero(~np.asarray(pc.is_valid(cols["@timestamp"])))
        if len(missing_time):
            for j in missing_time:
                i = int(piece_idx[j])
                ctx.reject(
                    Reject(ctx.display, line_of(i), "OCSF event without time", raw(i), "time")
                )
            keep = pc.is_valid(cols["@timestamp"])
            cols = {k: v.filter(keep) for k, v in cols.items()}
            piece_idx = piece_idx[np.asarray(keep)]
        batch = conform(
            cols,
            len(piece_idx),
            on_bad_rows=ctx.bad_rows(
                lambda j, pi=piece_idx: line_of(int(pi[j])),
                lambda j, pi=piece_idx: raw(int(pi[j])),
            ),
        )
        if batch.num_rows:
            yield batch


def _read_parquet(ctx: ReadContext) -> Iterator[pa.RecordBatch]:
    try:
        pf = pq.ParquetFile(ctx.path)
    except (OSError, pa.ArrowException) as e:
        msg = f"cannot read Parquet: {e}"
        raise ctx.error(msg) from e
    names = set(pf.schema_arrow.names)
    if "class_uid" not in names:
        msg = "Parquet file has no class_uid column: not OCSF"
        raise ctx.error(msg, column="class_uid")
    columns = [name for name in OCSF_SCHEMA.names if name in names]
    batches = pf.iter_batches(batch_size=ctx.batch_size, columns=columns)
    row_base = 1
    while True:
        try:
            batch = next(batches, None)
        except (OSError, pa.ArrowException) as e:
            msg = f"cannot read Parquet after row {row_base - 1}: {e}"
            raise ctx.error(msg, line=row_base) from e
        if batch is None:
            return
        base = row_base
        yield from _emit(ctx, batch, lambda i, b=base: b + i, lambda _i: None)
        row_base += batch.num_rows


def _read_json(ctx: ReadContext) -> Iterator[pa.RecordBatch]:
    rows: JsonRows
    for rows in iter_json_rows(ctx, OCSF_SCHEMA):
        yield from _emit(ctx, rows.table, rows.line_of, rows.raw)


def read_batches(ctx: ReadContext) -> Iterator[pa.RecordBatch]:
    """Canonical batches of at most ``ctx.batch_size`` rows from one OCSF file."""
    if read_head(ctx.path, len(PARQUET_MAGIC)) == PARQUET_MAGIC:
        yield from _read_parquet(ctx)
    else:
        yield from _read_json(ctx)
