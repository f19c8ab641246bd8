"""The canonical event schema (ECS names, flat) and the roles its columns play.

Every reader yields record batches with exactly ``CANONICAL_SCHEMA``; a column a
source lacks is null. Indicator matching and enrichment never hard-code column
names: they ask ``FIELD_ROLES`` which columns hold IPs, domains, URLs or hashes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TIMESTAMP = pa.timestamp("us", tz="UTC")
DICT_STRING = pa.dictionary(pa.int32(), pa.string())
IP_BIN = pa.binary(16)

_FIELDS: list[tuple[str, pa.DataType, str]] = [
    # name, type, description
    ("@timestamp", TIMESTAMP, "event time"),
    ("event.dataset", DICT_STRING, "conn, dns, http, tls, files, x509, flow, alert, ..."),
    ("event.kind", DICT_STRING, "event or alert"),
    ("event.id", pa.string(), "sensor's id for the event (Zeek uid, Suricata flow_id)"),
    ("event.duration", pa.int64(), "nanoseconds"),
    ("event.action", DICT_STRING, "sensor's action (Suricata alert action)"),
    ("event.severity", pa.int64(), "sensor's severity (Suricata alert severity)"),
    ("observer.name", DICT_STRING, "sensor that saw it"),
    ("organization.name", DICT_STRING, "contributing hub or member organisation"),
    ("log.file.path", DICT_STRING, "file the event was read from"),
    ("source.ip", pa.string(), "IPv4 or IPv6 text"),
    ("source.port", pa.uint16(), ""),
    ("source.mac", pa.string(), ""),
    ("destination.ip", pa.string(), "IPv4 or IPv6 text"),
    ("destination.port", pa.uint16(), ""),
    ("destination.mac", pa.string(), ""),
    ("network.transport", DICT_STRING, "tcp, udp, icmp, ..."),
    ("network.protocol", DICT_STRING, "dns, http, tls, ..."),
    ("network.community_id", pa.string(), "Community ID v1"),
    ("network.connection.state", DICT_STRING, "Zeek conn_state or Suricata flow state"),
    ("source.bytes", pa.uint64(), ""),
    ("destination.bytes", pa.uint64(), ""),
    ("source.packets", pa.uint64(), ""),
    ("destination.packets", pa.uint64(), ""),
    ("dns.id", pa.uint16(), "transaction id"),
    ("dns.question.name", pa.string(), ""),
    ("dns.question.type", DICT_STRING, "A, AAAA, TXT, ..."),
    ("dns.question.class", DICT_STRING, "IN, ..."),
    ("dns.response_code", DICT_STRING, "NOERROR, NXDOMAIN, ..."),
    ("dns.answers.data", pa.list_(pa.string()), ""),
    ("dns.answers.ttl", pa.list_(pa.float64()), "seconds"),
    ("url.full", pa.string(), ""),
    ("url.domain", pa.string(), ""),
    ("url.path", pa.string(), ""),
    ("url.query", pa.string(), ""),
    ("url.port", pa.uint16(), ""),
    ("http.request.method", DICT_STRING, ""),
    ("http.request.referrer", pa.string(), ""),
    ("http.request.body.bytes", pa.uint64(), ""),
    ("http.response.status_code", pa.uint16(), ""),
    ("http.response.body.bytes", pa.uint64(), ""),
    ("http.response.mime_type", pa.string(), ""),
    ("http.version", DICT_STRING, ""),
    ("user_agent.original", pa.string(), ""),
    ("tls.version", DICT_STRING, ""),
    ("tls.cipher", DICT_STRING, ""),
    ("tls.established", pa.bool_(), ""),
    ("tls.server.name", pa.string(), "SNI"),
    ("tls.client.ja3", pa.string(), ""),
    ("tls.server.ja3s", pa.string(), ""),
    ("tls.server.subject", pa.string(), ""),
    ("tls.server.issuer", pa.string(), ""),
    ("tls.server.hash.sha1", pa.string(), ""),
    ("tls.server.hash.sha256", pa.string(), "leaf certificate fingerprint"),
    ("file.name", pa.string(), ""),
    ("file.mime_type", pa.string(), ""),
    ("file.size", pa.uint64(), ""),
    ("file.hash.md5", pa.string(), ""),
    ("file.hash.sha1", pa.string(), ""),
    ("file.hash.sha256", pa.string(), ""),
    ("file.x509.subject.distinguished_name", pa.string(), ""),
    ("file.x509.issuer.distinguished_name", pa.string(), ""),
    ("file.x509.serial_number", pa.string(), ""),
    ("file.x509.not_before", TIMESTAMP, ""),
    ("file.x509.not_after", TIMESTAMP, ""),
    ("file.x509.alternative_names", pa.list_(pa.string()), "SAN DNS names"),
    ("email.from.address", pa.string(), ""),
    ("email.to.address", pa.list_(pa.string()), ""),
    ("email.subject", pa.string(), ""),
    ("rule.id", pa.string(), "sensor signature id (Suricata alert)"),
    ("rule.name", pa.string(), "sensor signature name"),
    ("rule.category", pa.string(), ""),
    # Enrichment: parsed once per batch by detect.enrich, never by a kernel.
    ("source.ip_bin", IP_BIN, "source.ip as 16 bytes, IPv4-mapped IPv6"),
    ("destination.ip_bin", IP_BIN, "destination.ip as 16 bytes, IPv4-mapped IPv6"),
    ("dns.question.registered_domain", pa.string(), "public-suffix aware"),
    ("url.registered_domain", pa.string(), "public-suffix aware"),
    ("tls.server.registered_domain", pa.string(), "public-suffix aware"),
]

CANONICAL_SCHEMA = pa.schema([pa.field(name, typ) for name, typ, _ in _FIELDS])
COLUMNS: tuple[str, ...] = tuple(CANONICAL_SCHEMA.names)
DESCRIPTIONS: Mapping[str, str] = {name: desc for name, _, desc in _FIELDS}

# Columns filled by enrichment from another column: derived -> source.
IP_BIN_COLUMNS: Mapping[str, str] = {
    "source.ip_bin": "source.ip",
    "destination.ip_bin": "destination.ip",
}
REGISTERED_DOMAIN_COLUMNS: Mapping[str, str] = {
    "dns.question.registered_domain": "dns.question.name",
    "url.registered_domain": "url.domain",
    "tls.server.registered_domain": "tls.server.name",
}
ENRICHED_COLUMNS: frozenset[str] = frozenset(
    [*IP_BIN_COLUMNS, *REGISTERED_DOMAIN_COLUMNS]
)

# Which canonical columns hold which kind of observable. Indicator types map onto
# these roles; a list-typed column (dns.answers.data) is matched element-wise.
FIELD_ROLES: Mapping[str, tuple[str, ...]] = {
    "ip": ("source.ip", "destination.ip", "dns.answers.data"),
    "domain": ("dns.question.name", "url.domain", "tls.server.name"),
    "url": ("url.full",),
    "md5": ("file.hash.md5",),
    "sha1": ("file.hash.sha1", "tls.server.hash.sha1"),
    "sha256": ("file.hash.sha256", "tls.server.hash.sha256"),
    "ja3": ("tls.client.ja3",),
    "ja3s": ("tls.server.ja3s",),
    "email": ("email.from.address", "email.to.address"),
    "user-agent": ("user_agent.original",),
}


@dataclass(frozen=True)
class RowProblem:
    """A value in one row that does not fit its canonical column."""

    row: int
    column: str
    value: str
    reason: str


def empty_batch() -> pa.RecordBatch:
    """A zero-row batch with the canonical schema."""
    return pa.RecordBatch.from_pylist([], schema=CANONICAL_SCHEMA)


def _cast_column(name: str, arr: pa.Array, target: pa.DataType) -> pa.Array:
    if arr.type == target:
        return arr
    if pa.types.is_dictionary(target):
        if pa.types.is_dictionary(arr.type):
            arr = arr.cast(pa.dictionary(arr.type.index_type, pa.string()))
            return arr.cast(target)
        return pc.dictionary_encode(arr.cast(pa.string())).cast(target)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_timestamp(target) and (
        pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)
    ):
        msg = f"column {name!r}: numeric timestamps must be converted by the reader"
        raise TypeError(msg)
    return arr.cast(target, safe=True)


def _reason(target: pa.DataType, err: Exception) -> str:
    if pa.types.is_timestamp(target):
        return "not a time (ISO 8601 or epoch seconds expected)"
    if pa.types.is_integer(target):
        return f"not an integer that fits {target}"
    return str(err).splitlines()[0]


def find_bad_rows(name: str, arr: pa.Array, target: pa.DataType) -> list[RowProblem]:
    """Rows of ``arr`` that cannot be cast to ``target`` (only after a failed cast).

    Bisects: halves that cast are cleared at once, so a batch with a few bad values
    costs a few dozen casts, not one per row.
    """
    problems: list[RowProblem] = []

    def search(lo: int, hi: int) -> None:
        piece = arr.slice(lo, hi - lo)
        try:
            _cast_column(name, piece, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError, OverflowError) as e:
            if hi - lo == 1:
                problems.append(RowProblem(lo, name, str(piece[0].as_py()), _reason(target, e)))
                return
            mid = (lo + hi) // 2
            search(lo, mid)
            search(mid, hi)

    if len(arr):
        search(0, len(arr))
    return problems


def cast_or_null(
    name: str, arr: pa.Array, target: pa.DataType
) -> tuple[pa.Array, list[RowProblem]]:
    """``arr`` cast to ``target``, values that do not fit nulled and reported (bisection)."""
    try:
        return _cast_column(name, arr, target), []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError, OverflowError):
        pass
    bad = find_bad_rows(name, arr, target)
    keep = np.ones(len(arr), dtype=np.bool_)
    keep[[p.row for p in bad]] = False
    cleaned = pc.if_else(pa.array(keep), arr, pa.nulls(len(arr), arr.type))
    return _cast_column(name, cleaned, target), bad


def conform(
    columns: Mapping[str, pa.Array | pa.ChunkedArray],
    num_rows: int,
    *,
    on_bad_rows: Callable[[list[RowProblem]], None] | None = None,
) -> pa.RecordBatch:
    """Build a canonical batch from ``columns`` (canonical names); missing columns become null.

    Values that do not fit their column's type (a port of ``"http"``, say) make their
    whole row a reject: the rows are reported to ``on_bad_rows`` and dropped, so the
    batch that comes back may be shorter than ``num_rows``. Without ``on_bad_rows``
    the cast error propagates.
    """
    unknown = set(columns) - set(COLUMNS)
    if unknown:
        msg = f"not canonical columns: {sorted(unknown)}"
        raise KeyError(msg)
    arrays: dict[str, pa.Array] = {}
    problems: list[RowProblem] = []
    for field in CANONICAL_SCHEMA:
        arr = columns.get(field.name)
        if arr is None:
            continue
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if on_bad_rows is None:
            arrays[field.name] = _cast_column(field.name, arr, field.type)
            continue
        # values that do not fit are nulled here; their whole rows are dropped below
        arrays[field.name], bad = cast_or_null(field.name, arr, field.type)
        problems.extend(bad)
    batch = pa.RecordBatch.from_arrays(
        [
            arrays[f.name] if f.name in arrays else pa.nulls(num_rows, f.type)
            for f in CANONICAL_SCHEMA
        ],
        schema=CANONICAL_SCHEMA,
    )
    if problems:
        assert on_bad_rows is not None
        on_bad_rows(problems)
        keep = np.ones(num_rows, dtype=np.bool_)
        keep[[p.row for p in problems]] = False
        batch = batch.filter(pa.array(keep))
    return batch
