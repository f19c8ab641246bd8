"""First seen: a destination no source of the hub contacted in the last ``lookback_days``.

Values (one compact row per event and value, :func:`destination_values`):

- **domain** (``anomaly:first-seen:domain``): the registered domain of the DNS question,
  the HTTP host (``url.domain``) and the TLS server name. The columns enrichment fills
  (``dns.question.registered_domain``, ``url.registered_domain``,
  ``tls.server.registered_domain``) are used when they hold values; a batch that was not
  enriched (the column absent or all null) gets :func:`detect.enrich.registered_domain` of
  the raw column, once per distinct name.
- **ip** (``anomaly:first-seen:ip``): ``destination.ip`` (``destination.ip_bin`` when
  enrichment filled it, else parsed), public addresses only (:func:`public_ip_mask`: no
  RFC 1918, CGNAT 100.64/10, loopback, link-local, multicast, 0/8, 240/4 and broadcast;
  IPv6 ``::``, ``::1``, ``fe80::/10``, ``fc00::/7``, ``ff00::/8``), written back as
  canonical text (``2001:DB8::1`` and ``2001:db8::1`` are one value).

``ignore`` (default :data:`DEFAULT_IGNORE`: special-use / never-delegated names such as
``arpa`` reverse lookups and ``local``) drops values before anything else: a domain entry
drops that registered domain and every name under it, an IP or CIDR entry drops the
addresses in it. Warninglists (MISP's ``alexa`` / ``tranco`` / cloud ranges, ...) can be
passed as-is: ``FirstSeenDetector(ignore=DEFAULT_IGNORE + tuple(warninglist))``.

**Windows.** Time is cut into fixed windows of ``window`` seconds (default 3600, aligned to
the epoch). A value is *new* in window ``[ws, ws + window)`` when it occurs in it and no
event of the hub carried it in ``[ws - lookback_days, ws)``; it then gives one finding for
that window. A window is reported once, when it closes (its end is at or before the
watermark: the latest event time seen minus ``lateness``, default 600 s, carried in the
state); ``run(..., final=True)`` closes every window holding data. Rows older than the
watermark when they arrive are ``late``: counted, not folded in.

**Warm-up.** On the first day every value is new. Nothing fires for a window that starts
less than ``min_history_days`` (default 7) after the hub's first event (the earliest event
time ever folded in, kept in the state); those windows still fill the history.

**State** (one Arrow table, :func:`detect.anomaly.keys.make_state`): the watermark, the
history start, per (type, value, organisation, source) aggregates (first, last, count) of
the open windows, and ``(type, value, last_seen)`` for every value seen in a closed window
within the lookback. After each run entries older than ``lookback_days`` before the first
open window are pruned (they can no longer suppress anything), so the state is bounded by
the values seen in ``lookback_days``; ``max_entries`` (default 5,000,000) caps it further,
evicting the entries seen longest ago first. An evicted value that comes back is reported
as new again (a spurious finding, never a missed one); split-run equivalence holds while
the cap is not reached (eviction happens at the end of each run).

**Finding.** ``entity`` is the value; ``first_seen`` / ``last_seen`` / ``event_count``
over the window; evidence: ``type``, ``value``, ``sources`` (the first ``max_sources``
(default 5) source addresses that contacted it, earliest first, as ``organisation/ip``),
``source_count``, ``organizations`` (sorted), ``events``, ``lookback_days``. Score: the
number of distinct (organisation, source) pairs that contacted it (at least 1). Severity:
``low``; ``informational`` when the window holds a single event (a one-off lookup).
Everything is vectorised (dictionary encoding, sorts, ``reduceat``); Python runs once per
finding, for its evidence.

Examples
--------
>>> import pyarrow as pa
>>> from datetime import datetime, UTC
>>> day = lambda d, h=0: datetime(2024, 1, d, h, tzinfo=UTC)
>>> batch = pa.record_batch({
...     "@timestamp": pa.array([day(1), day(2), day(2, 5), day(2, 6)],
...                            pa.timestamp("us", tz="UTC")),
...     "source.ip": ["10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.3"],
...     "destination.ip": ["8.8.8.8", "8.8.8.8", "10.1.1.1", "1.2.3.4"],
...     "dns.question.name": ["example.com", "www.example.com", "x.new.org", None]})
>>> det = FirstSeenDetector(min_history_days=1)
>>> f = det.run(det.select(batch), None, final=True).findings
>>> f.column("rule_id").to_pylist(), f.column("entity").to_pylist()
(['anomaly:first-seen:domain', 'anomaly:first-seen:ip'], ['new.org', '1.2.3.4'])
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detect import arrow_buffers as ab
from detect.anomaly.base import TS, RunOutput, empty_findings
from detect.anomaly.keys import (
    US,
    encode_keys,
    findings_table,
    make_state,
    next_watermark,
    state_part,
    state_watermark,
    ts_us,
)
from detect.anomaly.keys import (
    _densify as densify_first,
)
from detect.kernels.dns_features import group_int64
from detect.kernels.ip_class import public_mask
from detect.kernels.ip_set import as_lanes
from detect.kernels.sort_keys import dense_group_ts_order
from detect.kernels.window_agg import (
    _bits,
    group_min_max_sum,
    group_ts_order,
    sorted_runs_reduce,
)
from detect.schema import REGISTERED_DOMAIN_COLUMNS

__all__ = [
    "DEFAULT_IGNORE",
    "DEST_SCHEMA",
    "FirstSeenDetector",
    "FirstSeenParams",
    "Folded",
    "IgnoreList",
    "column_codes",
    "combine_codes",
    "destination_values",
    "fold_rows",
    "merge_tuples",
    "public_ip_mask",
]

DAY_US = 86_400 * US
NEG = np.iinfo(np.int64).min // 4  # "never seen"

# Special-use and never-delegated names (RFC 6761 / 6762 / 8375, common private TLDs).
DEFAULT_IGNORE: tuple[str, ...] = (
    "arpa",
    "local",
    "localhost",
    "localdomain",
    "internal",
    "lan",
    "home",
    "corp",
    "invalid",
    "test",
    "example",
)

# Key columns few in distinct values travel dictionary-encoded from selection to the
# fold: coded by their dictionaries (kernels/dictionary_codes), decoded for the few rows
# a finding or the state keeps.
DICT = pa.dictionary(pa.int32(), pa.string())
DEST_SCHEMA = pa.schema(
    [
        pa.field("@timestamp", TS),
        pa.field("organization.name", DICT),
        pa.field("source.ip", pa.string()),
        pa.field("type", DICT),  # "ip" | "domain"
        pa.field("value", pa.string()),
    ]
)


# --------------------------------------------------------------------------- selection


def public_ip_mask(values: np.ndarray) -> np.ndarray:
    """Which ``(n, 16)`` uint8 addresses (IPv4-mapped form) are public, as a bool array.

    Not public: IPv4 0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.168/16,
    224/4 (multicast) and 240/4 (reserved, broadcast); IPv6 ``::``, ``::1``, ``fe80::/10``,
    ``fc00::/7``, ``ff00::/8``.

    >>> from detect.enrich import ip_to_bin
    >>> from detect import arrow_buffers as ab
    >>> v = ab.fixed_binary_buffers(ip_to_bin(pa.array(
    ...     ["8.8.8.8", "10.1.2.3", "172.31.0.1", "224.0.0.251", "2001:db8::1", "fe80::1"]))).values
    >>> public_ip_mask(v).tolist()
    [True, False, False, False, True, False]
    """
    b = np.asarray(values, dtype=np.uint8)
    if b.shape[0] == 0:
        return np.zeros(0, np.bool_)
    return public_mask(np.ascontiguousarray(as_lanes(b)))


@dataclass(frozen=True)
class IgnoreList:
    """``ignore`` entries split into domains (lower-case, no trailing dot) and CIDRs."""

    domains: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def parse(cls, entries: tuple[str, ...] | list[str]) -> IgnoreList:
        domains, nets = set(), []
        for e in entries:
            s = str(e).strip()
            if not s:
                continue
            try:
                nets.append(ipaddress.ip_network(s, strict=False))
            except ValueError:
                domains.add(s.lower().rstrip("."))
        return cls(frozenset(domains), tuple(nets))

    def domain_mask(self, values: pa.Array) -> np.ndarray:
        """True where a (registered) domain equals an entry or lies under one."""
        n = len(values)
        if not self.domains or n == 0:
            return np.zeros(n, np.bool_)
        enc = pc.dictionary_encode(values)
        idx = enc.indices.to_numpy(zero_copy_only=False)
        cur = enc.dictionary
        if len(self.domains) <= 64:  # a few suffix tests over the distinct values
            hit = np.zeros(len(cur), np.bool_)
            for d in self.domains:
                m = pc.or_(pc.equal(cur, d), pc.ends_with(cur, "." + d))
                hit |= np.asarray(pc.fill_null(m, False).to_numpy(zero_copy_only=False), bool)
            return hit[idx]
        vset = pa.array(sorted(self.domains), pa.string())
        hit = np.asarray(pc.is_in(cur, value_set=vset).to_numpy(zero_copy_only=False), bool)
        for _ in range(16):  # strip one leading label at a time
            cur = pc.replace_substring_regex(cur, r"^[^.]*(\.|$)", "", max_replacements=1)
            live = pc.greater(pc.utf8_length(cur), 0)
            if not pc.any(live).as_py():
                break
            hit |= np.asarray(pc.is_in(cur, value_set=vset).to_numpy(zero_copy_only=False), bool)
        return hit[idx]

    def ip_mask(self, values: np.ndarray, validity: np.ndarray) -> np.ndarray:
        """True where a valid ``(n, 16)`` address lies in one of the networks."""
        n = values.shape[0]
        if not self.networks or n == 0:
            return np.zeros(n, np.bool_)
        from detect.kernels.prefix_match import build_prefix_index, probe_prefix

        nets = np.zeros((len(self.networks), 16), np.uint8)
        lengths = np.zeros(len(self.networks), np.int64)
        for i, net in enumerate(self.networks):
            if net.version == 4:
                nets[i, 10:12] = 0xFF
                nets[i, 12:] = np.frombuffer(net.network_address.packed, np.uint8)
                lengths[i] = 96 + net.prefixlen
            else:
                nets[i] = np.frombuffer(net.network_address.packed, np.uint8)
                lengths[i] = net.prefixlen
        index = build_prefix_index(nets, lengths, np.arange(len(self.networks)))
        vals = np.ascontiguousarray(values)
        return probe_prefix(index, vals, validity=np.ascontiguousarray(validity)) >= 0


def _string(batch: pa.RecordBatch | pa.Table, name: str) -> pa.Array:
    n = batch.num_rows
    if name not in batch.schema.names:
        return pa.nulls(n, pa.string())
    col = batch.column(name)
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    return col.cast(pa.string())


def _taken(
    batch: pa.RecordBatch | pa.Table, name: str, take: pa.Array, typ: pa.DataType
) -> pa.Array:
    """Rows ``take`` of column ``name`` as ``typ``: plain strings (taken first, decoded
    after) or ``DICT`` (the batch's dictionary kept)."""
    if name not in batch.schema.names:
        return pa.nulls(len(take), typ)
    col = batch.column(name)
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    col = col.take(take)
    if typ != DICT and pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    return col if col.type == typ else col.cast(typ)


def const_dict(value: str, n: int) -> pa.Array:
    """``n`` copies of ``value`` as a ``DICT`` array (one entry, zero indices)."""
    return pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(n, np.int32)), pa.array([value], pa.string())
    )


