"""The indicator engine: the compiled index run over canonical batches, hits out.

Which columns each indicator type is matched against comes from
``detect.schema.FIELD_ROLES``; the matching itself is done by the numba kernels in
``detect.kernels`` over Arrow buffers. What is left here is column bookkeeping and
two vectorised filters on the candidate hits: the indicator must be valid at the
*event's* time (``valid_from`` ignored with ``--retro-hunt``), and an ``ip:port``
indicator needs the port on the same side of the connection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detect.config import Settings
from detect.enrich import ip_to_bin
from detect.errors import ConfigError, InputError
from detect.hits import HITS_SCHEMA, RuleInfo
from detect.indicators.index import IndicatorIndex, build_index
from detect.indicators.model import FeedOptions
from detect.indicators.normalize import NormalizeError, infer, normalize, normalize_url_column
from detect.kernels.domain_suffix import DomainIndex, build_domain_index, probe_domain_suffix
from detect.kernels.ip_set import IpSetIndex, build_ip_set, probe_ip_set
from detect.kernels.prefix_match import PrefixIndex, build_prefix_index, probe_prefix, v4_length
from detect.kernels.string_set import StringSetIndex, build_string_set, probe_string_set
from detect.schema import FIELD_ROLES, IP_BIN_COLUMNS

# exact-set types, and whether event values are case-folded before comparing
STRING_TYPES: dict[str, bool] = {
    "url": False,  # events' URLs are normalised (scheme and host lower case) instead
    "md5": True,
    "sha1": True,
    "sha256": True,
    "ja3": True,
    "ja3s": True,
    "email": True,
    "user-agent": False,
}
_PORT_OF = {"source.ip": "source.port", "destination.ip": "destination.port"}
_BIN_OF = {ip: bin_ for bin_, ip in IP_BIN_COLUMNS.items()}
_ATTACK = re.compile(r"^T\d{4}(\.\d{3})?$")
_NO_TIME_LOW = np.iinfo(np.int64).min
_NO_TIME_HIGH = np.iinfo(np.int64).max


def _save(prefix: str, index: NamedTuple) -> dict[str, np.ndarray]:
    return {f"{prefix}.{name}": np.asarray(value) for name, value in index._asdict().items()}


def _restore(arrays: dict[str, np.ndarray], prefix: str, cls: type) -> object | None:
    names = [f"{prefix}.{f}" for f in cls._fields]
    present = [n in arrays for n in names]
    if not any(present):
        return None  # no indicators of this type
    if not all(present):
        msg = f"indicator index arrays for {prefix!r} do not fit this version; rebuild the index"
        raise ValueError(msg)
    return cls(*(arrays[n] for n in names))


def _layout() -> str:
    """The kernels' index layout: their array names and a hash of their source.

    Part of the cache key, so a release whose kernels store other arrays, or hash
    differently, never reads an index an older release saved.
    """
    import hashlib
    import inspect

    import detect.kernels.domain_suffix
    import detect.kernels.hashing
    import detect.kernels.ip_set
    import detect.kernels.prefix_match
    import detect.kernels.string_set

    h = hashlib.sha256()
    for module in (detect.kernels.hashing, detect.kernels.ip_set, detect.kernels.prefix_match,
                   detect.kernels.string_set, detect.kernels.domain_suffix):
        h.update(inspect.getsource(module).encode())
    # the loaders and normalisation too: a fix there (IDNA URL hosts) must not be hidden by
    # an index a cache kept from before it
    for source in sorted(Path(__file__).parent.glob("*.py")):
        h.update(source.read_bytes())
    fields = ";".join(f"{cls.__name__}{cls._fields}" for cls in
                      (IpSetIndex, PrefixIndex, DomainIndex, StringSetIndex))
    return f"{fields};{h.hexdigest()}"


LAYOUT = _layout()


def compile_arrays(merged: pa.Table) -> dict[str, np.ndarray]:
    """Kernel index arrays for the merged indicators (row i = indicator id i)."""
    types = merged.column("type").combine_chunks()
    values = merged.column("value").combine_chunks()
    ids = np.arange(merged.num_rows, dtype=np.int32)
    arrays: dict[str, np.ndarray] = {}

    def of(kind: str) -> tuple[pa.Array, np.ndarray]:
        mask = pc.equal(types, kind)
        return values.filter(mask), ids[np.asarray(mask.fill_null(False))]

    ip_values, ip_ids = of("ip")
    if len(ip_ids):
        arrays |= _save("ip", build_ip_set(ip_to_bin(ip_values), ip_ids))
    cidr_values, cidr_ids = of("cidr")
    if len(cidr_ids):
        parts = pc.split_pattern(cidr_values, "/")
        network = pc.list_element(parts, 0)
        length = pc.cast(pc.list_element(parts, 1), pa.int64()).to_numpy()
        is_v4 = np.asarray(pc.match_substring(network, "."))
        lengths = np.where(is_v4, v4_length(length), length)
        arrays |= _save("cidr", build_prefix_index(ip_to_bin(network), lengths, cidr_ids))
    domain_values, domain_ids = of("domain")
    if len(domain_ids):
        arrays |= _save("domain", build_domain_index(domain_values, domain_ids))
    for kind, fold in STRING_TYPES.items():
        kind_values, kind_ids = of(kind)
        if len(kind_ids):
            arrays |= _save(kind, build_string_set(kind_values, kind_ids, fold_case=fold))
    return arrays


def load_index(settings: Settings, *, use_cache: bool = True) -> IndicatorIndex:
    """The compiled index for the feeds and allowlists ``settings`` name (cached).

    A feed that cannot be read at all (missing, unknown format) is a configuration
    error (exit 2) for every command: nothing ran yet. Bad entries inside a readable
    feed are listed in ``problems`` instead.
    """
    try:
        return build_index(
            settings.indicators_or_default(),
            allowlists=settings.allowlists,
            options=FeedOptions(context=settings.indicator_context),
            cache_dir=settings.cache_dir_or_default() if use_cache else None,
            compile_arrays=compile_arrays,
            layout=LAYOUT,
        )
    except InputError as e:
        raise ConfigError(str(e)) from e


def _flatten_list(column: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """Values of a list column and the row each came from."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    values = pc.list_flatten(column)
    rows = pc.list_parent_indices(column).to_numpy(zero_copy_only=False).astype(np.int64)
    return values, rows


