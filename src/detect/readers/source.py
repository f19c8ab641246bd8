"""Opening input files: gzip by content (magic bytes), never by extension alone."""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: Path) -> bool:
    """True when the file starts with the gzip magic bytes."""
    with path.open("rb") as f:
        return f.read(2) == GZIP_MAGIC


def open_binary(path: Path) -> BinaryIO:
    """Open ``path`` for reading bytes, decompressing gzip transparently."""
    if is_gzip(path):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def read_head(path: Path, size: int = 65_536) -> bytes:
    """The first ``size`` bytes of the (decompressed) content."""
    with open_binary(path) as f:
        try:
            return f.read(size)
        except (OSError, EOFError):
            # a truncated gzip still has a readable head
            return b""


def text_lines(path: Path) -> io.TextIOWrapper:
    """The decompressed content as text lines (UTF-8, undecodable bytes escaped)."""
    raw = open_binary(path)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")
