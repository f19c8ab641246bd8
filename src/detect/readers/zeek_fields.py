"""Zeek log fields -> canonical columns, one table per log path, shared by the TSV and JSON readers.

Both readers first *normalise* a block of rows into one array per Zeek field name, with the
Zeek logical type already applied (``time`` -> ``timestamp[us, UTC]``, ``interval`` ->
``float64`` seconds, ``bool`` -> ``bool``, ``set``/``vector`` -> ``list<string>``, counts and
ports as integers or as text that ``schema.conform`` casts). This module only maps those
arrays onto canonical columns, so a TSV log and a JSON log of the same events give the same
rows. Field names are looked up as written (``id.orig_h``) and with dots as underscores
(``id_orig_h``: OTRF/Security-Datasets JSON, Zeek's ``scope_sep``).

Mapping (every log path gets the common rows; ``a | b`` = first non-null of ``a``, ``b``):

===============================  ==================================================================
canonical column                 Zeek field
===============================  ==================================================================
@timestamp                       ts (UTC, microseconds)
event.dataset                    the log path; ``ssl`` -> ``tls``
event.kind                       ``alert`` for notice, else ``event``
event.id                         uid (connection uid); files: uid | conn_uids[0]; x509: fuid | id
observer.name                    _node_name (zeekctl) | @system (OTRF) | _system_name
log.file.path                    the file read
source.ip / source.port          id.orig_h / id.orig_p
destination.ip / .port           id.resp_h / id.resp_p
network.transport                proto
network.protocol                 conn: service (as logged, e.g. ``gssapi,smb,krb``);
                                 other protocol logs: a constant (dns, http, tls, smtp, ssh, ...)
network.community_id            community_id (when the log has it)
conn                             duration -> event.duration (ns), orig_ip_bytes/resp_ip_bytes
                                 (IP-level, as Elastic's Zeek pipeline and Suricata's
                                 bytes_toserver; orig_bytes/resp_bytes, payload, when a log
                                 lacks them) -> source/destination.bytes, orig_pkts/resp_pkts
                                 -> *.packets,
                                 conn_state -> network.connection.state,
                                 orig_l2_addr/resp_l2_addr -> source/destination.mac
dns                              query -> dns.question.name, qtype_name -> dns.question.type,
                                 qclass_name -> dns.question.class, rcode_name ->
                                 dns.response_code, answers -> dns.answers.data, TTLs ->
                                 dns.answers.ttl (seconds, rounded to 1 µs), trans_id -> dns.id
http                             method, host -> url.domain (port stripped), uri -> url.path /
                                 url.query (split on the first ``?``), url.full (below),
                                 referrer, user_agent, status_code, request_body_len /
                                 response_body_len -> http.request/response.body.bytes,
                                 version -> http.version, resp_mime_types[0] ->
                                 http.response.mime_type, url.port (explicit port in url.full)
ssl (``tls``)                    version (ECS: TLSv12 -> 1.2, SSLv3 -> 3.0), cipher,
                                 server_name -> tls.server.name, established,
                                 ja3, ja3s, subject, issuer, cert_chain_fps[0] ->
                                 tls.server.hash.sha256, resp_certificate_sha1 -> ...sha1
files                            filename, mime_type, md5/sha1/sha256 -> file.*,
                                 total_bytes | seen_bytes -> file.size, duration,
                                 tx_hosts[0] | id.orig_h -> source.ip,
                                 rx_hosts[0] | id.resp_h -> destination.ip
x509                             fingerprint -> file.hash.sha256 (Zeek's default
                                 ``X509::hash_function`` is SHA-256; joins ssl cert_chain_fps),
                                 certificate.subject / issuer / serial / not_valid_before /
                                 not_valid_after -> file.x509.*, san.dns ->
                                 file.x509.alternative_names
smtp                             mailfrom -> email.from.address, rcptto -> email.to.address,
                                 subject -> email.subject
notice                           note -> rule.name, src / dst / p fill the endpoints when id.* is
                                 unset
weird                            name -> rule.name
other paths                      the common rows only (ssh, rdp, kerberos, smb_*, ntlm, ...)
===============================  ==================================================================

``url.full``: ``http://`` + host + uri; without a Host header the responder address (IPv6
in brackets, ``:port`` unless 80) stands in for host. An absolute ``uri`` (as a proxy logs
it) is kept as is; a ``CONNECT`` keeps its ``host:port`` target as logged.

Not mapped (no canonical column yet): the file id ``fuid`` of files.log (``event.id`` keeps
the connection uid so files rows join conn/http rows), dns ``rtt``, notice ``msg``, user
names. Zeek's ``field-name-map`` renames (``src``, ``dst_port``) are not undone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detect import schema
from detect.readers.base import ReadContext, ecs_tls_version
from detect.schema import RowProblem

FieldGetter = Callable[[str], "pa.Array | None"]

# Zeek logical kinds of the fields the mapping reads. Readers use them where the log does not
# say (JSON, headerless zeek-cut TSV); a TSV ``#types`` line wins over this table.
TIME, INTERVAL, BOOL, INT, UINT, STRING, STRING_LIST, FLOAT_LIST = (
    "time",
    "interval",
    "bool",
    "int",
    "uint",
    "string",
    "list",
    "float_list",
)
FIELD_KINDS: Mapping[str, str] = {
    "ts": TIME,
    "certificate.not_valid_before": TIME,
    "certificate.not_valid_after": TIME,
    "duration": INTERVAL,
    "established": BOOL,
    "id.orig_p": INT,
    "id.resp_p": INT,
    "p": INT,
    "trans_id": INT,
    "status_code": INT,
    "orig_bytes": UINT,
    "resp_bytes": UINT,
    "orig_ip_bytes": UINT,
    "resp_ip_bytes": UINT,
    "orig_pkts": UINT,
    "resp_pkts": UINT,
    "request_body_len": UINT,
    "response_body_len": UINT,
    "total_bytes": UINT,
    "seen_bytes": UINT,
    "answers": STRING_LIST,
    "TTLs": FLOAT_LIST,
    "resp_mime_types": STRING_LIST,
    "cert_chain_fps": STRING_LIST,
    "tx_hosts": STRING_LIST,
    "rx_hosts": STRING_LIST,
    "conn_uids": STRING_LIST,
    "san.dns": STRING_LIST,
    "rcptto": STRING_LIST,
}

# Zeek paths whose rows are one application protocol: network.protocol for them.
PROTOCOL_OF_PATH: Mapping[str, str] = {
    "dns": "dns",
    "http": "http",
    "ssl": "tls",
    "smtp": "smtp",
    "ssh": "ssh",
    "rdp": "rdp",
    "kerberos": "kerberos",
    "ntlm": "ntlm",
    "dce_rpc": "dce_rpc",
    "smb_files": "smb",
    "smb_mapping": "smb",
    "ftp": "ftp",
    "sip": "sip",
    "snmp": "snmp",
    "ntp": "ntp",
    "radius": "radius",
    "dhcp": "dhcp",
    "modbus": "modbus",
    "rfb": "rfb",
    "mysql": "mysql",
    "irc": "irc",
    "ldap": "ldap",
    "ldap_search": "ldap",
    "quic": "quic",
    "syslog": "syslog",
    "socks": "socks",
    "dnp3": "dnp3",
}

# Log paths we recognise in file names (``NASHUA_conn.log`` -> conn). Others still read,
# with event.dataset = whatever the name says.
KNOWN_PATHS: frozenset[str] = frozenset(
    [
        *PROTOCOL_OF_PATH,
        "conn",
        "files",
        "x509",
        "weird",
        "notice",
        "dpd",
        "pe",
        "ocsp",
        "tunnel",
        "software",
        "known_hosts",
        "known_services",
        "known_certs",
        "capture_loss",
        "stats",
        "reporter",
        "loaded_scripts",
        "packet_filter",
        "analyzer",
        "open_conn",
        "intel",
        "signatures",
        "conn_long",
        "netcontrol",
    ]
)


@dataclass(frozen=True)
class Take:
    """Canonical ``column`` <- the first non-null of Zeek ``fields`` (element 0 if ``first``)."""

    column: str
    fields: tuple[str, ...]
    first: bool = False


_COMMON: tuple[Take, ...] = (
    Take("@timestamp", ("ts",)),
    Take("event.id", ("uid",)),
    Take("observer.name", ("_node_name", "@system", "_system_name")),
    Take("source.ip", ("id.orig_h",)),
    Take("source.port", ("id.orig_p",)),
    Take("destination.ip", ("id.resp_h",)),
    Take("destination.port", ("id.resp_p",)),
    Take("network.transport", ("proto",)),
    Take("network.community_id", ("community_id",)),
)

_CONN: tuple[Take, ...] = (
    Take("network.protocol", ("service",)),
    Take("source.bytes", ("orig_ip_bytes", "orig_bytes")),
    Take("destination.bytes", ("resp_ip_bytes", "resp_bytes")),
    Take("source.packets", ("orig_pkts",)),
    Take("destination.packets", ("resp_pkts",)),
    Take("network.connection.state", ("conn_state",)),
    Take("source.mac", ("orig_l2_addr",)),
    Take("destination.mac", ("resp_l2_addr",)),
)
# conn.log's layout is shared by the long-connection logs (open_conn, conn_long plugins)
CONN_PATHS = ("conn", "open_conn", "conn_long")

_BY_PATH: Mapping[str, tuple[Take, ...]] = {
    **dict.fromkeys(CONN_PATHS, _CONN),
    "dns": (
        Take("dns.id", ("trans_id",)),
        Take("dns.question.name", ("query",)),
        Take("dns.question.type", ("qtype_name",)),
        Take("dns.question.class", ("qclass_name",)),
        Take("dns.response_code", ("rcode_name",)),
        Take("dns.answers.data", ("answers",)),
    ),
    "http": (
        Take("http.request.method", ("method",)),
        Take("http.request.referrer", ("referrer",)),
        Take("user_agent.original", ("user_agent",)),
        Take("http.response.status_code", ("status_code",)),
        Take("http.request.body.bytes", ("request_body_len",)),
        Take("http.response.body.bytes", ("response_body_len",)),
        Take("http.version", ("version",)),
        Take("http.response.mime_type", ("resp_mime_types",), first=True),
    ),
    "ssl": (
        Take("tls.version", ("version",)),
        Take("tls.cipher", ("cipher",)),
        Take("tls.server.name", ("server_name",)),
        Take("tls.established", ("established",)),
        Take("tls.client.ja3", ("ja3",)),
        Take("tls.server.ja3s", ("ja3s",)),
        Take("tls.server.subject", ("subject",)),
        Take("tls.server.issuer", ("issuer",)),
        Take("tls.server.hash.sha256", ("cert_chain_fps",), first=True),
        Take("tls.server.hash.sha1", ("resp_certificate_sha1",)),
    ),
    "files": (
        Take("file.name", ("filename",)),
        Take("file.mime_type", ("mime_type",)),
        Take("file.hash.md5", ("md5",)),
        Take("file.hash.sha1", ("sha1",)),
        Take("file.hash.sha256", ("sha256",)),
        Take("file.size", ("total_bytes", "seen_bytes")),
    ),
    "x509": (
        Take("event.id", ("fuid", "id")),
        Take("file.hash.sha256", ("fingerprint",)),
        Take("file.x509.subject.distinguished_name", ("certificate.subject",)),
        Take("file.x509.issuer.distinguished_name", ("certificate.issuer",)),
        Take("file.x509.serial_number", ("certificate.serial",)),
        Take("file.x509.not_before", ("certificate.not_valid_before",)),
        Take("file.x509.not_after", ("certificate.not_valid_after",)),
        Take("file.x509.alternative_names", ("san.dns",)),
    ),
    "smtp": (
        Take("email.from.address", ("mailfrom",)),
        Take("email.to.address", ("rcptto",)),
        Take("email.subject", ("subject",)),
    ),
    "notice": (
        Take("rule.name", ("note",)),
        Take("source.ip", ("id.orig_h", "src")),
        Take("destination.ip", ("id.resp_h", "dst")),
        Take("destination.port", ("id.resp_p", "p")),
    ),
    "weird": (Take("rule.name", ("name",)),),
}

# Fields read by code below rather than by a Take.
_DERIVED_FIELDS: Mapping[str, tuple[str, ...]] = {
    **dict.fromkeys(CONN_PATHS, ("duration",)),
    "files": ("duration", "uid", "conn_uids", "tx_hosts", "rx_hosts"),
    "dns": ("TTLs",),
    "http": ("host", "uri", "method", "id.resp_h", "id.resp_p"),
}


def dataset_of(path: str) -> str:
    """``event.dataset`` for a Zeek log path (``ssl`` is called ``tls`` in the canonical schema)."""
    return "tls" if path == "ssl" else path


def _rules(path: str) -> list[Take]:
    """Common rules, overridden column by column by the path's own rules."""
    own = _BY_PATH.get(path, ())
    overridden = {t.column for t in own}
    return [t for t in _COMMON if t.column not in overridden] + list(own)


