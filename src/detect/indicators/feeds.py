"""The feed registry: which format a file is, and loading files, folders and globs of feeds.

Every format is one module (``plain``, ``csv_feed``, ``zeek_intel``, ``maltrail``,
``suricata_iprep``, ``stix``, ``misp``) with the same two functions:

- ``sniff(head: bytes, path: Path) -> bool``: content-based (``head`` is the first
  64 KiB, gzip already undone), so a feed renamed ``.txt`` still loads right;
- ``load(path: Path, *, options: FeedOptions) -> LoadResult``.

Modules are imported lazily (start-up stays fast, and a format whose module is not
there yet is skipped). ``FeedRows`` is the builder they share: one call per entry,
problems with file and line, skipped entries counted, columns built at the end.
"""

from __future__ import annotations

import glob
import importlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from detect.errors import InputError, Location
from detect.indicators.model import (
    INDICATOR_SCHEMA,
    FeedOptions,
    FeedProblem,
    LoadResult,
    empty_indicators,
)
from detect.indicators.normalize import NormalizeError, infer, normalize

# name -> module; the order is the sniff order, most specific first (``plain``
# accepts almost any list of values, so it comes last).
FEED_FORMATS: dict[str, str] = {
    "stix": "detect.indicators.stix",
    "misp": "detect.indicators.misp",
    "zeek-intel": "detect.indicators.zeek_intel",
    "maltrail": "detect.indicators.maltrail",
    "suricata-iprep": "detect.indicators.suricata_iprep",
    "csv": "detect.indicators.csv_feed",
    "plain": "detect.indicators.plain",
}

HEAD_BYTES = 65_536
# suffixes dropped from a file name to name its feed (``ipsum.txt.gz`` -> ``ipsum``)
_FEED_SUFFIXES = {
    ".gz", ".tar", ".tgz", ".txt", ".csv", ".tsv", ".json", ".netset", ".ipset", ".intel",
    ".dat", ".list", ".lst", ".rep", ".log", ".misp", ".stix", ".bundle",
}
_GLOB_CHARS = set("*?[")
NOT_A_FEED = "not a feed file (in a folder)"  # skipped key prefix; the path follows


class FeedFormatError(InputError):
    """A file named as a feed that no format recognises, or an unknown format name."""


def feed_source(path: Path, options: FeedOptions) -> str:
    """The feed's name in alerts: ``options.source``, else the file name without suffixes."""
    if options.source:
        return options.source
    name = path.name
    while True:
        stem, dot, suffix = name.rpartition(".")
        if not dot or not stem or f".{suffix.lower()}" not in _FEED_SUFFIXES:
            return name
        name = stem


def first_lines(text: str, pattern: re.Pattern[str]) -> dict[str, int]:
    """Line of the first match of ``pattern`` for each value of its group 1 (one pass).

    JSON feeds have no line per entry; a problem still names the line where its
    object's id (STIX ``"id"``, MISP ``"uuid"``) stands.
    """
    out: dict[str, int] = {}
    line, pos = 1, 0
    for m in pattern.finditer(text):
        line += text.count("\n", pos, m.start())
        pos = m.start()
        out.setdefault(m.group(1), line)
    return out


def parse_time(text: str, *, end: bool = False) -> datetime:
    """An ISO 8601 time (``Z`` or offset; naive times are UTC); raises ``ValueError``.

    A date alone is its day's first microsecond, or with ``end`` (a ``valid_until``) its
    last: an indicator "valid until 2024-01-02" still matches that day's events.
    """
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if end and _DATE_ONLY.fullmatch(value):
        parsed += timedelta(days=1, microseconds=-1)
    return parsed


_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


