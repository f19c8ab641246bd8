"""Port scans (vertical) and sweeps (horizontal) over conn / flow events: Maltrail's rules.

Maltrail (stamparm/maltrail, ``core/settings.py`` ``SCAN_WINDOW``, ``sensor.py``; see
DETECTORS.md d.3) keeps a sliding 30 s window per source and flags:

- **vertical** (``anomaly:scan:vertical``, Maltrail "potential port scanning"): more than
  ``vertical_threshold`` = 10 distinct destination ports per (source, destination) within
  ``(t - window, t]`` for some event time ``t``;
- **horizontal** (``anomaly:scan:horizontal``, Maltrail "potential infection"): more than
  ``horizontal_threshold`` = 32 distinct destination IPs per (source, destination port)
  within the window, for Maltrail's infection ports ``horizontal_ports`` (135, 139, 445,
  1433, 3389, 6379, 6892, 6893, 6901). Maltrail looks at those ports only; we also apply
  ``horizontal_threshold_other`` (default 64, twice Maltrail's: busy clients such as
  proxies legitimately reach dozens of web servers in 30 s) to every other port, and
  ``None`` switches that off.

The window counts are exact (sort by (group, ts), two pointers and per-value counters:
:func:`detect.kernels.window_agg.sliding_window_stats`); events tied on ``t`` are all in.

**Episodes.** Time is cut into fixed report windows of ``report_window`` seconds (default
3600, aligned to the epoch). A (source, destination) or (source, port) gives one finding per
report window in which its sliding count crossed the threshold at one of its events, so a
scan that keeps crossing for an hour is one finding (a scan straddling a boundary gives
two). A report window is reported once, when it closes: its end is at or before the
watermark (the latest event time seen, over all runs, minus ``lateness``, default 600 s).
``run(rows, state, final=True)`` closes every window holding data (end of a one-off run,
or a shutdown); the watermark then moves to the end of the last window, so later events in
those windows count as late. Rows older than the watermark when they arrive are ``late``:
counted, not folded in. The state keeps the rows of the open report windows plus the
``window`` seconds before them (the sliding window's look-back), and the watermark.

**Failed connections** (evidence and score): Zeek ``conn_state`` (``network.connection.state``)
S0, REJ, RSTOS0, RSTRH, SH, SHR, and Suricata ``new`` (no reply); without a state, a
response of zero bytes (``destination.bytes == 0``). ``min_failed_ratio`` (default 0,
evidence only) can require a share of failed connections in the episode.

**Score** (in [0, 1], RITA-like buckets): 0.6 when the threshold is crossed, rising by
0.2 per decade of ``max_distinct / (threshold + 1)`` to 0.8, plus 0.1 when at least half
of the episode's connections failed; severity ``high`` from 0.8, else ``medium``.

Examples
--------
>>> import pyarrow as pa
>>> from datetime import datetime, UTC
>>> t0 = datetime(2024, 1, 1, tzinfo=UTC)
>>> rows = pa.table({"@timestamp": pa.array([t0] * 12, pa.timestamp("us", tz="UTC")),
...                  "source.ip": ["10.0.0.1"] * 12, "destination.ip": ["10.0.0.2"] * 12,
...                  "destination.port": pa.array(range(1, 13), pa.int32()),
...                  "failed": [True] * 12})
>>> out = ScanDetector().run(rows, None, final=True)
>>> out.findings.column("rule_id").to_pylist(), out.findings.column("entity").to_pylist()
(['anomaly:scan:vertical'], ['10.0.0.1 -> 10.0.0.2'])
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detect.anomaly._select import keep_rows
from detect.anomaly.base import TS, RunOutput, empty_findings
from detect.anomaly.keys import (
    US,
    encode_keys,
    encode_values,
    findings_table,
    iso_us,
    make_state,
    next_watermark,
    null_mask,
    state_part,
    state_watermark,
    ts_us,
)
from detect.kernels.dns_features import group_int64
from detect.kernels.scan_runs import crossing_runs, pair_window_counts
from detect.kernels.sort_keys import dense_group_ts_order
from detect.kernels.window_agg import sliding_window_stats

__all__ = ["FAILED_STATES", "MALTRAIL_INFECTION_PORTS", "ScanDetector", "ScanParams"]

MALTRAIL_INFECTION_PORTS = (135, 139, 445, 1433, 3389, 6379, 6892, 6893, 6901)
FAILED_STATES = ("S0", "REJ", "RSTOS0", "RSTRH", "SH", "SHR", "new")

ROW_SCHEMA = pa.schema(
    [
        pa.field("@timestamp", TS),
        pa.field("source.ip", pa.string()),
        pa.field("destination.ip", pa.string()),
        pa.field("destination.port", pa.int32()),
        pa.field("failed", pa.bool_()),
    ]
)


@dataclass(frozen=True)
class ScanParams:
    """Thresholds (Maltrail's defaults) and windows, in seconds."""

    window: float = 30.0  # Maltrail SCAN_WINDOW
    vertical_threshold: int = 10  # distinct ports per (src, dst) > this
    horizontal_threshold: int = 32  # distinct dsts per (src, port) > this, infection ports
    horizontal_ports: tuple[int, ...] = MALTRAIL_INFECTION_PORTS
    horizontal_threshold_other: int | None = 64  # every other port; None: off
    report_window: float = 3600.0  # one finding per group per report window
    lateness: float = 600.0
    min_failed_ratio: float = 0.0
    datasets: tuple[str, ...] = ("conn", "flow")
    max_sample: int = 20  # ports / addresses listed in the evidence


def _failed(batch: pa.RecordBatch | pa.Table) -> pa.Array:
    n = batch.num_rows
    names = batch.schema.names
    by_bytes = (
        pc.equal(batch.column("destination.bytes"), 0)
        if "destination.bytes" in names
        else pa.nulls(n, pa.bool_())
    )
    if "network.connection.state" not in names:
        return by_bytes
    st = batch.column("network.connection.state")
    if pa.types.is_dictionary(st.type):
        st = st.cast(pa.string())
    by_state = pc.is_in(st, value_set=pa.array(FAILED_STATES))
    return pc.if_else(pc.is_null(st), by_bytes, by_state)


class ScanDetector:
    """Vertical and horizontal scans per episode; see the module docstring."""

    name = "scan"

    def __init__(self, params: ScanParams | None = None, **overrides: object) -> None:
        base = params or ScanParams()
        self.params = ScanParams(**{**base.__dict__, **overrides}) if overrides else base

    # ------------------------------------------------------------------ select

    def select(self, batch: pa.RecordBatch) -> pa.Table:
        """conn / flow rows with a time, both addresses and a destination port."""
        names = batch.schema.names
        need = ("@timestamp", "source.ip", "destination.ip", "destination.port")
        if any(c not in names for c in need):
            return ROW_SCHEMA.empty_table()
        keep = keep_rows(batch, need, self.params.datasets)
        if keep is not None and not keep.any():
            return ROW_SCHEMA.empty_table()
        extra = [c for c in ("destination.bytes", "network.connection.state") if c in names]
        b = pa.Table.from_arrays([batch.column(c) for c in (*need, *extra)], names=[*need, *extra])
        if keep is not None:
            b = b.filter(pa.array(keep))
        return pa.Table.from_arrays(
            [
                b.column("@timestamp").cast(TS),
                b.column("source.ip").cast(pa.string()),
                b.column("destination.ip").cast(pa.string()),
                b.column("destination.port").cast(pa.int32()),
                _failed(b),
            ],
            schema=ROW_SCHEMA,
        )

    # ------------------------------------------------------------------ run

    def run(self, rows: pa.Table, state: pa.Table | None, *, final: bool = False) -> RunOutput:
        """Findings for the report windows that close in this run; see the module docstring."""
        p = self.params
        rows = rows.select(ROW_SCHEMA.names).cast(ROW_SCHEMA)
        prev_wm = state_watermark(state)
        ts_new = ts_us(rows.column("@timestamp"))
        late = 0
        if prev_wm is not None and rows.num_rows:
            ok = ts_new >= prev_wm
            late = int((~ok).sum())
            if late:
                rows = rows.filter(pa.array(ok))
        old = state_part(state, 1, ROW_SCHEMA.names)
        table = pa.concat_tables([old, rows]) if old is not None else rows
        ts = ts_us(table.column("@timestamp")) if table.num_rows else np.zeros(0, np.int64)
        R = int(p.report_window * US)
        W = int(p.window * US)
        max_ts = int(ts.max()) if ts.size else None
        wm = next_watermark(prev_wm, max_ts, int(p.lateness * US), R, final=final)
        findings = []
        if ts.size and wm is not None:
            lo = -(2**62) if prev_wm is None else prev_wm
            codes = _Codes(table)
            findings += self._kind(codes, ts, W, R, lo, wm, vertical=True)
            findings += self._kind(codes, ts, W, R, lo, wm, vertical=False)
        out = (
            pa.concat_tables(findings).sort_by(
                [("window_start", "ascending"), ("rule_id", "ascending"), ("entity", "ascending")]
            )
            if findings
            else empty_findings()
        )
        keep_from = None if wm is None else (wm // R) * R - W
        kept = table.filter(pa.array(ts > keep_from)) if keep_from is not None else table
        return RunOutput(out, make_state(ROW_SCHEMA, wm, {1: kept}), late)

    def _kind(
        self, c: _Codes, ts: np.ndarray, W: int, R: int, lo: int, wm: int, *, vertical: bool
    ) -> list[pa.Table]:
        p = self.params
        src, dst = c.src, c.dst
        port_np = c.port_np
        vals = c.port_codes if vertical else c.dst_codes
        other, n_other = (c.dst_codes, c.n_dst) if vertical else (c.port_codes, c.n_port)
        if c.n_src * n_other < (1 << 62):
            gid, _, m = group_int64(c.src_codes * n_other + other)
        else:  # astronomically many values: encode the columns together
            keys = encode_keys([src, dst] if vertical else [src, c.port])
            gid, m = keys.ids, keys.count
        order = dense_group_ts_order(gid, m, ts)
        g = gid[order]
        tt, v = ts[order], vals[order]
        s = sliding_window_stats(g, tt, W, distinct=v)
        if vertical:  # one threshold for every row
            th = np.array([p.vertical_threshold], np.int64)
        else:  # per port code, then per sorted row (the port code is part of the group)
            code_port = np.zeros(c.n_port, np.int64)
            code_port[c.port_codes] = port_np
            listed = np.isin(code_port, np.array(p.horizontal_ports, np.int64))
            other = -1 if p.horizontal_threshold_other is None else p.horizontal_threshold_other
            code_thr = np.where(listed, p.horizontal_threshold, other)
            th = code_thr[c.port_codes[order]]
        starts, ends = crossing_runs(g, tt, s.distinct, th, R, wm, lo)
        if not starts.size:
            return []
        fnull, failed = c.fnull, c.failed
        src_fail = c.source_failures(ts, R, order[starts], tt[starts] // R)
        rows_out = []
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            w_a = int(tt[a] // R)
            sl = slice(a, b)
            rows_sl = order[sl]
            rowi = int(rows_sl[0])
            sf, sk = src_fail(int(c.src_codes[rowi]), w_a)
            gk = float((~fnull[rows_sl]).sum())
            ratio = float(failed[rows_sl].sum()) / gk if gk else None
            if p.min_failed_ratio > 0 and (ratio is None or ratio < p.min_failed_ratio):
                continue
            t_sl = th[0] if th.size == 1 else th[sl]
            cr = (t_sl >= 0) & (s.distinct[sl] > t_sl)  # the run's window is closed
            max_d = int(s.distinct[sl].max())
            thr_v = int(th[0] if th.size == 1 else th[a])
            first_cross = int(tt[sl][cr][0])
            uniq_vals = np.unique(v[sl])
            src_text = src[rowi].as_py()
            if vertical:
                sample = sorted({int(x) for x in port_np[rows_sl].tolist()})[: p.max_sample]
                entity = f"{src_text} -> {dst[rowi].as_py()}"
            else:
                names = dst.take(pa.array(rows_sl[:5000])).to_pylist()
                sample = sorted(set(names))[: p.max_sample]
                entity = f"{src_text} -> *:{int(port_np[rowi])}"
            score = min(0.6 + 0.2 * min(1.0, math.log10(max_d / (thr_v + 1))), 0.8)
            if ratio is not None and ratio >= 0.5:
                score += 0.1
            score = round(score, 3)
            ev = {
                "kind": "vertical" if vertical else "horizontal",
                "source_ip": src_text,
                ("destination_ip" if vertical else "destination_port"): (
                    dst[rowi].as_py() if vertical else int(port_np[rowi])
                ),
                "max_distinct_in_window": max_d,
                "threshold": thr_v,
                "window_s": p.window,
                "distinct_in_episode": len(uniq_vals),
                "first_crossing": iso_us(first_cross),
                "failed_ratio": None if ratio is None else round(ratio, 4),
                "source_failed_ratio": round(sf / sk, 4) if sk else None,
                ("ports" if vertical else "destinations"): sample,
            }
            rows_out.append(
                {
                    "rule_id": f"anomaly:scan:{'vertical' if vertical else 'horizontal'}",
                    "entity": entity,
                    "window_start": w_a * R,
                    "window_end": (w_a + 1) * R,
                    "first_seen": int(tt[a]),
                    "last_seen": int(tt[b - 1]),
                    "event_count": b - a,
                    "score": score,
                    "severity": "high" if score >= 0.8 else "medium",
                    "evidence": json.dumps(ev, sort_keys=True),
                }
            )
        return [findings_table(rows_out)] if rows_out else []


class _Codes:
    """The columns of one run's rows as integer codes, computed once for both kinds."""

    def __init__(self, t: pa.Table) -> None:
        self.src, self.dst = t.column("source.ip"), t.column("destination.ip")
        self.port = t.column("destination.port")
        self.src_codes, self.n_src = encode_values(self.src)
        self.dst_codes, self.n_dst = encode_values(self.dst)
        self.port_codes, self.n_port = encode_values(self.port)
        self.port_np = self.port.to_numpy(zero_copy_only=False).astype(np.int64)
        self.fnull = null_mask(t.column("failed"))
        f = t.column("failed").to_numpy(zero_copy_only=False)
        self.failed = np.where(self.fnull, False, f).astype(bool)

    def source_failures(self, ts: np.ndarray, R: int, rows: np.ndarray, windows: np.ndarray):
        """``(source code, window) -> (failed, known)`` over all the source's rows, for
        the sources of ``rows`` in ``windows`` (the findings': counted in one pass)."""
        want = np.unique(np.stack([self.src_codes[rows], windows]), axis=1)
        f, k = pair_window_counts(
            self.src_codes, ts, R, self.failed, ~self.fnull, want[0].copy(), want[1].copy()
        )
        table = {
            (int(c), int(w)): (int(a), int(b))
            for c, w, a, b in zip(want[0], want[1], f, k, strict=True)
        }
        return lambda code, w: table[(code, w)]