def source_fields(path: str) -> frozenset[str]:
    """Zeek field names the mapping of ``path`` reads, so a reader can parse only those."""
    names = {f for t in _rules(path) for f in t.fields}
    names.update(_DERIVED_FIELDS.get(path, ()))
    return frozenset(names)


def all_source_fields() -> frozenset[str]:
    """Every Zeek field any path reads (a JSON file may mix paths)."""
    names: set[str] = set()
    for path in [*_BY_PATH, "_other"]:
        names |= source_fields(path)
    return frozenset(names)


def spellings(name: str) -> tuple[str, ...]:
    """The ways ``name`` appears in logs: as Zeek writes it and with dots as underscores."""
    alt = name.replace(".", "_")
    return (name,) if alt == name else (name, alt)


def kind_of(name: str) -> str | None:
    """The Zeek kind of field ``name`` (either spelling), when the mapping needs one."""
    kind = FIELD_KINDS.get(name)
    if kind is None and "_" in name:
        for dotted, k in FIELD_KINDS.items():
            if "." in dotted and dotted.replace(".", "_") == name:
                return k
    return kind


# --------------------------------------------------------------------------- path from file name

_COMPRESSION = re.compile(r"\.(gz|gzip|bz2|xz|zst|lz4)$")
_ROTATION_COUNTER = re.compile(r"\.\d+$")
_EXTENSION = re.compile(r"\.(log|json|jsonl|ndjson|txt|tsv)$")
_DATE_SUFFIX = re.compile(r"[._-]\d[\d:_-]*$")