class FeedRows:
    """Indicator rows of one feed, collected entry by entry, then built into columns once.

    Rows belong to a *group* (a file, or a member of an archive) that supplies the
    ``origin`` prefix and default tags, severity and description, so a loader with
    1.85 M rows (Maltrail) does not build a string or a list per row. Per-row
    attributes are kept sparse (most feeds set few of them).
    """

    def __init__(self, path: Path, options: FeedOptions) -> None:
        self.path = path
        self.options = options
        self.source = feed_source(path, options)
        self.problems: list[FeedProblem] = []
        self.skipped: Counter[str] = Counter()
        self._types: list[str] = []
        self._values: list[str] = []
        self._lines: list[int] = []
        self._groups: list[int] = []
        self._group_meta: list[tuple[str, list[str] | None, str | None, str | None]] = []
        self._group = -1
        self._extra: dict[str, dict[int, Any]] = {
            k: {} for k in ("port", "source", "confidence", "severity", "tags", "valid_from",
                            "valid_until", "description", "to_ids")
        }
        self.group(path.name)

    def group(self, origin: str, *, tags: list[str] | None = None,
              severity: str | None = None, description: str | None = None) -> None:
        """Start a group of rows: origins read ``origin:line``; defaults for its rows."""
        self._group_meta.append((origin, tags, severity, description))
        self._group = len(self._group_meta) - 1

    @property
    def origin(self) -> str:
        """The current group's origin prefix (for problems)."""
        return self._group_meta[self._group][0]

    def __len__(self) -> int:
        return len(self._values)

    def add(self, kind: str, value: str, line: int, *, port: int | None = None,
            **extra: Any) -> None:
        """One indicator, already normalised; ``extra`` sets optional columns for this row."""
        i = len(self._values)
        self._types.append(kind)
        self._values.append(value)
        self._lines.append(line)
        self._groups.append(self._group)
        if port is not None:
            self._extra["port"][i] = port
        for key, val in extra.items():
            if val is not None:
                self._extra[key][i] = val

    def add_value(self, kind: str | None, raw: str, line: int, *, port: int | None = None,
                  **extra: Any) -> bool:
        """Normalise ``raw`` as ``kind`` (inferred when None) and add it, or record a problem."""
        try:
            typ, value = infer(raw) if kind is None else normalize(kind, raw)
        except NormalizeError as e:
            self.problem(line, str(e), raw)
            return False
        if port is not None and typ not in ("ip", "domain"):
            self.problem(line, f"a port only goes with an ip or a domain, not a {typ}: {raw!r}",
                         raw)
            return False
        self.add(typ, value, line, port=port, **extra)
        return True

    def problem(self, line: int | None, reason: str, raw: str | None = None) -> None:
        """An entry that could not be used (reason: lowercase, with the bad value)."""
        self.problems.append(FeedProblem(self.origin, line, reason, raw))

    def skip(self, reason: str, count: int = 1) -> None:
        """Entries left out on purpose, counted by reason."""
        self.skipped[reason] += count

    def _column(self, name: str, n: int, typ: pa.DataType) -> pa.Array:
        sparse = self._extra[name]
        if not sparse:
            return pa.nulls(n, typ)
        full: list[Any] = [None] * n
        for i, val in sparse.items():
            full[i] = val
        return pa.array(full, type=typ)

    def result(self) -> LoadResult:
        """The rows as an ``INDICATOR_SCHEMA`` table, with problems and skipped counts."""
        n = len(self._values)
        skipped = dict(self.skipped)
        if n == 0:
            return LoadResult(empty_indicators(), self.problems, skipped)
        schema = INDICATOR_SCHEMA
        groups = pa.array(self._groups, type=pa.int32())
        meta = list(zip(*self._group_meta, strict=True))

        def by_group(values: Iterable[Any], typ: pa.DataType) -> pa.Array:
            return pa.array(list(values), type=typ).take(groups)

        def with_default(name: str, default: pa.Array | None, fallback: Any = None) -> pa.Array:
            typ = schema.field(name).type
            col = self._column(name, n, typ)
            if default is not None:
                col = pc.coalesce(col, default)
            if fallback is not None:
                col = pc.coalesce(col, pa.scalar(fallback, type=typ))
            return col

        origin_prefix = by_group((f"{o}:" for o in meta[0]), pa.string())
        line_text = pc.cast(pa.array(self._lines, type=pa.int64()), pa.string())
        columns = {
            "type": pa.array(self._types, type=pa.string()),
            "value": pa.array(self._values, type=pa.string()),
            "port": self._column("port", n, pa.uint16()),
            "source": with_default("source", None, self.source),
            "confidence": with_default("confidence", None, self.options.confidence),
            "severity": with_default("severity", by_group(meta[2], pa.string()),
                                     self.options.severity),
            "tags": with_default("tags", by_group(meta[1], pa.list_(pa.string()))),
            "valid_from": self._column("valid_from", n, schema.field("valid_from").type),
            "valid_until": self._column("valid_until", n, schema.field("valid_until").type),
            "to_ids": self._column("to_ids", n, pa.bool_()),
            "description": with_default("description", by_group(meta[3], pa.string())),
            "origin": pc.binary_join_element_wise(origin_prefix, line_text, ""),
        }
        table = pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)
        return LoadResult(table, self.problems, skipped)


