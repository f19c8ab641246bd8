"""User mistakes in flags exit 2 with one readable line, never a traceback (exit 1 means alerts)."""

from __future__ import annotations

import errno
from pathlib import Path

import duckdb
import pytest

from detect.cli import main


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "conn.ndjson"
    path.write_text(
        '{"@timestamp":"2024-01-01T00:00:00Z","event.dataset":"conn","source.ip":"10.0.0.1",'
        '"destination.ip":"8.8.8.8","destination.port":53}\n'
    )
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """An existing database file, so the flag checks are what fails, not a missing --db."""
    path = tmp_path / "a.duckdb"
    duckdb.connect(str(path)).close()
    return path


def _fails_with_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    return err


def test_metrics_textfile_in_a_missing_folder_is_refused_before_the_run(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "new.duckdb"
    prom = tmp_path / "nodir" / "m.prom"
    _fails_with_2(["-q", "run", str(log), "--db", str(db), "--metrics-textfile", str(prom)],
                  f"cannot write the metrics file {prom}: folder {prom.parent} does not exist",
                  capsys)
    assert not db.exists()  # nothing ran


def test_metrics_textfile_that_cannot_be_written_after_the_run_is_one_line(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def disk_full(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("detect.metrics.write_to_textfile", disk_full)
    db = tmp_path / "new.duckdb"
    prom = tmp_path / "m.prom"
    err = _fails_with_2(["-q", "run", str(log), "--db", str(db), "--metrics-textfile", str(prom)],
                        f"cannot write the metrics file {prom}: No space left on device", capsys)
    assert "the run itself was stored" in err
    assert db.exists()


def test_alerts_negative_limit_is_a_usage_error(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fails_with_2(["alerts", "--db", str(db), "--limit", "-1"], "Invalid value for '--limit'",
                  capsys)


@pytest.mark.parametrize("flag", ["--since", "--until"])
def test_alerts_time_out_of_range_is_a_usage_error(
    flag: str, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fails_with_2(["alerts", "--db", str(db), flag, "99999999d"],
                  f"{flag}: '99999999d' is out of range", capsys)


def test_generate_negative_seed_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "gen"
    _fails_with_2(["generate", "--events", "1000", "--seed", "-1", "-o", str(out)],
                  "seed must be 0 or more, got -1", capsys)
    assert not out.exists()


def test_generate_events_help_and_check_agree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "--help"]) == 0
    assert "1,000 to 10,000,000,000" in capsys.readouterr().out
    _fails_with_2(["generate", "--events", "10", "-o", str(tmp_path / "gen")],
                  "events must be between 1,000 and 10,000,000,000", capsys)


@pytest.mark.parametrize("name", ["hits.csv", "hits", "hits.parquet.tmp"])
def test_match_output_must_be_parquet(
    name: str, log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / name
    _fails_with_2(["match", str(log), "-o", str(out)],
                  "hits are written as Parquet: name the output file *.parquet", capsys)
    assert not out.exists()


def test_match_spark_master_needs_the_spark_engine(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "hits.parquet"
    _fails_with_2(["match", str(log), "-o", str(out), "--spark-master", "spark://x:7077"],
                  "--spark-master needs --engine spark", capsys)
    assert not out.exists()
