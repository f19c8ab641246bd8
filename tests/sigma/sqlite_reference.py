"""pysigma-backend-sqlite as an independent reference for Sigma semantics.

A rule is converted to SQL by the backend and run over an in-memory SQLite table whose
columns are the canonical ones (``detect.schema.COLUMNS``), one row per event, plus
``_fulltext`` (every string value of the event, one per line: the backend's keyword
search column) and ``_row`` (the event's position). Every column is ``COLLATE NOCASE``
because Sigma strings compare case-insensitively; the columns have no declared type, so
numbers keep numeric comparison.

What the table cannot say the way the Sigma specification means it is documented where
it matters (``tests/sigma/test_differential.py``, ``test_divergence_*``):

* SQLite's ``LIKE`` and ``NOCASE`` fold ASCII letters only;
* keyword search is ``LIKE '%value%'`` over the whole-event text column;
* ``cidr`` becomes ``LIKE`` prefixes of the dotted text;
* list-valued columns have no SQL form: :func:`sqlite_value` accepts a one-element list as
  its element (an empty list or several elements raise :class:`NotRepresentableError`);
* ``|re`` runs through Python's :mod:`re` (``REGEXP`` user function), not RE2.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sigma.collection import SigmaCollection
from sigma.rule import SigmaRule

from detect.schema import COLUMNS

FULLTEXT = "_fulltext"
ROW = "_row"
TABLE_COLUMNS: tuple[str, ...] = (*COLUMNS, FULLTEXT)


class NotRepresentableError(TypeError):
    """An event value the SQLite table cannot hold with the same meaning."""


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def regexp(pattern: str, value: object) -> bool:
    """SQLite ``REGEXP``: Sigma ``|re`` is a search (unanchored); flags come inline."""
    return value is not None and re.search(pattern, str(value)) is not None


def sqlite_value(value: object) -> object:
    """An event value as SQLite stores it (see the module docstring for lists)."""
    if isinstance(value, list | tuple):
        if len(value) == 1:
            return sqlite_value(value[0])
        msg = f"list of {len(value)} values has no SQLite column form"
        raise NotRepresentableError(msg)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        msg = "binary value"
        raise NotRepresentableError(msg)
    return value


def fulltext(event: Mapping[str, Any]) -> str:
    """The keyword-search text of an event: its string values, one per line."""
    parts: list[str] = []
    for key, value in event.items():
        if key == "@timestamp" or value is None:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        parts.extend(v for v in values if isinstance(v, str))
    return "\n".join(parts)


def to_sql(rule: SigmaRule | str | dict[str, Any], **backend_options: Any) -> list[str]:
    """The backend's queries for one rule (a parsed rule, its YAML text or its dict).

    A parsed rule is converted as it is: pass a fresh copy, conversion applies the
    backend's (empty) processing pipeline to it.
    """
    from sigma.backends.sqlite import sqliteBackend

    if isinstance(rule, str):
        collection = SigmaCollection.from_yaml(rule)
    elif isinstance(rule, dict):
        collection = SigmaCollection.from_dicts([rule])
    else:
        collection = SigmaCollection([rule])
    backend = sqliteBackend(fulltext_field=FULLTEXT, **backend_options)
    return list(backend.convert(collection))


class SqliteTable:
    """One in-memory table of events; run any number of backend queries over it."""

    def __init__(self, events: Sequence[Mapping[str, Any]]) -> None:
        self.con = sqlite3.connect(":memory:")
        self.con.create_function("REGEXP", 2, regexp, deterministic=True)
        self.con.execute(
            "CREATE TABLE logs ("
            + ", ".join(f"{quote(c)} COLLATE NOCASE" for c in TABLE_COLUMNS)
            + f", {quote(ROW)} INTEGER)"
        )
        for i, event in enumerate(events):
            names = [*event, FULLTEXT, ROW]
            values = [sqlite_value(v) for v in event.values()] + [fulltext(event), i]
            self.con.execute(
                f"INSERT INTO logs ({', '.join(map(quote, names))}) "
                f"VALUES ({', '.join('?' for _ in names)})",
                values,
            )

    def rows(self, query: str) -> set[int]:
        """``_row`` of every event the query selects."""
        cur = self.con.execute(query)
        row_index = [d[0] for d in cur.description].index(ROW)
        return {r[row_index] for r in cur.fetchall()}

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> SqliteTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_sql(query: str, events: Sequence[Mapping[str, Any]]) -> set[int]:
    """Positions of the events ``query`` selects."""
    with SqliteTable(events) as table:
        return table.rows(query)


def run_queries(queries: Iterable[str], events: Sequence[Mapping[str, Any]]) -> set[int]:
    """Positions selected by any of ``queries`` (a rule with a list of conditions)."""
    with SqliteTable(events) as table:
        out: set[int] = set()
        for q in queries:
            out |= table.rows(q)
        return out
