"""ScanDetector: planted scans in generated data, real Zeek scans, split-run equivalence."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import detect
from detect.anomaly.scan import ScanDetector


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("gen")
    r = detect.generate(out, events=20_000, seed=3, days=3)
    return Path(r.files["conn"]), json.loads(Path(r.ground_truth).read_text())


def selected(det, paths) -> pa.Table:
    return pa.concat_tables([det.select(b) for b in detect.read([str(p) for p in paths])])


def split_runs(det, rows: pa.Table, cuts: list[int], time_col: np.ndarray) -> pa.Table:
    """Feed time-ordered rows through successive runs at ``cuts``, final flush at the end."""
    order = np.argsort(time_col, kind="stable")
    rows = rows.take(pa.array(order))
    bounds = [0, *sorted(set(cuts)), rows.num_rows]
    state, parts = None, []
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        out = det.run(rows.slice(a, b - a), state, final=i == len(bounds) - 2)
        assert out.late == 0
        parts.append(out.findings)
        state = out.state
    return pa.concat_tables(parts)


def test_planted_scans_found(gen):
    conn, gt = gen
    det = ScanDetector()
    f = det.run(selected(det, [conn]), None, final=True).findings
    planted = [a for a in gt["activities"] if a["kind"].endswith("_scan")]
    assert planted
    found = set()
    for a in planted:
        kind = a["kind"].split("_")[0]
        ent = (
            f"{a['source_ip']} -> {a['destination_ips'][0]}"
            if kind == "vertical"
            else f"{a['source_ip']} -> *:{a['destination_ports'][0]}"
        )
        hits = [
            r
            for r in f.to_pylist()
            if r["rule_id"] == f"anomaly:scan:{kind}" and r["entity"] == ent
        ]
        assert hits, f"planted {a['id']} not found"
        found.add((hits[0]["rule_id"], ent))
    false = [r for r in f.to_pylist() if (r["rule_id"], r["entity"]) not in found]
    print(f"scan: {len(planted)} planted found, {len(false)} false findings on benign events")
    assert len(false) <= 2


def test_final_flush_and_state_bounded(gen):
    conn, _ = gen
    det = ScanDetector()
    rows = selected(det, [conn])
    out = det.run(rows, None)  # not final: the last report windows stay open
    assert out.state.num_rows < rows.num_rows
    out2 = det.run(rows.slice(0, 0), out.state, final=True)
    both = pa.concat_tables([out.findings, out2.findings])
    assert both.equals(det.run(rows, None, final=True).findings)
    # rows older than the watermark now are late
    again = det.run(rows.slice(0, 10), out2.state)
    assert again.late == 10 and again.findings.num_rows == 0


@settings(max_examples=12, deadline=None)
@given(st.lists(st.integers(0, 10**9), max_size=5))
def test_split_runs_equal_one_run(gen, cuts):
    conn, _ = gen
    det = ScanDetector(horizontal_threshold_other=8, vertical_threshold=3)
    rows = selected(det, [conn])
    ts = rows.column("@timestamp").cast(pa.int64()).to_numpy()
    one = det.run(rows.take(pa.array(np.argsort(ts, kind="stable"))), None, final=True).findings
    assert one.num_rows >= 2
    got = split_runs(det, rows, [c % (rows.num_rows + 1) for c in cuts], ts)
    assert got.equals(one)


@pytest.mark.shared
def test_real_zeek_scans(shared_datasets):
    day = shared_datasets / "zeek" / "rita-missing-host" / "2024-04-19"
    det = ScanDetector()
    rows = selected(det, sorted(day.glob("conn.*.log.gz")))
    f = det.run(rows, None, final=True).findings
    print(f"rita-missing-host 2024-04-19: {rows.num_rows} conn rows, {f.num_rows} scan findings")
    assert f.num_rows >= 1
    ev = json.loads(f.column("evidence")[0].as_py())
    assert ev["failed_ratio"] > 0.5  # REJ / S0
    assert all(e.endswith("64.225.56.201") for e in f.column("entity").to_pylist())


@pytest.mark.parametrize(
    ("port", "n_dst", "other", "fires"),
    [
        (445, 33, 64, True),  # infection port: > 32
        (445, 32, 64, False),
        (8080, 40, 64, False),  # other ports: > 64
        (8080, 65, 64, True),
        (8080, 200, None, False),  # other ports off
    ],
)
def test_horizontal_threshold_by_port(port, n_dst, other, fires):
    """A source sweeping ``n_dst`` hosts on one port in 10 s, beside a vertical scan."""
    t0 = 1_700_000_000_000_000
    dst = [f"192.0.2.{i % 250}" if i < 250 else f"198.51.100.{i % 250}" for i in range(n_dst)]
    rows = {
        "@timestamp": [t0 + i * 10_000 for i in range(n_dst)] + [t0 + i for i in range(12)],
        "source.ip": ["10.0.0.9"] * n_dst + ["10.0.0.7"] * 12,
        "destination.ip": dst + ["10.0.0.8"] * 12,
        "destination.port": [port] * n_dst + list(range(20, 32)),
    }
    batch = pa.record_batch(
        {
            "@timestamp": pa.array(rows["@timestamp"], pa.timestamp("us", tz="UTC")),
            "event.dataset": ["conn"] * len(rows["source.ip"]),
            "source.ip": rows["source.ip"],
            "destination.ip": rows["destination.ip"],
            "destination.port": pa.array(rows["destination.port"], pa.int64()),
        }
    )
    det = ScanDetector(horizontal_threshold_other=other)
    f = det.run(det.select(batch), None, final=True).findings.to_pylist()
    horizontal = [r["entity"] for r in f if r["rule_id"] == "anomaly:scan:horizontal"]
    assert horizontal == ([f"10.0.0.9 -> *:{port}"] if fires else [])
    assert [r["entity"] for r in f if r["rule_id"] == "anomaly:scan:vertical"] == [
        "10.0.0.7 -> 10.0.0.8"
    ]
