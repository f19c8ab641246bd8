"""The run lock: a second run fails at once naming the holder; a dead holder's lock is taken."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from detect.errors import LockHeldError, StoreError
from detect.store import RunLock, acquire_lock, lock_path

HOLD = """
import sys, time
from pathlib import Path
from detect.store import RunLock
lock = RunLock(Path(sys.argv[1]), command="detect run holder.ndjson")
lock.acquire()
print("locked", flush=True)
time.sleep(60)
"""


@contextmanager
def holder(db: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_second_run_fails_at_once_naming_the_holder(db: Path) -> None:
    with holder(db) as proc:
        t0 = time.monotonic()
        with pytest.raises(LockHeldError) as info:
            acquire_lock(db)
        assert time.monotonic() - t0 < 1.0
        text = str(info.value)
        assert f"pid {proc.pid}" in text
        assert socket.gethostname() in text
        assert "detect run holder.ndjson" in text
        assert info.value.exit_code == 4


def test_lock_of_a_killed_run_is_free(db: Path) -> None:
    with holder(db) as proc:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with RunLock(db) as lock:
            assert lock.held
            assert lock.took_over is not None
            assert lock.took_over["pid"] == proc.pid


def test_leftover_file_of_a_dead_pid_is_taken_over(db: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    lock_path(db).write_text(
        json.dumps({"pid": dead_pid, "host": socket.gethostname(), "command": "old"})
    )
    with RunLock(db, command="detect run new") as lock:
        assert lock.took_over is not None
        assert lock.took_over["pid"] == dead_pid
        info = json.loads(lock_path(db).read_text())
        assert info["pid"] == os.getpid()
        assert info["command"] == "detect run new"
        assert {"host", "started_at"} <= info.keys()


def test_garbage_in_the_lock_file_does_not_block(db: Path) -> None:
    lock_path(db).write_bytes(b"\xff\xfe not json")
    with RunLock(db) as lock:
        assert lock.held
        assert lock.took_over is None


def test_release_clears_the_holder_and_frees_the_lock(db: Path) -> None:
    lock = acquire_lock(db)
    with pytest.raises(LockHeldError, match=f"pid {os.getpid()}"):
        RunLock(db).acquire()
    lock.release()
    lock.release()
    assert lock_path(db).read_text() == ""
    assert lock_path(db).exists()
    with RunLock(db) as again:
        assert again.took_over is None
    assert not again.held


def test_a_symlink_to_the_database_takes_the_same_lock(db: Path, tmp_path: Path) -> None:
    link = tmp_path / "elsewhere" / "link.duckdb"
    link.parent.mkdir()
    link.symlink_to(db)
    with holder(db), pytest.raises(LockHeldError):
        acquire_lock(link)  # both runs would commit into one file
    with holder(link), pytest.raises(LockHeldError):
        acquire_lock(db)


def test_an_unwritable_database_folder_is_a_clear_error(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(*args: object, **kwargs: object) -> int:
        raise OSError(30, "Read-only file system")  # as a read-only mount gives, even to root

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(StoreError, match=r"cannot create the run lock.*Read-only file system"):
        acquire_lock(db)
