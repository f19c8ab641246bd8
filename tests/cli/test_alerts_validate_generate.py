"""``detect alerts``, ``detect validate``, ``detect generate`` and ``detect match`` from the CLI."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from detect.cli import main
from detect.config import load_settings
from detect.hits import HITS_SCHEMA, EngineSet
from detect.runner import run
from tests.test_runner import PortEngine, write_events


@pytest.fixture
def db_with_alerts(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir()
    write_events(logs / "a.ndjson", [
        ("2024-01-01T00:10:00Z", "10.0.0.1", 53),
        ("2024-01-01T02:10:00Z", "10.0.0.2", 53),
    ])
    db = tmp_path / "a.duckdb"
    run([str(logs)], load_settings(environ={}, flags={"db": db}),
        engines=EngineSet([PortEngine()]))
    return db


def test_alerts_as_json_lines(db_with_alerts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", "--db", str(db_with_alerts), "-f", "json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["entity"] for r in rows] == ["10.0.0.2", "10.0.0.1"]  # newest first
    assert all(r["alert_id"] and r["rule_id"] == "test-dns-port" for r in rows)


def test_alerts_filters(db_with_alerts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", "--db", str(db_with_alerts), "-f", "json",
                 "--until", "2024-01-01T01:00:00Z"]) == 0
    assert [json.loads(x)["entity"] for x in capsys.readouterr().out.splitlines()] == ["10.0.0.1"]
    assert main(["alerts", "--db", str(db_with_alerts), "-f", "json",
                 "--severity", "critical"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["alerts", "--db", str(db_with_alerts), "-f", "json", "--rule", "test-*"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["alerts", "--db", str(db_with_alerts), "-f", "json", "--rule", "other"]) == 0
    assert capsys.readouterr().out == ""


def test_alerts_as_csv_and_table(db_with_alerts: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", "--db", str(db_with_alerts), "-f", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 2
    assert json.loads(rows[0]["attack"]) == ["T1071.004"]
    assert main(["alerts", "--db", str(db_with_alerts)]) == 0
    assert "DNS to port 53" in capsys.readouterr().out


def test_alerts_without_a_database_is_a_clear_error(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", "--db", str(tmp_path / "none.duckdb")]) == 2
    assert "no database" in capsys.readouterr().err


def test_alerts_bad_time_is_a_usage_error(db_with_alerts: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", "--db", str(db_with_alerts), "--since", "last tuesday"]) == 2
    assert "not a time" in capsys.readouterr().err


def test_validate_lists_rejects_and_broken_rules(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    logs = tmp_path / "x.ndjson"
    logs.write_text('{"@timestamp": "2024-01-01T00:00:00Z"}\n{oops\n')
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "bad.yml").write_text("title: broken\nlogsource: {category: dns}\n")
    (rules / "good.yml").write_text(
        "title: ok\nid: 0d8fbd45-5d2b-4b8c-9c2a-7b5b2c6f4e11\nlogsource: {category: dns}\n"
        "detection:\n  sel:\n    dns.question.name: evil.com\n  condition: sel\n"
    )
    code = main(["validate", str(logs), "--rules", str(rules), "--indicators", str(logs)])
    captured = capsys.readouterr()
    assert code == 3
    assert "ndjson, 1 events, 1 rejected" in captured.out
    assert "line 2: invalid JSON" in captured.out
    assert "bad.yml" in captured.err
    assert "1 rule(s) parse" in captured.out


def test_generate_then_run_and_match(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gen"
    assert main(["generate", "--events", "2000", "--seed", "5", "-o", str(out)]) == 0
    truth = json.loads((out / "ground_truth.json").read_text())
    assert truth["events"] == 2000
    db = tmp_path / "a.duckdb"
    assert main(["run", str(out), "--db", str(db), "--log-format", "json"]) == 0
    finished = next(json.loads(x) for x in capsys.readouterr().err.splitlines()
                if '"run_finished"' in x)
    assert finished["events"] == sum(truth["datasets"].values()) == 2000
    hits = tmp_path / "hits.parquet"
    assert main(["match", str(out), "-o", str(hits), "-q"]) == 0
    assert pq.read_table(hits).schema == HITS_SCHEMA
