"""Long connections and strobes per (source, destination, port): RITA's rules (d.1).

RITA v5 (activecm/rita, ``analysis/analysis.go``, ``config/config.go``; DETECTORS.md d.1):

- **long connection** (``anomaly:long-connection``): the total duration of a pair's
  connections is at least 3600 s; score ``B(total seconds; 3600, 14400, 28800, 43200)``
  (the bucketed threat score: 0.2 at 1 h, 0.4 at 4 h, 0.6 at 8 h, 0.8 from 12 h);
- **strobe** (``anomaly:strobe``): at least 86 400 connections per pair per day (one a
  second); score 0.8 (category "high"). RITA skips strobes in its beacon analysis.

Pairs are (``source.ip``, ``destination.ip``, ``destination.port``); windows are fixed days
(``window``, default 86 400 s, aligned to the epoch), each reported once when closed.

**Which time.** A connection counts at its *end*, ``@timestamp + event.duration``: that is
when a sensor logs it, so the watermark follows arrival order even for day-long sessions.
Zeek ``open_conn`` / ``conn_long`` rows (periodic snapshots of a connection still open, each
with the connection's start as ``ts`` and its duration so far) thus land in the window of
the snapshot. Snapshots and the final ``conn`` row of one connection share its ``uid``
(``event.id``): per (pair, window, uid) only the longest duration counts, and the
connection is counted once. Rows without an ``event.id`` are distinct connections.
A session open for days gives one long-connection finding per day, each with its total
duration so far (evidence ``longest_s``, ``uids``).

Windows, watermark (``lateness``, default 600 s), ``final=True`` and ``late`` rows behave as
in :mod:`detect.anomaly.scan`; the state holds the rows of the open windows.

Examples
--------
>>> import pyarrow as pa
>>> from datetime import datetime, UTC
>>> t0 = datetime(2024, 1, 1, tzinfo=UTC)
>>> rows = pa.table({"@timestamp": pa.array([t0, t0], pa.timestamp("us", tz="UTC")),
...                  "source.ip": ["10.0.0.1"] * 2, "destination.ip": ["10.0.0.2"] * 2,
...                  "destination.port": pa.array([22, 22], pa.int32()),
...                  "event.duration": pa.array([3_000 * 10**9, 5_000 * 10**9]),
...                  "event.id": ["C1", "C1"]})  # two snapshots of one session
>>> f = LongConnDetector().run(rows, None, final=True).findings
>>> f.column("rule_id").to_pylist(), f.column("score").to_pylist()
(['anomaly:long-connection'], [0.226])
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from detect.anomaly._select import keep_rows
from detect.anomaly.base import TS, RunOutput, empty_findings
from detect.anomaly.keys import (
    US,
    encode_keys,
    encode_values,
    findings_table,
    make_state,
    next_watermark,
    state_part,
    state_watermark,
    ts_us,
)
from detect.anomaly.rita import bucketed_score, severity_of
from detect.kernels.dns_features import group_int64
from detect.kernels.sort_keys import connection_totals, string_hashes, unique_mask

__all__ = ["LongConnDetector", "LongConnParams"]

ROW_SCHEMA = pa.schema(
    [
        pa.field("@timestamp", TS),
        pa.field("source.ip", pa.string()),
        pa.field("destination.ip", pa.string()),
        pa.field("destination.port", pa.int32()),
        pa.field("event.duration", pa.int64()),
        pa.field("event.id", pa.string()),
    ]
)


@dataclass(frozen=True)
class LongConnParams:
    """RITA's thresholds; durations in seconds."""

    long_threshold: float = 3600.0
    buckets: tuple[float, float, float, float] = (3600.0, 14400.0, 28800.0, 43200.0)
    strobe_threshold: int = 86_400  # connections per pair per window
    strobe_score: float = 0.8
    window: float = 86_400.0
    lateness: float = 600.0
    datasets: tuple[str, ...] = ("conn", "flow", "open_conn", "conn_long")


