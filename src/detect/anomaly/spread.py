"""Cross-organisation spread: one destination or rule seen by many member organisations.

What a cross-border hub exists for: the same thing showing up at ``min_orgs`` (default 3)
or more distinct ``organization.name`` values within one window raises ONE campaign alert
listing the organisations.

Kinds (``rule_id = anomaly:spread:<kind>``):

- **destination** (``anomaly:spread:destination``): a destination registered domain or
  public destination IP, from events (:meth:`SpreadDetector.select`, the same values as
  :func:`detect.anomaly.first_seen.destination_values`: private addresses are skipped,
  ``10.0.0.5`` in two organisations is two different hosts).
- **hit** (``anomaly:spread:hit``): the same rule or indicator (``rule_id``) hitting in
  several organisations, from the hits the runner collects
  (:meth:`SpreadDetector.select_hits` on a table with ``@timestamp``,
  ``organization.name``, ``rule_id``, ``rule_kind`` and optionally ``source.ip``). The
  detector's own ``anomaly:spread:*`` alerts are left out (no feedback loop).

Both selections give rows of one format (``ROW_SCHEMA``: ``@timestamp``,
``organization.name``, ``source.ip``, ``kind``, ``type`` (``ip`` / ``domain`` for
destinations, the ``rule_kind`` for hits), ``value``); concatenate them and pass them to
:meth:`SpreadDetector.run`. Rows without an organisation are ignored.

**Windows.** Fixed closed windows of ``window`` seconds (default 86400: UTC days, aligned to
the epoch), chosen over sliding windows for simplicity: a campaign straddling midnight with
two organisations each side is missed, one with ``min_orgs`` on one side is found once per
day. Distinct organisations per (kind, type, value, window) are counted exactly
(:func:`detect.kernels.window_agg.fixed_window_agg` over :func:`detect.anomaly.keys.
encode_keys` ids). Watermark (``lateness``, default 600 s), ``final=True`` and ``late`` rows
as in :mod:`detect.anomaly.scan`. The state holds, per open window, one aggregate (first,
last, count) per (kind, type, value, organisation, source): bounded by the distinct
tuples of one window, not by events.

**Ignore.** ``ignore`` (default :data:`detect.anomaly.first_seen.DEFAULT_IGNORE`, special-use
names only) drops destination domains (and names under them) and IPs / CIDRs. Every
popular service (CDNs, OS updates, search engines) is contacted by every organisation and
fires daily: pass warninglists as ``ignore`` (``SpreadDetector(ignore=DEFAULT_IGNORE +
tuple(tranco_top_10k) + tuple(cloud_cidrs))``).

**Finding.** ``entity`` is the value (the domain, IP or rule id); ``first_seen`` /
``last_seen`` / ``event_count`` over all organisations. Evidence: ``kind``, ``type``,
``value``, ``org_count``, ``organizations`` (per organisation, sorted by name: ``name``,
``first_seen``, ``last_seen``, ``events``), ``sources`` (distinct (organisation, source)
pairs, 0 for hits without sources), ``window_s``, ``min_orgs``. Score: the number of
distinct organisations. Severity: ``high`` for hits (a rule or indicator firing at several
members is a campaign) and for destinations seen by ``2 * min_orgs`` organisations or
more, else ``medium``.

Examples
--------
>>> import pyarrow as pa
>>> from datetime import datetime, UTC
>>> t = [datetime(2024, 1, 1, h, tzinfo=UTC) for h in (1, 2, 3, 4)]
>>> batch = pa.record_batch({
...     "@timestamp": pa.array(t, pa.timestamp("us", tz="UTC")),
...     "organization.name": ["a", "b", "c", None],
...     "source.ip": ["10.0.0.1", "10.0.0.1", "10.0.0.9", "10.0.0.2"],
...     "destination.ip": ["203.0.113.7"] * 4})
>>> det = SpreadDetector()
>>> f = det.run(det.select(batch), None, final=True).findings
>>> f.column("rule_id").to_pylist(), f.column("entity").to_pylist(), f.column("score").to_pylist()
(['anomaly:spread:destination'], ['203.0.113.7'], [3.0])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detect.anomaly import evidence as ev
from detect.anomaly.base import FINDINGS_SCHEMA, TS, RunOutput, empty_findings
from detect.anomaly.first_seen import (
    DEFAULT_IGNORE,
    DICT,
    Folded,
    IgnoreList,
    _densify,
    _string,
    combine_codes,
    const_dict,
    destination_values,
    fold_rows,
)
from detect.anomaly.keys import (
    US,
    make_state,
    next_watermark,
    state_part,
    state_watermark,
    ts_us,
)
from detect.kernels.sort_keys import radix_argsort
from detect.kernels.window_agg import fixed_window_agg

__all__ = ["ROW_SCHEMA", "SpreadDetector", "SpreadParams"]

ROW_SCHEMA = pa.schema(
    [
        pa.field("@timestamp", TS),
        pa.field("organization.name", DICT),
        pa.field("source.ip", pa.string()),
        pa.field("kind", DICT),  # "destination" | "hit"
        pa.field("type", DICT),  # ip / domain, or the hit's rule_kind
        pa.field("value", pa.string()),  # destination, or the hit's rule_id
    ]
)
KEYS = ["kind", "type", "value", "organization.name", "source.ip"]
STATE_SCHEMA = pa.schema(
    [
        *(pa.field(k, pa.string()) for k in KEYS),
        pa.field("first", pa.int64()),
        pa.field("last", pa.int64()),
        pa.field("count", pa.int64()),
    ]
)
PENDING = 1


@dataclass(frozen=True)
class SpreadParams:
    """Threshold and windows (seconds); see the module docstring."""

    min_orgs: int = 3  # distinct organisations per window, at least
    window: float = 86_400.0  # fixed windows, aligned to the epoch
    lateness: float = 600.0
    ignore: tuple[str, ...] = DEFAULT_IGNORE  # domains / IPs / CIDRs (warninglists)
    destination_types: tuple[str, ...] = ("domain", "ip")
    exclude_rules: tuple[str, ...] = ("anomaly:spread",)  # hit rule_id prefixes left out


class SpreadDetector:
    """Destinations and hits spread over organisations; see the module docstring."""

    name = "spread"

    def __init__(self, params: SpreadParams | None = None, **overrides: object) -> None:
        base = params or SpreadParams()
        self.params = SpreadParams(**{**base.__dict__, **overrides}) if overrides else base
        self._ignore = IgnoreList.parse(self.params.ignore)

    # ------------------------------------------------------------------ select

    def select(self, batch: pa.RecordBatch) -> pa.Table:
        """Destination rows (``kind = destination``) of events with an organisation."""
        if "organization.name" not in batch.schema.names:
            return ROW_SCHEMA.empty_table()
        org = batch.column("organization.name")
        if org.null_count == len(org):
            return ROW_SCHEMA.empty_table()
        d = destination_values(batch, self._ignore, types=self.params.destination_types)
        out = pa.Table.from_arrays(
            [
                d.column("@timestamp"),
                d.column("organization.name"),
                d.column("source.ip"),
                const_dict("destination", d.num_rows),
                d.column("type"),
                d.column("value"),
            ],
            schema=ROW_SCHEMA,
        )
        return out.filter(pc.is_valid(out.column("organization.name"))) if org.null_count else out

    def select_hits(self, hits: pa.Table) -> pa.Table:
        """Hit rows (``kind = hit``, ``value = rule_id``, ``type = rule_kind``)."""
        need = ("@timestamp", "organization.name", "rule_id")
        if hits.num_rows == 0 or any(c not in hits.column_names for c in need):
            return ROW_SCHEMA.empty_table()
        rid = _string(hits, "rule_id")
        org = _string(hits, "organization.name")
        keep = pc.and_(pc.is_valid(hits.column("@timestamp")), pc.is_valid(org))
        keep = pc.and_(keep, pc.is_valid(rid))
        for prefix in self.params.exclude_rules:
            keep = pc.and_(keep, pc.invert(pc.fill_null(pc.starts_with(rid, prefix), False)))
        ts = hits.column("@timestamp")
        ts = (ts.combine_chunks() if isinstance(ts, pa.ChunkedArray) else ts).cast(TS)
        t = pa.Table.from_arrays(
            [
                ts,
                org.cast(DICT),
                _string(hits, "source.ip"),
                const_dict("hit", hits.num_rows),
                _string(hits, "rule_kind").cast(DICT),
                rid,
            ],
            schema=ROW_SCHEMA,
        )
        return t.filter(keep)

    # ------------------------------------------------------------------ run

    def run(self, rows: pa.Table, state: pa.Table | None, *, final: bool = False) -> RunOutput:
        """Findings for the windows that close in this run; see the module docstring."""
        p = self.params
        W = int(p.window * US)
        rows = rows.select(ROW_SCHEMA.names).cast(ROW_SCHEMA)
        keep = pc.and_(
            pc.and_(pc.is_valid(rows.column("@timestamp")), pc.is_valid(rows.column("value"))),
            pc.and_(pc.is_valid(rows.column("organization.name")), pc.is_valid(rows["kind"])),
        )
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
        pend = state_part(state, PENDING, STATE_SCHEMA.names)
        fo = fold_rows(rows, ts, pend, KEYS, W)
        f, la = fo.first, fo.last
        max_ts = int(la.max()) if la.size else None
        wm = next_watermark(prev_wm, max_ts, int(p.lateness * US), W, final=final)
        closed = ((f // W + 1) * W <= wm) if wm is not None else np.zeros(f.size, bool)
        findings = self._findings(fo, np.flatnonzero(closed), W)
        state_out = make_state(STATE_SCHEMA, wm, {PENDING: fo.table(np.flatnonzero(~closed))})
        return RunOutput(findings, state_out, late)

    def _findings(self, fo: Folded, idx: np.ndarray, W: int) -> pa.Table:
        """Findings of the closed aggregates ``idx`` of ``fo``."""
        p = self.params
        if idx.size == 0:
            return empty_findings()
        cf = fo.first[idx]
        gid, _ = combine_codes([fo.codes["kind"], fo.codes["type"], fo.codes["value"]])
        gid, _ = _densify(gid[idx])
        org_ids = fo.codes["organization.name"][0][idx]
        agg = fixed_window_agg(gid, cf, W, distinct=org_ids)
        fire = agg.distinct >= p.min_orgs
        if not fire.any():
            return empty_findings()
        # tuples of the firing (value, window) groups, sorted by (group, window, org, first)
        win = cf // W
        wmin = int(win.min())
        nwin = int(win.max()) - wmin + 1
        packed = gid * nwin + (win - wmin)
        firing = agg.group[fire] * nwin + (agg.window[fire] - wmin)
        sel = np.flatnonzero(np.isin(packed, firing))
        n_org = int(org_ids.max()) + 1
        key = packed[sel] * n_org + org_ids[sel]  # < nwin * groups * orgs: far below 2**63
        order = sel[radix_argsort(key, int(key.max()).bit_length())]
        pk, og = packed[order], org_ids[order]
        g_starts = np.flatnonzero(np.r_[True, pk[1:] != pk[:-1]])
        o_starts = np.flatnonzero(np.r_[True, (pk[1:] != pk[:-1]) | (og[1:] != og[:-1])])
        row_group = np.cumsum(np.r_[True, pk[1:] != pk[:-1]]) - 1  # group of each row
        o_group = row_group[o_starts]
        agg_i = idx[order]  # the aggregates of fo, in this order
        o_first = np.minimum.reduceat(cf[order], o_starts)
        o_last = np.maximum.reduceat(fo.last[agg_i], o_starts)
        o_count = np.add.reduceat(fo.count[agg_i], o_starts)
        rep = fo.rep[agg_i]  # the row of each aggregate in fo.columns

        def column(key: str, at: np.ndarray) -> pa.Array:
            return fo.strings(key, agg_i[at])

        # organisations of a group by name (as the evidence lists them)
        names = column("organization.name", o_starts)
        rank = pc.rank(names, sort_keys="ascending", tiebreaker="dense").to_numpy()
        by_name = np.lexsort((rank, o_group))
        per_org = ev.json_object(
            {
                "name": ev.json_strings(names),
                "first_seen": ev.json_times(o_first),
                "last_seen": ev.json_times(o_last),
                "events": ev.json_ints(o_count),
            }
        ).take(pa.array(by_name))
        n_orgs = np.bincount(o_group)
        og_starts = np.r_[0, np.cumsum(n_orgs)[:-1]]
        first_seen = np.minimum.reduceat(o_first, og_starts)
        last_seen = np.maximum.reduceat(o_last, og_starts)
        events = np.add.reduceat(o_count, og_starts)
        # distinct (organisation, source) pairs with a source, per group
        src_ok = pc.is_valid(fo.columns["source.ip"]).to_numpy()[rep]
        src = fo.codes["source.ip"][0][agg_i]
        o_seg = np.cumsum(np.r_[True, (pk[1:] != pk[:-1]) | (og[1:] != og[:-1])]) - 1
        n_src_codes = int(src.max()) + 1
        pk2 = o_seg[src_ok] * n_src_codes + src[src_ok]
        pk2 = pk2[radix_argsort(pk2, int(pk2.max(initial=0)).bit_length())]
        pair = pk2[np.r_[True, pk2[1:] != pk2[:-1]]] // n_src_codes if pk2.size else pk2
        n_src = np.bincount(o_group[pair], minlength=g_starts.size)
        kinds, types = column("kind", g_starts), column("type", g_starts)
        values = column("value", g_starts)
        n = g_starts.size
        evidence = ev.json_object(
            {
                "kind": ev.json_strings(kinds),
                "type": ev.json_strings(types),
                "value": ev.json_strings(values),
                "org_count": ev.json_ints(n_orgs),
                "organizations": ev.json_lists(per_org, np.r_[og_starts, o_starts.size]),
                "sources": ev.json_ints(n_src),
                "window_s": ev.json_constant(p.window, n),
                "min_orgs": ev.json_constant(p.min_orgs, n),
            }
        )
        high = np.asarray(pc.equal(kinds, "hit")) | (n_orgs >= 2 * p.min_orgs)
        ws = win[order[g_starts]] * W
        out = pa.table(
            {
                "rule_id": pc.binary_join_element_wise("anomaly:spread:", kinds, ""),
                "entity": values,
                "window_start": pa.array(ws).cast(TS),
                "window_end": pa.array(ws + W).cast(TS),
                "first_seen": pa.array(first_seen).cast(TS),
                "last_seen": pa.array(last_seen).cast(TS),
                "event_count": pa.array(events, pa.int64()),
                "score": pa.array(n_orgs.astype(np.float64)),
                "severity": pa.array(np.where(high, "high", "medium")),
                "evidence": evidence,
            },
            schema=FINDINGS_SCHEMA,
        )
        return out.sort_by(
            [("window_start", "ascending"), ("rule_id", "ascending"), ("entity", "ascending")]
        )
