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
    """The first ``size`` bytes of the (decompressed) content.

    A truncated gzip still has a readable head: what was read before the error is
    returned (in small reads, so it is not lost with the failing one). When nothing at
    all can be read the error is raised, so the file is not taken for an empty one.
    """
    out = bytearray()
    with open_binary(path) as f:
        try:
            while len(out) < size:
                chunk = f.read(min(8192, size - len(out)))
                if not chunk:
                    break
                out += chunk
        except (OSError, EOFError):
            if not out:
                raise
    return bytes(out)


def text_lines(path: Path) -> io.TextIOWrapper:
    """The decompressed content as text lines (UTF-8, undecodable bytes escaped)."""
    raw = open_binary(path)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")


def _read_some(f: BinaryIO, size: int) -> tuple[bytes, Exception | None]:
    """Up to ``size`` bytes, and the read error that stopped it early (kept, not raised, so
    the lines read before a truncated gzip ends are not lost with the failing read)."""
    parts: list[bytes] = []
    got = 0
    try:
        while got < size:
            b = f.read1(size - got)
            if not b:
                break
            parts.append(b)
            got += len(b)
    except (OSError, EOFError) as e:
        return b"".join(parts), e
    return b"".join(parts), None


def iter_line_blocks(path: Path, block_bytes: int) -> Iterator[tuple[bytes, int]]:
    """The decompressed content in blocks of whole lines, each with its first line number.

    A block is about ``block_bytes`` long (longer when one line is); memory is bounded
    by the block size, whatever the file size. A read error (a truncated gzip, say)
    raises ``InputError`` naming the last good line.
    """
    line = 1  # line number of the first line in `pending`
    pending = b""
    error: Exception | None = None
    with open_binary(path) as f:
        while True:
            if error is None:
                chunk, error = _read_some(f, block_bytes)
            else:
                chunk = b""
            if error is not None and not chunk:  # the lines before it were yielded
                msg = f"cannot read line {line} or after (the file ends early?): {error}"
                raise InputError(msg, location=Location(str(path), line)) from error
            at_eof = not chunk and error is None
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
