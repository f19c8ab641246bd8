"""``detect run`` end to end as cron runs it: a subprocess, then read the DuckDB file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

TABLES = ("runs", "inputs", "alerts", "alert_contributions", "schema_migrations")


def detect(*args: str, cwd: Path, env: dict[str, str] | None = None,
           timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "detect", *args], cwd=cwd, capture_output=True, text=True,
        timeout=timeout, env={**os.environ, **(env or {})}, check=False,
    )


def dump(db: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: sorted(map(repr, con.execute(f"SELECT * FROM {t}").fetchall())) for t in TABLES}
    finally:
        con.close()


def _first_difference(a: list, b: list) -> str:
    for x, y in zip(a, b, strict=False):
        if x != y:
            i = next(k for k, (c, d) in enumerate(zip(x, y, strict=False)) if c != d)
            return f"before: ...{x[max(0, i - 80):i + 80]}\nafter:  ...{y[max(0, i - 80):i + 80]}"
    return f"{len(a)} rows before, {len(b)} after"


def write_inputs(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "conn.ndjson").write_text(
        '{"@timestamp":"2024-01-01T00:00:00Z","event.dataset":"conn","source.ip":"10.0.0.1",'
        '"destination.ip":"8.8.8.8","destination.port":53}\n'
        '{"@timestamp":"2024-01-01T00:00:01Z","event.dataset":"conn","source.ip":"10.0.0.2",'
        '"destination.ip":"1.1.1.1","destination.port":443}\n'
    )
    (folder / "dns.csv").write_text(
        "@timestamp,event.dataset,source.ip,dns.question.name\n"
        "2024-01-01T00:00:02Z,dns,10.0.0.1,example.com\n"
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    write_inputs(tmp_path / "logs")
    return tmp_path


def test_run_writes_the_database_and_a_rerun_adds_nothing(workdir: Path) -> None:
    db = workdir / "alerts.duckdb"
    first = detect("run", "logs", "--db", str(db), cwd=workdir)
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    con = duckdb.connect(str(db), read_only=True)
    run = con.execute("SELECT status, events_read, events_rejected, inputs, bytes_read, "
                      "read_seconds FROM runs").fetchall()
    inputs = con.execute("SELECT path, format, events FROM inputs ORDER BY path").fetchall()
    con.close()
    assert run[0][:4] == ("ok", 3, 0, 2)
    assert run[0][4] > 0
    assert run[0][5] is not None
    assert [(Path(p).name, f, e) for p, f, e in inputs] == [
        ("conn.ndjson", "ndjson", 2), ("dns.csv", "csv", 1)]
    before = dump(db)
    second = detect("run", "logs", "--db", str(db), cwd=workdir)
    assert second.returncode == 0, second.stderr
    after = dump(db)
    for table in ("inputs", "alerts", "alert_contributions"):
        assert after[table] == before[table], table
    con = duckdb.connect(str(db), read_only=True)
    last = con.execute("SELECT inputs, inputs_skipped, events_read FROM runs "
                       "ORDER BY started_at DESC LIMIT 1").fetchone()
    con.close()
    assert last == (0, 2, 0)


def test_reprocess_reads_again(workdir: Path) -> None:
    db = workdir / "alerts.duckdb"
    assert detect("run", "logs", "--db", str(db), cwd=workdir).returncode == 0
    again = detect("run", "logs", "--db", str(db), "--reprocess", "--log-format", "json",
                   cwd=workdir)
    assert again.returncode == 0, again.stderr
    finished = [json.loads(line) for line in again.stderr.splitlines()
                if '"run_finished"' in line]
    assert finished[0]["events"] == 3
    assert finished[0]["files_read"] == 2


def test_corrupted_input_exits_3_with_rejects_and_the_rest_stored(workdir: Path) -> None:
    logs = workdir / "logs"
    (logs / "broken.ndjson").write_text(
        '{"@timestamp":"2024-01-01T00:00:00Z","source.ip":"10.9.9.9"}\n'
        "{this is not json\n"
        '{"@timestamp":"2024-01-01T00:00:05Z","source.ip":"10.9.9.8","source.port":"http"}\n'
    )
    (workdir / "unreadable.parquet").write_bytes(b"PAR1 truncated garbage")
    db = workdir / "alerts.duckdb"
    result = detect("run", "logs", "unreadable.parquet", "--db", str(db), cwd=workdir)
    assert result.returncode == 3, result.stderr
    assert "unreadable.parquet" in result.stderr
    assert "Traceback" not in result.stderr
    rejects = [json.loads(line) for line in
               (workdir / "alerts.duckdb.rejects.ndjson").read_text().splitlines()]
    assert sorted((Path(r["file"]).name, r["line"]) for r in rejects) == [
        ("broken.ndjson", 2), ("broken.ndjson", 3)]
    assert all(r["reason"] and r["raw"] for r in rejects)
    con = duckdb.connect(str(db), read_only=True)
    status, events, rejected, errors = con.execute(
        "SELECT status, events_read, events_rejected, errors FROM runs").fetchone()
    stored = {Path(p).name for (p,) in con.execute("SELECT path FROM inputs").fetchall()}
    con.close()
    assert status == "partial"
    assert (events, rejected) == (4, 2)
    assert any("unreadable.parquet" in e for e in errors)
    assert stored == {"conn.ndjson", "dns.csv", "broken.ndjson"}


def test_missing_input_exits_3_and_names_it(workdir: Path) -> None:
    result = detect("run", "nope.log", "--db", str(workdir / "a.duckdb"), cwd=workdir)
    assert result.returncode == 3
    assert "nope.log" in result.stderr
    assert "Traceback" not in result.stderr


def test_second_concurrent_run_exits_4_naming_the_holder(workdir: Path) -> None:
    db = workdir / "alerts.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from detect.store import RunLock\n"
         f"with RunLock(Path({str(db)!r}), command='detect run holder'):\n"
         "    print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        t = time.monotonic()
        result = detect("run", "logs", "--db", str(db), cwd=workdir)
        assert result.returncode == 4, result.stderr
        assert time.monotonic() - t < 30
        assert f"pid {holder.pid}" in result.stderr
        assert "started" in result.stderr
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    # the holder is dead: its lock is taken over
    result = detect("run", "logs", "--db", str(db), cwd=workdir)
    assert result.returncode == 0, result.stderr


def _big_parquet(path: Path, rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ts = pa.array(1_700_000_000_000_000 + np.arange(rows, dtype=np.int64) * 1000,
                  pa.timestamp("us", "UTC"))
    ips = pa.array([f"10.{i % 250}.{(i // 250) % 250}.{i % 7}" for i in range(5000)])
    table = pa.table({
        "@timestamp": ts,
        "event.dataset": pa.array(["conn"] * rows).dictionary_encode(),
        "source.ip": ips.take(pa.array(rng.integers(0, 5000, rows))),
        "destination.ip": ips.take(pa.array(rng.integers(0, 5000, rows))),
        "destination.port": pa.array(rng.integers(1, 65535, rows).astype(np.uint16)),
    })
    pq.write_table(table, path, row_group_size=50_000)


@pytest.mark.slow
def test_sigkill_mid_run_leaves_the_database_unchanged(workdir: Path) -> None:
    db = workdir / "alerts.duckdb"
    assert detect("run", "logs", "--db", str(db), cwd=workdir).returncode == 0
    before = dump(db)
    big = workdir / "big"
    big.mkdir()
    for i in range(4):
        _big_parquet(big / f"part{i}.parquet", 400_000, seed=i)
    proc = subprocess.Popen(
        [sys.executable, "-m", "detect", "run", "big", "--db", str(db),
         "--batch-size", "2000"],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    lock = workdir / "alerts.duckdb.lock"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = lock.read_text() if lock.exists() else ""
        if f'"pid": {proc.pid}' in text:
            break
        time.sleep(0.05)
    time.sleep(0.5)  # well into reading the inputs (small batches make the run long)
    assert proc.poll() is None, "the run finished before it could be killed; make the input larger"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()
    after = dump(db)
    for table in TABLES:
        assert after[table] == before[table], _first_difference(before[table], after[table])
    assert not list(workdir.glob("*.rejects.ndjson"))
    # and the next run works and stores everything
    result = detect("run", "big", "--db", str(db), cwd=workdir)
    assert result.returncode == 0, result.stderr
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT sum(events) FROM inputs").fetchone()[0] == 3 + 1_600_000
    con.close()
