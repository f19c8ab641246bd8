"""Sigma correlation rules in ``detect run``: correlation alerts, base rules silenced."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from detect.config import Settings
from detect.runner import run

ROOT = Path(__file__).resolve().parents[2]


def _ssh_events(path: Path, source: str, n: int, start: datetime, step: timedelta) -> None:
    with path.open("w") as f:
        for i in range(n):
            f.write(
                json.dumps(
                    {
                        "@timestamp": (start + i * step).isoformat(),
                        "event.dataset": "ssh",
                        "source.ip": source,
                        "source.port": 40000 + i,
                        "destination.ip": "198.51.100.7",
                        "destination.port": 22,
                    }
                )
                + "\n"
            )


def test_ssh_brute_force_correlation_alert(tmp_path: Path) -> None:
    start = datetime(2024, 5, 1, 10, tzinfo=UTC)
    _ssh_events(tmp_path / "brute.ndjson", "203.0.113.9", 30, start, timedelta(seconds=5))
    _ssh_events(tmp_path / "admin.ndjson", "203.0.113.10", 6, start, timedelta(minutes=20))
    db = tmp_path / "c.duckdb"
    settings = Settings(
        db=db,
        rules=(str(ROOT / "rules" / "correlation"),),
        indicators=(str(ROOT / "data" / "samples" / "indicators"),),
        close_windows=True,
        progress=False,
        quiet=True,
    )
    summary = run([str(tmp_path / "brute.ndjson"), str(tmp_path / "admin.ndjson")], settings)
    assert summary.exit_code == 0
    assert any("Sigma correlation rule(s)" in n for n in summary.notes)
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT rule_kind, rule_id, title, entity, severity, attack, author FROM alerts"
        ).fetchall()
    finally:
        con.close()
    kinds = {r[0] for r in rows}
    assert kinds == {"correlation"}, rows  # the base rule (generate: false) raises nothing
    [alert] = [r for r in rows if r[1] == "3f1a8c52-6d0e-4b8e-9a51-0c2b7e4d9a11"]
    assert "203.0.113.9" in alert[3] and "203.0.113.10" not in alert[3]
    assert alert[2] == "SSH Brute Force From One Source"
    assert alert[4] == "high" and "T1110" in alert[5] and alert[6] == "detect project"
