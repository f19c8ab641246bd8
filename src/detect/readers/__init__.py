"""Readers: one module per input format, chosen by content; each yields canonical batches.

Use :func:`detect_format` to name a file's format and :func:`read_file` to stream it.
:func:`expand_inputs` turns the paths, directories and globs a user typed into files.
"""

from __future__ import annotations

import glob
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pyarrow as pa

from detect.errors import InputError, Location, NotTelemetryError
from detect.readers.base import ReadContext, Reject
from detect.readers.source import read_head

# Sniffed in this order: the most specific formats first.
FORMATS: dict[str, str] = {
    "ocsf": "detect.readers.ocsf",
    "zeek-tsv": "detect.readers.zeek_tsv",
    "suricata-eve": "detect.readers.suricata_eve",
    "zeek-json": "detect.readers.zeek_json",
    "ndjson": "detect.readers.ndjson",
    "parquet": "detect.readers.parquet",
    "arrow": "detect.readers.arrow_ipc",
    "csv": "detect.readers.csv",
}

# Files a directory walk never treats as telemetry: our own outputs and bookkeeping.
_OWN_SUFFIXES = (".duckdb", ".duckdb.wal", ".lock", ".rejects.ndjson", ".md", ".toml", ".yml",
                 ".yaml", ".py", ".txt")


def reader_module(fmt: str) -> ModuleType:
    """The module that reads ``fmt``."""
    try:
        return importlib.import_module(FORMATS[fmt])
    except KeyError:
        msg = f"unknown format {fmt!r}; known formats: {', '.join(FORMATS)}"
        raise InputError(msg) from None


def detect_format(path: Path) -> str:
    """Name the format of ``path`` from its content (gzip is looked through)."""
    try:
        head = read_head(path)
    except (OSError, EOFError) as e:  # EOFError: a gzip cut off before any content
        msg = f"cannot read: {getattr(e, 'strerror', None) or e}"
        raise InputError(msg, location=Location(str(path))) from e
    if not head:  # no events: skipped in a folder (a rotated log of a quiet hour), as junk is
        msg = "file is empty"
        raise NotTelemetryError(msg, location=Location(str(path)))
    for fmt in FORMATS:
        try:
            module = reader_module(fmt)
        except ModuleNotFoundError:
            continue
        if module.sniff(head, path):
            return fmt
    preview = head[:40].decode("utf-8", "replace").splitlines()[0] if head.strip() else ""
    msg = (
        f"unknown format (starts with {preview!r}); expected Zeek TSV or JSON, Suricata EVE, "
        "OCSF, Parquet, Arrow IPC, CSV or NDJSON with an '@timestamp' field"
    )
    raise NotTelemetryError(msg, location=Location(str(path), 1))


@dataclass(frozen=True)
class InputFile:
    """A file to read, and whether the user named it (not just its directory)."""

    path: Path
    explicit: bool


def expand_inputs(specs: list[str | Path]) -> tuple[list[InputFile], list[InputError]]:
    """Files named by paths, directories (walked recursively) and globs, in a stable order.

    Returns the files and one error per spec that names nothing readable. A glob that
    matches nothing is not an error (a cron job may find no new files).
    """
    files: list[InputFile] = []
    errors: list[InputError] = []
    seen: set[Path] = set()

    def add(p: Path, *, explicit: bool) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            files.append(InputFile(p, explicit))

    for spec in specs:
        text = str(spec)
        if glob.has_magic(text):
            for match in sorted(glob.glob(text, recursive=True)):  # noqa: PTH207 (absolute globs)
                p = Path(match)
                if p.is_file():
                    add(p, explicit=True)
                elif p.is_dir():
                    for f in _walk(p):
                        add(f, explicit=False)
            continue
        p = Path(text)
        if p.is_dir():
            for f in _walk(p):
                add(f, explicit=False)
        elif p.is_file():
            add(p, explicit=True)
        else:
            errors.append(InputError("no such file or directory", location=Location(text)))
    return files, errors


def _walk(root: Path) -> Iterator[Path]:
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if p.is_file() and not p.name.endswith(_OWN_SUFFIXES):
            yield p


def read_file(
    path: Path,
    *,
    fmt: str | None = None,
    batch_size: int = 65_536,
    on_reject: callable | None = None,  # type: ignore[valid-type]
    ctx: ReadContext | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream one file as canonical (not yet enriched) batches of at most ``batch_size`` rows."""
    fmt = fmt or detect_format(path)
    if ctx is None:
        ctx = ReadContext(path, batch_size=batch_size, reject=on_reject or (lambda _r: None))
    module = reader_module(fmt)
    try:
        for batch in module.read_batches(ctx):
            if batch.num_rows:
                yield batch
    except InputError:
        raise
    except (OSError, EOFError, UnicodeDecodeError) as e:
        msg = f"cannot read: {e}"
        raise InputError(msg, location=Location(str(path))) from e


__all__ = [
    "FORMATS",
    "InputFile",
    "ReadContext",
    "Reject",
    "detect_format",
    "expand_inputs",
    "read_file",
    "reader_module",
]
