"""Why a Sigma rule matched an event: which detections were true, on which field values.

Each named detection of the rule (``selection``, ``filter_vendors``, ...) is compiled
on its own with the project's compiler, next to the whole rule, into one leaf table;
one executor pass per batch then gives, for every detection and every leaf, the rows
where it is true. Per hit row, an :class:`Explanation` lists the detections that were
true and, for each, its positive field conditions that held with the event's value.

Everything up to the row sets is vectorised per batch; only the rows being explained
(a few hits a person reads) are turned into Python objects.

>>> from sigma.collection import SigmaCollection
>>> from detect.schema import conform
>>> rule = SigmaCollection.from_yaml('''
... title: Executable download
... logsource: {category: proxy}
... detection:
...     selection: {url.path|endswith: [.exe, .dll]}
...     filter: {url.domain|endswith: .microsoft.com}
...     condition: selection and not filter
... ''').rules[0]
>>> batch = conform({"event.dataset": pa.array(["http", "http"]),
...                  "url.path": pa.array(["/a/Setup.EXE", "/b.dll"]),
...                  "url.domain": pa.array(["dl.example", "x.microsoft.com"])}, 2)
>>> explainer = RuleExplainer(rule)
>>> explainer.hits(batch).tolist()
[0]
>>> [e.detections[0].fields[0] for e in explainer.explain(batch)]
[FieldValue(field='url.path', value='/a/Setup.EXE', test="endswith '.exe'")]
>>> [d.name for d in explainer.explain(batch, [1])[0].detections]   # not a hit: why
['selection', 'filter']
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from sigma.conditions import SigmaCondition
from sigma.rule import SigmaRule

from detect.sigma import rowsets as rs
from detect.sigma.compiler import PCRE_DOLLAR, Compiler, LeafBuilder, UnsupportedError, compile_rule
from detect.sigma.executor import BatchRun, Executor
from detect.sigma.logsource import datasets
from detect.sigma.plan import (
    ANCHOR_NAMES,
    CONTAINS,
    ENDSWITH,
    EQUALS,
    STARTSWITH,
    BoolLeaf,
    CidrLeaf,
    CompareLeaf,
    FieldRefLeaf,
    Leaf,
    NullLeaf,
    RegexLeaf,
    StringLeaf,
    TimePartLeaf,
    Tree,
    positive_leaves,
)

__all__ = ["DetectionMatch", "Explanation", "FieldValue", "RuleExplainer", "explain"]

_OPS = {
    "equal": "=",
    "not_equal": "!=",
    "less": "<",
    "less_equal": "<=",
    "greater": ">",
    "greater_equal": ">=",
}
_V4_MAPPED = b"\x00" * 10 + b"\xff\xff"
_SHOWN_PATTERNS = 3


@dataclass(frozen=True)
class FieldValue:
    """One field condition of a detection that held for the event.

    ``value`` is the event's value of ``field`` (a list for list columns); ``test`` says
    what was tested, narrowed to the patterns the value matched (``endswith '.exe'``).
    """

    field: str
    value: object
    test: str


@dataclass(frozen=True)
class DetectionMatch:
    """A named detection (``selection``, ``filter``...) that was true for the event."""

    name: str
    fields: tuple[FieldValue, ...]


@dataclass(frozen=True)
class Explanation:
    """One event (``row`` of the batch): whether the rule hit it, and which detections held.

    ``detections`` are in the rule's order; for a hit of ``selection and not filter`` it
    holds ``selection`` only, for a miss it shows what was (or was not) there.
    """

    row: int
    hit: bool
    detections: tuple[DetectionMatch, ...]


class RuleExplainer:
    """A rule compiled whole and detection by detection, to explain its hits per batch.

    Raises :class:`~detect.sigma.compiler.UnsupportedError` (with the engine's reason)
    when the rule itself cannot run. A detection the condition never uses and that
    cannot compile on its own is left out and listed in :attr:`unexplained`.
    """

    def __init__(
        self, rule: SigmaRule, *, placeholders: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        self.rule = rule
        builder = LeafBuilder()
        self.tree: Tree = compile_rule(rule, builder, placeholders)
        self.datasets = datasets(rule.logsource)
        self.detections: dict[str, Tree] = {}
        self.unexplained: dict[str, str] = {}
        for name in rule.detection.detections:
            try:
                parsed = SigmaCondition(name, rule.detection).parsed
                compiled = Compiler(builder, placeholders).node(parsed)
            except UnsupportedError as e:
                self.unexplained[name] = str(e)
                continue
            except Exception as e:  # noqa: BLE001 - an explanation never crashes the caller
                self.unexplained[name] = f"{type(e).__name__}: {e}"
                continue
            self.detections[name] = builder.intern(compiled)
        self.leaves: tuple[Leaf, ...] = tuple(builder.leaves)
        self._positive = {
            n: tuple(dict.fromkeys(positive_leaves(t))) for n, t in self.detections.items()
        }
        self._executor = Executor(self.leaves)
        self._cache: tuple[pa.RecordBatch, BatchRun] | None = None

    def _run(self, batch: pa.RecordBatch) -> BatchRun:
        """One executor pass per batch, kept for the last batch (hits, then explain)."""
        if self._cache is None or self._cache[0] is not batch:
            self._cache = (batch, self._executor.start(batch))
        return self._cache[1]

    def hits(self, batch: pa.RecordBatch) -> np.ndarray:
        """Sorted rows of ``batch`` the rule matches (logsource applied, as the engine does)."""
        if batch.num_rows == 0:
            return np.zeros(0, dtype=np.int64)
        run = self._run(batch)
        rows = run.tree(self.tree)
        if self.datasets is not None and not rows.empty:
            rows = rs.and_([rows, rs.dense(run.datasets(self.datasets))], run.n)
        return rs.to_rows(rows, run.n)

    def in_logsource(self, batch: pa.RecordBatch) -> np.ndarray:
        """Boolean mask of the rows the rule's logsource selects (all rows without one)."""
        if self.datasets is None:
            return np.ones(batch.num_rows, dtype=np.bool_)
        return self._run(batch).datasets(self.datasets)

    def detection_masks(self, batch: pa.RecordBatch) -> dict[str, np.ndarray]:
        """Per detection name, a boolean mask of the rows where it is true."""
        run = self._run(batch)
        everything = np.arange(batch.num_rows)
        return {n: rs.contains(run.tree(t), everything) for n, t in self.detections.items()}

    def explain(
        self, batch: pa.RecordBatch, rows: Iterable[int] | np.ndarray | None = None
    ) -> list[Explanation]:
        """An :class:`Explanation` per row of ``rows`` (default: every hit of the batch)."""
        run = self._run(batch)
        query = self.hits(batch) if rows is None else np.asarray(list(rows), dtype=np.int64)
        if not len(query):
            return []
        hit = rs.member(self.hits(batch), query)
        true_in = {n: rs.contains(run.tree(t), query) for n, t in self.detections.items()}
        leaf_ids = sorted({i for ids in self._positive.values() for i in ids})
        leaf_true = {i: rs.contains(run.leaf(i), query) for i in leaf_ids}
        columns = {self.leaves[i].column for i in leaf_ids} | {
            leaf.other
            for leaf in map(self.leaves.__getitem__, leaf_ids)
            if isinstance(leaf, FieldRefLeaf)
        }
        taken = batch.take(pa.array(query))
        values = {c: taken.column(c).to_pylist() for c in sorted(columns)}
        out = []
        for k, row in enumerate(query.tolist()):
            matches = []
            for name in self.detections:
                if not true_in[name][k]:
                    continue
                fields = tuple(
                    FieldValue(
                        self.leaves[i].column,
                        values[self.leaves[i].column][k],
                        describe(
                            self.leaves[i],
                            values[self.leaves[i].column][k],
                            _other(self.leaves[i], values, k),
                        ),
                    )
                    for i in self._positive[name]
                    if leaf_true[i][k]
                )
                matches.append(DetectionMatch(name, fields))
            out.append(Explanation(int(row), bool(hit[k]), tuple(matches)))
        return out


def explain(
    rule: SigmaRule,
    batch: pa.RecordBatch,
    rows: Iterable[int] | np.ndarray | None = None,
    *,
    placeholders: Mapping[str, Sequence[str]] | None = None,
) -> list[Explanation]:
    """Explain ``rule`` on ``rows`` of a canonical ``batch`` (default: the rule's hits).

    A shortcut for ``RuleExplainer(rule).explain(batch, rows)``; build the explainer
    once when explaining many batches.
    """
    return RuleExplainer(rule, placeholders=placeholders).explain(batch, rows)


# ---------------------------------------------------------------------------------------
# Describing a leaf for a person, narrowed to what the event's value matched


def _other(leaf: Leaf, values: Mapping[str, list], k: int) -> object:
    return values[leaf.other][k] if isinstance(leaf, FieldRefLeaf) else None


def _items(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else [value]


def _literal_matches(anchor: int, literal: str, text: str) -> bool:
    if anchor == EQUALS:
        return text == literal
    if anchor == STARTSWITH:
        return text.startswith(literal)
    if anchor == ENDSWITH:
        return text.endswith(literal)
    return literal in text


def _string_test(leaf: StringLeaf, value: object) -> str:
    texts = [str(v) if leaf.cased else str(v).lower() for v in _items(value) if v is not None]
    tests = [
        f"{ANCHOR_NAMES[a]} {lit!r}"
        for a, lit in leaf.patterns
        if any(_literal_matches(a, lit, t) for t in texts)
    ]
    tests += [f"matches {g!r}" for g in leaf.globs if any(re.search(g, t) for t in texts)]
    if not tests:  # the engine's folding and Python's differ: show what was asked
        tests = [f"{ANCHOR_NAMES[a]} {lit!r}" for a, lit in leaf.patterns]
        tests += [f"matches {g!r}" for g in leaf.globs]
    shown = ", ".join(tests[:_SHOWN_PATTERNS])
    if len(tests) > _SHOWN_PATTERNS:
        shown += f" (+{len(tests) - _SHOWN_PATTERNS} more)"
    return shown + (" (cased)" if leaf.cased else "")


def _network(lo: bytes, hi: bytes) -> str:
    if lo.startswith(_V4_MAPPED) and hi.startswith(_V4_MAPPED):
        first, last = ipaddress.IPv4Address(lo[12:]), ipaddress.IPv4Address(hi[12:])
    else:
        first, last = ipaddress.IPv6Address(lo), ipaddress.IPv6Address(hi)
    return ", ".join(str(n) for n in ipaddress.summarize_address_range(first, last))


def _cidr_test(leaf: CidrLeaf, value: object) -> str:
    nets = [_network(lo, hi) for lo, hi in leaf.ranges]
    addresses = []
    for v in _items(value):
        try:
            addresses.append(ipaddress.ip_address(str(v)))
        except ValueError:
            continue
    inside = [n for n in nets if any(a in ipaddress.ip_network(n.split(",")[0]) for a in addresses)]
    shown = inside or nets
    text = "cidr " + ", ".join(shown[:_SHOWN_PATTERNS])
    return text + (
        f" (+{len(shown) - _SHOWN_PATTERNS} more)" if len(shown) > _SHOWN_PATTERNS else ""
    )


def describe(leaf: Leaf, value: object = None, other: object = None) -> str:
    """What ``leaf`` tests, in Sigma terms, narrowed to the patterns ``value`` matched."""
    if isinstance(leaf, StringLeaf):
        return _string_test(leaf, value)
    if isinstance(leaf, RegexLeaf):
        return f"re {leaf.pattern.replace(PCRE_DOLLAR, '$')!r}"  # as the rule wrote it
    if isinstance(leaf, CidrLeaf):
        return _cidr_test(leaf, value)
    if isinstance(leaf, CompareLeaf):
        return f"{_OPS.get(leaf.op, leaf.op)} {leaf.number}"
    if isinstance(leaf, NullLeaf):
        return "is null" if leaf.is_null else "exists"
    if isinstance(leaf, BoolLeaf):
        return f"= {str(leaf.value).lower()}"
    if isinstance(leaf, FieldRefLeaf):
        how = {
            EQUALS: "equals",
            STARTSWITH: "starts with",
            ENDSWITH: "ends with",
            CONTAINS: "contains",
        }[leaf.anchor]
        return f"{how} field {leaf.other} ({other!r})"
    if isinstance(leaf, TimePartLeaf):
        return f"{leaf.part} {_OPS.get(leaf.op, leaf.op)} {leaf.number}"
    return type(leaf).__name__