@dataclass
class _Candidates:
    rows: list[np.ndarray] = field(default_factory=list)
    ids: list[np.ndarray] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    ports: list[np.ndarray | None] = field(default_factory=list)

    def add(self, rows: np.ndarray, ids: np.ndarray, column: str,
            port: np.ndarray | None = None) -> None:
        if len(rows):
            self.rows.append(rows)
            self.ids.append(ids.astype(np.int64))
            self.fields.append(column)
            self.ports.append(port)


class IndicatorEngine:
    """Matches canonical batches against an :class:`IndicatorIndex`."""

    kind = "indicator"

    def __init__(self, index: IndicatorIndex, *, retro_hunt: bool = False,
                 threads: int = 1) -> None:
        self.index = index
        self.retro_hunt = retro_hunt
        self.threads = threads
        table = index.indicators
        self.ip = _restore(index.arrays, "ip", IpSetIndex)
        self.cidr = _restore(index.arrays, "cidr", PrefixIndex)
        self.domain = _restore(index.arrays, "domain", DomainIndex)
        self.strings = {k: _restore(index.arrays, k, StringSetIndex) for k in STRING_TYPES}
        # per-indicator columns are gathered for the hit ids only: with millions of
        # indicators, whole-column conversions would dominate a cron job's start-up
        self._meta = table.select(
            ["type", "value", "port", "valid_from", "valid_until", "validity_gaps"]
        )
        self._by_rule: dict[str, int] = {}

    # -- matching -------------------------------------------------------------------

    def match(self, batch: pa.RecordBatch) -> pa.Table:
        """Hits (``HITS_SCHEMA``) of this batch; ``event_index`` is the row in ``batch``."""
        found = _Candidates()
        for column in FIELD_ROLES["ip"]:
            self._match_ips(batch, column, found)
        if self.domain is not None:
            for column in FIELD_ROLES["domain"]:
                rows, ids = probe_domain_suffix(self.domain, batch.column(column),
                                                threads=self.threads)
                found.add(rows, ids, column)
                idn, names = _idna_rows(batch.column(column))
                if len(idn):  # internationalised names: the feeds hold them in punycode
                    rows, ids = probe_domain_suffix(self.domain, names)
                    found.add(idn[rows], ids, column)
        for kind in STRING_TYPES:
            index = self.strings[kind]
            if index is None:
                continue
            for column in _string_columns(kind):
                values, rows = self._string_values(batch, column, kind)
                ids = probe_string_set(index, values, threads=self.threads)
                hit = ids >= 0
                found.add(rows[hit], ids[hit], column)
        if not found.rows:
            return HITS_SCHEMA.empty_table()
        return self._hits(batch, found)

    def _match_ips(self, batch: pa.RecordBatch, column: str, found: _Candidates) -> None:
        if self.ip is None and self.cidr is None:
            return
        if column in _BIN_OF:
            values = batch.column(_BIN_OF[column])
            rows = None
            port_col = batch.column(_PORT_OF[column]).combine_chunks() if isinstance(
                batch.column(_PORT_OF[column]), pa.ChunkedArray) else batch.column(
                _PORT_OF[column])
            ports = np.where(np.asarray(pc.is_null(port_col)), -2,
                             port_col.fill_null(0).cast(pa.int32()).to_numpy(
                                 zero_copy_only=False))
        else:  # a list of text values (dns.answers.data): parse the ones that are IPs
            text, rows = _flatten_list(batch.column(column))
            values = ip_to_bin(text)
            ports = None
        for index, probe in ((self.ip, probe_ip_set), (self.cidr, probe_prefix)):
            if index is None:
                continue
            ids = probe(index, values, threads=self.threads)
            hit = np.flatnonzero(ids >= 0)
            event_rows = hit if rows is None else rows[hit]
            found.add(event_rows, ids[hit], column, None if ports is None else ports[hit])

    def _string_values(self, batch: pa.RecordBatch, column: str,
                       kind: str) -> tuple[pa.Array, np.ndarray]:
        col = batch.column(column)
        if pa.types.is_list(col.type):
            values, rows = _flatten_list(col)
        else:
            values = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
            rows = np.arange(len(values), dtype=np.int64)
        if kind == "url":
            values = normalize_url_column(values)  # a non-ASCII host in IDNA, as the feeds'
        return values, rows

    def _hits(self, batch: pa.RecordBatch, found: _Candidates) -> pa.Table:
        rows = np.concatenate(found.rows)
        ids = np.concatenate(found.ids)
        field_idx = np.concatenate([np.full(len(r), i, dtype=np.int32)
                                    for i, r in enumerate(found.rows)])
        meta = self._meta.take(pa.array(ids))
        keep = self._valid_at(batch, rows, meta)
        # ip:port indicators: the port on the matched side must agree
        port = meta.column("port").combine_chunks()
        need_port = np.asarray(pc.is_valid(port))
        if need_port.any():
            want = np.asarray(port.fill_null(0).cast(pa.int64()).to_numpy(zero_copy_only=False))
            event_port = np.full(len(rows), -1, dtype=np.int64)
            start = 0
            for r, p in zip(found.rows, found.ports, strict=True):
                if p is not None:
                    event_port[start:start + len(r)] = p
                start += len(r)
            keep &= ~need_port | (event_port == want)
        # one hit per (event, field, indicator): a list column may hold a value twice
        # (dns.answers.data ["1.2.3.4", "::ffff:1.2.3.4"]), and a column is probed per type
        names = {f: k for k, f in enumerate(dict.fromkeys(found.fields))}
        field_of = np.array([names[f] for f in found.fields], dtype=np.int64)[field_idx]
        order = np.flatnonzero(keep)
        order = order[np.lexsort((ids[order], field_of[order], rows[order]))]
        r, i, f = rows[order], ids[order], field_of[order]
        first = np.ones(len(order), dtype=np.bool_)
        first[1:] = (r[1:] != r[:-1]) | (i[1:] != i[:-1]) | (f[1:] != f[:-1])
        order = order[first]
        rows, ids, field_idx = rows[order], ids[order], field_idx[order]
        rule_ids = _rule_ids(meta.take(pa.array(order)))
        uniq, first = np.unique(ids, return_index=True)
        for rid, i in zip(rule_ids.take(pa.array(first)).to_pylist(), uniq.tolist(),
                          strict=True):
            self._by_rule.setdefault(rid, i)
        fields = pa.array(found.fields, pa.string()).take(pa.array(field_idx))
        kind = pa.array(["indicator"]).take(pa.array(np.zeros(len(rows), dtype=np.int64)))
        return pa.table([pa.array(rows, pa.int64()), rule_ids, kind, fields], schema=HITS_SCHEMA)

    def _valid_at(self, batch: pa.RecordBatch, rows: np.ndarray, meta: pa.Table) -> np.ndarray:
        ts_col = batch.column("@timestamp")
        ts = np.asarray(ts_col.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False))
        known = ~np.asarray(pc.is_null(ts_col))
        t = ts[rows]
        ok = t <= _times(meta.column("valid_until"), _NO_TIME_HIGH)
        if not self.retro_hunt:  # which also ignores the gaps (each is some feed's valid_from)
            ok &= t >= _times(meta.column("valid_from"), _NO_TIME_LOW)
            ok &= ~_in_gap(t, meta.column("validity_gaps"))
        return ok | ~known[rows]

    # -- rule metadata ---------------------------------------------------------------

    def rule(self, rule_id: str) -> RuleInfo:
        """Title, severity and attribution of an indicator this engine reported."""
        i = self._by_rule[rule_id]  # KeyError: not ours
        row = {name: self.index.indicators.column(name)[i].as_py()
               for name in ("type", "value", "port", "sources", "severity", "tags",
                            "description", "origins")}
        sources = row["sources"] or []
        title = f"{row['type']} indicator {_display(row['value'], row['port'])}"
        if sources:
            title += f" ({', '.join(sources[:3])}{', ...' if len(sources) > 3 else ''})"
        tags = row["tags"] or []
        return RuleInfo(
            rule_id=rule_id,
            kind="indicator",
            title=title,
            severity=row["severity"],
            attack=tuple(t for t in tags if _ATTACK.match(t)),
            author=", ".join(sources) or None,
            references=tuple(row["origins"] or ()),
        )


