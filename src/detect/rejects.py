"""The rejects file: every input line or row that did not become an event, and why.

During a run rejects go to a private temporary file (memory stays bounded); only
after the run's database transaction commits are they appended to
``<db>.rejects.ndjson``, so a killed run leaves no trace there either.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from detect.readers.base import Reject

MAX_RAW = 4096


def rejects_path(db: Path) -> Path:
    """The rejects file that belongs to database ``db``."""
    return db.with_name(db.name + ".rejects.ndjson")


class RejectWriter:
    """Collects one run's rejects in a temporary file, published on commit."""

    def __init__(self, db: Path, run_id: str) -> None:
        self.final = rejects_path(db)
        self.tmp = db.with_name(f".{db.name}.rejects.{run_id}.tmp")
        self.run_id = run_id
        self.count = 0
        self.by_file: dict[str, int] = {}
        self._f = None

    def __call__(self, reject: Reject) -> None:
        if self._f is None:
            self._f = self.tmp.open("w", encoding="utf-8")
        raw = reject.raw
        if raw is not None and len(raw) > MAX_RAW:
            raw = raw[:MAX_RAW] + "...(truncated)"
        record = {
            "run_id": self.run_id,
            "file": reject.path,
            "line": reject.line,
            "column": reject.column,
            "reason": reject.reason,
            "raw": raw,
        }
        self._f.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.count += 1
        self.by_file[reject.path] = self.by_file.get(reject.path, 0) + 1

    def publish(self) -> Path | None:
        """Append this run's rejects to the rejects file; returns it when there were any."""
        if self._f is None:
            return None
        self._f.close()
        self._f = None
        with self.final.open("ab") as out, self.tmp.open("rb") as src:
            shutil.copyfileobj(src, out)
            out.flush()
            os.fsync(out.fileno())
        self.tmp.unlink()
        return self.final

    def discard(self) -> None:
        """Drop this run's rejects (the run did not commit)."""
        if self._f is not None:
            self._f.close()
            self._f = None
        self.tmp.unlink(missing_ok=True)


def clean_stale(db: Path) -> None:
    """Remove temporary rejects left by killed runs (call while holding the run lock)."""
    for p in db.parent.glob(f".{db.name}.rejects.*.tmp"):
        p.unlink(missing_ok=True)
