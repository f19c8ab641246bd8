"""LongConnDetector: RITA buckets, open_conn snapshots, strobes, split-run equivalence."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import detect
from detect.anomaly.long_conn import ROW_SCHEMA, LongConnDetector, bucketed_score

from .test_scan import split_runs

T0 = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1e6)


def table(ts_s, src, dst, port, dur_s, uid) -> pa.Table:
    return pa.Table.from_pydict(
        {
            "@timestamp": pa.array([T0 + int(t * 1e6) for t in ts_s], pa.int64()).cast(
                ROW_SCHEMA.field("@timestamp").type
            ),
            "source.ip": src,
            "destination.ip": dst,
            "destination.port": pa.array(port, pa.int32()),
            "event.duration": pa.array([int(d * 1e9) for d in dur_s], pa.int64()),
            "event.id": pa.array(uid, pa.string()),
        },
        schema=ROW_SCHEMA,
    )


def test_rita_buckets():
    b = (3600, 14400, 28800, 43200)
    assert [bucketed_score(v, *b) for v in (3599, 3600, 14400, 28800, 43200, 10**6)] == [
        0.0,
        0.2,
        0.4,
        0.6,
        0.8,
        0.8,
    ]
    assert bucketed_score(9000, *b) == 0.3


def test_long_and_strobe():
    n = 200
    t = table(
        [0, 10, *range(100, 100 + n)],
        ["a", "a", *["s"] * n],
        ["b", "b", *["d"] * n],
        [22, 22, *[53] * n],
        [3000, 2000, *[0.01] * n],
        [None, None, *[f"u{i}" for i in range(n)]],
    )
    f = LongConnDetector(strobe_threshold=200).run(t, None, final=True).findings.to_pylist()
    assert [(r["rule_id"], r["entity"], r["severity"]) for r in f] == [
        ("anomaly:long-connection", "a -> b:22", "informational"),
        ("anomaly:strobe", "s -> d:53", "high"),
    ]
    assert json.loads(f[0]["evidence"])["total_duration_s"] == 5000


def conn_rows(draw_rows):
    return table(*zip(*draw_rows, strict=True)) if draw_rows else ROW_SCHEMA.empty_table()


rows_st = st.lists(
    st.tuples(
        st.integers(0, 5000),
        st.sampled_from(["a", "b"]),
        st.sampled_from(["x", "y"]),
        st.sampled_from([22, 443]),
        st.integers(0, 900),
        st.sampled_from([None, "u1", "u2", "u3"]),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(rows_st, st.lists(st.integers(0, 60), max_size=4))
def test_split_runs_equal_one_run(rows, cuts):
    det = LongConnDetector(
        window=600,
        lateness=30,
        long_threshold=500,
        strobe_threshold=3,
        buckets=(500, 1000, 1500, 2000),
    )
    t = conn_rows(rows)
    end = (
        t.column("@timestamp").cast(pa.int64()).to_numpy()
        + t.column("event.duration").to_numpy() // 1000
    )
    one = det.run(t.take(pa.array(np.argsort(end, kind="stable"))), None, final=True).findings
    assert split_runs(det, t, cuts, end).equals(one)


def _raw_durations(files: list[Path]) -> dict[tuple[str, int], float]:
    """(uid, ts) -> duration from the raw TSV, for readers that do not map it yet."""
    out = {}
    for f in files:
        fields = []
        with gzip.open(f, "rt") as fh:
            lines = fh.read().splitlines()
        for line in lines:
            if line.startswith("#fields"):
                fields = line.rstrip("\n").split("\t")[1:]
            elif not line.startswith("#"):
                r = dict(zip(fields, line.rstrip("\n").split("\t"), strict=False))
                out[r["uid"], f"{f.parent.name}/{f.name}"] = float(r["duration"])
    return out


@pytest.mark.shared
def test_real_open_conn_ssh_session(shared_datasets):
    root = shared_datasets / "zeek" / "rita-missing-host"
    files = sorted(root.glob("*/open_conn.*.log.gz"))
    det = LongConnDetector()
    batches = list(detect.read([str(f) for f in files]))
    t = pa.Table.from_batches(batches)
    if t.column("event.duration").null_count == t.num_rows:
        # the Zeek reader maps `duration` for conn / files only: fill it from the raw logs
        raw = _raw_durations(files)
        names = [
            f"{Path(p).parent.name}/{Path(p).name}" for p in t.column("log.file.path").to_pylist()
        ]
        dur = [
            round(raw[u, n] * 1e6) * 1000
            for u, n in zip(t.column("event.id").to_pylist(), names, strict=True)
        ]
        t = t.set_column(
            t.schema.get_field_index("event.duration"), "event.duration", pa.array(dur, pa.int64())
        )
    rows = pa.concat_tables([det.select(b) for b in t.to_batches()])
    assert rows.num_rows == len(files)
    f = det.run(rows, None, final=True).findings.to_pylist()
    assert {r["entity"] for r in f} == {"73.54.23.243 -> 64.225.56.201:22"}
    assert all(r["rule_id"] == "anomaly:long-connection" for r in f)
    ev = [json.loads(r["evidence"]) for r in f]
    assert all(e["connections"] == 1 for e in ev)  # 72 hourly snapshots, one session
    assert max(r["score"] for r in f) == 0.8  # open for days: >= 12 h
    print(
        "open_conn:",
        [(str(r["window_start"]), e["total_duration_s"]) for r, e in zip(f, ev, strict=True)],
    )
