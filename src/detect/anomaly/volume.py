"""Exfiltration: bytes sent per source per window against the source's own EWMA baseline.

For every source (``source.ip``) and fixed window (``window``, default 3600 s, aligned to
the epoch) the detector sums ``source.bytes`` of its conn / flow events (a connection counts
in the window of its start). When a window closes it is compared with the source's
baseline, an exponentially weighted mean and variance (``alpha``, default 0.1, about a
20-window memory) of its earlier windows, the empty windows in between counting as 0 bytes
sent (a host that was silent sent nothing). The baseline is carried in the state across
runs (:func:`detect.kernels.window_agg.ewma_zscores`).

A window fires ``anomaly:volume:exfil`` when ``z = (bytes - mean) / std >= z_threshold``
(default 4), ``bytes >= min_bytes`` (default 10 MB: a jump from 1 KB to 100 KB is not
exfiltration) and the baseline holds at least ``min_history`` windows (default 24: a day of
hourly windows since the source was first seen). With a zero-variance baseline any
increase is ``z = inf``. A window that fires is kept out of the baseline. A source silent
for more than ``max_gap`` windows (default 720, 30 days) starts a fresh baseline, and its
old one is dropped from the state.

A window sending at least ``absolute_bytes`` (default 1 GB) fires whatever the baseline
says, also before ``min_history`` (a new host uploading gigabytes is news), with score 0.6
and ``reason: absolute_bytes`` in the evidence; ``None`` switches that off.

Evidence: ``bytes``, ``mean``, ``std``, ``z``, ``history`` (windows in the baseline),
``connections``, ``reason``. Score: RITA's bucketed score ``B(z; t, 1.5 t, 2.5 t, 5 t)`` with
``t = z_threshold`` (0.2 .. 0.8); severity from the score as for long connections.

**History the synthetic data needs.** ``detect.generate`` spans one day by default, so a
planted exfiltration (placed in working hours) has at most ~17 hourly windows of its host
before it: below ``min_history = 24``. Generate two or more days (``days=3``) so the
host has a day of history, or lower ``min_history`` (the tests do both).

Windows, watermark (``lateness``, default 600 s), ``final=True`` and ``late`` rows behave as
in :mod:`detect.anomaly.scan`. The state holds per (source, open window) byte sums (not
rows) and one baseline row per source.
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
    EncodedKeys,
    encode_values,
    findings_table,
    make_state,
    next_watermark,
    state_part,
    state_watermark,
    ts_us,
)
from detect.anomaly.rita import bucketed_score, severity_of
from detect.kernels.window_agg import EwmaOut, ewma_zscores, fixed_window_agg

__all__ = ["VolumeDetector", "VolumeParams"]

ROW_SCHEMA = pa.schema(
    [
        pa.field("@timestamp", TS),
        pa.field("source.ip", pa.string()),
        pa.field("source.bytes", pa.int64()),
    ]
)
# state: kind 1 = open-window sums, kind 2 = baselines
STATE_SCHEMA = pa.schema(
    [
        pa.field("source.ip", pa.string()),
        pa.field("window", pa.int64()),
        pa.field("bytes", pa.int64()),
        pa.field("count", pa.int64()),
        pa.field("first", pa.int64()),
        pa.field("last", pa.int64()),
        pa.field("mean", pa.float64()),
        pa.field("var", pa.float64()),
        pa.field("n_seen", pa.int64()),
    ]
)
AGG = ["source.ip", "window", "bytes", "count", "first", "last"]
BASE = ["source.ip", "window", "mean", "var", "n_seen"]


@dataclass(frozen=True)
class VolumeParams:
    """Window (s), EWMA and firing thresholds."""

    window: float = 3600.0
    alpha: float = 0.1
    z_threshold: float = 4.0
    min_history: int = 24
    min_bytes: int = 10_000_000
    max_gap: int = 720
    lateness: float = 600.0
    datasets: tuple[str, ...] = ("conn", "flow")
    absolute_bytes: int | None = 1_000_000_000


class VolumeDetector:
    """Bytes out per source per window vs its EWMA baseline; see the module docstring."""

    name = "volume"

    def __init__(self, params: VolumeParams | None = None, **overrides: object) -> None:
        base = params or VolumeParams()
        self.params = VolumeParams(**{**base.__dict__, **overrides}) if overrides else base

    def select(self, batch: pa.RecordBatch) -> pa.Table:
        """conn / flow rows with a time, a source address and bytes sent."""
        names = batch.schema.names
        need = ("@timestamp", "source.ip", "source.bytes")
        if any(c not in names for c in need):
            return ROW_SCHEMA.empty_table()
        keep = keep_rows(batch, need, self.params.datasets)
        if keep is not None and not keep.any():
            return ROW_SCHEMA.empty_table()
        b = pa.Table.from_arrays([batch.column(c) for c in need], names=list(need))
        if keep is not None:
            b = b.filter(pa.array(keep))
        return pa.Table.from_arrays(
            [
                b.column("@timestamp").cast(TS),
                b.column("source.ip").cast(pa.string()),
                b.column("source.bytes").cast(pa.int64()),
            ],
            schema=ROW_SCHEMA,
        )

    def run(self, rows: pa.Table, state: pa.Table | None, *, final: bool = False) -> RunOutput:
        """Findings for the windows that close in this run; baselines carried in the state."""
        p = self.params
        W = int(p.window * US)
        rows = rows.select(ROW_SCHEMA.names).cast(ROW_SCHEMA)
        prev_wm = state_watermark(state)
        ts = ts_us(rows.column("@timestamp")) if rows.num_rows else np.zeros(0, np.int64)
        late = 0
        if prev_wm is not None and ts.size:
            ok = ts >= prev_wm
            late = int((~ok).sum())
            if late:
                rows, ts = rows.filter(pa.array(ok)), ts[ok]
        # this run's rows as (source, window) sums, merged with the open sums in the state
        src = rows.column("source.ip")
        k = _encode_one(src)
        a = fixed_window_agg(
            k.ids, ts, W, values=rows.column("source.bytes").to_numpy(zero_copy_only=False)
        )
        new = pa.table(
            {
                "source.ip": src.take(pa.array(k.first[a.group]))
                if ts.size
                else pa.array([], pa.string()),
                "window": a.window,
                "bytes": a.sum,
                "count": a.count,
                "first": a.first_ts,
                "last": a.last_ts,
            }
        )
        old = state_part(state, 1, AGG)
        if old is None:  # new holds one row per (source, window) already
            sums = new
        else:
            sums = pa.concat_tables([old, new.cast(old.schema)])
            sums = sums.group_by(["source.ip", "window"], use_threads=False).aggregate(
                [("bytes", "sum"), ("count", "sum"), ("first", "min"), ("last", "max")]
            )
            sums = sums.rename_columns(AGG)
        max_ts = int(pc.max(sums.column("last")).as_py()) if sums.num_rows else None
        wm = next_watermark(prev_wm, max_ts, int(p.lateness * US), W, final=final)
        base = state_part(state, 2, BASE)
        if wm is None:  # nothing closes yet (no rows, or a held watermark): keep them
            kept = make_state(STATE_SCHEMA, wm, {1: sums, 2: base})
            return RunOutput(empty_findings(), kept, late)
        win = sums.column("window").to_numpy()
        closed = (win + 1) * W <= wm
        done = sums.filter(pa.array(closed))
        open_ = sums.filter(pa.array(~closed))
        findings, base = self._fold(done, base, W)
        if base is not None and base.num_rows:  # drop baselines that a new window would reset
            cutoff = wm // W - 1 - p.max_gap
            base = base.filter(pc.greater_equal(base.column("window"), cutoff))
        return RunOutput(findings, make_state(STATE_SCHEMA, wm, {1: open_, 2: base}), late)

    def _fold(
        self, done: pa.Table, base: pa.Table | None, W: int
    ) -> tuple[pa.Table, pa.Table | None]:
        p = self.params
        if done.num_rows == 0:
            return empty_findings(), base
        done = done.sort_by([("source.ip", "ascending"), ("window", "ascending")])
        names = [done.column("source.ip")] + ([base.column("source.ip")] if base else [])
        k = _encode_one(pa.chunked_array([c for n in names for c in n.chunks], pa.string()))
        nd = done.num_rows
        gid_done, gid_base = k.ids[:nd], k.ids[nd:]
        mean = np.zeros(k.count)
        var = np.zeros(k.count)
        n_seen = np.zeros(k.count, np.int64)
        last = np.zeros(k.count, np.int64)
        if base is not None:
            mean[gid_base] = base.column("mean").to_numpy()
            var[gid_base] = base.column("var").to_numpy()
            n_seen[gid_base] = base.column("n_seen").to_numpy()
            last[gid_base] = base.column("window").to_numpy()
        # ids follow first appearance and done's rows come first, sorted by name: ids ascend
        x = done.column("bytes").to_numpy().astype(np.float64)
        w = done.column("window").to_numpy()
        e = ewma_zscores(
            gid_done,
            w,
            x,
            mean,
            var,
            n_seen,
            last,
            alpha=p.alpha,
            min_history=p.min_history,
            max_gap=p.max_gap,
            z_min=p.z_threshold,
            x_min=p.min_bytes,
            x_always=np.inf if p.absolute_bytes is None else float(p.absolute_bytes),
        )
        z = e.z
        fire = (z >= p.z_threshold) & (x >= p.min_bytes)
        if p.absolute_bytes is not None:
            fire |= x >= p.absolute_bytes  # that much out is news with or without a baseline
        out = []
        if fire.any():
            # recompute the baseline each firing window was compared with (for evidence)
            out = self._evidence(done, np.flatnonzero(fire), e, W)
        names_all = k.first
        all_names = pa.chunked_array([c for n in names for c in n.chunks], pa.string())
        new_base = pa.table(
            {
                "source.ip": all_names.take(pa.array(names_all)),
                "window": last,
                "mean": mean,
                "var": var,
                "n_seen": n_seen,
            }
        ).filter(pa.array(n_seen > 0))
        f = findings_table(out) if out else empty_findings()
        return f, new_base

    def _evidence(self, done: pa.Table, idx: np.ndarray, e: EwmaOut, W: int) -> list[dict]:
        """Findings rows; mean / std / history of the baseline the window was compared with."""
        p = self.params
        rows = []
        for i in idx.tolist():
            r = {c: done.column(c)[i].as_py() for c in AGG}
            mean, std, hist = (
                float(e.mean[i]),
                math.sqrt(max(float(e.var[i]), 0.0)),
                int(e.history[i]),
            )
            zi = float(e.z[i])
            by_baseline = not math.isnan(zi) and zi >= p.z_threshold
            score = (
                bucketed_score(
                    zi if math.isfinite(zi) else 1e300,
                    p.z_threshold,
                    1.5 * p.z_threshold,
                    2.5 * p.z_threshold,
                    5 * p.z_threshold,
                )
                if by_baseline
                else 0.6
            )  # over absolute_bytes only: RITA "medium"
            ev = {
                "source_ip": r["source.ip"],
                "bytes": int(r["bytes"]),
                "mean": round(mean, 3),
                "std": round(std, 3),
                "z": round(zi, 3) if math.isfinite(zi) else ("inf" if zi > 0 else None),
                "reason": "baseline" if by_baseline else "absolute_bytes",
                "history": hist,
                "connections": int(r["count"]),
                "window_s": p.window,
            }
            rows.append(
                {
                    "rule_id": "anomaly:volume:exfil",
                    "entity": r["source.ip"],
                    "window_start": r["window"] * W,
                    "window_end": (r["window"] + 1) * W,
                    "first_seen": int(r["first"]),
                    "last_seen": int(r["last"]),
                    "event_count": int(r["count"]),
                    "score": score,
                    "severity": severity_of(score),
                    "evidence": json.dumps(ev, sort_keys=True),
                }
            )
        return rows


def _encode_one(col: pa.ChunkedArray) -> EncodedKeys:
    """``encode_keys([col])`` for one column: its dictionary codes are already dense ids in
    order of first appearance, so no second hash pass is needed."""
    ids, count = encode_values(col)
    first = np.empty(count, np.int64)
    if ids.size:
        first[ids[::-1]] = np.arange(ids.size - 1, -1, -1, dtype=np.int64)
    return EncodedKeys(ids, count, first)
