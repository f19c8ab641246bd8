"""Turn numpy columns into canonical Arrow batches, one dataset at a time.

Benign traffic and planted attacks both end here, so a planted beacon row is
built by exactly the same code as a benign one and cannot be told apart by its
shape. Strings are never built row by row in Python: they are taken from
fixed pools (``pa.Array.take``), joined element-wise in Arrow, or written
straight into Arrow buffers (``random_tokens``, ``hex_strings``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detect.schema import CANONICAL_SCHEMA

DATASETS: tuple[str, ...] = ("conn", "dns", "http", "tls", "files")

# Fixed vocabularies of the dictionary columns: codes index into these tuples.
TRANSPORTS: tuple[str, ...] = ("tcp", "udp", "icmp")
PROTOCOLS: tuple[str, ...] = (
    "dns", "http", "tls", "ssh", "smb", "ldap", "krb", "rdp", "ntp", "quic", "smtp",
    "dce_rpc", "mysql",
)
CONN_STATES: tuple[str, ...] = (
    "SF", "S0", "S1", "REJ", "RSTO", "RSTR", "RSTOS0", "SH", "SHR", "OTH", "S2", "S3",
)
QTYPES: tuple[str, ...] = ("A", "AAAA", "PTR", "TXT", "MX", "SRV", "HTTPS", "CNAME", "NULL")
RCODES: tuple[str, ...] = ("NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED")
METHODS: tuple[str, ...] = ("GET", "POST", "HEAD", "PUT", "OPTIONS")
TLS_VERSIONS: tuple[str, ...] = ("TLSv13", "TLSv12", "TLSv11")
TLS_CIPHERS: tuple[str, ...] = (
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
)
HTTP_VERSIONS: tuple[str, ...] = ("1.1", "1.0", "2")

_COMMON = (
    "@timestamp", "event.dataset", "event.kind", "event.id", "observer.name",
    "organization.name", "source.ip", "source.port", "destination.ip", "destination.port",
    "network.transport", "network.protocol",
)
DATASET_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "conn": (*_COMMON, "event.duration", "network.connection.state", "source.bytes",
             "destination.bytes", "source.packets", "destination.packets"),
    "dns": (*_COMMON, "event.duration", "dns.id", "dns.question.name", "dns.question.type",
            "dns.question.class", "dns.response_code", "dns.answers.data", "dns.answers.ttl"),
    "http": (*_COMMON, "url.full", "url.domain", "url.path", "url.query", "url.port",
             "http.request.method", "http.request.referrer", "http.request.body.bytes",
             "http.response.status_code", "http.response.body.bytes",
             "http.response.mime_type", "http.version", "user_agent.original"),
    "tls": (*_COMMON, "tls.version", "tls.cipher", "tls.established", "tls.server.name",
            "tls.client.ja3", "tls.server.ja3s", "tls.server.subject", "tls.server.issuer",
            "tls.server.hash.sha1", "tls.server.hash.sha256"),
    "files": (*_COMMON, "file.name", "file.mime_type", "file.size", "file.hash.md5",
              "file.hash.sha1", "file.hash.sha256"),
}
_TYPES = {f.name: f.type for f in CANONICAL_SCHEMA}
DATASET_SCHEMAS: Mapping[str, pa.Schema] = {
    ds: pa.schema([pa.field(c, _TYPES[c]) for c in cols]) for ds, cols in DATASET_COLUMNS.items()
}

_BASE62 = np.frombuffer(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8
)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def vocab(values: Sequence[str]) -> pa.Array:
    """A dictionary for a dictionary-encoded column (kept identical across batches)."""
    return pa.array(list(values), type=pa.string())


def dict_column(codes: np.ndarray, dictionary: pa.Array) -> pa.DictionaryArray:
    """Dictionary column from integer codes; negative codes become null."""
    codes = np.asarray(codes, dtype=np.int32)
    mask = codes < 0
    idx = pa.array(codes, type=pa.int32(), mask=mask if mask.any() else None)
    return pa.DictionaryArray.from_arrays(idx, dictionary)


def strings_from_bytes(data: np.ndarray, lengths: np.ndarray) -> pa.StringArray:
    """Arrow strings from a flat uint8 buffer and per-string lengths (ASCII data only)."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.StringArray.from_buffers(
        len(lengths), pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data))
    )


