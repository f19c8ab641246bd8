"""The run lock: one writing ``detect run`` per database, the second fails at once.

DuckDB's own file lock is held only while a connection is open, and a run keeps
its connection closed between reading seen hashes and committing (so dashboards
can read meanwhile). The run lock covers the whole run instead: ``flock`` on
``<db>.lock`` beside the database. The kernel drops an ``flock`` when its holder
dies, so a crashed run never blocks the next one; the holder's pid, host, start
time and command are written into the file only so the error can name them.
The file is never deleted, since unlinking a lock file races with a new holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from detect.errors import LockHeldError, StoreError


def lock_path(db_path: Path) -> Path:
    """The lock file that guards ``db_path``: beside the file it *resolves* to, so a run
    through a symlink or another relative path takes the same lock."""
    real = Path(db_path).resolve()
    return real.with_name(real.name + ".lock")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_holder(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = b""
    while chunk := os.read(fd, 65536):
        raw += chunk
    try:
        holder = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "a process that has not written its details yet"
    return (
        f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started_at')}, "
        f"command {holder.get('command')!r}"
    )


class RunLock:
    """Exclusive, non-blocking run lock on ``<db>.lock``; use as a context manager.

    ``took_over`` holds the details a dead holder left in the file, if any, so the
    caller can log that a crashed run's lock was taken over.
    """

    def __init__(self, db_path: Path, *, command: str | None = None) -> None:
        self.path = lock_path(Path(db_path))
        self.command = command if command is not None else " ".join(sys.argv)
        self.took_over: dict[str, Any] | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise ``LockHeldError`` naming the holder; never waits."""
        if self._fd is not None:
            msg = f"run lock {self.path} is already held by this process"
            raise RuntimeError(msg)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:  # a read-only or foreign folder: the user's --db is unusable
            msg = f"cannot create the run lock beside the database: {e.strerror} ({self.path})"
            raise StoreError(msg) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            hint = "wait for it to finish"
            pid = holder.get("pid")
            if (
                isinstance(pid, int)
                and holder.get("host") == socket.gethostname()
                and not _pid_alive(pid)
            ):
                hint = (
                    f"pid {pid} is gone but a process it started still holds the lock; "
                    "end that process"
                )
            msg = f"another run holds the lock {self.path}: {_describe(holder)}; {hint}"
            raise LockHeldError(msg) from None
        except BaseException:
            os.close(fd)
            raise
        previous = _read_holder(fd)
        self.took_over = previous or None
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": self.command,
        }
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(info).encode("utf-8"))
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        """Clear the holder details and drop the lock; safe to call twice."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def acquire_lock(db_path: Path, *, command: str | None = None) -> RunLock:
    """Take the run lock for ``db_path`` now; release it with ``.release()`` or ``with``."""
    lock = RunLock(db_path, command=command)
    lock.acquire()
    return lock
