"""Schema migrations: named steps applied once, each in one transaction with its record."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from detect.errors import StoreError
from detect.store import MIGRATIONS, open_store
from detect.store.migrations import Migration, applied, check, migrate, pending

NAMES = [m.name for m in MIGRATIONS]


def test_fresh_database_applies_every_step_once_and_records_it(db: Path) -> None:
    con = duckdb.connect(str(db))
    assert pending(con) == NAMES
    assert migrate(con) == NAMES
    assert migrate(con) == []
    rows = con.execute("SELECT name, checksum FROM schema_migrations ORDER BY name").fetchall()
    assert rows == [(m.name, m.checksum) for m in MIGRATIONS]
    assert applied(con) == NAMES
    assert pending(con) == []
    tables = {
        r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    assert {"runs", "inputs", "alerts", "alert_contributions", "schema_migrations"} <= tables


def test_pending_and_applied_never_write(db: Path) -> None:
    con = duckdb.connect(str(db))
    assert pending(con) == NAMES
    assert applied(con) == []
    n = con.execute("SELECT count(*) FROM information_schema.tables").fetchone()
    assert n == (0,), "pending()/applied() created a table"
    con.close()
    # and they work on a read-only connection of a migrated database
    open_store(db).close()
    ro = duckdb.connect(str(db), read_only=True)
    assert applied(ro) == NAMES
    assert pending(ro) == []
    ro.close()


def test_failing_step_rolls_back_with_its_record(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "m.duckdb"))
    good = Migration("0001_good", "CREATE TABLE a (x INTEGER)")
    bad = Migration(
        "0002_bad", "CREATE TABLE b (x INTEGER); INSERT INTO b VALUES (1); SELECT * FROM nowhere"
    )
    with pytest.raises(StoreError, match=r"0002_bad.*rolled back"):
        migrate(con, [good, bad])
    assert applied(con) == ["0001_good"]
    tables = {
        r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    assert "a" in tables
    assert "b" not in tables
    fixed = Migration("0002_bad", "CREATE TABLE b (x INTEGER)")
    assert migrate(con, [good, fixed]) == ["0002_bad"]
    assert applied(con) == ["0001_good", "0002_bad"]


def test_edited_step_is_refused(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "m.duckdb"))
    migrate(con, [Migration("0001_a", "CREATE TABLE a (x INTEGER)")])
    with pytest.raises(StoreError, match="changed after this database applied it"):
        migrate(con, [Migration("0001_a", "CREATE TABLE a (x BIGINT)")])


def test_database_from_a_newer_version_is_refused(db: Path) -> None:
    con = duckdb.connect(str(db))
    migrate(con, [*MIGRATIONS, Migration("9999_future", "CREATE TABLE future (x INTEGER)")])
    with pytest.raises(StoreError, match="9999_future"):
        check(con)
    con.close()
    with pytest.raises(StoreError, match="does not know"):
        open_store(db, read_only=True)


def test_unsorted_steps_are_a_programming_error(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "m.duckdb"))
    steps = [Migration("0002_b", "SELECT 1"), Migration("0001_a", "SELECT 1")]
    with pytest.raises(ValueError, match="sorted"):
        migrate(con, steps)


def test_read_only_open_refuses_an_unmigrated_database(db: Path) -> None:
    con = duckdb.connect(str(db))
    migrate(con, MIGRATIONS[:2])
    con.close()
    with pytest.raises(StoreError, match="needs schema steps"):
        open_store(db, read_only=True)
    open_store(db).close()  # a writable open migrates the rest
    with open_store(db, read_only=True) as store:
        assert store.pending_migrations() == []


def test_open_translates_driver_errors(tmp_path: Path) -> None:
    not_db = tmp_path / "notes.duckdb"
    not_db.write_text("hello, I am not a database\n" * 100)
    with pytest.raises(StoreError, match="is not a DuckDB database") as info:
        open_store(not_db)
    assert isinstance(info.value.__cause__, duckdb.Error)
    with pytest.raises(StoreError, match="no database at"):
        open_store(tmp_path / "missing.duckdb", read_only=True)
    assert not (tmp_path / "missing.duckdb").exists()


def test_open_names_the_process_that_has_the_file(db: Path) -> None:
    open_store(db).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
            "print('ready', flush=True); time.sleep(30)",
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreError, match=rf"open in .*PID {holder.pid}"):
            open_store(db, wait_seconds=0.2)
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    open_store(db, wait_seconds=5).close()
