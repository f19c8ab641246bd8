"""VolumeDetector: the planted exfiltration, baselines across runs, split-run equivalence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import detect
from detect.anomaly.volume import VolumeDetector

from .test_scan import selected, split_runs


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory):
    """Three days: the planted exfiltration (day 2 for this seed) has a day of history."""
    out = tmp_path_factory.mktemp("gen")
    r = detect.generate(out, events=20_000, seed=3, days=3)
    return Path(r.files["conn"]), json.loads(Path(r.ground_truth).read_text())


def check_found(f: pa.Table, gt: dict) -> None:
    planted = {a["source_ip"] for a in gt["activities"] if a["kind"] == "exfiltration"}
    hits = f.to_pylist()
    assert planted <= {r["entity"] for r in hits}
    false = [r for r in hits if r["entity"] not in planted]
    print(f"volume: {len(planted)} planted found, {len(false)} false findings on benign events")
    assert len(false) <= 2
    ev = json.loads(next(r for r in hits if r["entity"] in planted)["evidence"])
    assert set(ev) >= {"bytes", "mean", "std", "z", "history"}
    assert ev["history"] >= 24 and ev["bytes"] >= 100_000_000


def test_planted_exfiltration_found_with_defaults(gen):
    conn, gt = gen
    det = VolumeDetector()
    check_found(det.run(selected(det, [conn]), None, final=True).findings, gt)


def test_one_day_needs_less_history(tmp_path):
    r = detect.generate(tmp_path, events=20_000, seed=3)  # the default one-day span
    gt = json.loads(Path(r.ground_truth).read_text())
    det = VolumeDetector()
    rows = selected(det, [r.files["conn"]])
    assert det.run(rows, None, final=True).findings.num_rows == 0  # < 24 windows of history
    f = VolumeDetector(min_history=6).run(rows, None, final=True).findings
    planted = {a["source_ip"] for a in gt["activities"] if a["kind"] == "exfiltration"}
    assert planted <= set(f.column("entity").to_pylist())


@settings(max_examples=10, deadline=None)
@given(st.lists(st.integers(0, 10**9), max_size=5))
def test_split_runs_equal_one_run(gen, cuts):
    conn, _ = gen
    det = VolumeDetector(min_history=4, z_threshold=3, min_bytes=100_000)
    rows = selected(det, [conn])
    ts = rows.column("@timestamp").cast(pa.int64()).to_numpy()
    one = det.run(rows.take(pa.array(np.argsort(ts, kind="stable"))), None, final=True)
    assert one.findings.num_rows >= 2
    got = split_runs(det, rows, [c % (rows.num_rows + 1) for c in cuts], ts)
    assert got.equals(one.findings)


def test_a_window_that_fires_on_absolute_bytes_stays_out_of_the_baseline() -> None:
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    sent = [1_000] * 30
    sent[10] = 2_000_000_000  # fires on absolute_bytes (1 GB)
    sent[29] = 50_000_000  # against a 1 KB baseline: z = inf, and over min_bytes
    rows = pa.table({
        "@timestamp": pa.array([t0 + timedelta(hours=h) for h in range(30)],
                               pa.timestamp("us", tz="UTC")),
        "source.ip": ["10.0.0.9"] * 30,
        "source.bytes": pa.array(sent, pa.int64()),
    })  # fmt: skip
    f = VolumeDetector().run(rows, None, final=True).findings.to_pylist()
    reasons = {r["first_seen"].hour + 24 * (r["first_seen"].day - 1): json.loads(r["evidence"])
               for r in f}  # fmt: skip
    assert set(reasons) == {10, 29}  # hour 29 is missed when hour 10's 2 GB joins the baseline
    assert reasons[10]["reason"] == "absolute_bytes"
    assert reasons[29]["reason"] == "baseline" and reasons[29]["mean"] == pytest.approx(1_000)
