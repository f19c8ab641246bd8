"""Hypothesis strategies: Sigma rules over a few canonical columns, and events that hit them.

The generated space is the part of Sigma where pysigma-backend-sqlite is a faithful
reference (see ``tests/sigma/sqlite_reference.py``): ASCII values only (SQLite folds
ASCII case only), no keywords, no cidr, list columns only as one-element lists, regexes
from a subset where Python ``re`` and RE2 agree, numbers only on numeric columns.

Strings are drawn from one small alphabet that holds Sigma's special characters
(``*``, ``?``, ``\\``) and SQL ``LIKE``'s (``%``, ``_``) next to mixed-case letters; rule
values are raw Sigma string syntax (so pySigma's escape parsing is exercised), and
event values are assembled from the rule's own literal fragments, case-flipped, so that
matches happen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

STRING_COLUMNS = (
    "dns.question.name",
    "url.path",
    "user_agent.original",
    "http.request.method",  # dictionary<int32, string>
    "dns.answers.data",  # list<string>: one-element lists only
)
LIST_COLUMNS = frozenset({"dns.answers.data"})
NUMERIC_COLUMNS = {
    "destination.port": (0, 1, 53, 80, 443, 8080, 65535),
    "http.response.status_code": (200, 204, 301, 404, 500),
}
LETTERS = "aAbBcC"
ALPHABET = LETTERS + ".-%_*?\\"
DATASETS = ("http", "dns")
LOGSOURCES = ({"category": "proxy"}, {"category": "dns"}, {"product": "detect-test"})

sigma_text = st.text(ALPHABET, max_size=5)


# ---------------------------------------------------------------------------------------
# Regular expressions: a subset Python re and RE2 read alike


def _regex_atom() -> st.SearchStrategy[str]:
    literal = st.sampled_from([*LETTERS, "\\.", "-", "%", "_", "\\*", "\\?", "\\\\"])
    return st.one_of(
        literal,
        st.just("."),
        st.sampled_from(["[ab]", "[A-C]", "[^a]", "[.%]"]),
        st.tuples(literal, st.sampled_from(["*", "+", "?", "{1,2}"])).map("".join),
        st.tuples(literal, literal).map(lambda t: f"({t[0]}|{t[1]})"),
    )


regexes = st.tuples(
    st.sampled_from(["", "^"]),
    st.lists(_regex_atom(), min_size=1, max_size=4).map("".join),
    st.sampled_from(["", "$"]),
).map("".join)


# ---------------------------------------------------------------------------------------
# Detection items


@dataclass
class Fragments:
    """Literal text pieces a rule mentions, per column: material for matching events."""

    by_column: dict[str, list[str]] = field(default_factory=dict)

    def add(self, column: str, text: str) -> None:
        self.by_column.setdefault(column, []).append(text)


def _literal_pieces(sigma_value: str) -> str:
    """A plain string a Sigma pattern could match: wildcards dropped, escapes undone."""
    out = []
    i = 0
    while i < len(sigma_value):
        c = sigma_value[i]
        if c == "\\" and i + 1 < len(sigma_value) and sigma_value[i + 1] in "*?\\":
            out.append(sigma_value[i + 1])
            i += 2
            continue
        if c == "?":
            out.append("x")
        elif c != "*":
            out.append(c)
        i += 1
    return "".join(out)


@st.composite
def string_item(draw: st.DrawFn, column: str, frags: Fragments) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["plain", "plain", "plain", "re", "exists", "null"]))
    if kind == "exists":
        return f"{column}|exists", draw(st.booleans())
    if kind == "null":
        return column, None
    if kind == "re":
        pattern = draw(regexes)
        flag = draw(st.sampled_from(["", "|i"]))
        frags.add(column, "".join(ch for ch in pattern if ch in LETTERS))
        return f"{column}|re{flag}", pattern
    anchor = draw(st.sampled_from(["", "|contains", "|startswith", "|endswith"]))
    cased = draw(st.sampled_from(["", "", "|cased"]))
    values = draw(st.lists(sigma_text, min_size=1, max_size=3, unique=True))
    for v in values:
        frags.add(column, _literal_pieces(v))
    all_ = "|all" if len(values) > 1 and draw(st.booleans()) else ""
    value: Any = values[0] if len(values) == 1 and draw(st.booleans()) else values
    return f"{column}{anchor}{cased}{all_}", value


@st.composite
def numeric_item(draw: st.DrawFn, column: str, frags: Fragments) -> tuple[str, Any]:
    pool = NUMERIC_COLUMNS[column]
    kind = draw(st.sampled_from(["eq", "eq", "cmp", "exists", "null"]))
    if kind == "exists":
        return f"{column}|exists", draw(st.booleans())
    if kind == "null":
        return column, None
    if kind == "cmp":
        op = draw(st.sampled_from(["gt", "gte", "lt", "lte"]))
        return f"{column}|{op}", draw(st.sampled_from(pool))
    values = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
    return column, values if len(values) > 1 else values[0]


@st.composite
def selection(draw: st.DrawFn, frags: Fragments) -> dict[str, Any] | list[dict[str, Any]]:
    def one_map() -> dict[str, Any]:
        items: dict[str, Any] = {}
        for _ in range(draw(st.integers(1, 3))):
            column = draw(st.sampled_from([*STRING_COLUMNS, *NUMERIC_COLUMNS]))
            strategy = numeric_item if column in NUMERIC_COLUMNS else string_item
            key, value = draw(strategy(column, frags))
            items.setdefault(key, value)
        return items

    if draw(st.integers(0, 3)) == 0:
        return [one_map() for _ in range(draw(st.integers(2, 3)))]
    return one_map()


@st.composite
def condition(draw: st.DrawFn, names: list[str], depth: int = 0) -> str:
    choices = ["name", "name", "and", "or", "not", "of"] if depth < 3 else ["name", "of"]
    kind = draw(st.sampled_from(choices))
    if kind == "name":
        return draw(st.sampled_from(names))
    if kind == "of":
        quant = draw(st.sampled_from(["1 of", "all of"]))
        target = draw(st.sampled_from(["them", "sel*", "filter*", "*"]))
        return f"{quant} {target}"
    if kind == "not":
        return "not " + draw(condition(names, depth + 1))
    left, right = draw(condition(names, depth + 1)), draw(condition(names, depth + 1))
    parens = draw(st.booleans())
    expr = f"{left} {kind} {right}"
    return f"({expr})" if parens else expr


@dataclass
class Case:
    rule: dict[str, Any]
    events: list[dict[str, Any]]


def _flip_case(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.swapcase() if f else c for c, f in zip(text, flips, strict=True))


@st.composite
def event_value(draw: st.DrawFn, column: str, frags: Fragments) -> Any:
    if column in NUMERIC_COLUMNS:
        return draw(st.one_of(st.none(), st.sampled_from(NUMERIC_COLUMNS[column])))
    if draw(st.integers(0, 4)) == 0:
        return None
    pieces = frags.by_column.get(column, []) or [""]
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.integers(0, 2)):
            parts.append(_flip_case(draw, draw(st.sampled_from(pieces))))
        else:
            parts.append(draw(st.text(ALPHABET, max_size=2)))
    value = "".join(parts)
    return [value] if column in LIST_COLUMNS else value


@st.composite
def cases(draw: st.DrawFn) -> Case:
    frags = Fragments()
    n_sel = draw(st.integers(1, 3))
    names = [f"sel{i}" for i in range(1, n_sel + 1)]
    if draw(st.booleans()):
        names.append("filter1")
    detection: dict[str, Any] = {name: draw(selection(frags)) for name in names}
    if draw(st.integers(0, 4)) == 0:
        detection["_hidden"] = draw(selection(frags))
    cond = draw(condition(names))
    if "filter*" in cond and "filter1" not in names:
        cond = cond.replace("filter*", "sel*")
    detection["condition"] = cond
    rule = {
        "title": "generated",
        "id": "5b0e6a4c-7d0e-4c3b-9a47-0d6f0f7b9c11",
        "status": "test",
        "logsource": draw(st.sampled_from(LOGSOURCES)),
        "detection": detection,
        "level": "low",
    }
    columns = [*STRING_COLUMNS, *NUMERIC_COLUMNS]
    events = []
    for _ in range(draw(st.integers(1, 12))):
        event: dict[str, Any] = {"event.dataset": draw(st.sampled_from(DATASETS))}
        for column in columns:
            value = draw(event_value(column, frags))
            if value is not None:
                event[column] = value
        events.append(event)
    return Case(rule, events)