# -- registry -------------------------------------------------------------------------------


def _module(fmt: str) -> ModuleType | None:
    """The loader module of ``fmt``; None while it is not written yet (stix, misp)."""
    try:
        return importlib.import_module(FEED_FORMATS[fmt])
    except ModuleNotFoundError as e:
        if e.name == FEED_FORMATS[fmt]:
            return None
        raise


def available_formats() -> list[str]:
    """Format names whose loader module is present, in sniff order."""
    return [fmt for fmt in FEED_FORMATS if _module(fmt) is not None]


def _head(path: Path) -> bytes:
    from detect.readers.source import read_head

    return read_head(path, HEAD_BYTES)


def is_warninglist(head: bytes) -> bool:
    """A MISP warninglist (``list.json``): an allowlist, never a feed of indicators."""
    text = head.lstrip()
    if not text.startswith(b"{"):
        return False
    try:
        doc = json.loads(text)
    except ValueError:  # longer than the head: look at the keys' spelling instead
        return b'"matching_attributes"' in text and b'"list"' in text
    return isinstance(doc, dict) and "list" in doc and "matching_attributes" in doc


def detect_feed_format(path: Path | str) -> str:
    """The format name of the feed at ``path`` (a file, or a MISP feed folder).

    Raises ``FeedFormatError`` for a MISP warninglist (it suppresses indicators; load
    it as a warninglist) and for a file no format recognises.
    """
    path = Path(path)
    if path.is_dir():
        if (path / "manifest.json").is_file() and _module("misp") is not None:
            return "misp"
        from detect.indicators import maltrail

        if maltrail.is_trail_folder(path):
            return "maltrail"
        msg = ("a folder is a feed only when it is a MISP feed (manifest.json) or a Maltrail "
               "trails folder; name the files, or pass the folder to load_feeds")
        raise FeedFormatError(msg, location=Location(str(path)))
    head = _head(path)
    if is_warninglist(head):
        msg = "a MISP warninglist is an allowlist, not a feed: load it as a warninglist"
        raise FeedFormatError(msg, location=Location(str(path)))
    for fmt in FEED_FORMATS:
        module = _module(fmt)
        if module is not None and module.sniff(head, path):
            return fmt
    msg = ("not an indicator feed in any known format "
           f"({', '.join(available_formats())}); check the path, or convert the feed to "
           "one of these")
    raise FeedFormatError(msg, location=Location(str(path)))


def load_feed(path: Path | str, *, fmt: str | None = None,
              options: FeedOptions | None = None) -> LoadResult:
    """Load one feed (format sniffed unless ``fmt`` names it)."""
    path = Path(path)
    options = options or FeedOptions()
    if not path.exists():
        msg = "no such feed file or folder"
        raise InputError(msg, location=Location(str(path)))
    fmt = fmt or detect_feed_format(path)
    if fmt not in FEED_FORMATS:
        msg = f"unknown feed format {fmt!r}; use one of {', '.join(FEED_FORMATS)}"
        raise FeedFormatError(msg)
    module = _module(fmt)
    if module is None:
        msg = f"the {fmt!r} feed format is not available in this build"
        raise FeedFormatError(msg, location=Location(str(path)))
    result: LoadResult = module.load(path, options=options)
    return result


