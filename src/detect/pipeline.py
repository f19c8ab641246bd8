"""The batch pipeline behind ``detect run`` and ``detect match``.

files -> reader -> canonical batches -> enrich -> engines -> hits -> alert
contributions -> one DuckDB transaction. Every stage works batch by batch, so memory
is bounded by the batch size, never by the input size. Per-file problems are
collected, not raised: the other files still run, and the exit code says 3.
"""

from __future__ import annotations

import glob
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detect.config import Settings
from detect.errors import InputError
from detect.hits import EngineSet, empty_hits
from detect.readers import InputFile, ReadContext, detect_format, expand_inputs, read_file
from detect.readers.base import Reject
from detect.schema import CANONICAL_SCHEMA
from detect.store.hashing import content_hash

STAGES = ("hash", "read", "enrich", "match", "aggregate", "store")


@dataclass
class FileReport:
    """What happened to one input file."""

    path: str
    format: str | None = None
    size: int = 0
    mtime: datetime | None = None
    content_hash: str | None = None
    status: str = "pending"  # ok | unchanged | error | not-telemetry
    events: int = 0
    rejects: int = 0
    hits: int = 0  # rule and indicator hits (event, rule, field)
    skipped: Counter[str] = field(default_factory=Counter)
    error: str | None = None
    seconds: float = 0.0


@dataclass
class Progress:
    """Callbacks a front end may give to follow a long run."""

    on_file_start: Callable[[FileReport], None] = lambda _f: None
    on_batch: Callable[[FileReport, int], None] = lambda _f, _n: None
    on_file_done: Callable[[FileReport], None] = lambda _f: None


@dataclass
class Timer:
    """Seconds spent per stage."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    def add(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + (now - since)
        return now


def _fill_defaults(batch: pa.RecordBatch, path: str, settings: Settings) -> pa.RecordBatch:
    """Give every event its file, and the configured sensor/organisation where it has none."""
    n = batch.num_rows
    cols = {
        "log.file.path": path,
        "observer.name": settings.observer,
        "organization.name": settings.organization,
    }
    for name, value in cols.items():
        if value is None:
            continue
        i = CANONICAL_SCHEMA.get_field_index(name)
        current = batch.column(i)
        typ = CANONICAL_SCHEMA.field(name).type
        fill = pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, dtype=np.int32)), pa.array([value], type=pa.string())
        ).cast(typ)
        if name != "log.file.path" and current.null_count < n:
            if current.null_count == 0:
                continue
            fill = pc.coalesce(current, fill)
        batch = batch.set_column(i, CANONICAL_SCHEMA.field(name), fill)
    return batch


def iter_file_batches(
    item: InputFile,
    report: FileReport,
    settings: Settings,
    reject: Callable[[Reject], None],
    timer: Timer,
) -> Iterator[pa.RecordBatch]:
    """Canonical, enriched batches of one file; errors are raised as ``InputError``."""
    from detect.enrich import enrich

    fmt = report.format or detect_format(item.path)
    report.format = fmt

    def count_reject(r: Reject) -> None:
        report.rejects += 1
        reject(r)

    ctx = ReadContext(item.path, batch_size=settings.batch_size, reject=count_reject,
                      skipped=report.skipped)
    t = time.perf_counter()
    for batch in read_file(item.path, fmt=fmt, ctx=ctx):
        t = timer.add("read", t)
        out = enrich(_fill_defaults(batch, str(item.path), settings))
        t = timer.add("enrich", t)
        report.events += out.num_rows
        yield out
        t = time.perf_counter()
    timer.add("read", t)


def prepare_file(item: InputFile, report: FileReport, timer: Timer) -> None:
    """Stat, hash and name the format of a file (raises ``InputError``)."""
    try:
        st = item.path.stat()
    except OSError as e:
        msg = f"cannot read: {e.strerror or e}"
        raise InputError(msg) from e
    report.size = st.st_size
    report.mtime = datetime.fromtimestamp(st.st_mtime, UTC)
    t = time.perf_counter()
    try:
        report.content_hash = content_hash(item.path)
    except OSError as e:
        msg = f"cannot read: {e.strerror or e}"
        raise InputError(msg) from e
    timer.add("hash", t)
    report.format = detect_format(item.path)


def unmatched(specs: list[str], files: list[InputFile]) -> list[str]:
    """Globs and folders among ``specs`` that gave no file (a typo, or nothing new yet)."""
    out = []
    for spec in specs:
        text = str(spec)
        if glob.has_magic(text):
            if not glob.glob(text, recursive=True):  # noqa: PTH207 (absolute globs)
                out.append(text)
        elif Path(text).is_dir():
            root = Path(text)
            if not any(f.path.is_relative_to(root) for f in files):
                out.append(text)
    return out


def expand(specs: list[str]) -> tuple[list[InputFile], list[FileReport]]:
    """Input files, and a failed report for every spec that names nothing."""
    files, errors = expand_inputs(list(specs))
    failed = [
        FileReport(path=e.location.path if e.location else "?", status="error", error=e.msg)
        for e in errors
    ]
    return files, failed


def run_engines(engines: EngineSet, batch: pa.RecordBatch, offset: int) -> pa.Table:
    """All engines over one batch; ``event_index`` shifted to the input-wide position."""
    tables = [e.match(batch) for e in engines.engines]
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return empty_hits()
    hits = pa.concat_tables(tables)
    shifted = pc.add(hits.column("event_index"), pa.scalar(offset, pa.int64()))
    return hits.set_column(0, "event_index", shifted)