def _string_columns(kind: str) -> tuple[str, ...]:
    return FIELD_ROLES.get(kind, ())


def _times(column: pa.ChunkedArray, default: int) -> np.ndarray:
    arr = column.combine_chunks().cast(pa.int64())
    out = np.asarray(arr.fill_null(default).to_numpy(zero_copy_only=False), dtype=np.int64)
    return out


def _display(value: str, port: int | None) -> str:
    if port is None:
        return value
    return f"[{value}]:{port}" if ":" in value else f"{value}:{port}"


def _rule_ids(table: pa.Table) -> pa.Array:
    """``ioc:<type>:<value>`` (with ``:<port>`` for ip:port indicators), one per indicator."""
    types = table.column("type").combine_chunks()
    values = table.column("value").combine_chunks()
    port = table.column("port").combine_chunks()
    v6 = pc.match_substring(values, ":")
    with_port = pc.if_else(
        v6,
        pc.binary_join_element_wise("[", values, "]:", port.cast(pa.string()), ""),
        pc.binary_join_element_wise(values, ":", port.cast(pa.string()), ""),
    )
    shown = pc.if_else(pc.is_null(port), values, with_port)
    return pc.binary_join_element_wise("ioc:", types, ":", shown, "")


# -- explain -----------------------------------------------------------------------------