def _filled(batch: pa.RecordBatch | pa.Table, name: str) -> pa.Array | None:
    """Column ``name`` when present with at least one value."""
    if name not in batch.schema.names:
        return None
    col = batch.column(name)
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    return col if col.null_count < len(col) and not pa.types.is_null(col.type) else None


def destination_values(
    batch: pa.RecordBatch | pa.Table,
    ignore: IgnoreList | None = None,
    *,
    types: tuple[str, ...] = ("domain", "ip"),
) -> pa.Table:
    """One ``DEST_SCHEMA`` row per (event, destination value); see the module docstring."""
    from detect.enrich import bin_to_ip, ip_to_bin, registered_domain

    names = batch.schema.names
    n = batch.num_rows
    if "@timestamp" not in names or n == 0:
        return DEST_SCHEMA.empty_table()
    ignore = ignore or IgnoreList(frozenset(), ())
    ts = batch.column("@timestamp")
    if isinstance(ts, pa.ChunkedArray):
        ts = ts.combine_chunks()
    ts = ts.cast(TS)
    ts_ok = np.asarray(pc.is_valid(ts).to_numpy(zero_copy_only=False), bool)
    parts: list[pa.Table] = []

    def part(idx: np.ndarray, typ: str, values: pa.Array) -> None:
        if idx.size:
            take = pa.array(idx, pa.int64())
            parts.append(
                pa.Table.from_arrays(
                    [
                        ts.take(take),
                        _taken(batch, "organization.name", take, DICT),
                        _taken(batch, "source.ip", take, pa.string()),
                        const_dict(typ, idx.size),
                        values,
                    ],
                    schema=DEST_SCHEMA,
                )
            )

    if "domain" in types:
        for reg, raw in REGISTERED_DOMAIN_COLUMNS.items():
            col = _filled(batch, reg)
            if col is None:
                raw_col = _filled(batch, raw)
                if raw_col is None:
                    continue
                col = registered_domain(raw_col)
            col = col.cast(pa.string())
            ok = ts_ok & np.asarray(pc.is_valid(col).to_numpy(zero_copy_only=False), bool)
            idx = np.flatnonzero(ok)
            vals = col.take(pa.array(idx, pa.int64()))
            drop = ignore.domain_mask(vals)
            if drop.any():
                idx, vals = idx[~drop], vals.filter(pa.array(~drop))
            part(idx, "domain", vals)
    if "ip" in types:
        bins = _filled(batch, "destination.ip_bin")
        if bins is None:
            text = _filled(batch, "destination.ip")
            bins = ip_to_bin(text) if text is not None else None
        if bins is not None:
            buf = ab.fixed_binary_buffers(bins)
            valid = ab.validity_or_ones(buf.validity, n).astype(bool)
            ok = ts_ok & valid & public_ip_mask(buf.values)
            ok &= ~ignore.ip_mask(buf.values, ok)
            idx = np.flatnonzero(ok)
            part(idx, "ip", bin_to_ip(bins.take(pa.array(idx, pa.int64()))))
    if not parts:
        return DEST_SCHEMA.empty_table()
    return pa.concat_tables(parts)