def merge_results(results: Iterable[LoadResult]) -> LoadResult:
    """One result: tables concatenated, problems in order, skipped counts added."""
    tables: list[pa.Table] = []
    problems: list[FeedProblem] = []
    skipped: Counter[str] = Counter()
    for r in results:
        if r.indicators.num_rows:
            tables.append(r.indicators.select(INDICATOR_SCHEMA.names).cast(INDICATOR_SCHEMA))
        problems.extend(r.problems)
        skipped.update(r.skipped)
    table = pa.concat_tables(tables) if tables else empty_indicators()
    return LoadResult(table, problems, dict(skipped))


def require_paths(specs: list[str]) -> None:
    """``InputError`` for a spec that is no glob and names no file or folder."""
    for spec in map(str, specs):
        if not _GLOB_CHARS & set(spec) and not Path(spec).exists():
            msg = "no such feed file or folder"
            raise InputError(msg, location=Location(spec))


def _expand(spec: str) -> list[tuple[Path, bool]]:
    """Feed paths for one spec, each with whether it was named (True) or found (False)."""
    if _GLOB_CHARS & set(spec):
        matches = sorted(Path(p) for p in glob.glob(spec, recursive=True))  # noqa: PTH207
        if not matches:
            msg = "the pattern matches no file"
            raise InputError(msg, location=Location(spec))
        out: list[tuple[Path, bool]] = []
        for m in matches:
            out.extend(_expand_path(m, named=False))
        return out
    require_paths([spec])
    return _expand_path(Path(spec), named=True)


def _expand_path(path: Path, *, named: bool) -> list[tuple[Path, bool]]:
    if not path.is_dir():
        return [(path, named)]
    if (path / "manifest.json").is_file():
        return [(path, True)]  # a MISP feed folder is one feed
    from detect.indicators import maltrail

    if maltrail.is_trail_folder(path):
        return [(path, True)]
    return [(p, False) for p in sorted(path.rglob("*"))
            if p.is_file() and not p.name.startswith(".")]


DOCUMENTATION = "documentation, not read as a feed"
_DOC_NAMES = ("license", "licence", "copying", "readme", "notice", "authors", "source")
_DOC_SUFFIXES = (".md", ".rst", ".html", ".pdf")


def _is_documentation(path: Path) -> bool:
    """A feed folder's LICENSE, README or notes: never read as indicators (Maltrail's
    LICENSE carries the Maltrail banner its trail files are recognised by)."""
    name = path.name.lower()
    return name.startswith(_DOC_NAMES) or name.endswith(_DOC_SUFFIXES)


def load_feeds(specs: list[str], *,
               options_for: Callable[[Path], FeedOptions] | None = None) -> LoadResult:
    """Load files, folders and globs of feeds into one result.

    A folder holding ``manifest.json`` is one MISP feed; a Maltrail trails folder is
    one Maltrail feed; any other folder is walked, and its files that are not feeds
    (``README``, a warninglist, a Suricata categories file) are skipped and counted.
    A file named explicitly that is not a feed raises ``FeedFormatError``.
    ``options_for(path)`` gives each feed its options (default ``FeedOptions()``).
    """
    results: list[LoadResult] = []
    for spec in specs:
        for path, named in _expand(spec):
            if not named and _is_documentation(path):
                results.append(LoadResult(empty_indicators(), [], {f"{DOCUMENTATION}: {path}": 1}))
                continue
            options = options_for(path) if options_for else FeedOptions()
            try:
                fmt = detect_feed_format(path)
            except FeedFormatError:
                if named:
                    raise
                results.append(LoadResult(empty_indicators(), [], {f"{NOT_A_FEED}: {path}": 1}))
                continue
            results.append(load_feed(path, fmt=fmt, options=options))
    return merge_results(results)