@dataclass
class Explanation:
    """What ``detect indicators explain`` prints."""

    value: str
    kind: str | None
    normalised: str | None
    error: str | None = None
    carried: list[dict] = field(default_factory=list)
    suppressed: list[dict] = field(default_factory=list)
    would_suppress: list[str] = field(default_factory=list)
    event_hits: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        if self.error:
            return [f"{self.value}: {self.error}"]
        out = [f"{self.value} is a {self.kind}, normalised as {self.normalised}"]
        if self.carried:
            for row in self.carried:
                out.append(
                    f"  in feeds: {', '.join(row['sources'])}; severity {row['severity']}, "
                    f"confidence {row['confidence']}, valid {row['valid_from'] or '-'} .. "
                    f"{row['valid_until'] or '-'}, tags {', '.join(row['tags'] or []) or '-'}"
                )
        else:
            out.append("  in no loaded feed as an indicator of its own")
        for row in self.suppressed:
            out.append(f"  suppressed: list {row['list_name']} ({row['match']} "
                       f"{row['list_entry']!r}); feeds {', '.join(row['sources'] or [])}")
        out.extend(f"  would be suppressed by {w}" for w in self.would_suppress
                   if not self.suppressed)
        if self.event_hits:
            out.append("  an event with this value matches: " + ", ".join(self.event_hits))
        else:
            out.append("  an event with this value matches no indicator")
        return out


