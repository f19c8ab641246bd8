"""DNS tunnelling, DGA, excessive NXDOMAIN and long-domain findings over fixed windows.

Sources of the heuristics and their default thresholds (``docs``: DETECTORS.md d.3-d.5):

- **Tunnel** (``anomaly:dns:tunnel``), per registered domain and window: distinct
  subdomains >= ``tunnel_min_subdomains`` (100) is RITA's DNS C2 rule (activecm/rita,
  ``analysis``: unique subdomains per domain, threat buckets 100/500/800/1000); the
  score is RITA's bucketed ``B(v; 100, 500, 800, 1000)``. Second branch (ours, built
  from Zircolite's subdomain tests and Maltrail's entropy threshold): at least
  ``tunnel_min_suspicious`` (20) distinct *suspicious* names (dot-stripped subdomain
  part longer than ``suspicious_min_chars`` = 15 with Shannon entropy >
  ``entropy_threshold`` = 3.5; wagga40/Zircolite ``queryname_subdomainanalysis.py``)
  and a TXT/NULL share of the domain's queries >= ``tunnel_min_txt_share`` (0.5);
  scored ``max(B(...), 0.4)`` (0.4 = RITA's "low" category value). Registered domains
  ending in ``ignore_suffixes`` (reverse lookups: ``in-addr.arpa``, ``ip6.arpa``) are
  skipped, in the spirit of Maltrail's DNS-exhaustion exclusions (DNSBLs, local
  lookups). Maltrail's own exhaustion rule (1 000 distinct prefixes in 60 s) is
  subsumed: it is far above the 100-per-window bucket.
- **DGA** (``anomaly:dns:dga``), per source and window: NXDOMAIN answers whose first
  label has entropy > ``dga_entropy`` (3.5) or more than ``dga_consonants`` (9)
  consonants of ``bcdfghjklmnpqrstvwxyz`` and no ``-`` (Maltrail ``core/settings.py``,
  ``sensor.py``). Maltrail tests only names of exactly two labels; we generalise this
  to names that *are* a registered domain (no subdomain part, per the Public Suffix
  List), so ``xkqjzv.co.uk`` is tested like ``xkqjzv.com`` while ``www.xkqjzv.com``
  is not. Maltrail's "resolver not local" test has no equivalent in logs and is
  dropped. A source fires with >= ``dga_min_names`` (3) distinct such names in the
  window (ours: Maltrail alerts on every single name, but one ordinary 12-letter label
  with 12 distinct letters already has H = log2 12 = 3.58 > 3.5 -- the synthetic
  benign data has such NXDOMAIN typos, a DGA bot tries many names an hour), or (ours)
  with NXDOMAIN answers for >= ``dga_min_nx_domains`` (50) distinct registered
  domains. Score (ours):
  ``max(B(names; 1, 5, 20, 50), B(nx domains; 50, 100, 250, 500))``.
- **Excessive NXDOMAIN** (``anomaly:dns:nxdomain``), per name key and window: more
  than ``nxdomain_threshold`` (20) NXDOMAIN answers (Maltrail
  ``NO_SUCH_NAME_PER_HOUR_THRESHOLD``, per hour: our default window). Keys as
  Maltrail: the exact name, and the wildcard ``*.<registered domain>`` (Maltrail:
  ``*.<last two labels>``, generalised to the PSL) for names with a subdomain part.
  Maltrail alerts again every 20 answers; we report a key once per window. A wildcard
  key covering a single name is not reported (the exact key already is), nor one under
  ``ignore_suffixes`` (failing reverse lookups of a whole /8 are routine). Score (ours):
  ``B(count; t, 2.5t, 5t, 10t)`` for threshold ``t``.
- **Long domain** (``anomaly:dns:long-domain``), per registered domain (the name when
  there is none) and window: a first label longer than ``long_label`` (24) without
  ``-`` (Maltrail ``SUSPICIOUS_DOMAIN_LENGTH_THRESHOLD``), unless the name contains a
  ``long_domain_whitelist`` keyword (``blogspot``, Maltrail). Fixed score 0.3.

Severity from score: RITA's category (:func:`detect.anomaly.rita.severity_of`: 0.8 high, 0.6
medium, 0.4 low, else informational).

Windows and state (the :mod:`detect.anomaly.base` contract): fixed windows
``[k*W, (k+1)*W)`` of ``window`` seconds (default 3600) in UTC. The *watermark* is the
largest event time seen so far minus ``lateness`` (default 600 s); a window is
evaluated once, in the run in which its end reaches the watermark. The state is the
selected rows (:data:`COMPACT_SCHEMA`) of windows not yet evaluated, and in its schema
metadata, key ``b"detect.dns.watermark"``, JSON ``{"max_ts": us, "closed_until": us}``:
the largest event time seen and the end of the last evaluated window (every window
ending at or before it is done). Store the state in a format that keeps schema
metadata (Arrow IPC, Parquet); without it the watermark is rebuilt from the rows,
which only loses late-row detection for windows that were already flushed. Rows of
already evaluated windows are counted in ``RunOutput.late`` and dropped.

``run(rows, state, final=True)`` also evaluates every window that still has rows (the
end of a one-off run, e.g. a file being analysed once); the watermark then moves to
the end of the last window, so later rows for those windows are late.

Examples
--------
>>> import pyarrow as pa
>>> from detect.schema import conform
>>> from detect.enrich import enrich
>>> n = 150
>>> b = enrich(conform({
...     "@timestamp": pa.array(range(10**9, 10**9 + n), pa.timestamp("us", tz="UTC")),
...     "event.dataset": pa.array(["dns"] * n).dictionary_encode(),
...     "source.ip": pa.array(["10.0.0.9"] * n),
...     "dns.question.name": pa.array([f"{i:04x}q{i * 7919 % 9973:x}.t.example.com"
...                                    for i in range(n)])}, n))
>>> det = DnsTunnelDetector({"window": 3600})
>>> out = det.run(det.select(b), None, final=True)
>>> out.findings.column("rule_id").to_pylist(), out.findings.column("entity").to_pylist()
(['anomaly:dns:tunnel'], ['example.com'])
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detect.anomaly.base import FINDINGS_SCHEMA, TS, RunOutput, empty_findings
from detect.anomaly.keys import watermark_is_held
from detect.anomaly.rita import bucketed_score, severity_of
from detect.errors import ConfigError
from detect.kernels.dns_features import (
    FEATURE_NAMES,
    group_int64,
    intern_strings,
    is_in_dictionary,
    name_features_and_names,
)

__all__ = [
    "COMPACT_SCHEMA",
    "RULE_DGA",
    "RULE_LONG_DOMAIN",
    "RULE_NXDOMAIN",
    "RULE_TUNNEL",
    "STATE_KEY",
    "DnsTunnelDetector",
    "DnsTunnelParams",

]

RULE_TUNNEL = "anomaly:dns:tunnel"
RULE_DGA = "anomaly:dns:dga"
RULE_NXDOMAIN = "anomaly:dns:nxdomain"
RULE_LONG_DOMAIN = "anomaly:dns:long-domain"
STATE_KEY = b"detect.dns.watermark"
US = 1_000_000

_FLOAT_FEATURES = {"first_entropy", "sub_entropy", "sub_digit_ratio"}
_BOOL_FEATURES = {"first_dash"}


def _feature_type(name: str) -> pa.DataType:
    if name in _FLOAT_FEATURES:
        return pa.float64()
    if name in _BOOL_FEATURES:
        return pa.bool_()
    return pa.int32()


COMPACT_SCHEMA = pa.schema(
    [
        pa.field("ts", TS),
        pa.field("source", pa.string()),
        pa.field("name", pa.string()),  # folded, one trailing dot dropped
        pa.field("registered_domain", pa.string()),
        pa.field("qtype", pa.string()),
        pa.field("rcode", pa.string()),
        pa.field("nxdomain", pa.bool_()),
        pa.field("txt_null", pa.bool_()),
        *(pa.field(f, _feature_type(f)) for f in FEATURE_NAMES),
    ]
)

_NXDOMAIN = frozenset({"NXDOMAIN", "3", "NAME_ERROR", "NAMEERROR"})
_TXT_NULL = frozenset({"TXT", "NULL", "16", "10"})


@dataclass(frozen=True)
class DnsTunnelParams:
    """Thresholds; defaults and their sources in the module docstring."""

    window: int = 3600  # seconds
    lateness: int = 600  # seconds
    tunnel_min_subdomains: int = 100  # RITA DNS C2 base bucket
    tunnel_buckets: tuple[float, float, float, float] = (100, 500, 800, 1000)  # RITA
    entropy_threshold: float = 3.5  # Maltrail / Zircolite
    suspicious_min_chars: int = 15  # Zircolite: entropy tested above 15 characters
    tunnel_min_suspicious: int = 20  # ours
    tunnel_min_txt_share: float = 0.5  # ours
    ignore_suffixes: tuple[str, ...] = ("in-addr.arpa", "ip6.arpa")
    dga_entropy: float = 3.5  # Maltrail
    dga_consonants: int = 9  # Maltrail: > 9
    dga_min_names: int = 3  # ours (Maltrail alerts on every single name)
    dga_min_nx_domains: int = 50  # ours
    nxdomain_threshold: int = 20  # Maltrail: > 20 per hour
    long_label: int = 24  # Maltrail: > 24
    long_domain_whitelist: tuple[str, ...] = ("blogspot",)  # Maltrail
    examples: int = 3

    def __post_init__(self) -> None:
        if self.window <= 0 or self.lateness < 0:
            msg = f"window must be > 0 and lateness >= 0 s, got {self.window}, {self.lateness}"
            raise ConfigError(msg)
        b = self.tunnel_buckets
        if len(b) != 4 or not b[0] < b[1] < b[2] < b[3]:
            msg = f"tunnel_buckets must be 4 increasing numbers, got {b}"
            raise ConfigError(msg)


def _raw(batch: pa.RecordBatch, name: str) -> pa.Array:
    """``batch[name]`` as it is, or nulls when the column is absent."""
    if name not in batch.schema.names:
        return pa.nulls(batch.num_rows, pa.string())
    return batch.column(name)


def _column(batch: pa.RecordBatch, name: str, typ: pa.DataType) -> pa.Array:
    """``batch[name]`` as plain ``typ`` (dictionary decoded); nulls when the column is absent."""
    if name not in batch.schema.names:
        return pa.nulls(batch.num_rows, typ)
    arr = batch.column(name)
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    return arr if arr.type == typ else arr.cast(typ)


def _conform(t: pa.Table) -> pa.Table:
    """``t`` with exactly the columns and types of :data:`COMPACT_SCHEMA` (metadata dropped)."""
    t = t.replace_schema_metadata(None)
    if t.schema.equals(COMPACT_SCHEMA):
        return t
    return t.select(COMPACT_SCHEMA.names).cast(COMPACT_SCHEMA)


def _ts_us(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    arr = arr.cast(pa.int64())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return arr.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def _np(t: pa.Table, name: str) -> np.ndarray:
    col = t.column(name)
    if col.num_chunks == 1:
        return col.chunk(0).to_numpy(zero_copy_only=False)
    return col.to_numpy()


class DnsTunnelDetector:
    """DNS tunnelling / DGA / NXDOMAIN / long-domain detector (module docstring)."""

    name = "dns"

    def __init__(
        self, params: Mapping[str, Any] | DnsTunnelParams | None = None, **overrides: Any
    ) -> None:
        if isinstance(params, DnsTunnelParams):
            base = params
            given: dict[str, Any] = {}
        else:
            base = DnsTunnelParams()
            given = dict(params or {})
        given.update(overrides)
        known = {f.name for f in fields(DnsTunnelParams)}
        unknown = sorted(set(given) - known)
        if unknown:
            msg = f"unknown dns detector parameter(s): {', '.join(unknown)}"
            raise ConfigError(msg)
        for key in ("tunnel_buckets", "ignore_suffixes", "long_domain_whitelist"):
            if key in given:
                given[key] = tuple(given[key])
        self.params = replace(base, **given)

    # ---- select --------------------------------------------------------------------------------

    def select(self, batch: pa.RecordBatch) -> pa.Table:
        """DNS rows with a name and a time, projected to :data:`COMPACT_SCHEMA`.

        The per-name features are computed here, once, so the state stays compact and
        a run never re-reads names. The registered domain is taken from
        ``dns.question.registered_domain`` (filled by ``detect.enrich``); a batch that
        was not enriched gets it computed here.
        """
        n = batch.num_rows
        keep = is_in_dictionary(_raw(batch, "event.dataset"), frozenset({"DNS"}))
        names = _column(batch, "dns.question.name", pa.string())
        ts = _column(batch, "@timestamp", TS)
        keep &= np.asarray(names.is_valid()) & np.asarray(ts.is_valid())
        if not keep.any():  # e.g. a conn batch
            return COMPACT_SCHEMA.empty_table()
        if not keep.all():
            batch = batch.filter(pa.array(keep))
            names = names.filter(pa.array(keep))
            ts = ts.filter(pa.array(keep))
            n = batch.num_rows
        rd = _column(batch, "dns.question.registered_domain", pa.string())
        if n and rd.null_count == n:
            from detect.enrich import registered_domain

            rd = registered_domain(names)
        feats, folded = name_features_and_names(names, rd)
        columns: dict[str, Any] = {
            "ts": ts,
            "source": _column(batch, "source.ip", pa.string()),
            "name": folded,
            "registered_domain": rd,
            "qtype": _column(batch, "dns.question.type", pa.string()),
            "rcode": _column(batch, "dns.response_code", pa.string()),
            # flags from the dictionaries: once per distinct value, not per row
            "nxdomain": pa.array(is_in_dictionary(_raw(batch, "dns.response_code"), _NXDOMAIN)),
            "txt_null": pa.array(is_in_dictionary(_raw(batch, "dns.question.type"), _TXT_NULL)),
        }
        for f in FEATURE_NAMES:
            columns[f] = pa.array(getattr(feats, f))
        return pa.table(columns, schema=COMPACT_SCHEMA)

    # ---- state ---------------------------------------------------------------------------------

    def _unpack(self, state: pa.Table | None) -> tuple[pa.Table, int | None, int | None]:
        if state is None:
            return COMPACT_SCHEMA.empty_table(), None, None
        meta = state.schema.metadata or {}
        rows = _conform(state)
        if STATE_KEY in meta:
            wm = json.loads(meta[STATE_KEY])
            return rows, wm.get("max_ts"), wm.get("closed_until")
        if rows.num_rows == 0:
            return rows, None, None
        max_ts = int(_ts_us(rows.column("ts")).max())
        return rows, max_ts, self._closed_until(max_ts, None, final=False)

    def _closed_until(self, max_ts: int, prev: int | None, *, final: bool) -> int | None:
        if watermark_is_held():
            return prev
        w = self.params.window * US
        c = (max_ts // w + 1) * w if final else (max_ts - self.params.lateness * US) // w * w
        return c if prev is None else max(prev, c)

    # ---- run -----------------------------------------------------------------------------------

    def run(self, rows: pa.Table, state: pa.Table | None, *, final: bool = False) -> RunOutput:
        """Findings of the windows that close in this run, the next state and the late count.

        ``final=True`` evaluates every window with rows (end of a one-off run).
        """
        prev, max_ts, closed = self._unpack(state)
        rows = _conform(rows)
        late = 0
        if rows.num_rows:
            ts = _ts_us(rows.column("ts"))
            if closed is not None:
                is_late = ts < closed
                late = int(is_late.sum())
                if late:
                    rows = rows.filter(pa.array(~is_late))
                    ts = ts[~is_late]
            if len(ts):
                top = int(ts.max())
                max_ts = top if max_ts is None else max(max_ts, top)
        table = pa.concat_tables([prev, rows]) if prev.num_rows else rows
        if max_ts is not None:
            closed = self._closed_until(max_ts, closed, final=final)
        findings = empty_findings()
        rest = table
        if closed is not None and table.num_rows:
            ts_all = _ts_us(table.column("ts"))
            done = ts_all < closed
            if done.all():
                findings = self._evaluate(table)
                rest = table.slice(0, 0)
            elif done.any():
                findings = self._evaluate(table.filter(pa.array(done)))
                rest = table.filter(pa.array(~done))
        meta = {STATE_KEY: json.dumps({"max_ts": max_ts, "closed_until": closed})}
        rest = rest.combine_chunks().replace_schema_metadata(meta)
        return RunOutput(findings=findings, state=rest, late=late)

    # ---- evaluation ----------------------------------------------------------------------------

    def _evaluate(self, t: pa.Table) -> pa.Table:
        p = self.params
        t = t.combine_chunks()
        ctx = _Context(t, p)
        out: list[dict[str, Any]] = []
        out += self._tunnel(ctx)
        out += self._dga(ctx)
        out += self._nxdomain(ctx)
        out += self._long_domain(ctx)
        if not out:
            return empty_findings()
        out.sort(key=lambda r: (r["window_start"], r["rule_id"], r["entity"]))
        cols = {f.name: [r[f.name] for r in out] for f in FINDINGS_SCHEMA}
        for c in ("window_start", "window_end", "first_seen", "last_seen"):
            cols[c] = pa.array(np.array(cols[c], dtype=np.int64)).cast(TS)
        return pa.table(cols, schema=FINDINGS_SCHEMA)

    def _finding(
        self, ctx: _Context, rule: str, entity: str, w: int, rows: np.ndarray, score: float,
        evidence: dict[str, Any],
    ) -> dict[str, Any]:  # fmt: skip
        ts = ctx.ts[rows]
        W = self.params.window * US
        evidence["examples"] = ctx.examples(rows, self.params.examples)
        return {
            "rule_id": rule,
            "entity": entity,
            "window_start": w * W,
            "window_end": (w + 1) * W,
            "first_seen": int(ts.min()),
            "last_seen": int(ts.max()),
            "event_count": len(rows),
            "score": float(score),
            "severity": severity_of(score),
            "evidence": json.dumps(evidence, sort_keys=True),
        }

    def _tunnel(self, ctx: _Context) -> list[dict[str, Any]]:
        p = self.params
        rd = ctx.rd_codes
        idx = np.flatnonzero(rd >= 0)
        idx = idx[~ctx.ignored[rd[idx]]]
        if len(idx) == 0:
            return []
        gid, _, G = group_int64(ctx.key(idx, rd, len(ctx.rd_values)))
        queries = np.bincount(gid, minlength=G)
        txt = np.bincount(gid, weights=ctx.txt[idx], minlength=G)
        has_sub = ctx.f["sub_len"][idx] > 0
        distinct = ctx.distinct(gid, idx, has_sub, G)
        susp = has_sub & (ctx.f["sub_entropy"][idx] > p.entropy_threshold)
        susp &= ctx.f["sub_chars"][idx] > p.suspicious_min_chars
        distinct_susp = ctx.distinct(gid, idx, susp, G)
        share = txt / np.maximum(queries, 1)
        by_count = distinct >= p.tunnel_min_subdomains
        by_entropy = (distinct_susp >= p.tunnel_min_suspicious) & (share >= p.tunnel_min_txt_share)
        out = []
        for g, rows in ctx.groups(gid, idx, by_count | by_entropy):
            score = bucketed_score(float(distinct[g]), *p.tunnel_buckets)
            if by_entropy[g]:
                score = max(score, 0.4)
            f = ctx.f
            ev = {
                "registered_domain": ctx.rd_values[rd[rows[0]]],
                "queries": int(queries[g]),
                "distinct_subdomains": int(distinct[g]),
                "suspicious_subdomains": int(distinct_susp[g]),
                "txt_null_share": round(float(share[g]), 4),
                "nxdomain": int(ctx.nx[rows].sum()),
                "sources": ctx.sources(rows),
                "max_sub_len": int(f["sub_len"][rows].max()),
                "max_sub_entropy": round(float(f["sub_entropy"][rows].max()), 4),
                "max_label": int(f["max_label"][rows].max()),
                "max_hex_run": int(f["sub_hex_run"][rows].max()),
                "max_base64_run": int(f["sub_base64_run"][rows].max()),
                "reasons": [r for r, on in (("distinct_subdomains", by_count[g]),
                                            ("entropy_txt_null", by_entropy[g])) if on],
            }  # fmt: skip
            w = int(ctx.w[rows[0]])
            out.append(self._finding(ctx, RULE_TUNNEL, ev["registered_domain"], w, rows, score, ev))
        return out

    def _dga(self, ctx: _Context) -> list[dict[str, Any]]:
        p = self.params
        f = ctx.f
        idx = np.flatnonzero(ctx.nx & (ctx.src_codes >= 0))
        if len(idx) == 0:
            return []
        gid, _, G = group_int64(ctx.key(idx, ctx.src_codes, len(ctx.src_values)))
        dga = (f["sub_len"][idx] == 0) & (f["n_labels"][idx] >= 2) & ~f["first_dash"][idx]
        dga &= (f["first_entropy"][idx] > p.dga_entropy) | (
            f["first_consonants"][idx] > p.dga_consonants
        )
        names = ctx.distinct(gid, idx, dga, G)
        nx_rds = ctx.distinct(gid, idx, ctx.rd_codes[idx] >= 0, G, codes=ctx.rd_codes)
        fire = (names >= p.dga_min_names) | (nx_rds >= p.dga_min_nx_domains)
        out = []
        dga_rows = np.zeros(len(ctx.ts), dtype=np.bool_)
        dga_rows[idx[dga]] = True
        for g, rows in ctx.groups(gid, idx, fire):
            score = max(
                bucketed_score(float(names[g]), 1, 5, 20, 50),
                bucketed_score(float(nx_rds[g]), 50, 100, 250, 500),
            )
            hits = rows[dga_rows[rows]]
            shown = hits if len(hits) else rows
            ev = {
                "source": ctx.src_values[ctx.src_codes[rows[0]]],
                "nxdomain": len(rows),
                "nxdomain_registered_domains": int(nx_rds[g]),
                "dga_names": int(names[g]),
                "max_first_entropy": round(float(f["first_entropy"][shown].max()), 4),
                "max_first_consonants": int(f["first_consonants"][shown].max()),
                "dga_examples": ctx.examples(hits, p.examples) if len(hits) else [],
            }
            w = int(ctx.w[rows[0]])
            out.append(self._finding(ctx, RULE_DGA, ev["source"], w, rows, score, ev))
        return out

    def _nxdomain(self, ctx: _Context) -> list[dict[str, Any]]:
        p = self.params
        nx = ctx.nx
        out = []
        t = p.nxdomain_threshold
        buckets = (t, 2.5 * t, 5 * t, 10 * t)
        idx = np.flatnonzero(nx)
        if len(idx) == 0:
            return []
        gid, _, G = group_int64(ctx.key(idx, ctx.name_codes, len(ctx.name_values)))
        counts = np.bincount(gid, minlength=G)
        for _g, rows in ctx.groups(gid, idx, counts > t):
            name = ctx.name_values[ctx.name_codes[rows[0]]]
            ev = {"key": name, "nxdomain": len(rows), "sources": ctx.sources(rows)}  # fmt: skip
            score = bucketed_score(float(len(rows)), *buckets)
            w = int(ctx.w[rows[0]])
            out.append(self._finding(ctx, RULE_NXDOMAIN, name, w, rows, score, ev))
        wild = idx[(ctx.rd_codes[idx] >= 0) & (ctx.f["sub_len"][idx] > 0)]
        wild = wild[~ctx.ignored[ctx.rd_codes[wild]]]
        if len(wild):
            gid, _, G = group_int64(ctx.key(wild, ctx.rd_codes, len(ctx.rd_values)))
            counts = np.bincount(gid, minlength=G)
            names = ctx.distinct(gid, wild, np.ones(len(wild), np.bool_), G)
            for g, rows in ctx.groups(gid, wild, (counts > t) & (names >= 2)):
                key = "*." + ctx.rd_values[ctx.rd_codes[rows[0]]]
                ev = {"key": key, "nxdomain": len(rows), "distinct_names": int(names[g]),
                      "sources": ctx.sources(rows)}  # fmt: skip
                score = bucketed_score(float(len(rows)), *buckets)
                w = int(ctx.w[rows[0]])
                out.append(self._finding(ctx, RULE_NXDOMAIN, key, w, rows, score, ev))
        return out

    def _long_domain(self, ctx: _Context) -> list[dict[str, Any]]:
        p = self.params
        f = ctx.f
        idx = np.flatnonzero((f["first_len"] > p.long_label) & ~f["first_dash"])
        if len(idx) == 0:
            return []
        if p.long_domain_whitelist:
            names = ctx.t.column("name").take(pa.array(idx))
            white = np.zeros(len(idx), dtype=np.bool_)
            for word in p.long_domain_whitelist:
                white |= np.asarray(pc.fill_null(pc.match_substring(names, word.lower()), False))
            idx = idx[~white]
            if len(idx) == 0:
                return []
        rd = ctx.rd_codes[idx]
        key = np.where(rd >= 0, rd, len(ctx.rd_values) + ctx.name_codes[idx])
        width = len(ctx.rd_values) + len(ctx.name_values)
        gid, _, G = group_int64(ctx.w_rel[idx] * max(width, 1) + key)
        out = []
        for _g, rows in ctx.groups(gid, idx, np.ones(G, dtype=np.bool_)):
            code = ctx.rd_codes[rows[0]]
            entity = ctx.rd_values[code] if code >= 0 else ctx.name_values[ctx.name_codes[rows[0]]]
            ev = {
                "domain": entity,
                "queries": len(rows),
                "distinct_names": ctx.distinct_count(ctx.name_codes[rows]),
                "max_first_len": int(f["first_len"][rows].max()),
                "max_first_entropy": round(float(f["first_entropy"][rows].max()), 4),
                "threshold": p.long_label,
            }
            w = int(ctx.w[rows[0]])
            out.append(self._finding(ctx, RULE_LONG_DOMAIN, entity, w, rows, 0.3, ev))
        return out

    def describe(self) -> dict[str, Any]:
        """The parameters in effect (for the run record)."""
        return asdict(self.params)


class _Context:
    """Codes and features of the rows of the windows being evaluated (one table)."""

    def __init__(self, t: pa.Table, p: DnsTunnelParams) -> None:
        self.t = t
        self.ts = _ts_us(t.column("ts"))
        W = p.window * US
        self.w = self.ts // W
        self.w_rel = self.w - (self.w.min() if len(self.w) else 0)
        self.name_codes, name_first = intern_strings(t.column("name"))
        self.rd_codes, rd_first = intern_strings(t.column("registered_domain"))
        # sources matter only for NXDOMAIN rows (DGA per source): code those alone
        self.nx = _np(t, "nxdomain").astype(np.bool_)
        nx_rows = np.flatnonzero(self.nx)
        self.src_codes = np.full(len(self.ts), -1, dtype=np.int64)
        nx_src = t.column("source").take(pa.array(nx_rows))
        nx_codes, src_first = intern_strings(nx_src)
        self.src_codes[nx_rows] = nx_codes
        self._name_first = name_first
        self.rd_values = t.column("registered_domain").take(pa.array(rd_first)).to_pylist()
        self.src_values = nx_src.take(pa.array(src_first)).to_pylist()
        self.ignored = np.array(
            [any(d == s or d.endswith("." + s) for s in p.ignore_suffixes) for d in self.rd_values],
            dtype=np.bool_,
        )
        self.txt = _np(t, "txt_null").astype(np.float64)
        self.f = {name: _np(t, name) for name in FEATURE_NAMES}
        self._names: list[str] | None = None

    @property
    def name_values(self) -> list[str]:
        if self._names is None:
            self._names = self.t.column("name").take(pa.array(self._name_first)).to_pylist()
        return self._names

    def key(self, idx: np.ndarray, codes: np.ndarray, n_codes: int) -> np.ndarray:
        """One int64 per row of ``idx`` for the pair (window, ``codes``)."""
        return self.w_rel[idx] * max(n_codes, 1) + codes[idx]

    def distinct(
        self, gid: np.ndarray, idx: np.ndarray, mask: np.ndarray, G: int,
        codes: np.ndarray | None = None,
    ) -> np.ndarray:  # fmt: skip
        """Distinct values of ``codes`` (default: names) per group over ``idx[mask]``: exact."""
        codes = self.name_codes if codes is None else codes
        g = gid[mask]
        c = codes[idx[mask]]
        if len(g) == 0:
            return np.zeros(G, dtype=np.int64)
        _, first, _ = group_int64(g * (int(c.max()) + 1) + c)
        return np.bincount(g[first], minlength=G)

    @staticmethod
    def distinct_count(codes: np.ndarray) -> int:
        return len(np.unique(codes[codes >= 0]))

    def sources(self, rows: np.ndarray) -> int:
        """Distinct non-null sources among ``rows``."""
        values = self.t.column("source").take(pa.array(rows)).to_pylist()
        return len(set(values) - {None})

    @staticmethod
    def groups(gid: np.ndarray, idx: np.ndarray, fire: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """``(group, row indices)`` of every firing group (rows ascending)."""
        sel = fire[gid]
        if not sel.any():
            return []
        g = gid[sel]
        rows = idx[sel]
        order = np.argsort(g, kind="stable")
        g, rows = g[order], rows[order]
        cuts = np.flatnonzero(np.diff(g)) + 1
        return [(int(part_g[0]), part) for part_g, part in
                zip(np.split(g, cuts), np.split(rows, cuts), strict=True)]  # fmt: skip

    def examples(self, rows: np.ndarray, k: int) -> list[str]:
        """The first ``k`` distinct names by (time, name): independent of row order."""
        if len(rows) == 0 or k <= 0:
            return []
        ts = self.ts[rows]
        if len(rows) > 64:
            rows = rows[ts <= np.partition(ts, 63)[63]]
            ts = self.ts[rows]
        names = self.t.column("name").take(pa.array(rows)).to_pylist()
        out: list[str] = []
        for _, nm in sorted(zip(ts.tolist(), names, strict=True)):
            if nm not in out:
                out.append(nm)
                if len(out) == k:
                    break
        return out
