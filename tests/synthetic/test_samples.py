"""The committed samples: present, small, and consistent with their ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from detect.schema import CANONICAL_SCHEMA
from detect.synthetic.records import DATASETS


def test_samples_are_small_and_canonical(samples: Path) -> None:
    total = sum(p.stat().st_size for p in samples.rglob("*") if p.is_file())
    assert total < 2 * 2**20
    gt = json.loads((samples / "generated" / "ground_truth.json").read_text())
    assert gt["events"] == 20_000 and gt["seed"] == 7
    for ds in DATASETS:
        path = samples / "generated" / f"{ds}.parquet"
        assert pq.read_schema(path).remove_metadata().equals(CANONICAL_SCHEMA)
        assert pq.read_metadata(path).num_rows == gt["datasets"][ds]


def test_sensor_samples_touch_the_planted_indicators(samples: Path) -> None:
    values = [
        line for line in (samples / "indicators" / "indicators.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    text = "".join(
        p.read_text(encoding="utf-8") for p in [
            *sorted((samples / "zeek").iterdir()), samples / "suricata" / "eve.json"
        ]
    )
    found = [v for v in values if v.removeprefix("http://").split("/")[0] in text]
    assert len(found) >= 4
    header = (samples / "zeek" / "conn.log").read_text().splitlines()
    assert header[0] == "#separator \\x09"
    assert header[-1].startswith("#close\t")
    events = [json.loads(line) for line in
              (samples / "suricata" / "eve.json").read_text().splitlines()]
    assert {e["event_type"] for e in events} >= {
        "flow", "dns", "http", "tls", "fileinfo", "alert", "stats"}