# --------------------------------------------------------------------------- tuples


def column_codes(parts: list[pa.Array | pa.ChunkedArray]) -> tuple[np.ndarray, int]:
    """Dictionary codes of the concatenation of ``parts`` (one hash pass; null has its
    own code), and the number of codes."""
    from detect.anomaly.keys import _codes

    chunks: list[pa.Array] = []
    for p in parts:
        chunks.extend(p.chunks if isinstance(p, pa.ChunkedArray) else [p])
    chunks = [c for c in chunks if len(c)]
    if not chunks:
        return np.zeros(0, np.int64), 1
    if any(pa.types.is_dictionary(c.type) for c in chunks):
        return _codes(chunks)  # coded by their dictionaries, in any mix with plain strings
    typ = chunks[0].type
    return _codes(pa.chunked_array([c.cast(typ) for c in chunks], typ))


def _densify(ids: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense ids of ``ids`` in order of first appearance (one hash pass), and their count."""
    dense, _, m = group_int64(np.asarray(ids, np.int64))
    return dense, max(m, 1)


def combine_codes(parts: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, int]:
    """Mixed-radix combination of per-column codes into one non-negative ``int64`` key
    (exact; re-densified when the radix would pass 2**62), and its radix."""
    acc, radix = parts[0]
    for codes, n in parts[1:]:
        if radix * n >= 1 << 62:
            acc, radix = _densify(acc)
        acc = acc * n  # a new array: adding in place leaves the caller's codes alone
        acc += codes
        radix *= n
    return acc, radix


def merge_tuples(
    ids: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    count: np.ndarray,
    width: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merge rows with equal key ``ids`` (non-negative ``int64``) within one fixed window.

    The window is ``first // width``. Returns ``(rep, first, last, count)`` per (key,
    window), in no promised order (first appearance, or sorted when the keys are too
    wide to pack with the window): ``rep`` is the group's first row, ``first``
    the min, ``last`` the max, ``count`` the sum. Raw events are rows with ``first = last =
    ts`` and ``count = 1``; state aggregates merge with them unchanged (they never straddle
    a window).
    """
    first = np.ascontiguousarray(first, np.int64)
    if first.size == 0:
        z = np.zeros(0, np.int64)
        return z, z, z, z
    win = first // width
    wmin = int(win.min())
    wbits = _bits(int(win.max()) - wmin + 1)
    if int(ids.max()) < (1 << (62 - wbits)):
        # hash group-by on the packed (key, window), then sort the groups only
        packed = np.left_shift(np.asarray(ids, np.int64), wbits)
        win -= wmin  # in place (win is ours): one array of n fewer at the peak
        packed |= win
        del win
        gid, _, m = group_int64(packed, size_hint=first.size)
        return group_min_max_sum(gid, m, first, last, count)
    order = group_ts_order(ids, win)
    ids_s, win_s = ids[order], win[order]
    starts = np.flatnonzero(np.r_[True, (ids_s[1:] != ids_s[:-1]) | (win_s[1:] != win_s[:-1])])
    f = np.minimum.reduceat(first[order], starts)
    la = np.maximum.reduceat(np.asarray(last, np.int64)[order], starts)
    c = np.add.reduceat(np.asarray(count, np.int64)[order], starts)
    return order[starts], f, la, c


class _RepCodes(dict):
    """Per-aggregate codes of each key column, gathered (``codes[rep]``) on first use."""

    def __init__(self, raw: dict[str, tuple[np.ndarray, int]], rep: np.ndarray) -> None:
        super().__init__()
        self._raw, self._rep = raw, rep

    def __missing__(self, key: str) -> tuple[np.ndarray, int]:
        codes, n = self._raw[key]
        self[key] = out = (codes[self._rep], n)
        return out


@dataclass(frozen=True)
class Folded:
    """Open-window aggregates after folding a run's rows in (see :func:`fold_rows`).

    Aggregate ``i`` is carried by row ``rep[i]`` of ``columns`` (the state's and the run's
    key columns, not yet copied); ``codes`` are each key column's codes per aggregate.
    """

    columns: dict[str, pa.ChunkedArray]
    rep: np.ndarray
    first: np.ndarray
    last: np.ndarray
    count: np.ndarray
    codes: dict[str, tuple[np.ndarray, int]]

    def strings(self, key: str, idx: np.ndarray) -> pa.Array:
        """Key column ``key`` of the aggregates ``idx``, decoded to plain strings."""
        return ab.take_decoded(self.columns[key], self.rep[idx])

    def table(self, idx: np.ndarray | None = None) -> pa.Table:
        """The aggregates ``idx`` (all when None) as a table: keys, first, last, count."""
        sel = np.arange(self.rep.size) if idx is None else idx
        cols = {k: self.strings(k, sel) for k in self.columns}
        return pa.table(
            {**cols, "first": self.first[sel], "last": self.last[sel], "count": self.count[sel]}
        )


def fold_rows(
    rows: pa.Table, ts: np.ndarray, pending: pa.Table | None, keys: list[str], width: int
) -> Folded:
    """This run's rows (times ``ts``) folded into the state's open-window aggregates."""
    olds = [pending] if pending is not None else []
    columns: dict[str, pa.ChunkedArray] = {}
    for k in keys:
        typ = rows.schema.field(k).type  # the state's strings join as the rows' type
        arrs: list[pa.Array] = []
        for ch in [*(t.column(k).cast(typ) for t in olds), rows.column(k)]:
            arrs.extend(ch.chunks if isinstance(ch, pa.ChunkedArray) else [ch])
        columns[k] = pa.chunked_array(arrs, typ)
    codes = {k: column_codes([columns[k]]) for k in keys}
    ids, _ = combine_codes([codes[k] for k in keys])
    first = np.concatenate([*(_np(t.column("first")) for t in olds), ts])
    last = np.concatenate([*(_np(t.column("last")) for t in olds), ts])
    count = np.concatenate([*(_np(t.column("count")) for t in olds), np.ones(ts.size, np.int64)])
    rep, f, la, c = merge_tuples(ids, first, last, count, width)
    return Folded(columns, rep, f, la, c, _RepCodes(codes, rep))


def _concat(parts: list[pa.Array | pa.ChunkedArray]) -> pa.Array:
    arrs: list[pa.Array] = []
    for p in parts:
        arrs.extend(p.chunks if isinstance(p, pa.ChunkedArray) else [p])
    return pa.concat_arrays(arrs) if arrs else pa.array([], pa.string())


def _np(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    return col.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


# --------------------------------------------------------------------------- detector

TUPLE_COLS = ["type", "value", "organization.name", "source.ip", "first", "last", "count"]
STATE_SCHEMA = pa.schema(
    [
        pa.field("type", pa.string()),
        pa.field("value", pa.string()),
        pa.field("organization.name", pa.string()),
        pa.field("source.ip", pa.string()),
        pa.field("first", pa.int64()),
        pa.field("last", pa.int64()),
        pa.field("count", pa.int64()),
    ]
)
SEEN, PENDING, HISTORY = 1, 2, 3  # state parts


@dataclass(frozen=True)
class FirstSeenParams:
    """Look-back, warm-up and windows (seconds / days); see the module docstring."""

    lookback_days: float = 30.0
    min_history_days: float = 7.0
    window: float = 3600.0
    lateness: float = 600.0
    max_entries: int = 5_000_000  # values kept in the state, oldest evicted first
    types: tuple[str, ...] = ("domain", "ip")
    ignore: tuple[str, ...] = DEFAULT_IGNORE
    max_sources: int = 5  # sources listed in the evidence


class FirstSeenDetector:
    """Destinations new to the whole hub; see the module docstring."""

    name = "first_seen"

    def __init__(self, params: FirstSeenParams | None = None, **overrides: object) -> None:
        base = params or FirstSeenParams()
        self.params = FirstSeenParams(**{**base.__dict__, **overrides}) if overrides else base
        self._ignore = IgnoreList.parse(self.params.ignore)

    def select(self, batch: pa.RecordBatch) -> pa.Table:
        """Destination domains and public IPs of every event (``DEST_SCHEMA``)."""
        return destination_values(batch, self._ignore, types=self.params.types)

    def run(self, rows: pa.Table, state: pa.Table | None, *, final: bool = False) -> RunOutput:
        """Findings for the windows that close in this run; see the module docstring."""
        p = self.params
        W = int(p.window * US)
        rows = rows.select(DEST_SCHEMA.names).cast(DEST_SCHEMA)
        keep = pc.and_(pc.is_valid(rows.column("@timestamp")), pc.is_valid(rows.column("value")))
        keep = pc.and_(keep, pc.is_in(rows.column("type"), value_set=pa.array(list(p.types))))
        if not pc.all(keep).as_py():
            rows = rows.filter(keep)
        prev_wm = state_watermark(state)
        ts = ts_us(rows.column("@timestamp")) if rows.num_rows else np.zeros(0, np.int64)
        late = 0
        if prev_wm is not None and ts.size:
            ok = ts >= prev_wm
            late = int((~ok).sum())
            if late:
                rows, ts = rows.filter(pa.array(ok)), ts[ok]
        hist = state_part(state, HISTORY, ["first"])
        starts = [int(hist.column("first")[0].as_py())] if hist is not None else []
        if ts.size:
            starts.append(int(ts.min()))
        history = min(starts) if starts else None
        pend = state_part(state, PENDING, TUPLE_COLS, view=True)  # folded afresh below
        seen = state_part(state, SEEN, ["type", "value", "last"])

        # fold this run's rows into the open-window aggregates
        key_names = ["type", "value", "organization.name", "source.ip"]
        fo = fold_rows(rows, ts, pend, key_names, W)
        f, la = fo.first, fo.last
        max_ts = int(la.max()) if la.size else None
        wm = next_watermark(prev_wm, max_ts, int(p.lateness * US), W, final=final)
        closed = ((f // W + 1) * W <= wm) if wm is not None else np.zeros(f.size, bool)
        cidx = np.flatnonzero(closed)
        findings, seen = self._close(fo, cidx, seen, history, wm)
        parts = {SEEN: seen, PENDING: fo.table(np.flatnonzero(~closed))}
        if history is not None:
            parts[HISTORY] = pa.table({"first": pa.array([history], pa.int64())})
        return RunOutput(findings, make_state(STATE_SCHEMA, wm, parts), late)

    def _close(
        self,
        fo: Folded,
        cidx: np.ndarray,
        seen: pa.Table | None,
        history: int | None,
        wm: int | None,
    ) -> tuple[pa.Table, pa.Table | None]:
        """Findings of the closed aggregates ``cidx`` of ``fo`` against ``seen``; the next
        seen table. Only the type and value of every closed aggregate are copied; the
        organisation and source only for the firing ones."""
        p = self.params
        if cidx.size == 0 or wm is None or history is None:
            return empty_findings(), seen
        W = int(p.window * US)
        L = int(p.lookback_days * DAY_US)
        S = seen.num_rows if seen is not None else 0
        olds = [seen] if seen is not None else []
        # (type, value) per closed aggregate from the fold's codes; strings are copied and
        # hashed once per distinct value only (first-appearance order, as over all rows)
        tv, _ = combine_codes([fo.codes["type"], fo.codes["value"]])
        loc, _, loc_first = densify_first(tv[cidx])
        urep = cidx[loc_first]
        kv_type = _concat([*(t.column("type") for t in olds), fo.strings("type", urep)])
        kv_value = _concat([*(t.column("value") for t in olds), fo.strings("value", urep)])
        kv = encode_keys([kv_type, kv_value])
        kv_t = kv.ids[S:][loc]
        seen_last = np.full(kv.count, NEG, np.int64)
        if S:
            seen_last[kv.ids[:S]] = _np(seen.column("last"))
        cf, cl, cc = fo.first[cidx], fo.last[cidx], fo.count[cidx]
        # per (value, window), tuples sorted by (value, first): windows ascending per value
        win = cf // W
        order = dense_group_ts_order(kv_t, kv.count, win)
        starts, g_kv, g_win, g_first, g_last, g_count = sorted_runs_reduce(
            order, kv_t, win, cf, cl, cc
        )
        ends = np.r_[starts[1:], order.size]
        g_ws = g_win * W
        same = np.r_[False, g_kv[1:] == g_kv[:-1]]
        prev_last = np.where(same, np.r_[NEG, g_last[:-1]], seen_last[g_kv])
        new = prev_last < g_ws - L
        fire = new & (g_ws >= history + int(p.min_history_days * DAY_US))

        # next seen table: latest event per value, pruned by the lookback, capped
        np.maximum.at(seen_last, g_kv, g_last)
        horizon = (wm // W) * W - L
        ids = np.flatnonzero(seen_last >= max(horizon, NEG + 1))
        if ids.size > p.max_entries:
            ids = ids[np.argsort(seen_last[ids], kind="stable")[ids.size - p.max_entries :]]
            ids.sort()
        rep = pa.array(kv.first[ids], pa.int64())
        next_seen = pa.table(
            {"type": kv_type.take(rep), "value": kv_value.take(rep), "last": seen_last[ids]}
        )
        if not fire.any():
            return empty_findings(), next_seen

        # evidence of the firing (value, window) groups, from their tuples only
        fi = np.flatnonzero(fire)
        lens = ends[fi] - starts[fi]
        pos = np.concatenate([np.arange(a, b) for a, b in zip(starts[fi], ends[fi], strict=True)])
        sub = fo.table(cidx[order[pos]])
        orgs = sub.column("organization.name").to_pylist()
        srcs = sub.column("source.ip").to_pylist()
        types = sub.column("type").to_pylist()
        values = sub.column("value").to_pylist()
        sub_first = _np(sub.column("first")).tolist()
        out = []
        a = 0
        for j, gi in enumerate(fi.tolist()):
            b = a + int(lens[j])
            sl = slice(a, b)
            # earliest first; ties by (organisation, source) so ids never decide
            byfirst = sorted(
                range(a, b), key=lambda i: (sub_first[i], orgs[i] or "", srcs[i] or "")
            )
            pairs = list(dict.fromkeys((orgs[i], srcs[i]) for i in byfirst))
            with_src = [(o, s) for o, s in pairs if s is not None]
            listed = [s if o is None else f"{o}/{s}" for o, s in with_src[: p.max_sources]]
            n_pairs = len(with_src)
            ev = {
                "type": types[a],
                "value": values[a],
                "sources": listed,
                "source_count": n_pairs,
                "organizations": sorted({o for o in orgs[sl] if o is not None}),
                "events": int(g_count[gi]),
                "lookback_days": p.lookback_days,
            }
            out.append(
                {
                    "rule_id": f"anomaly:first-seen:{types[a]}",
                    "entity": values[a],
                    "window_start": int(g_ws[gi]),
                    "window_end": int(g_ws[gi]) + W,
                    "first_seen": int(g_first[gi]),
                    "last_seen": int(g_last[gi]),
                    "event_count": int(g_count[gi]),
                    "score": float(max(n_pairs, 1)),
                    "severity": "informational" if g_count[gi] == 1 else "low",
                    "evidence": json.dumps(ev, sort_keys=True),
                }
            )
            a = b
        f = findings_table(out).sort_by(
            [("window_start", "ascending"), ("rule_id", "ascending"), ("entity", "ascending")]
        )
        return f, next_seen
