"""The one normalised indicator table every feed format loads into.

A loader turns a feed file into rows of ``INDICATOR_SCHEMA`` (values already
normalised by ``detect.indicators.normalize``) plus a list of ``FeedProblem`` for
what it could not use. Nothing is dropped silently: an entry a loader cannot
express (a STIX pattern with FOLLOWEDBY, say) is a problem with its location.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")

# Indicator types and what each is matched against (FIELD_ROLES in detect.schema
# names the columns; "cidr" matches the "ip" role by longest prefix).
INDICATOR_TYPES: tuple[str, ...] = (
    "ip",
    "cidr",
    "domain",
    "url",
    "md5",
    "sha1",
    "sha256",
    "ja3",
    "ja3s",
    "email",
    "user-agent",
)

SEVERITIES: tuple[str, ...] = ("informational", "low", "medium", "high", "critical")

INDICATOR_SCHEMA = pa.schema(
    [
        pa.field("type", pa.string(), nullable=False),  # one of INDICATOR_TYPES
        pa.field("value", pa.string(), nullable=False),  # normalised (see normalize.py)
        pa.field("port", pa.uint16()),  # ip:port indicators (Maltrail, MISP ip-dst|port)
        pa.field("source", pa.string(), nullable=False),  # feed name
        pa.field("confidence", pa.int16()),  # 0..100, null when the feed says nothing
        pa.field("severity", pa.string()),  # one of SEVERITIES, null when the feed says nothing
        pa.field("tags", pa.list_(pa.string())),
        pa.field("valid_from", TIMESTAMP),
        pa.field("valid_until", TIMESTAMP),
        pa.field("to_ids", pa.bool_()),  # MISP: detection (True) or context (False)
        pa.field("description", pa.string()),  # event info, STIX name, trail file, ...
        pa.field("origin", pa.string()),  # "file:line" (or "file:member:line") it came from
    ]
)


@dataclass(frozen=True)
class FeedProblem:
    """An entry of a feed that could not be turned into an indicator, and why."""

    path: str
    line: int | None
    reason: str
    raw: str | None = None

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.reason}" + (f" ({self.raw[:80]!r})" if self.raw else "")


@dataclass(frozen=True)
class FeedOptions:
    """How to read one feed; every field has a sensible default.

    ``source`` names the feed in alerts (default: the file name without suffixes).
    ``column`` picks the value column of a header-in-comment CSV (abuse.ch exports).
    ``kind`` forces the indicator type of a plain list (default: inferred per line).
    ``context`` also loads MISP attributes with ``to_ids`` off (default: only
    detection attributes; context attributes are counted in ``skipped``).
    ``severity`` and ``confidence`` apply where the feed itself says nothing.
    """

    source: str | None = None
    column: str | None = None
    kind: str | None = None
    context: bool = False
    severity: str | None = None
    confidence: int | None = None


@dataclass
class LoadResult:
    """What one feed gave: indicators, problems, and entries skipped on purpose (counted)."""

    indicators: pa.Table
    problems: list[FeedProblem] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count (e.g. to_ids off)


def empty_indicators() -> pa.Table:
    """A zero-row indicator table."""
    return INDICATOR_SCHEMA.empty_table()


def indicator_table(rows: dict[str, list | pa.Array]) -> pa.Table:
    """An ``INDICATOR_SCHEMA`` table from columns; missing optional columns are null."""
    n = len(rows["value"])
    arrays = []
    for f in INDICATOR_SCHEMA:
        col = rows.get(f.name)
        if col is None:
            arrays.append(pa.nulls(n, f.type))
        else:
            arrays.append(pa.array(col, type=f.type) if not isinstance(col, pa.Array)
                          else col.cast(f.type))
    return pa.Table.from_arrays(arrays, schema=INDICATOR_SCHEMA)
