"""Opening input files: gzip by content (magic bytes), never by extension alone."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from detect.errors import InputError, Location

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


def iter_line_blocks(path: Path, block_bytes: int) -> Iterator[tuple[bytes, int]]:
    """The decompressed content in blocks of whole lines, each with its first line number.

    A block is about ``block_bytes`` long (longer when one line is); memory is bounded
    by the block size, whatever the file size. A read error (a truncated gzip, say)
    raises ``InputError`` naming the last good line.
    """
    line = 1  # line number of the first line in `pending`
    pending = b""
    with open_binary(path) as f:
        while True:
            try:
                chunk = f.read(block_bytes)
            except (OSError, EOFError) as e:
                msg = f"cannot read after line {line}: {e}"
                raise InputError(msg, location=Location(str(path), line)) from e
            at_eof = not chunk
            data = pending + chunk if pending else chunk
            if not data:
                return
            if at_eof:
                cut = len(data)
            else:
                cut = data.rfind(b"\n") + 1
                if cut == 0:  # one line longer than the block: read on
                    pending = data
                    continue
            block, pending = (data, b"") if cut == len(data) else (data[:cut], data[cut:])
            yield block, line
            line += block.count(b"\n")
            if at_eof:
                return
