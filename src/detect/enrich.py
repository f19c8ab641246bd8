"""Parse once: fill the derived columns of a canonical batch so kernels never parse text.

``enrich(batch)`` fills, where they are null:

- ``source.ip_bin`` / ``destination.ip_bin``: the IP text as 16 bytes, IPv4-mapped
  (``detect.kernels.ip_parse``; exactly ``ipaddress.ip_address``; invalid text -> null);
  the IPv6 text itself is rewritten one way (:func:`canonical_ipv6_text`);
- ``*.registered_domain``: the registrable domain of the DNS question, URL host and
  TLS SNI, using the Public Suffix List shipped in ``publicsuffixlist`` (offline).

Registered domain uses the **full** list, ICANN *and* private suffixes, like the
ECS definition ("determined precisely with a list like the public suffix list") and
browsers' cookie scoping: ``evil.github.io``, ``x.blogspot.com`` or
``bucket.s3.amazonaws.com`` are separate registrants, and grouping them under
``github.io`` would make one tenant's indicator hit every tenant. Unknown TLDs
(``corp.local``) count as one-label suffixes, so internal names still group. Values
are lower-cased and one trailing dot is dropped; IP addresses, single labels, public
suffixes themselves and names with empty labels give null.

Community ID is **not** computed at ingest: on a 1M-row canonical batch the numba
kernel costs more than 15% of reading the same batch from Parquet (see
``benchmarks/test_enrich_bench.py``; measured numbers in ``COMMUNITY_ID_AT_INGEST``'s
comment). Call :func:`community_id` where it is needed (evidence, export, and the
Sigma engine for a batch when one of its rules tests the field); it keeps ids the
source already had.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detect import arrow_buffers as ab
from detect.kernels.community_id import community_id as _community_id_kernel
from detect.kernels.ip_parse import format_ips, is_ipv4_mapped, parse_ips
from detect.schema import CANONICAL_SCHEMA, IP_BIN, IP_BIN_COLUMNS, REGISTERED_DOMAIN_COLUMNS

__all__ = [
    "COMMUNITY_ID_AT_INGEST",
    "bin_to_ip",
    "community_id",
    "enrich",
    "ip_to_bin",
    "registered_domain",
    "transport_number",
]

# Measured with `python -m pytest benchmarks/test_enrich_bench.py -q -s` (1M rows, 2 shared
# cores): community_id(batch) 0.26 s (kernel alone 0.22 s, ~4.6M flows/s) vs pq.read_table of
# the same batch 0.56 s -> 46%, three times the 15% ingest budget: compute on demand instead.
COMMUNITY_ID_AT_INGEST = False

_TRANSPORTS = {
    "icmp": 1,
    "tcp": 6,
    "udp": 17,
    "icmp6": 58,
    "icmpv6": 58,
    "ipv6-icmp": 58,
    "sctp": 132,
}


def transport_number(name: str | None) -> int:
    """IANA protocol number of a ``network.transport`` value, -1 when unknown.

    Names are matched case-insensitively; a decimal string 0..255 is taken as the
    number itself (as ``communityid.get_proto`` does).
    """
    if name is None:
        return -1
    key = name.strip().lower()
    if key in _TRANSPORTS:
        return _TRANSPORTS[key]
    if key.isascii() and key.isdigit() and int(key) <= 255:
        return int(key)
    return -1


def ip_to_bin(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """IP text (string, large_string, dictionary or chunked) to fixed_size_binary(16).

    Invalid text and nulls become null. Chunks are parsed one by one (no copy of the
    text); a dictionary column is parsed once per dictionary entry.

    Examples
    --------
    >>> import pyarrow as pa
    >>> ip_to_bin(pa.array(["10.0.0.1", "nope", None])).to_pylist()[0].hex()
    '00000000000000000000ffff0a000001'
    """
    parts_v: list[np.ndarray] = []
    parts_ok: list[np.ndarray] = []
    for chunk in ab.chunks(arr):
        if pa.types.is_dictionary(chunk.type):
            dict_parts = ab.dictionary_parts(chunk)
            dv, dok = _parse_text(dict_parts.dictionary)
            idx = dict_parts.indices.astype(np.intp, copy=False)
            if dict_parts.validity is not None:
                idx = np.where(dict_parts.validity, idx, 0)
            if len(dok):
                values, ok = dv[idx], dok[idx]
            else:
                values, ok = np.zeros((len(idx), 16), np.uint8), np.zeros(len(idx), np.bool_)
            if dict_parts.validity is not None:
                ok &= dict_parts.validity
        else:
            values, ok = _parse_text(chunk)
        parts_v.append(values)
        parts_ok.append(ok)
    if not parts_v:
        return pa.array([], type=IP_BIN)
    values = parts_v[0] if len(parts_v) == 1 else np.concatenate(parts_v)
    ok = parts_ok[0] if len(parts_ok) == 1 else np.concatenate(parts_ok)
    return ab.fixed_binary_array(values, ok)


def _parse_text(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    if pa.types.is_null(arr.type):
        return np.zeros((len(arr), 16), np.uint8), np.zeros(len(arr), np.bool_)
    buf = ab.string_buffers(arr)
    return parse_ips(buf.offsets, buf.data, buf.validity)


def bin_to_ip(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """fixed_size_binary(16) addresses back to text (IPv4-mapped as dotted IPv4), for evidence."""
    buf = ab.fixed_binary_buffers(arr)
    validity = ab.validity_or_ones(buf.validity, len(buf.values))
    offsets, data = format_ips(buf.values, validity)
    return ab.string_array(offsets, data, buf.validity)


@functools.cache
def _psl() -> object:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(only_icann=False)


@functools.lru_cache(maxsize=1 << 18)
def _registered_domain_one(name: str) -> str | None:
    """Registered domain of one host name (cached across batches: domains are Zipf-heavy)."""
    host = name.strip().lower()
    if host.endswith("."):
        host = host[:-1]
    if not host or ":" in host or host.startswith(".") or ".." in host:
        return None
    if host.replace(".", "").isdigit():
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return None
    return _psl().privatesuffix(host)  # type: ignore[attr-defined, no-any-return]


def registered_domain(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Registered domain of each host name (string), computed once per distinct value.

    Examples
    --------
    >>> import pyarrow as pa
    >>> registered_domain(pa.array(["WWW.Example.co.uk.", "a.b.github.io", "10.0.0.1"])).to_pylist()
    ['example.co.uk', 'b.github.io', None]
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_null(arr.type) or arr.null_count == len(arr):
        return pa.nulls(len(arr), pa.string())
    encoded = arr if pa.types.is_dictionary(arr.type) else pc.dictionary_encode(arr)
    uniques = encoded.dictionary.to_pylist()
    mapped = pa.array(
        [None if u is None else _registered_domain_one(u) for u in uniques], type=pa.string()
    )
    return pc.take(mapped, encoded.indices)


def community_id(batch: pa.RecordBatch, *, seed: int = 0) -> pa.Array:
    """``network.community_id`` for every row: the source's id where present, else computed.

    Computed from ``*.ip_bin`` (parsed from the text where null), the ports and
    ``network.transport``; null where any of these is missing or unknown.
    ``transport`` ``icmp`` between two IPv6 addresses is taken as ICMPv6 (Zeek logs
    both as ``icmp``).
    """
    existing = batch.column("network.community_id")
    need = ab.validity_mask(existing)
    need = np.ones(batch.num_rows, np.bool_) if need is None else ~need
    if existing.null_count == 0:
        return existing
    src, src_ok = _ip_bin_values(batch, "source.ip_bin")
    dst, dst_ok = _ip_bin_values(batch, "destination.ip_bin")
    proto = _transport_numbers(batch.column("network.transport"))
    icmp6 = (proto == 1) & ~is_ipv4_mapped(src) & ~is_ipv4_mapped(dst)
    proto = np.where(icmp6, 58, proto)
    sport, sport_ok = ab.primitive_buffers(batch.column("source.port"))
    dport, dport_ok = ab.primitive_buffers(batch.column("destination.port"))
    ports_ok = ab.validity_or_ones(sport_ok, len(sport)) & ab.validity_or_ones(dport_ok, len(dport))
    needs_ports = np.isin(proto, (1, 6, 17, 58, 132))
    valid = need & src_ok & dst_ok & (proto >= 0) & (ports_ok | ~needs_ports)
    sport = np.where(ports_ok, sport, 0)
    dport = np.where(ports_ok, dport, 0)
    offsets, data, ok = _community_id_kernel(src, dst, sport, dport, proto, valid=valid, seed=seed)
    computed = ab.string_array(offsets, data, ok)
    return pc.coalesce(existing, computed)


def _ip_bin_values(batch: pa.RecordBatch, column: str) -> tuple[np.ndarray, np.ndarray]:
    """16-byte addresses of ``column``, parsing the text only of rows where it is null."""
    buf = ab.fixed_binary_buffers(batch.column(column))
    if buf.validity is None:
        return buf.values, np.ones(len(buf.values), np.bool_)
    text = batch.column(IP_BIN_COLUMNS[column])
    text_valid = ab.validity_or_ones(ab.validity_mask(text), len(text))
    todo = np.flatnonzero(~buf.validity & text_valid)
    if len(todo) == 0:
        return buf.values, buf.validity
    values, valid = buf.values.copy(), buf.validity.copy()
    parsed = ab.fixed_binary_buffers(ip_to_bin(text.take(pa.array(todo))))
    values[todo] = parsed.values
    valid[todo] = ab.validity_or_ones(parsed.validity, len(todo))
    return values, valid


def _transport_numbers(arr: pa.Array) -> np.ndarray:
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr.cast(pa.string()))
    parts = ab.dictionary_parts(arr)
    table = np.array(
        [transport_number(v) for v in parts.dictionary.to_pylist()] + [-1], dtype=np.int64
    )
    idx = parts.indices.astype(np.intp, copy=False)
    if parts.validity is not None:
        idx = np.where(parts.validity, idx, len(table) - 1)
    return table[idx]


def enrich(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Fill the parse-once columns of a canonical batch where they are null.

    Values already present (a reader that had binary IPs, a sensor's own community
    id) are kept. The result has exactly ``CANONICAL_SCHEMA``. Community ID is filled
    only when ``COMMUNITY_ID_AT_INGEST`` is set (see the module docstring).

    Examples
    --------
    >>> from detect.schema import conform
    >>> b = enrich(conform({"source.ip": pa.array(["10.0.0.1"]),
    ...                     "dns.question.name": pa.array(["www.example.org"])}, 1))
    >>> b.column("dns.question.registered_domain").to_pylist()
    ['example.org']
    """
    if batch.schema != CANONICAL_SCHEMA:
        msg = "enrich expects a batch with detect.schema.CANONICAL_SCHEMA; build it with conform()"
        raise ValueError(msg)
    columns = dict(zip(batch.schema.names, batch.columns, strict=True))
    for target, source in IP_BIN_COLUMNS.items():
        columns[target] = _fill(columns[target], lambda s=source: ip_to_bin(columns[s]))
        columns[source] = canonical_ipv6_text(columns[source], columns[target])
    for target, source in REGISTERED_DOMAIN_COLUMNS.items():
        columns[target] = _fill(columns[target], lambda s=source: registered_domain(columns[s]))
    out = pa.RecordBatch.from_arrays(list(columns.values()), schema=CANONICAL_SCHEMA)
    if COMMUNITY_ID_AT_INGEST:
        columns["network.community_id"] = community_id(out)
        out = pa.RecordBatch.from_arrays(list(columns.values()), schema=CANONICAL_SCHEMA)
    return out


def canonical_ipv6_text(text: pa.Array, binary: pa.Array) -> pa.Array:
    """IP text with IPv6 written one way (RFC 5952, as ``ipaddress`` and Zeek write it).

    Suricata writes IPv6 expanded (``ff02:0000:...:0016``), Zeek compressed (``ff02::16``):
    as text, one host would group, alert and first-see as two. Rows holding a ``:`` that
    parsed are rewritten from their 16 bytes (``::ffff:1.2.3.4`` becomes ``1.2.3.4``, the
    address it is); IPv4 text, nulls and text that did not parse are kept as written.
    """
    if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)):
        return text
    v6 = pc.fill_null(pc.match_substring(text, ":"), False)
    if not pc.any(v6).as_py():
        return text
    rewrite = pc.and_(v6, pc.is_valid(binary))
    return pc.if_else(rewrite, bin_to_ip(binary).cast(text.type), text)


def _fill(existing: pa.Array, compute: Callable[[], pa.Array]) -> pa.Array:
    if existing.null_count == 0:
        return existing
    computed = compute()
    if existing.null_count == len(existing):
        return computed
    return pc.coalesce(existing, computed)