def random_tokens(
    rng: np.random.Generator, n: int, width: int, *, prefix: bytes = b"",
    alphabet: np.ndarray = _BASE62,
) -> pa.StringArray:
    """``n`` fixed-width random tokens such as Zeek uids (``C`` + 17 base62 characters)."""
    # one random byte per character: 64 (or 16) way lookup, no slow bounded-integer draws
    table = np.resize(alphabet, 256 if len(alphabet) in (16, 64) else 64)
    raw = np.frombuffer(rng.bytes(n * width), dtype=np.uint8).reshape(n, width)
    body = table[raw if len(table) == 256 else raw & 63]
    if prefix:
        pre = np.broadcast_to(np.frombuffer(prefix, dtype=np.uint8), (n, len(prefix)))
        body = np.concatenate([pre, body], axis=1)
    return strings_from_bytes(body.reshape(-1), np.full(n, body.shape[1], dtype=np.int32))


def hex_strings(rng: np.random.Generator, n: int, nbytes: int) -> pa.StringArray:
    """``n`` random lowercase hex digests of ``nbytes`` bytes (md5 16, sha1 20, sha256 32)."""
    return random_tokens(rng, n, 2 * nbytes, alphabet=_HEX)


def ipv4_strings(addrs: np.ndarray) -> pa.StringArray:
    """Dotted-quad text for uint32 addresses, built in Arrow without Python loops."""
    addrs = np.asarray(addrs, dtype=np.uint32)
    octets = [pa.array(((addrs >> s) & 0xFF).astype(np.int64)).cast(pa.string())
              for s in (24, 16, 8, 0)]
    return pc.binary_join_element_wise(*octets, ".")


def take(pool: pa.Array, idx: np.ndarray) -> pa.Array:
    """``pool[idx]`` for a numpy index array; negative indices become null."""
    idx = np.asarray(idx, dtype=np.int64)
    mask = idx < 0
    if mask.any():
        return pool.take(pa.array(idx, mask=mask))
    return pool.take(pa.array(idx))


def constant(value: str, n: int) -> pa.Array:
    """A string column repeating one value."""
    return pa.array([value], type=pa.string()).take(pa.array(np.zeros(n, dtype=np.int64)))


def dataset_batch(dataset: str, n: int, columns: Mapping[str, Any]) -> pa.RecordBatch:
    """One dataset's rows with exactly ``DATASET_SCHEMAS[dataset]``; absent columns are null.

    Values may be Arrow arrays (cast when the type differs) or numpy arrays of the
    column's physical type (timestamps as int64 microseconds).
    """
    schema = DATASET_SCHEMAS[dataset]
    arrays: list[pa.Array] = []
    for field in schema:
        if field.name == "event.dataset":
            arrays.append(dict_column(np.zeros(n, dtype=np.int32), vocab([dataset])))
            continue
        if field.name == "event.kind":
            arrays.append(dict_column(np.zeros(n, dtype=np.int32), vocab(["event"])))
            continue
        value = columns.get(field.name)
        if value is None:
            arrays.append(pa.nulls(n, field.type))
        elif isinstance(value, np.ndarray):
            arrays.append(pa.array(value, type=field.type))
        elif value.type != field.type:
            arrays.append(value.cast(field.type))
        else:
            arrays.append(value)
    unknown = set(columns) - set(schema.names)
    if unknown:
        msg = f"columns {sorted(unknown)} are not part of the {dataset} dataset"
        raise KeyError(msg)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def to_canonical(table: pa.Table) -> pa.Table:
    """Widen a dataset table to the full ``CANONICAL_SCHEMA`` with null columns."""
    n = table.num_rows
    cols = [
        table.column(f.name) if f.name in table.column_names else pa.nulls(n, f.type)
        for f in CANONICAL_SCHEMA
    ]
    return pa.Table.from_arrays(cols, schema=CANONICAL_SCHEMA)