def path_from_filename(file: str | PurePath) -> str | None:
    """Zeek log path from a file name, rotated or not (``conn.00:00:00-01:00:00.log.gz``,
    ``conn.2024-04-19-10-00-00.log``, ``dns_20200101.json``, ``conn.log.1``, ``NASHUA_conn.log``).
    """
    name = PurePath(file).name.lower()
    name = _COMPRESSION.sub("", name)
    name = _ROTATION_COUNTER.sub("", name)
    name = _EXTENSION.sub("", name)
    base = name.split(".", 1)[0]
    base = _DATE_SUFFIX.sub("", base)
    if not base or not re.fullmatch(r"[a-z0-9_-]+", base):
        return None
    if base in KNOWN_PATHS:
        return base
    parts = base.split("_")
    for i in range(1, len(parts)):  # a capture-host prefix: NASHUA_conn, UTICA-A_smb_files
        tail = "_".join(parts[i:])
        if tail in KNOWN_PATHS:
            return tail
    return base


# --------------------------------------------------------------------------- array helpers


def epoch_to_timestamp(seconds: pa.Array) -> pa.Array:
    """Float epoch seconds -> timestamp[us, UTC], rounded to the microsecond Zeek logs."""
    us = pc.round(pc.multiply(seconds.cast(pa.float64()), 1e6))
    return us.cast(pa.int64()).cast(schema.TIMESTAMP)