class LongConnDetector:
    """RITA long connections and strobes; see the module docstring."""

    name = "long_conn"

    def __init__(self, params: LongConnParams | None = None, **overrides: object) -> None:
        base = params or LongConnParams()
        self.params = LongConnParams(**{**base.__dict__, **overrides}) if overrides else base

    def select(self, batch: pa.RecordBatch) -> pa.Table:
        """conn-like rows with a time, both addresses, a destination port and a duration."""
        names = batch.schema.names
        need = ("@timestamp", "source.ip", "destination.ip", "destination.port", "event.duration")
        if any(c not in names for c in need):
            return ROW_SCHEMA.empty_table()
        keep = keep_rows(batch, need, self.params.datasets)
        if keep is not None and not keep.any():
            return ROW_SCHEMA.empty_table()
        extra = ["event.id"] if "event.id" in names else []
        b = pa.Table.from_arrays([batch.column(c) for c in (*need, *extra)], names=[*need, *extra])
        if keep is not None:
            b = b.filter(pa.array(keep))
        uid = (
            b.column("event.id").cast(pa.string())
            if "event.id" in names
            else pa.nulls(b.num_rows, pa.string())
        )
        return pa.Table.from_arrays(
            [
                b.column("@timestamp").cast(TS),
                b.column("source.ip").cast(pa.string()),
                b.column("destination.ip").cast(pa.string()),
                b.column("destination.port").cast(pa.int32()),
                b.column("event.duration").cast(pa.int64()),
                uid,
            ],
            schema=ROW_SCHEMA,
        )

    def run(self, rows: pa.Table, state: pa.Table | None, *, final: bool = False) -> RunOutput:
        """Findings for the day windows that close in this run."""
        p = self.params
        rows = rows.select(ROW_SCHEMA.names).cast(ROW_SCHEMA)
        prev_wm = state_watermark(state)
        late = 0
        if prev_wm is not None and rows.num_rows:
            ok = _end_us(rows) >= prev_wm
            late = int((~ok).sum())
            if late:
                rows = rows.filter(pa.array(ok))
        old = state_part(state, 1, ROW_SCHEMA.names)
        table = pa.concat_tables([old, rows]) if old is not None else rows
        W = int(p.window * US)
        end = _end_us(table)
        max_ts = int(end.max()) if end.size else None
        wm = next_watermark(prev_wm, max_ts, int(p.lateness * US), W, final=final)
        if wm is None:  # nothing closes yet (no rows, or a held watermark): keep them
            return RunOutput(empty_findings(), make_state(ROW_SCHEMA, wm, {1: table}), late)
        win = end // W
        closed = (win + 1) * W <= wm
        if closed.all():  # the usual final / old-logs case: no copy
            findings = self._findings(table, end, win, W)
            kept = table.slice(0, 0)
        else:
            findings = self._findings(table.filter(pa.array(closed)), end[closed], win[closed], W)
            kept = table.filter(pa.array(~closed))
        return RunOutput(findings, make_state(ROW_SCHEMA, wm, {1: kept}), late)

    def _findings(self, t: pa.Table, end: np.ndarray, win: np.ndarray, W: int) -> pa.Table:
        p = self.params
        if t.num_rows == 0:
            return empty_findings()
        n = t.num_rows
        src, dst, port = (
            t.column("source.ip"),
            t.column("destination.ip"),
            t.column("destination.port"),
        )
        # (pair, window) ids: exact int64 keys of the columns' codes, hashed once
        codes = [encode_values(src), encode_values(dst), _int_codes(port)]
        w = win - win.min()
        codes.append((w, int(w.max()) + 1))
        key, radix = np.zeros(n, np.int64), 1
        for c, k in codes:
            if radix * k >= 1 << 62:
                key, _, radix = group_int64(key)
            key = key * k + c
            radix *= k
        pair, first, n_pair = group_int64(key, size_hint=n)
        # connections: rows sharing a uid within a pair. A uid whose hash no other row has
        # is a connection of its own; only the rows whose hash repeats are grouped exactly.
        uid = t.column("event.id")
        h = string_hashes(uid)
        single = unique_mask(h) | (h == 0)  # null uid: a connection of its own
        conn = np.empty(n, np.int64)
        n_single = int(single.sum())
        conn[single] = np.arange(n_single)
        rest = np.flatnonzero(~single)
        n_conn = n_single
        if rest.size:
            k = encode_keys([pa.array(pair[rest]), uid.take(pa.array(rest))])
            conn[rest] = n_single + k.ids
            n_conn += k.count
        start = ts_us(t.column("@timestamp"))
        dur = t.column("event.duration").to_numpy(zero_copy_only=False).astype(np.int64)
        total, longest, conns, events, t0, t1 = connection_totals(
            pair, conn, n_conn, dur, start, end, n_pair
        )
        fire = np.flatnonzero(
            (total >= int(p.long_threshold * 1e9)) | (conns >= p.strobe_threshold)
        )
        rows_of = np.flatnonzero(first)[fire]  # first row of each firing pair
        out = []
        for i, r in zip(fire.tolist(), rows_of.tolist(), strict=True):
            s_text, d_text, p_int = src[r].as_py(), dst[r].as_py(), int(port[r].as_py())
            total_s = int(total[i]) / 1e9
            n_conns = int(conns[i])
            entity = f"{s_text} -> {d_text}:{p_int}"
            wi = int(win[r])
            base = {
                "entity": entity,
                "window_start": wi * W,
                "window_end": (wi + 1) * W,
                "first_seen": int(t0[i]),
                "last_seen": int(t1[i]),
                "event_count": int(events[i]),
            }
            ev = {
                "source_ip": s_text,
                "destination_ip": d_text,
                "destination_port": p_int,
                "total_duration_s": round(total_s, 6),
                "longest_s": round(int(longest[i]) / 1e9, 6),
                "connections": n_conns,
            }
            if total_s >= p.long_threshold:
                score = bucketed_score(total_s, *p.buckets)
                out.append(
                    {
                        **base,
                        "rule_id": "anomaly:long-connection",
                        "score": score,
                        "severity": severity_of(score),
                        "evidence": json.dumps(ev, sort_keys=True),
                    }
                )
            if n_conns >= p.strobe_threshold:
                out.append(
                    {
                        **base,
                        "rule_id": "anomaly:strobe",
                        "score": p.strobe_score,
                        "severity": severity_of(p.strobe_score),
                        "evidence": json.dumps(ev, sort_keys=True),
                    }
                )
        if not out:
            return empty_findings()
        return findings_table(out).sort_by(
            [("window_start", "ascending"), ("rule_id", "ascending"), ("entity", "ascending")]
        )


def _int_codes(col: pa.ChunkedArray) -> tuple[np.ndarray, int]:
    """Codes of an integer column without nulls: its values minus the minimum (no hashing)."""
    if col.null_count or len(col) == 0:
        return encode_values(col)
    v = col.to_numpy().astype(np.int64, copy=False)
    lo = int(v.min())
    return v - lo, int(v.max()) - lo + 1


def _end_us(t: pa.Table) -> np.ndarray:
    if t.num_rows == 0:
        return np.zeros(0, np.int64)
    dur = t.column("event.duration").to_numpy(zero_copy_only=False).astype(np.int64)
    return ts_us(t.column("@timestamp")) + np.maximum(dur, 0) // 1000
