"""Beaconing: the RITA v5 beacon score per (source.ip, destination.ip, destination.port).

Score (DETECTORS.md d.1; activecm/rita ``analysis/beacons.go``, ``analysis/analysis.go``,
``default_config.hjson``; montanaflynn/stats ``quartile.go``, ``deviation.go``), computed
by :func:`detect.kernels.beacon.beacon_scores` for every pair of a window in one pass:

- eligible: >= 4 unique timestamps (whole seconds, as RITA's ``uint32`` ts) and fewer than
  86 400 connections (RITA calls those strobes); ineligible pairs are not scored;
- timestamp score S(Δ, d=1) over the sorted non-zero inter-arrival intervals, data-size
  score S(x, d=0) over the per-connection originator IP bytes (``source.bytes``, which the
  Zeek reader fills from ``orig_ip_bytes`` as RITA reads it; null counts as 0), with
  S = round3((1 - |Bowley| + madScore) / 2), montanaflynn quartiles (median excluded for
  odd n), Bowley 0 unless Q3 - Q1 >= 10 and Q2 differs from Q1 and Q3, madScore =
  (median - MAD) / median when median >= 1 else d;
- histogram score max(cvScore, bimodalScore) over 24 equal bins of the window
  (``histogram_mode_sensitivity`` 0.05, ``histogram_bimodal_min_hours_seen`` 11,
  ``histogram_bimodal_outlier_removal`` 1);
- duration score max(coverage, consistency) when >= 6 bins are non-empty;
- beacon score = round3(0.25 ts + 0.25 ds + 0.25 dur + 0.25 hist).

Pairs. RITA's ingestion filter (``filterConnPair``) decides which pairs are scored: a
pair touching ``never_included_subnets`` (RITA's mandatory list: loopback, link-local,
multicast...) is skipped unless one side is in ``always_included_subnets``; with
``internal_subnets`` non-empty (default RITA's: RFC 1918 and fc00::/7) only pairs that
cross the boundary (one side internal, one external) are scored. Set ``internal_subnets``
to the monitored network (e.g. a public sensor's own address), or ``()`` to score all pairs.

Windows. RITA scores the 24 h before the dataset's latest timestamp; for split-run
equivalence we score fixed, closed windows instead: ``[k·window, (k+1)·window)`` seconds
since the epoch (UTC days with the default ``window = 86400``). W, the histogram range and
the coverage denominator, is RITA's dataset span within that window: its first to its last
event (every pair's), so a day of traffic gives the day and a 6-hour log its 6 hours
(:func:`_data_spans`). A window is
scored once, when it is closed: ``watermark = max ts seen - lateness`` has reached its
end; with ``final=True`` (or param ``close_open_windows``) every open window is scored
now, for a one-off batch run over old logs. Cron runs leave it off and wait.

State (an Arrow table, ``STATE_SCHEMA``): the selected rows of windows still open, plus
marker rows whose ``meta`` column names what their ``ts`` holds: ``max_ts`` (latest event
time seen) and ``closed_until`` (end of the latest scored window; rows earlier than this
are ``late``: counted, not folded in). Data rows have ``meta`` null. Markers are rows, not
schema metadata, so they survive any table store.

Findings: ``rule_id = anomaly:beacon``, entity ``"src -> dst:port"`` (``[dst]`` for IPv6),
one per pair and window with ``score >= threshold`` (default 0.7), ``score`` = the beacon
score. Severity is RITA's category of the bucketed threat score B(100·score; 50, 70, 90,
100) (:mod:`detect.anomaly.rita`; category values low 0.4, medium 0.6, high 0.8): score 1.0
(threat 0.8) ``high``, >= 0.9 ``medium``, >= 0.7 ``low``, else ``informational``. A beacon
alone tops at 0.8; "critical" (> 0.8) needs RITA's modifiers, which we do not apply.
``evidence`` JSON: period (median interval, s), jitter (MAD of the intervals, s), every
sub-score and its parts, the 24 bin counts and the threat score.

Examples
--------
>>> import pyarrow as pa
>>> from detect.anomaly.beacon import BeaconDetector
>>> day = 1_709_510_400 * 1_000_000  # 2024-03-04 00:00 UTC, in microseconds
>>> rows = pa.table({
...     "source.ip": ["10.0.0.5"] * 1440, "destination.ip": ["203.0.113.7"] * 1440,
...     "destination.port": pa.array([443] * 1440, pa.uint16()),
...     "ts": [day + i * 60_000_000 for i in range(1440)],
...     "source.bytes": pa.array([310] * 1440, pa.uint64())})
>>> out = BeaconDetector().run(rows, None, final=True)
>>> out.findings.column("entity")[0].as_py(), out.findings.column("score")[0].as_py()
('10.0.0.5 -> 203.0.113.7:443', 1.0)
"""