def first_element(lists: pa.Array) -> pa.Array:
    """Element 0 of each list; null for a null or empty list."""
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    if pa.types.is_null(lists.type):
        return lists.cast(pa.string())
    if not pa.types.is_list(lists.type) and not pa.types.is_large_list(lists.type):
        return lists  # a scalar where Zeek usually logs a set: take it as is
    values = lists.values
    offsets = np.asarray(lists.offsets)
    lengths = pc.list_value_length(lists)
    if len(values) == 0:
        return pa.nulls(len(lists), values.type)
    idx = np.minimum(offsets[:-1], len(values) - 1)
    taken = values.take(pa.array(idx))
    return pc.if_else(pc.greater(lengths, 0), taken, pa.nulls(len(lists), values.type))


def _coalesce(arrays: list[pa.Array]) -> pa.Array:
    if len(arrays) == 1:
        return arrays[0]
    target = next((a.type for a in arrays if not pa.types.is_null(a.type)), arrays[0].type)
    return pc.coalesce(*[a.cast(target) for a in arrays])


def _lookup(get: FieldGetter, name: str) -> pa.Array | None:
    for spelling in spellings(name):
        arr = get(spelling)
        if arr is not None:
            return arr
    return None


# --------------------------------------------------------------------------- the mapping


def canonical_columns(
    path: str,
    get: FieldGetter,
    num_rows: int,
) -> dict[str, pa.Array]:
    """Canonical columns for ``num_rows`` rows of Zeek log ``path``.

    ``get(field)`` returns the normalised array of a Zeek field, or None when the log
    lacks it. The result goes to ``schema.conform``, which casts and rejects bad values.
    """
    cols: dict[str, pa.Array] = {}
    for take in _rules(path):
        found = [a for a in (_lookup(get, f) for f in take.fields) if a is not None]
        if not found:
            continue
        if take.first:
            found = [first_element(a) for a in found]
        cols[take.column] = _coalesce(found)
    n = num_rows
    cols["event.dataset"] = _constant(dataset_of(path), n)
    cols["event.kind"] = _constant("alert" if path == "notice" else "event", n)
    if path in PROTOCOL_OF_PATH and "network.protocol" not in cols:
        cols["network.protocol"] = _constant(PROTOCOL_OF_PATH[path], n)
    if path in (*CONN_PATHS, "files"):
        duration = _lookup(get, "duration")
        if duration is not None:
            cols["event.duration"] = seconds_to_ns(duration)
    if path == "files":
        _files(get, cols)
    elif path == "dns":
        ttls = _lookup(get, "TTLs")
        if ttls is not None:
            cols["dns.answers.ttl"] = _round_list(ttls)
    elif path == "http":
        cols.update(http_url_columns(get, n))
    elif path == "ssl" and "tls.version" in cols:
        cols["tls.version"] = ecs_tls_version(cols["tls.version"])  # TLSv12 -> 1.2, as EVE
    return cols


