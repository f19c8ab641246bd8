"""MISP feeds: feed folders, single event JSON (both wrappers) and MISP CSV exports.

MISP is plain JSON and CSV, so no PyMISP: a feed folder is ``manifest.json`` plus
one ``<uuid>.json`` per event (``hashes.csv`` is ignored: it only holds MD5s of the
values, for overlap tests); a single event comes as ``{"Event": {...}}`` or as a
REST search response ``{"response": [{"Event": {...}}]}``; a CSV export has the
header ``uuid,event_id,category,type,value,comment,to_ids,date,...``.

Attributes are read at event level and inside ``Object``s. Only ``to_ids``
attributes are detection indicators; the others are context and load only with
``FeedOptions(context=True)``. Mapping decisions:

- severity from ``Event.threat_level_id``: 1 high, 2 medium, 3 low, 4 (undefined) null;
- tags: event and attribute tag names (``tlp:*``, ``misp-galaxy:*`` kept as written)
  plus galaxy cluster tag names, each once;
- source: ``Event.Orgc.name``, else ``FeedOptions.source``, else the file/folder name;
- description: ``Event.info``, with the attribute comment after `` — `` when there is one;
- valid_from / valid_until: the attribute's ``first_seen`` / ``last_seen`` (else its
  object's); confidence from the attribute's ``decay_score`` (highest score, 0..100)
  when the export includes it, else ``FeedOptions.confidence``, else null.

Every attribute is accounted for exactly once: a row (two for ``domain|ip``), a
``skipped`` count (``deleted``, ``unsupported type: <type>``, ``context (to_ids off)``)
or a ``FeedProblem`` (a value that does not normalise, a bad timestamp).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from detect.indicators.feeds import feed_source, first_lines
from detect.indicators.model import FeedOptions, FeedProblem, LoadResult, indicator_table
from detect.indicators.normalize import NormalizeError, normalize
from detect.readers.source import open_binary

__all__ = ["ATTRIBUTE_TYPES", "load", "sniff"]

# MISP attribute type -> indicator types of its parts ("" = part not used, e.g. a filename)
ATTRIBUTE_TYPES: dict[str, tuple[str, ...]] = {
    "ip-src": ("ip",),
    "ip-dst": ("ip",),
    "ip-src|port": ("ip", "port"),
    "ip-dst|port": ("ip", "port"),
    "domain": ("domain",),
    "hostname": ("domain",),
    "domain|ip": ("domain", "ip"),
    "url": ("url",),
    "md5": ("md5",),
    "sha1": ("sha1",),
    "sha256": ("sha256",),
    "filename|md5": ("", "md5"),
    "filename|sha1": ("", "sha1"),
    "filename|sha256": ("", "sha256"),
    "ja3-fingerprint-md5": ("ja3",),
    "email": ("email",),
    "email-src": ("email",),
    "email-dst": ("email",),
    "user-agent": ("user-agent",),
    "x509-fingerprint-sha1": ("sha1",),
    "x509-fingerprint-sha256": ("sha256",),
}
_X509 = {"x509-fingerprint-sha1", "x509-fingerprint-sha256"}
SEVERITY_BY_THREAT_LEVEL = {"1": "high", "2": "medium", "3": "low"}  # 4 = undefined
CONTEXT = "context (to_ids off)"

_JSON_EVENT = re.compile(rb'^\s*\[?\s*\{\s*"(Event|response)"\s*:')
_CSV_HEADER = re.compile(r"^\ufeff?\"?uuid\"?,\"?event_id\"?,")
_UUID_LINE = re.compile(r'"uuid"\s*:\s*"([0-9a-fA-F-]{36})"')
_CSV_NEEDS = ("uuid", "type", "value", "to_ids")


def sniff(head: bytes, path: Path) -> bool:
    """True for a MISP feed folder (or its manifest), a MISP event JSON or a MISP CSV export."""
    if path.is_dir():
        return (path / "manifest.json").is_file()
    if path.name == "manifest.json":
        return _looks_like_manifest(head)
    if _JSON_EVENT.match(head):
        return True
    first = head.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip()
    if not _CSV_HEADER.match(first):
        return False
    columns = {c.strip().strip('"') for c in first.lstrip("\ufeff").split(",")}
    return all(c in columns for c in _CSV_NEEDS)


def load(path: Path, *, options: FeedOptions) -> LoadResult:
    """Indicator rows of a MISP feed folder, event JSON or CSV export; see the module doc."""
    acc = _Accumulator(options)
    if path.is_dir() or path.name == "manifest.json":
        folder = path if path.is_dir() else path.parent
        _load_folder(folder, acc)
    else:
        text = _read_text(path, acc)
        if text is not None:
            if _CSV_HEADER.match(text[:200]):
                _load_csv(path, text, acc)
            else:
                _load_json_file(path, text, acc)
    return LoadResult(indicator_table(acc.cols), acc.problems, dict(acc.skipped))


@dataclass
class _Accumulator:
    """Column lists, problems and skip counts of one load (rows appended, linear)."""

    options: FeedOptions
    cols: dict[str, list[Any]] = field(default_factory=lambda: {name: [] for name in (
        "type", "value", "port", "source", "confidence", "severity", "tags", "valid_from",
        "valid_until", "to_ids", "description", "origin")})
    problems: list[FeedProblem] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    def add(self, **row: Any) -> None:
        for name, col in self.cols.items():
            col.append(row.get(name))


@dataclass(frozen=True)
class _EventContext:
    """What every attribute of one event shares."""

    path: Path
    source: str
    severity: str | None
    tags: tuple[str, ...]
    info: str | None
    lines: dict[str, int]
    uuid: str | None = None  # the event's, to name an attribute that has none


def _read_text(path: Path, acc: _Accumulator) -> str | None:
    try:
        with open_binary(path) as f:
            return f.read().decode("utf-8", errors="replace")
    except (OSError, EOFError) as e:
        acc.problems.append(FeedProblem(str(path), None, f"cannot read the file: {e}"))
        return None


def _looks_like_manifest(head: bytes) -> bool:
    return bool(re.match(rb'^\s*\{\s*("[0-9a-fA-F-]{36}"\s*:|\})', head))


def _load_folder(folder: Path, acc: _Accumulator) -> None:
    """Every event the manifest lists; a listed event without its file is a problem."""
    manifest_path = folder / "manifest.json"
    text = _read_text(manifest_path, acc)
    if text is None:
        return
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as e:
        acc.problems.append(FeedProblem(str(manifest_path), e.lineno,
                                        f"manifest is not valid JSON: {e.msg}"))
        return
    if not isinstance(manifest, dict):
        acc.problems.append(FeedProblem(str(manifest_path), None,
                                        "manifest is not a JSON object of event uuid -> "
                                        "metadata"))
        return
    for uuid in manifest:
        event_path = folder / f"{uuid}.json"
        if not event_path.is_file():
            acc.problems.append(FeedProblem(str(manifest_path), None,
                                            f"event {uuid} is listed in the manifest but "
                                            f"{event_path.name} is missing"))
            continue
        event_text = _read_text(event_path, acc)
        if event_text is not None:
            _load_json_file(event_path, event_text, acc, default_source=folder.name)


def _load_json_file(path: Path, text: str, acc: _Accumulator, *,
                    default_source: str | None = None) -> None:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        acc.problems.append(FeedProblem(str(path), e.lineno, f"not valid JSON: {e.msg}"))
        return
    events = list(_events(doc))
    if not events:
        acc.problems.append(FeedProblem(str(path), None,
                                        'no MISP event: expected {"Event": {...}} or '
                                        '{"response": [{"Event": {...}}]}'))
        return
    lines = first_lines(text, _UUID_LINE)
    fallback = acc.options.source or default_source or feed_source(path, FeedOptions())
    for event in events:
        _load_event(event, path, lines, fallback, acc)


def _events(doc: Any) -> Iterator[dict[str, Any]]:
    """The events of either wrapper (and of a plain list of wrapped events)."""
    if isinstance(doc, dict) and isinstance(doc.get("response"), list):
        doc = doc["response"]
    items = doc if isinstance(doc, list) else [doc]
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("Event"), dict):
            yield item["Event"]


def _load_event(event: dict[str, Any], path: Path, lines: dict[str, int], fallback: str,
                acc: _Accumulator) -> None:
    orgc = event.get("Orgc")
    source = orgc.get("name") if isinstance(orgc, dict) and orgc.get("name") else fallback
    ctx = _EventContext(
        path=path,
        source=str(source),
        severity=SEVERITY_BY_THREAT_LEVEL.get(str(event.get("threat_level_id"))),
        tags=tuple(_event_tags(event)),
        info=str(event["info"]) if event.get("info") else None,
        lines=lines,
        uuid=str(event["uuid"]) if event.get("uuid") else None,
    )
    for i, attr in enumerate(event.get("Attribute") or ()):
        _load_attribute(attr, None, ctx, acc, place=f"Attribute[{i}]")
    for j, obj in enumerate(event.get("Object") or ()):
        if not isinstance(obj, dict):
            continue
        gone = _flag(obj.get("deleted"))  # a deleted object deletes its attributes
        for i, attr in enumerate(obj.get("Attribute") or ()):
            _load_attribute(attr, obj, ctx, acc, place=f"Object[{j}].Attribute[{i}]",
                            deleted=gone)


def _load_attribute(attr: Any, obj: dict[str, Any] | None, ctx: _EventContext,
                    acc: _Accumulator, *, place: str, deleted: bool = False) -> None:
    """One attribute; ``place`` (``Attribute[3]``) names it in problems when it has no uuid."""
    if ctx.uuid:
        place = f"{place} of event {ctx.uuid}"
    if not isinstance(attr, dict):
        acc.problems.append(FeedProblem(str(ctx.path), ctx.lines.get(ctx.uuid or ""),
                                        f"{place}: attribute is not a JSON object",
                                        repr(attr)[:200]))
        return
    uuid = str(attr.get("uuid") or "")
    line = ctx.lines.get(uuid) if uuid else None
    seen = {k: attr.get(k) or (obj or {}).get(k) for k in ("first_seen", "last_seen")}
    _add_attribute(
        acc, path=ctx.path, line=line, ident=uuid or place,
        kind=str(attr.get("type", "")), value=attr.get("value"),
        to_ids=_flag(attr.get("to_ids")), deleted=deleted or _flag(attr.get("deleted")),
        tags=_merge(ctx.tags, _tag_names(attr)), source=ctx.source, severity=ctx.severity,
        info=ctx.info, comment=attr.get("comment"),
        first_seen=seen["first_seen"], last_seen=seen["last_seen"],
        confidence=_decay_confidence(attr.get("decay_score")),
    )


def _decay_confidence(scores: Any) -> int | None:
    """Highest decaying-model score (REST ``includeDecayScore``) as 0..100, else None."""
    if not isinstance(scores, list):
        return None
    values = [s.get("score") for s in scores if isinstance(s, dict)]
    numbers = [float(v) for v in values if isinstance(v, int | float | str)
               and str(v).replace(".", "", 1).isdigit()]
    return max(0, min(100, round(max(numbers)))) if numbers else None


def _add_attribute(acc: _Accumulator, *, path: Path, line: int | None, ident: str, kind: str,
                   value: Any, to_ids: bool, deleted: bool, tags: list[str], source: str,
                   severity: str | None, info: str | None, comment: Any,
                   first_seen: Any, last_seen: Any, confidence: int | None = None) -> None:
    """One attribute (JSON or CSV) to rows, a skip count or a problem: exactly one of these."""
    where = f"{ident}: " if ident else ""
    if deleted:
        acc.skipped["deleted"] += 1
        return
    parts_kinds = ATTRIBUTE_TYPES.get(kind)
    if parts_kinds is None:
        acc.skipped[f"unsupported type: {kind or '(none)'}"] += 1
        return
    if not to_ids and not acc.options.context:
        acc.skipped[CONTEXT] += 1
        return
    text = "" if value is None else str(value)
    parts = text.split("|", 1) if len(parts_kinds) == 2 else [text]
    if len(parts) != len(parts_kinds):
        acc.problems.append(FeedProblem(str(path), line,
                                        f"{where}{kind} value without its '|' separator",
                                        text))
        return
    try:
        valid_from = _timestamp(first_seen)
        valid_until = _timestamp(last_seen)
    except ValueError as e:
        acc.problems.append(FeedProblem(str(path), line, f"{where}{e}", text))
        return
    port: int | None = None
    values: list[tuple[str, str]] = []
    try:
        for part, part_kind in zip(parts, parts_kinds, strict=True):
            if part_kind == "port":
                port = _port(part)
            elif part_kind:
                values.append(normalize(part_kind, part))
    except (NormalizeError, ValueError) as e:
        acc.problems.append(FeedProblem(str(path), line, f"{where}{kind}: {e}", text))
        return
    if kind in _X509 and "x509" not in tags:
        tags = [*tags, "x509"]
    note = str(comment).strip() if comment else ""
    description = " — ".join(x for x in (info, note) if x) or None
    origin = f"{path}:{line}" if line is not None else f"{path}:{ident}"
    for norm_kind, norm_value in values:
        acc.add(type=norm_kind, value=norm_value, port=port, source=source,
                confidence=acc.options.confidence if confidence is None else confidence,
                severity=severity or acc.options.severity,
                tags=tags, valid_from=valid_from, valid_until=valid_until, to_ids=to_ids,
                description=description, origin=origin)


def _load_csv(path: Path, text: str, acc: _Accumulator) -> None:
    """A MISP CSV export; ``includeContext`` columns (event_info, event_tag...) when present."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [c.strip() for c in reader.fieldnames or ()]
    reader.fieldnames = columns
    missing = [c for c in _CSV_NEEDS if c not in columns]
    if missing:
        acc.problems.append(FeedProblem(str(path), 1,
                                        f"MISP CSV header lacks {', '.join(missing)}"))
        return
    fallback = feed_source(path, acc.options)
    for row in reader:
        line = reader.line_num
        event_tags = _split_tags(row.get("event_tag"))
        _add_attribute(
            acc, path=path, line=line, ident="",
            kind=(row.get("type") or "").strip(), value=row.get("value"),
            to_ids=_flag(row.get("to_ids")), deleted=_flag(row.get("deleted")),
            tags=_merge(tuple(event_tags), _split_tags(row.get("attribute_tag"))),
            source=row.get("event_source_org") or row.get("event_org") or fallback,
            severity=SEVERITY_BY_THREAT_LEVEL.get((row.get("event_threat_level_id") or "")
                                                  .strip()),
            info=row.get("event_info") or None, comment=row.get("comment"),
            first_seen=row.get("first_seen") or None, last_seen=row.get("last_seen") or None,
        )