from __future__ import annotations

import ipaddress
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detect.anomaly._select import keep_rows
from detect.anomaly.base import FINDINGS_SCHEMA, TS, RunOutput
from detect.anomaly.keys import _codes, watermark_is_held
from detect.anomaly.rita import severity_of

__all__ = ["STATE_SCHEMA", "BeaconDetector", "BeaconParams"]

US = 1_000_000
NO_TS = np.iinfo(np.int64).min
DATASETS = ("conn", "flow")
BINS = 24  # RITA beaconTimeSpan

# RITA v5 default_config.hjson ``internal_subnets`` and its mandatory never-include list
INTERNAL_SUBNETS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
NEVER_INCLUDED_SUBNETS = (
    "0.0.0.0/32", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32",
    "::1/128", "fe80::/10", "ff00::/8",
)  # fmt: skip

ROWS_SCHEMA = pa.schema(
    [
        pa.field("source.ip", pa.string()),
        pa.field("destination.ip", pa.string()),
        pa.field("destination.port", pa.uint16()),
        pa.field("ts", pa.int64()),  # microseconds since the epoch, UTC
        pa.field("source.bytes", pa.uint64()),
    ]
)
STATE_SCHEMA = ROWS_SCHEMA.append(pa.field("meta", pa.string()))  # null, max_ts, closed_until


@dataclass(frozen=True)
class BeaconParams:
    """Detector settings; defaults are RITA v5's ``default_config.hjson`` where it has one."""

    threshold: float = 0.7  # report pairs with beacon score >= this
    window: int = 86_400  # seconds; windows are [k·window, (k+1)·window) since the epoch
    lateness: int = 3_600  # seconds; watermark = max ts seen - lateness
    close_open_windows: bool = False  # score open windows now (one-off batch runs)
    unique_connection_threshold: int = 4
    strobe_threshold: int = 86_400  # pairs with this many connections are not scored
    histogram_mode_sensitivity: float = 0.05
    histogram_bimodal_outlier_removal: int = 1
    histogram_bimodal_min_hours_seen: int = 11
    duration_min_hours_seen: int = 6
    duration_consistency_ideal_hours_seen: int = 12
    # RITA's pair filter (``filterConnPair``): a pair is skipped when either IP is in
    # ``never_included_subnets`` (unless one is in ``always_included_subnets``), or when
    # ``internal_subnets`` is non-empty and both IPs are internal or both external.
    internal_subnets: tuple[str, ...] = INTERNAL_SUBNETS
    always_included_subnets: tuple[str, ...] = ()
    never_included_subnets: tuple[str, ...] = NEVER_INCLUDED_SUBNETS
    ts_weight: float = 0.25
    ds_weight: float = 0.25
    dur_weight: float = 0.25
    hist_weight: float = 0.25

    def __post_init__(self) -> None:
        weights = (self.ts_weight, self.ds_weight, self.dur_weight, self.hist_weight)
        if any(not 0 <= w <= 1 for w in weights) or not math.isclose(sum(weights), 1.0):
            msg = f"beacon weights must each be in [0, 1] and sum to 1, got {weights}"
            raise ValueError(msg)
        if self.window <= 0 or self.lateness < 0:
            msg = "beacon window must be positive and lateness non-negative"
            raise ValueError(msg)
        if not 0 < self.histogram_mode_sensitivity <= 1:
            msg = "histogram_mode_sensitivity must be in (0, 1]"
            raise ValueError(msg)
        for nets in (
            self.internal_subnets,
            self.always_included_subnets,
            self.never_included_subnets,
        ):
            for net in nets:
                ipaddress.ip_network(net, strict=False)  # raises ValueError when malformed
        if self.duration_min_hours_seen < 1 or self.duration_consistency_ideal_hours_seen < 1:
            msg = "duration hour thresholds must be at least 1"
            raise ValueError(msg)