def _constant(value: str, n: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([value]))


def seconds_to_ns(seconds: pa.Array) -> pa.Array:
    """Zeek ``interval`` seconds -> int64 nanoseconds, rounded to the microsecond.

    Zeek's TSV writer prints intervals with 6 decimals while its JSON writer prints the full
    double; rounding both to 1 µs makes the two formats give the same value.
    """
    us = pc.round(pc.multiply(seconds.cast(pa.float64()), 1e6))
    return pc.multiply(us.cast(pa.int64()), 1000)


def _round_list(lists: pa.Array) -> pa.Array:
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    if not pa.types.is_list(lists.type):
        return lists
    values = pc.round(lists.values.cast(pa.float64()), 6)
    return pa.ListArray.from_arrays(
        lists.offsets, values, mask=lists.is_null() if lists.null_count else None
    )


def _files(get: FieldGetter, cols: dict[str, pa.Array]) -> None:
    """files.log: old layout (tx_hosts/rx_hosts/conn_uids) and Zeek 5+ (uid, id.*)."""
    for column, list_field in (
        ("event.id", "conn_uids"),
        ("source.ip", "tx_hosts"),
        ("destination.ip", "rx_hosts"),
    ):
        arr = _lookup(get, list_field)
        if arr is None:
            continue
        first = first_element(arr)
        cols[column] = first if column not in cols else _coalesce([first, cols[column]])