_PROBE_COLUMN = {"ip": "destination.ip", "cidr": None, "domain": "dns.question.name",
                 "url": "url.full", "md5": "file.hash.md5", "sha1": "file.hash.sha1",
                 "sha256": "file.hash.sha256", "ja3": "tls.client.ja3",
                 "ja3s": "tls.server.ja3s", "email": "email.from.address",
                 "user-agent": "user_agent.original"}


def explain_value(value: str, settings: Settings, *, kind: str | None = None) -> Explanation:
    """Which feeds carry ``value``, which list suppresses it, what an event with it hits."""
    from detect.enrich import enrich
    from detect.schema import conform

    try:
        kind, norm = normalize(kind, value) if kind else infer(value)
    except NormalizeError as e:
        return Explanation(value, kind, None, error=str(e))
    ex = Explanation(value, kind, norm)
    index = load_index(settings)
    table = index.indicators
    mask = pc.and_(pc.equal(table.column("type"), kind), pc.equal(table.column("value"), norm))
    ex.carried = table.filter(mask).to_pylist()
    sup = index.suppressed
    ex.suppressed = sup.filter(pc.equal(sup.column("value"), norm)).to_pylist()
    if settings.allowlists:
        from detect.indicators.suppress import explain
        from detect.indicators.warninglists import load_warninglists

        lists = load_warninglists(list(settings.allowlists))
        ex.would_suppress = [f"{s.list_name} ({s.match} {s.list_entry!r})"
                             for s in explain(norm, kind, lists)]
    column = _PROBE_COLUMN.get(kind)
    if column is not None:
        event = conform({"@timestamp": pa.array([None], pa.timestamp("us", "UTC")),
                         column: pa.array([norm])}, 1)
        engine = IndicatorEngine(index, retro_hunt=True)
        hits = engine.match(enrich(event))
        ex.event_hits = sorted(set(hits.column("rule_id").to_pylist()))
    return ex


def _idna_rows(col: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Rows of a name column holding non-ASCII text (rare: internationalised names) and
    their IDNA spelling (null where there is none). Python runs for those rows only."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        return np.zeros(0, np.int64), pa.array([], pa.string())
    idx = np.flatnonzero(np.asarray(pc.invert(pc.string_is_ascii(col)).fill_null(False)))
    return idx, pa.array([_idna(v) for v in col.take(pa.array(idx)).to_pylist()], pa.string())


def _idna(name: str) -> str | None:
    try:
        return name.lower().encode("idna").decode("ascii")
    except UnicodeError:
        return None


def _in_gap(t: np.ndarray, gaps: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Per hit, whether its event time ``t`` falls strictly inside one of its indicator's
    validity gaps (times between feeds' intervals that no feed calls valid)."""
    if isinstance(gaps, pa.ChunkedArray):
        gaps = gaps.combine_chunks()
    out = np.zeros(len(t), dtype=np.bool_)
    flat = pc.list_flatten(gaps)
    if len(flat) == 0:
        return out
    hit = np.asarray(pc.list_parent_indices(gaps))
    start = np.asarray(flat.field("start").cast(pa.int64()).to_numpy(zero_copy_only=False))
    end = np.asarray(flat.field("end").cast(pa.int64()).to_numpy(zero_copy_only=False))
    inside = (t[hit] > start) & (t[hit] < end)
    out[hit[inside]] = True
    return out
