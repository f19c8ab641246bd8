"""Prometheus textfile output of a run: valid exposition format, last success kept on failure."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from detect.cli import main


def samples(path: Path) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_run_writes_metrics_and_keeps_last_success_on_failure(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.ndjson").write_text('{"@timestamp": "2024-01-01T00:00:00Z"}\n{bad\n')
    prom = tmp_path / "detect.prom"
    db = tmp_path / "a.duckdb"
    assert main(["run", str(logs), "--db", str(db), "--metrics-textfile", str(prom), "-q"]) == 0
    first = samples(prom)
    assert first[("detect_run_events", ())] == 1
    assert first[("detect_run_rejects", ())] == 1
    assert first[("detect_run_files", (("status", "ok"),))] == 1
    assert first[("detect_run_exit_code", ())] == 0
    assert first[("detect_detector_state_rows", ())] >= 0  # bundled detectors ran
    assert first[("detect_run_late_events", ())] == 0
    success = first[("detect_last_success_timestamp_seconds", ())]
    assert success > 0
    assert ("detect_run_stage_seconds", (("stage", "read"),)) in first
    # a failing run (missing input) keeps the last success time
    assert main(["run", str(tmp_path / "missing"), "--db", str(db), "--metrics-textfile",
                 str(prom), "-q"]) == 3
    second = samples(prom)
    assert second[("detect_run_exit_code", ())] == 3
    assert second[("detect_last_success_timestamp_seconds", ())] == success