_SCHEME = r"^[A-Za-z][A-Za-z0-9+.-]*://"
_HOST_PORT = r"^([^:\[\]]+|\[[^\]]*\]):\d+$"


def http_url_columns(get: FieldGetter, n: int) -> dict[str, pa.Array]:
    """url.* columns of http.log rows, from host, uri, method and the responder address."""
    host = _lookup(get, "host")
    uri = _lookup(get, "uri")
    method = _lookup(get, "method")
    out: dict[str, pa.Array] = {}
    if host is not None:
        host = host.cast(pa.string())
        nonempty = pc.and_kleene(pc.is_valid(host), pc.not_equal(host, ""))
        domain = pc.replace_substring_regex(host, _HOST_PORT, r"\1")
        out["url.domain"] = pc.if_else(nonempty, domain, pa.nulls(n, pa.string()))
    if uri is None:
        return out
    uri = uri.cast(pa.string())
    is_connect = (
        pc.fill_null(pc.equal(method.cast(pa.string()), "CONNECT"), False)
        if method is not None
        else pa.array(np.zeros(n, dtype=bool))
    )
    absolute = pc.fill_null(pc.match_substring_regex(uri, _SCHEME), False)
    relative = pc.replace_substring_regex(uri, _SCHEME + r"[^/?#]*", "")
    parts = pc.split_pattern(relative, "?", max_splits=1)
    lengths = pc.list_value_length(parts)
    path = first_element(parts)
    query = pc.if_else(
        pc.equal(lengths, 2),
        _second_element(parts),
        pa.nulls(n, pa.string()),
    )
    no_path = pa.nulls(n, pa.string())
    out["url.path"] = pc.if_else(is_connect, no_path, path)
    out["url.query"] = pc.if_else(is_connect, no_path, query)
    authority = _authority(host, get, n)
    origin_full = pc.binary_join_element_wise("http://", authority, uri, "")
    out["url.full"] = pc.if_else(pc.or_(absolute, is_connect), uri, origin_full)
    explicit = pc.extract_regex(
        out["url.full"], _SCHEME + r"(?:\[[^\]]*\]|[^/?#:@]*):(?P<port>\d+)"
    )
    connect_port = pc.extract_regex(uri, r":(?P<port>\d+)$")
    port = pc.if_else(is_connect, connect_port.field("port"), explicit.field("port"))
    out["url.port"] = pc.if_else(pc.equal(port, ""), pa.nulls(n, pa.string()), port)
    return out


def _second_element(lists: pa.Array) -> pa.Array:
    tail = pc.list_slice(lists, 1, 2)
    return first_element(tail)


