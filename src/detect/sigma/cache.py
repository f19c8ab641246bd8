"""The compiled-plan cache: a cron job re-running the same rules skips pySigma and compiling.

The key hashes the content of every rule file (and its path), the placeholder values,
the versions of detect and pySigma, and the source of the Sigma package itself, so
any change to a rule, a setting or the engine compiles afresh. Entries are pickles
written atomically (temp file, rename) under the user's own cache directory, the
same trust as the installed code; an unreadable entry is ignored and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PLAN_FORMAT = 1
_PACKAGE = Path(__file__).resolve().parent


def plan_key(files: Sequence[Path], placeholders: Mapping[str, Sequence[str]] | None) -> str:
    """A hash of everything a compiled plan depends on."""
    import sigma
    from detect import __version__

    h = hashlib.sha256()
    meta = {
        "format": PLAN_FORMAT,
        "detect": __version__,
        "pysigma": getattr(sigma, "__version__", None) or _dist_version("pysigma"),
        "placeholders": {k: list(v) for k, v in sorted((placeholders or {}).items())},
    }
    h.update(json.dumps(meta, sort_keys=True).encode())
    for src in sorted(_PACKAGE.glob("*.py")):
        h.update(src.read_bytes())
    for f in files:
        h.update(str(f).encode() + b"\0")
        h.update(f.read_bytes() + b"\0")
    return h.hexdigest()[:32]


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _path(cache_dir: Path, key: str) -> Path:
    return cache_dir / "sigma" / f"{key}.pickle"


def load_plan(cache_dir: Path, key: str) -> Any | None:
    """The object saved under ``key``; None when absent or unreadable."""
    try:
        with _path(cache_dir, key).open("rb") as f:
            return pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
        return None


def save_plan(obj: object, cache_dir: Path, key: str) -> None:
    """Write ``obj`` under ``key`` atomically; a cache that cannot be written is skipped."""
    final = _path(cache_dir, key)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=final.parent)
        with os.fdopen(fd, "wb") as f:
            pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
        Path(tmp).replace(final)
    except OSError:
        return
