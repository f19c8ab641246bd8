"""The compiled form of Sigma rules: leaves (one predicate on one column) and trees.

Everything here is plain data (frozen dataclasses, tuples, strings, numbers), so a
compiled rule set can be pickled into the plan cache and shared between rules: two
rules testing ``dns.question.name`` for the same values share one leaf, and every
string leaf on a column is evaluated in one fused pass per batch (see
:mod:`detect.sigma.executor`).

A tree is a nested tuple: ``("leaf", i)``, ``("and", (t, ...))``, ``("or", (t, ...))``,
``("not", t)``, ``("const", bool)``; ``i`` indexes the plan's leaf table.
"""

from __future__ import annotations

from dataclasses import dataclass

from detect.hits import RuleInfo

# Anchors of a literal string pattern (the numbering of detect.kernels.multi_pattern).
CONTAINS, STARTSWITH, ENDSWITH, EQUALS = 0, 1, 2, 3
ANCHOR_NAMES = {CONTAINS: "contains", STARTSWITH: "startswith", ENDSWITH: "endswith", EQUALS: "="}

Tree = tuple


@dataclass(frozen=True)
class StringLeaf:
    """Any of ``patterns`` (anchor, literal) or ``globs`` (RE2, anchored) on a string column.

    Literals are case-folded unless ``cased``; the column is folded the same way once
    per batch. Equality literals go through one hash-set pass per column, the other
    anchors through one multi-pattern pass, globs (inner ``*``/``?``) through RE2.
    """

    column: str
    cased: bool
    patterns: tuple[tuple[int, str], ...]
    globs: tuple[str, ...] = ()


@dataclass(frozen=True)
class RegexLeaf:
    """``|re``: an unanchored RE2 search, flags inline."""

    column: str
    pattern: str


@dataclass(frozen=True)
class CidrLeaf:
    """``|cidr``: first/last address pairs in the 16-byte IPv4-mapped form."""

    column: str
    ranges: tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True)
class CompareLeaf:
    """Numeric ``equal``/``less``/... (a pyarrow.compute function name) against a number."""

    column: str
    op: str
    number: int | float


@dataclass(frozen=True)
class NullLeaf:
    """``null`` and ``exists``: ``is_null`` true for ``field: null`` and ``exists: false``."""

    column: str
    is_null: bool


@dataclass(frozen=True)
class BoolLeaf:
    column: str
    value: bool


@dataclass(frozen=True)
class FieldRefLeaf:
    """``|fieldref``: the row's value of ``column`` equals (starts/ends with) ``other``'s."""

    column: str
    other: str
    anchor: int = EQUALS
    cased: bool = False


@dataclass(frozen=True)
class TimePartLeaf:
    """``|minute``/``hour``/``day``/``week``/``month``/``year`` of a timestamp column,
    compared (``op``, a pyarrow.compute function name) with ``number``."""

    column: str
    part: str
    op: str
    number: int


Leaf = (
    StringLeaf
    | RegexLeaf
    | CidrLeaf
    | CompareLeaf
    | NullLeaf
    | BoolLeaf
    | FieldRefLeaf
    | TimePartLeaf
)


@dataclass(frozen=True)
class RulePlan:
    """One runnable rule: its tree, the rows its logsource selects, and alert metadata.

    ``trigger`` lists leaves of which at least one must match for the rule to match
    (``None``: no such set, the tree is always evaluated); a batch where none does
    costs the rule nothing. ``field_leaves`` are the non-negated leaves in rule order,
    used to say which field a hit matched on.
    """

    rule_id: str
    tree: Tree
    datasets: frozenset[str] | None
    info: RuleInfo
    trigger: tuple[int, ...] | None
    field_leaves: tuple[int, ...]


@dataclass(frozen=True)
class LeafTable:
    """Leaves shared by every rule of a plan, deduplicated."""

    leaves: tuple[Leaf, ...]

    def column(self, i: int) -> str:
        return self.leaves[i].column


def leaves_of(tree: Tree) -> list[int]:
    """Leaf ids of ``tree`` in order."""
    kind = tree[0]
    if kind == "leaf":
        return [tree[1]]
    if kind == "not":
        return leaves_of(tree[1])
    if kind in ("and", "or"):
        return [i for child in tree[1] for i in leaves_of(child)]
    return []


def positive_leaves(tree: Tree, *, negated: bool = False) -> list[int]:
    """Leaves not under a ``not``, in order (what a hit's ``field`` is taken from)."""
    kind = tree[0]
    if kind == "leaf":
        return [] if negated else [tree[1]]
    if kind == "not":
        return positive_leaves(tree[1], negated=not negated)
    if kind in ("and", "or"):
        return [i for child in tree[1] for i in positive_leaves(child, negated=negated)]
    return []


def trigger(tree: Tree, cheap: frozenset[int]) -> tuple[int, ...] | None:
    """Leaves of which one must match for ``tree`` to match, preferring ``cheap`` ones.

    ``or`` needs one of its children's sets; ``and`` needs any one child's set (the one
    made of cheap leaves and smallest is chosen); ``not`` and constants give ``None``.
    """
    kind = tree[0]
    if kind == "leaf":
        return (tree[1],)
    if kind == "or":
        parts = [trigger(c, cheap) for c in tree[1]]
        if any(p is None for p in parts):
            return None
        return tuple(dict.fromkeys(i for p in parts for i in p))  # type: ignore[union-attr]
    if kind == "and":
        parts = [p for p in (trigger(c, cheap) for c in tree[1]) if p is not None]
        if not parts:
            return None
        return min(parts, key=lambda p: (not set(p) <= cheap, len(p)))
    return None