def _event_tags(event: dict[str, Any]) -> list[str]:
    """Event tag names (``Tag`` or ``EventTag`` form) and galaxy cluster tag names."""
    names = _tag_names(event)
    for galaxy in event.get("Galaxy") or ():
        for cluster in (galaxy or {}).get("GalaxyCluster") or ():
            name = (cluster or {}).get("tag_name")
            if isinstance(name, str) and name and name not in names:
                names.append(name)
    return names


def _tag_names(item: dict[str, Any]) -> list[str]:
    out: list[str] = []
    tags = list(item.get("Tag") or ())
    tags += [t.get("Tag") for t in item.get("EventTag") or item.get("AttributeTag") or ()
             if isinstance(t, dict)]
    for tag in tags:
        name = tag.get("name") if isinstance(tag, dict) else tag
        if isinstance(name, str) and name and name not in out:
            out.append(name)
    return out


def _split_tags(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _merge(first: tuple[str, ...], more: list[str]) -> list[str]:
    out = list(first)
    out.extend(t for t in more if t not in first)
    return out


def _flag(value: Any) -> bool:
    """MISP booleans: JSON true/false, or "1"/"0", "true"/"false" strings (older versions)."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def _port(text: str) -> int:
    port = int(text.strip())
    if not 0 <= port <= 65535:
        msg = f"port out of range: {port}"
        raise ValueError(msg)
    return port


def _timestamp(value: Any) -> datetime | None:
    """MISP ``first_seen``/``last_seen`` (ISO 8601, microseconds) as aware UTC; ValueError."""
    if value is None or value == "":
        return None
    try:
        ts = datetime.fromisoformat(str(value).strip())
    except ValueError:
        msg = f"first_seen/last_seen is not an ISO 8601 time: {value!r}"
        raise ValueError(msg) from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