def _data_spans(
    ts: np.ndarray, win: np.ndarray, gwin: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """W per group, in whole seconds: the first and last event time of its window's rows
    (every pair's), RITA's dataset span, within the window's bounds (at least 1 s wide).

    RITA scores W = [max(min ts, max ts - 24 h), max ts] of the dataset; a window of ours
    holds a day of the hub's data, so over a day of traffic W is the day, and over a
    6-hour log it is those 6 hours (the whole day would dilute a 6-hour beacon's histogram
    and coverage to 0.625 where RITA gives 1.0). A window's rows are all kept until it is
    scored, so W does not depend on how the events were split into runs.
    """
    from detect.kernels.window_agg import group_min_max_sum

    secs = ts // US
    codes = win - win.min()
    present = np.bincount(codes) > 0
    dense = np.cumsum(present) - 1
    _, lo, hi, _ = group_min_max_sum(dense[codes], int(present.sum()), secs, secs, secs)
    g = dense[gwin - win.min()]
    ws = np.maximum(gwin * window, lo[g])
    we = np.minimum((gwin + 1) * window, hi[g])
    return ws, np.maximum(we, ws + 1)


def _is_dataset(col: pa.ChunkedArray | pa.Array, names: tuple[str, ...]) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    value_set = pa.array(names, pa.string())
    if pa.types.is_dictionary(col.type):
        hit = pc.is_in(col.dictionary.cast(pa.string()), value_set=value_set)
        mask = pc.take(hit, col.indices)
    else:
        mask = pc.is_in(col.cast(pa.string()), value_set=value_set)
    return pc.fill_null(mask, False)


def _plain(col: pa.ChunkedArray | pa.Array, typ: pa.DataType) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    return col.cast(typ)


def _dense(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense ids of an int64 array in first-appearance order, exactly (numba hash table)."""
    from detect.kernels.dns_features import group_int64

    ids, _, n = group_int64(codes)
    return ids, n


_LIMIT = 1 << 62


def _group_ids(src: pa.Array, dst: pa.Array, port: np.ndarray, win: np.ndarray) -> tuple:
    """Dense, exact ids of (window, src, dst, port): mixed radix of the dictionary codes,
    re-densified only when the radix product could overflow int64."""
    s, ns = _codes(src)
    d, nd = _codes(dst)
    w = win - win.min()
    nw = int(w.max()) + 1
    key, radix = s.astype(np.int64), ns
    for codes, n in ((d, nd), (port, 65_536), (w, nw)):
        if n == 1:
            continue
        if radix * n >= _LIMIT:
            key, radix = _dense(key)
        key = key * n + codes
        radix *= n
    return _dense(key)


def _in_subnets(ips: pa.Array, nets: tuple[str, ...]) -> np.ndarray:
    """Per IP text: inside any of ``nets`` (IPv4 as IPv4-mapped IPv6, as ``ip_to_bin``)."""
    from detect.enrich import ip_to_bin

    out = np.zeros(len(ips), dtype=bool)
    if not nets or not len(ips):
        return out
    b = ip_to_bin(ips)
    valid = np.asarray(b.is_valid(), dtype=bool)
    raw = np.frombuffer(b.buffers()[1], dtype=np.uint8)[b.offset * 16 : (b.offset + len(b)) * 16]
    v = raw.reshape(-1, 16)
    for text in nets:
        net = ipaddress.ip_network(text, strict=False)
        if net.version == 4:
            addr = ipaddress.IPv6Address("::ffff:" + str(net.network_address)).packed
            bits = 96 + net.prefixlen
        else:
            addr, bits = net.network_address.packed, net.prefixlen
        mask = np.frombuffer(((1 << 128) - (1 << (128 - bits))).to_bytes(16, "big"), dtype=np.uint8)
        want = np.frombuffer(addr, dtype=np.uint8) & mask
        out |= np.all((v & mask) == want, axis=1)
    return out & valid


class _DistinctValues:
    """The distinct values of an IP text column and each row's index into them."""

    def __init__(self, values: pa.Array, indices: np.ndarray) -> None:
        self.values = values
        self.indices = indices

    def test(self, nets: tuple[str, ...]) -> np.ndarray:
        """Per row: inside any of ``nets`` (tested once per distinct value)."""
        if not nets or not len(self.indices):
            return np.zeros(len(self.indices), dtype=bool)
        return _in_subnets(self.values, nets)[self.indices]


def _distinct_values(col: pa.ChunkedArray | pa.Array) -> _DistinctValues:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    enc = pc.dictionary_encode(col, null_encoding="encode")
    return _DistinctValues(enc.dictionary, enc.indices.to_numpy(zero_copy_only=False))


def _json_float(x: float) -> str:
    """A float as polars' JSON writes it: shortest round-trip digits, decimal notation from
    1e-5 to below 1e16, else ``<mantissa>e<sign><exponent>``; NaN and infinities as null."""
    if not math.isfinite(x):
        return "null"
    r = repr(x)
    if "e" not in r:
        return r
    mant, exp = r.split("e")
    e = int(exp)
    if e == -5:
        digits = mant.lstrip("-").replace(".", "")
        return f"{'-' if x < 0 else ''}0.0000{digits}"
    return f"{mant}e{'+' if e > 0 else '-'}{abs(e)}"


def _json_value(v: Any) -> str:
    if isinstance(v, float):
        return _json_float(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if v is None:
        return "null"
    if isinstance(v, list):
        return "[" + ",".join(_json_value(x) for x in v) + "]"
    return json.dumps(v, ensure_ascii=False)


def _json_object(names: list[str], values: list[Any]) -> str:
    return (
        "{"
        + ",".join(
            f"{json.dumps(k, ensure_ascii=False)}:{_json_value(v)}"
            for k, v in zip(names, values, strict=True)
        )
        + "}"
    )


class BeaconDetector:
    """RITA v5 beacon score per (source.ip, destination.ip, destination.port) and window.

    ``BeaconDetector(params)`` with a :class:`BeaconParams` or a mapping of its fields.
    """

    name = "beacon"
    rule_id = "anomaly:beacon"

    def __init__(self, params: BeaconParams | Mapping[str, Any] | None = None) -> None:
        if params is None:
            params = BeaconParams()
        elif not isinstance(params, BeaconParams):
            known = {f.name for f in fields(BeaconParams)}
            unknown = set(params) - known
            if unknown:
                msg = f"unknown beacon params: {sorted(unknown)}"
                raise ValueError(msg)
            params = BeaconParams(**params)
        self.params = params

    # ---- select ------------------------------------------------------------------------

    def select(self, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        """Conn / flow rows as ``ROWS_SCHEMA``: the pair key, ts (µs) and originator bytes.

        Rows without a source or destination IP, port or timestamp are dropped. The bytes
        are ``source.bytes``: IP-level bytes (Zeek's ``orig_ip_bytes``, RITA's data-size
        input; Suricata's ``bytes_toserver``); null counts as 0.
        """
        names = batch.schema.names
        if "event.dataset" not in names or "@timestamp" not in names:
            return ROWS_SCHEMA.empty_table()
        need = ("source.ip", "destination.ip", "destination.port", "@timestamp")
        if any(c not in names for c in need):
            return ROWS_SCHEMA.empty_table()
        mask = keep_rows(batch, need, DATASETS, null_dataset_ok=False)
        if mask is not None and not mask.any():
            return ROWS_SCHEMA.empty_table()
        cols = [*need, *(["source.bytes"] if "source.bytes" in names else [])]
        sub = pa.Table.from_arrays([batch.column(c) for c in cols], names=cols)
        if mask is not None:
            sub = sub.filter(pa.array(mask))
        ts = sub.column("@timestamp")
        if isinstance(ts, pa.ChunkedArray):
            ts = ts.combine_chunks()
        ts = ts.cast(TS).cast(pa.int64())
        nbytes = pa.array(np.zeros(sub.num_rows, np.uint64))
        if "source.bytes" in names:
            nbytes = pc.fill_null(_plain(sub.column("source.bytes"), pa.uint64()), 0)
        return pa.Table.from_arrays(
            [
                _plain(sub.column("source.ip"), pa.string()),
                _plain(sub.column("destination.ip"), pa.string()),
                _plain(sub.column("destination.port"), pa.uint16()),
                ts,
                nbytes,
            ],
            schema=ROWS_SCHEMA,
        )

    # ---- run ---------------------------------------------------------------------------

    def run(
        self, rows: pa.Table, state: pa.Table | None, *, final: bool | None = None
    ) -> RunOutput:
        """Score the windows that close in this run; carry the open ones in the state.

        ``final`` (default: param ``close_open_windows``) scores every open window now.
        """
        p = self.params
        final = p.close_open_windows if final is None else final
        win_us = p.window * US
        max_ts, closed_until = NO_TS, NO_TS
        parts = []
        if state is not None and state.num_rows:
            meta = state.column("meta")
            for name in ("max_ts", "closed_until"):
                hit = state.filter(pc.equal(meta, name)).column("ts").to_pylist()
                if hit:
                    if name == "max_ts":
                        max_ts = int(hit[0])
                    else:
                        closed_until = int(hit[0])
            n_rows = meta.null_count  # the meta rows come last (``_state``): slice, no copy
            tail = meta.slice(n_rows)
            held = (
                state.slice(0, n_rows)
                if tail.null_count == 0
                else state.filter(pc.is_null(meta))
            )
            parts.append(held.select(ROWS_SCHEMA.names).cast(ROWS_SCHEMA))
        late = 0
        rows = rows.select(ROWS_SCHEMA.names).cast(ROWS_SCHEMA)
        if rows.num_rows:
            if closed_until != NO_TS:
                on_time = pc.greater_equal(rows.column("ts"), closed_until)
                late = rows.num_rows - pc.sum(on_time).as_py()
                if late:
                    rows = rows.filter(on_time)
            if rows.num_rows:
                max_ts = max(max_ts, pc.max(rows.column("ts")).as_py())
            parts.append(rows)
        table = pa.concat_tables(parts) if parts else ROWS_SCHEMA.empty_table()

        # which windows close: end <= watermark (or every window, when final)
        if max_ts == NO_TS:
            close_before = closed_until
        elif final:
            close_before = (max_ts // win_us + 1) * win_us
        else:
            close_before = ((max_ts - p.lateness * US) // win_us) * win_us
        close_before = closed_until if watermark_is_held() else max(close_before, closed_until)
        ts_all = table.column("ts").to_numpy()
        closing = ts_all < close_before
        findings = FINDINGS_SCHEMA.empty_table()
        if len(closing) and closing.all():  # the usual flush / old-logs case: no copy
            findings = self._score(table)
            table = table.slice(0, 0)
        elif closing.any():
            mask = pa.array(closing)
            findings = self._score(table.filter(mask))
            table = table.filter(pc.invert(mask))
        new_state = self._state(table, max_ts, close_before)
        return RunOutput(findings=findings, state=new_state, late=int(late))

    def _state(self, rows: pa.Table, max_ts: int, closed_until: int) -> pa.Table:
        data = rows.append_column("meta", pa.nulls(rows.num_rows, pa.string()))
        marks = [
            (n, v) for n, v in (("max_ts", max_ts), ("closed_until", closed_until)) if v != NO_TS
        ]
        meta = pa.table(
            {
                "source.ip": pa.nulls(len(marks), pa.string()),
                "destination.ip": pa.nulls(len(marks), pa.string()),
                "destination.port": pa.nulls(len(marks), pa.uint16()),
                "ts": pa.array([v for _, v in marks], pa.int64()),
                "source.bytes": pa.nulls(len(marks), pa.uint64()),
                "meta": pa.array([n for n, _ in marks], pa.string()),
            },
            schema=STATE_SCHEMA,
        )
        return pa.concat_tables([data.cast(STATE_SCHEMA), meta])

    def scores(self, rows: pa.Table) -> tuple[pa.Table, np.ndarray, np.ndarray, np.ndarray]:
        """The (window, pair) groups of ``rows`` that may be eligible (at least
        ``max(4, unique_connection_threshold)`` rows): (one row per group, floats, ints, win).

        The first table holds each group's key columns (row of its first event).
        """
        from detect.kernels import beacon as k
        from detect.kernels.beacon import beacon_scores, group_rows

        p = self.params
        if not rows.num_rows:
            e = np.zeros((0, 0))
            return rows, e, e.astype(np.int64), np.zeros(0, np.int64)
        rows = rows.combine_chunks()
        ts = rows.column("ts").to_numpy()
        win_us = p.window * US
        win = ts // win_us
        port = rows.column("destination.port").to_numpy(zero_copy_only=False).astype(np.int64)
        src = rows.column("source.ip").chunk(0)
        dst = rows.column("destination.ip").chunk(0)
        gid, n_groups = _group_ids(src, dst, port, win)
        perm, offsets = group_rows(gid, n_groups)
        # groups too small to be eligible are left out: most (window, pair) groups are,
        # and the kernel's output rows for all of them cost more than scoring the rest
        sizes = np.diff(offsets)
        big = sizes >= max(4, p.unique_connection_threshold)
        if not big.all():
            perm = perm[np.repeat(big, sizes)]
            offsets = np.r_[0, np.cumsum(sizes[big])]
        first = perm[offsets[:-1]]
        gwin = win[first]
        ws, we = _data_spans(ts, win, gwin, p.window)
        nbytes = rows.column("source.bytes").to_numpy(zero_copy_only=False).astype(np.float64)
        fo, io = beacon_scores(
            ts, nbytes, perm, offsets, ws, we, BINS,
            p.unique_connection_threshold, p.strobe_threshold, p.histogram_mode_sensitivity,
            p.histogram_bimodal_outlier_removal, p.histogram_bimodal_min_hours_seen,
            p.duration_min_hours_seen, p.duration_consistency_ideal_hours_seen,
            p.ts_weight, p.ds_weight, p.dur_weight, p.hist_weight,
        )  # fmt: skip
        keys = rows.take(pa.array(first))
        io[~self._included(keys), k.I_ELIGIBLE] = 0
        return keys, fo, io, gwin

    def _included(self, keys: pa.Table) -> np.ndarray:
        """RITA's pair filter over one row per group (see :class:`BeaconParams`)."""
        p = self.params
        src = _distinct_values(keys.column("source.ip"))
        dst = _distinct_values(keys.column("destination.ip"))
        keep = np.ones(keys.num_rows, dtype=bool)
        always = src.test(p.always_included_subnets) | dst.test(p.always_included_subnets)
        never = src.test(p.never_included_subnets) | dst.test(p.never_included_subnets)
        keep &= ~never
        if p.internal_subnets:
            keep &= src.test(p.internal_subnets) != dst.test(p.internal_subnets)
        return keep | always

    def _score(self, rows: pa.Table) -> pa.Table:
        from detect.kernels import beacon as k

        p = self.params
        if not rows.num_rows:
            return FINDINGS_SCHEMA.empty_table()
        keys, fo, io, gwin = self.scores(rows)
        hit = np.flatnonzero((io[:, k.I_ELIGIBLE] == 1) & (fo[:, k.F_SCORE] >= p.threshold))
        if not len(hit):
            return FINDINGS_SCHEMA.empty_table()
        keys = keys.take(pa.array(hit))
        fo, io, gwin = fo[hit], io[hit], gwin[hit]
        src = keys.column("source.ip").combine_chunks()
        dst = keys.column("destination.ip").combine_chunks()
        port = keys.column("destination.port").combine_chunks()
        bracketed = pc.binary_join_element_wise("[", dst, "]", "")
        dst_text = pc.if_else(pc.match_substring(dst, ":"), bracketed, dst)
        entity = pc.binary_join_element_wise(src, " -> ", dst_text, ":", port.cast(pa.string()), "")
        threat = fo[:, k.F_THREAT]
        severity = np.array([severity_of(t) for t in threat.tolist()], dtype=object)
        n = len(hit)
        # evidence: one JSON object per finding, keys sorted, written as polars'
        # ``struct.json_encode`` would (compact, floats as Rust prints them, NaN as null)
        hist = io[:, k.I_HIST :].tolist()
        ev = {
            "source.ip": src.to_pylist(), "destination.ip": dst.to_pylist(),
            "destination.port": port.to_pylist(),
            "connections": io[:, k.I_COUNT].tolist(),
            "unique_timestamps": io[:, k.I_UNIQUE].tolist(),
            **{name: fo[:, i].tolist() for i, name in enumerate(k.F_COLUMNS)},
            "total_bars": io[:, k.I_TOTAL_BARS].tolist(),
            "longest_run": io[:, k.I_LONGEST_RUN].tolist(),
            "histogram": hist, "rita_category": severity.tolist(),
        }  # fmt: skip
        names = sorted(ev)
        evidence = pa.array(
            [_json_object(names, [ev[name][i] for name in names]) for i in range(n)], pa.string()
        )
        w0 = gwin * p.window * US
        out = pa.table(
            {
                "rule_id": pa.array([self.rule_id] * n, pa.string()),
                "entity": entity,
                "window_start": pa.array(w0, pa.int64()).cast(TS),
                "window_end": pa.array(w0 + p.window * US, pa.int64()).cast(TS),
                "first_seen": pa.array(io[:, k.I_FIRST_US], pa.int64()).cast(TS),
                "last_seen": pa.array(io[:, k.I_LAST_US], pa.int64()).cast(TS),
                "event_count": pa.array(io[:, k.I_COUNT], pa.int64()),
                "score": pa.array(fo[:, k.F_SCORE], pa.float64()),
                "severity": pa.array(severity, pa.string()),
                "evidence": evidence,
            },
            schema=FINDINGS_SCHEMA,
        )
        # deterministic order: window, then score (highest first), then entity
        return out.sort_by(
            [("window_start", "ascending"), ("score", "descending"), ("entity", "ascending")]
        )

    def with_params(self, **changes: Any) -> BeaconDetector:
        """A copy with some params changed."""
        return BeaconDetector(replace(self.params, **changes))
