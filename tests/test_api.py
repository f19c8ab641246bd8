"""The Python API in ``detect/__init__.py`` (beyond its doctests)."""

from __future__ import annotations

from pathlib import Path

import pytest

import detect
from detect.errors import ConfigError, NotTelemetryError


def test_read_skips_what_is_not_telemetry_in_a_folder_as_run_does(tmp_path: Path) -> None:
    (tmp_path / "events.ndjson").write_text(
        '{"@timestamp": "2024-01-01T00:00:00Z", "source.ip": "10.0.0.1"}\n' * 3
    )
    (tmp_path / "empty.log").write_bytes(b"")
    (tmp_path / "report.json").write_text('{"summary": "no event time here"}\n')
    assert sum(b.num_rows for b in detect.read([tmp_path])) == 3
    with pytest.raises(NotTelemetryError):  # named explicitly, it is an error
        list(detect.read([tmp_path / "report.json"]))


def test_load_indicators_merges_feeds_and_names_problems(tmp_path: Path) -> None:
    feed = tmp_path / "f.csv"
    feed.write_text("type,value,source\nip,203.0.113.5,a\nip,203.0.113.5,b\nip,999.1.1.1,a\n")
    allow = tmp_path / "allow.txt"
    allow.write_text("198.51.100.0/24\n")
    index = detect.load_indicators([feed], allowlists=[allow])
    rows = index.indicators.to_pylist()
    assert [(r["type"], r["value"], sorted(r["sources"])) for r in rows] == [
        ("ip", "203.0.113.5", ["a", "b"])
    ]
    assert len(index.problems) == 1 and "f.csv" in index.problems[0]
    with pytest.raises(ConfigError, match="no such allowlist"):
        detect.load_indicators([feed], allowlists=[tmp_path / "typo.txt"])