def _authority(host: pa.Array | None, get: FieldGetter, n: int) -> pa.Array:
    """Host header, or the responder address (``[v6]``, ``:port`` unless 80) without one."""
    resp_h = _lookup(get, "id.resp_h")
    resp_p = _lookup(get, "id.resp_p")
    if resp_h is not None:
        resp_h = resp_h.cast(pa.string())
        bracketed = pc.binary_join_element_wise("[", resp_h, "]", "")
        ip = pc.if_else(pc.match_substring(resp_h, ":"), bracketed, resp_h)
        if resp_p is not None:
            port = resp_p.cast(pa.string())
            with_port = pc.binary_join_element_wise(ip, port, ":")
            ip = pc.if_else(pc.fill_null(pc.equal(port, "80"), True), ip, with_port)
    else:
        ip = pa.nulls(n, pa.string())
    if host is None:
        return ip
    nonempty = pc.fill_null(pc.not_equal(host, ""), False)
    return pc.if_else(nonempty, host, ip)


# --------------------------------------------------------------------------- finishing batches


def finish(
    ctx: ReadContext,
    path: str,
    fields: Mapping[str, pa.Array],
    num_rows: int,
    problems: list[RowProblem],
    *,
    line_of: Callable[[int], int | None] | int | None,
    raw: Callable[[int], str | None] | None,
) -> pa.RecordBatch:
    """Map normalised Zeek fields to one canonical batch (see ``finish_rows``)."""
    return finish_rows(ctx, path, fields, num_rows, problems, line_of=line_of, raw=raw)[0]


def finish_rows(
    ctx: ReadContext,
    path: str,
    fields: Mapping[str, pa.Array],
    num_rows: int,
    problems: list[RowProblem],
    *,
    line_of: Callable[[int], int | None] | int | None,
    raw: Callable[[int], str | None] | None,
) -> tuple[pa.RecordBatch, np.ndarray]:
    """Map normalised Zeek fields to one canonical batch, and say which input rows it holds.

    Rows in ``problems`` (values the reader could not normalise, such as a masked ``ts``)
    are rejected and dropped first; ``schema.conform`` rejects the rest of the bad values.
    The second result is the input row index of every output row.
    """

    def line(i: int) -> int | None:
        if line_of is None:
            return None
        return line_of + i if isinstance(line_of, int) else line_of(i)

    kept = np.arange(num_rows, dtype=np.int64)
    if problems:
        ctx.bad_rows(line_of, raw)(problems)
        keep = np.ones(num_rows, dtype=bool)
        keep[[p.row for p in problems]] = False
        kept = np.flatnonzero(keep)
        mask = pa.array(keep)
        fields = {name: arr.filter(mask) for name, arr in fields.items()}
        num_rows = len(kept)
    cols = canonical_columns(path, fields.get, num_rows)
    cols["log.file.path"] = _constant(ctx.display, num_rows)
    dropped: list[int] = []
    report = ctx.bad_rows(
        lambda i: line(int(kept[i])),
        (lambda i: raw(int(kept[i]))) if raw is not None else None,
    )

    def on_bad_rows(found: list[RowProblem]) -> None:
        dropped.extend(p.row for p in found)
        report(found)

    batch = schema.conform(cols, num_rows, on_bad_rows=on_bad_rows)
    if dropped:
        kept = np.delete(kept, np.unique(dropped))
    return batch, kept


def rebatch(batches: Iterable[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """Batches of at most ``size`` rows and, but for the last, at least ``size // 2``.

    Readers parse by bytes, not rows, so their blocks do not line up with ``batch_size``.
    Large batches are sliced (no copy); only small ones (a short header block, a file's
    tail) are concatenated, so downstream kernels do not see a trickle of tiny batches.
    """
    held: list[pa.RecordBatch] = []
    count = 0
    half = max(size // 2, 1)

    def flush() -> Iterator[pa.RecordBatch]:
        nonlocal held, count
        if held:
            yield held[0] if len(held) == 1 else pa.concat_batches(held)
        held, count = [], 0

    for batch in batches:
        n = batch.num_rows
        if n == 0:
            continue
        if count + n <= size:
            held.append(batch)
            count += n
            if count >= half:
                yield from flush()
            continue
        yield from flush()
        for start in range(0, n, size):
            piece = batch.slice(start, size)
            if piece.num_rows >= half:
                yield piece
            else:
                held, count = [piece], piece.num_rows
    yield from flush()
