"""The compiled indicator index: feeds loaded, merged, suppressed, and turned into kernel arrays.

Building means parsing every feed; a cron job every five minutes with millions of
indicators cannot afford that. So the index is saved in the cache directory under a
key that hashes the feeds' content, the allowlists' content and the settings that
shape it; any change gives a new key and a rebuild. A saved index is memory-mapped
back (Arrow IPC and ``.npy`` files), so loading costs about nothing per indicator.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from detect.indicators.merge import MERGED_SCHEMA, merge
from detect.indicators.model import FeedOptions

INDEX_FORMAT = "detect-indicator-index/1"
SUPPRESSED_SCHEMA = pa.schema(
    [
        pa.field("type", pa.string()),
        pa.field("value", pa.string()),
        pa.field("port", pa.uint16()),
        pa.field("sources", pa.list_(pa.string())),
        pa.field("list_name", pa.string()),
        pa.field("list_entry", pa.string()),
        pa.field("match", pa.string()),
    ]
)


@dataclass
class IndicatorIndex:
    """Everything the indicator engine needs; row ``i`` of ``indicators`` is indicator id ``i``."""

    index_hash: str
    indicators: pa.Table  # MERGED_SCHEMA, after suppression
    suppressed: pa.Table  # SUPPRESSED_SCHEMA: what allowlists removed, and which list
    arrays: dict[str, np.ndarray]  # kernel index arrays, "<part>.<name>"
    feeds: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    built_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    from_cache: bool = False
    seconds: float = 0.0

    def by_type(self) -> dict[str, int]:
        """Indicator counts per type."""
        counts = self.indicators.group_by("type").aggregate([("value", "count")]).to_pylist()
        return {row["type"]: row["value_count"] for row in counts}


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _files(specs: Sequence[str]) -> list[Path]:
    out: list[Path] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.is_file()
                              and not any(part.startswith(".") for part in q.relative_to(p).parts)))
        elif p.exists():
            out.append(p)
        else:
            import glob

            out.extend(sorted(Path(m) for m in glob.glob(spec, recursive=True)  # noqa: PTH207
                              if Path(m).is_file()))
    return out


def index_key(feeds: Sequence[str], allowlists: Sequence[str], options: FeedOptions,
              layout: str = "") -> str:
    """A hash of everything that shapes the index: feed and list content, settings, and the
    kernels' array layout (a new release with other index arrays never reads an old cache).
    """
    h = hashlib.sha256(INDEX_FORMAT.encode())
    h.update(layout.encode())
    for label, specs in (("feeds", feeds), ("allowlists", allowlists)):
        h.update(label.encode())
        for p in _files(specs):
            h.update(str(p.resolve()).encode())
            h.update(_file_hash(p).encode())
    h.update(json.dumps(asdict(options), sort_keys=True, default=str).encode())
    return h.hexdigest()[:32]


def _cache_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / "indicators" / key


def save_index(index: IndicatorIndex, cache_dir: Path) -> Path:
    """Write ``index`` under its key, atomically (a temp folder renamed into place)."""
    final = _cache_path(cache_dir, index.index_hash)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
    try:
        with pa.OSFile(str(tmp / "indicators.arrow"), "wb") as f, \
                pa.ipc.new_file(f, index.indicators.schema) as w:
            w.write_table(index.indicators)
        with pa.OSFile(str(tmp / "suppressed.arrow"), "wb") as f, \
                pa.ipc.new_file(f, index.suppressed.schema) as w:
            w.write_table(index.suppressed)
        for name, arr in index.arrays.items():
            np.save(tmp / f"{name}.npy", arr, allow_pickle=False)
        meta = {
            "format": INDEX_FORMAT,
            "index_hash": index.index_hash,
            "built_at": index.built_at.isoformat(),
            "feeds": index.feeds,
            "problems": index.problems,
            "arrays": sorted(index.arrays),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, default=str), encoding="utf-8")
        if final.exists():
            shutil.rmtree(tmp)
            return final
        tmp.replace(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def load_cached(cache_dir: Path, key: str) -> IndicatorIndex | None:
    """The index saved under ``key``, memory-mapped; None when absent or unreadable."""
    path = _cache_path(cache_dir, key)
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format") != INDEX_FORMAT:
            return None
        indicators = pa.ipc.open_file(pa.memory_map(str(path / "indicators.arrow"))).read_all()
        suppressed = pa.ipc.open_file(pa.memory_map(str(path / "suppressed.arrow"))).read_all()
        arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r", allow_pickle=False)
                  for name in meta["arrays"]}
    except (OSError, ValueError, KeyError, pa.ArrowInvalid):
        return None
    return IndicatorIndex(
        index_hash=key, indicators=indicators, suppressed=suppressed, arrays=arrays,
        feeds=meta.get("feeds", []), problems=meta.get("problems", []),
        built_at=datetime.fromisoformat(meta["built_at"]), from_cache=True,
    )


def _group_suppressed(removed: pa.Table) -> pa.Table:
    """One row per removed indicator and list, with every feed that carried it."""
    import polars as pl

    if removed.num_rows == 0:
        return SUPPRESSED_SCHEMA.empty_table()
    df = pl.from_arrow(removed.select(
        ["type", "value", "port", "source", "list_name", "list_entry", "match"]))
    assert isinstance(df, pl.DataFrame)
    grouped = df.group_by(["type", "value", "port", "list_name", "list_entry", "match"],
                          maintain_order=True).agg(
        pl.col("source").unique(maintain_order=True).alias("sources"))
    return grouped.select(SUPPRESSED_SCHEMA.names).to_arrow().cast(SUPPRESSED_SCHEMA)


def _feed_stats(indicators: pa.Table, skipped: dict[str, int]) -> list[dict[str, Any]]:
    """Indicators per feed (source) and type, for ``detect indicators stats`` and the run record."""
    rows = indicators.group_by(["source", "type"]).aggregate([("value", "count")]).to_pylist()
    by_source: dict[str, dict[str, int]] = {}
    for row in rows:
        by_source.setdefault(row["source"], {})[row["type"]] = row["value_count"]
    stats: list[dict[str, Any]] = [
        {"source": source, "indicators": sum(types.values()), "by_type": types}
        for source, types in sorted(by_source.items())
    ]
    if skipped:
        stats.append({"source": "(skipped)", "skipped": dict(skipped)})
    return stats


def build_index(
    feeds: Sequence[str],
    *,
    allowlists: Sequence[str] = (),
    options: FeedOptions | None = None,
    cache_dir: Path | None = None,
    compile_arrays: Callable[[pa.Table], dict[str, np.ndarray]] | None = None,
    layout: str = "",
) -> IndicatorIndex:
    """Load, merge, suppress and compile ``feeds``, or load the cached result.

    ``compile_arrays`` turns the merged indicator table into kernel arrays (the
    matcher module supplies it); with ``cache_dir`` the result is saved and reused
    while feeds, allowlists and options stay the same.
    """
    from detect.indicators.feeds import load_feeds
    from detect.indicators.feeds import require_paths as require_feed_paths
    from detect.indicators.suppress import suppress
    from detect.indicators.warninglists import load_warninglists, require_paths

    t0 = time.perf_counter()
    # before the cache: the key hashes only files that exist, so a mistyped path would
    # find the index built without it
    require_feed_paths(list(feeds))
    require_paths(list(allowlists))
    options = options or FeedOptions()
    key = index_key(feeds, allowlists, options, layout)
    if cache_dir is not None:
        cached = load_cached(cache_dir, key)
        if cached is not None:
            cached.seconds = time.perf_counter() - t0
            return cached
    loaded = load_feeds(list(feeds), options_for=lambda _path: options)
    problems = [str(p) for p in loaded.problems]
    raw = loaded.indicators
    suppressed = SUPPRESSED_SCHEMA.empty_table()
    if allowlists:
        lists = load_warninglists(list(allowlists))
        problems.extend(str(p) for p in lists.problems)
        raw, removed = suppress(raw, lists)
        suppressed = _group_suppressed(removed)
    merged = merge(raw)
    arrays = compile_arrays(merged) if compile_arrays is not None else {}
    index = IndicatorIndex(
        index_hash=key,
        indicators=merged.cast(MERGED_SCHEMA),
        suppressed=suppressed,
        arrays=arrays,
        feeds=_feed_stats(loaded.indicators, loaded.skipped),
        problems=problems,
    )
    if cache_dir is not None:
        save_index(index, cache_dir)
    index.seconds = time.perf_counter() - t0
    return index
