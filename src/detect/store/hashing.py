"""Content hashes of input files: what makes a rerun recognise what it already ingested."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def content_hash(path: Path) -> str:
    """Sha256 hex of the file's bytes, read in 1 MiB chunks (path and mtime do not count)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
