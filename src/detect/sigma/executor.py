"""Run a compiled Sigma plan over canonical batches: fused leaf passes, then rule trees.

Per batch and per (string column, cased):

* every equality literal of every rule on that column in one hash-set pass
  (``pyarrow.compute.index_in``);
* every contains/startswith/endswith literal in one multi-pattern pass
  (:mod:`detect.kernels.multi_pattern`, Aho-Corasick in numba or Hyperscan);
* wildcard globs that need a regex through RE2, only on rows holding the glob's
  longest literal;
* dictionary columns on the dictionary (each entry tested once, rows gathered by an
  inverted index), list columns on the elements (mapped back to their rows).

Other leaves (regex, cidr, comparisons, null/exists, fieldref, timestamp parts) run
lazily, only when a rule that reaches them is still alive. A rule whose trigger
leaves (one of which must match) all came back empty is skipped. Rule trees combine
leaf row sets (:mod:`detect.sigma.rowsets`); no per-row Python anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from detect.enrich import ip_to_bin
from detect.kernels import multi_pattern as mp
from detect.kernels.casefold import casefold
from detect.schema import IP_BIN_COLUMNS
from detect.sigma import rowsets as rs
from detect.sigma.compiler import UnsupportedError, is_string_type
from detect.sigma.plan import (
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
)

_BIN_OF_TEXT = {text: binary for binary, text in IP_BIN_COLUMNS.items()}
_NUMERIC_TEXT = r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$"
_EMPTY = np.zeros(0, dtype=np.int64)


def _to_numpy(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks()
    return mask.fill_null(False).to_numpy(zero_copy_only=False)


def fold_column(values: pa.Array) -> pa.Array:
    """Unicode full case folding (``str.casefold``), as literals are folded at compile time."""
    return casefold(values)


@dataclass
class Values:
    """The values of one column a predicate runs on, and how positions map to rows."""

    values: pa.Array
    n: int
    indices: np.ndarray | None = None  # dictionary indices per row (-1: null)
    parents: np.ndarray | None = None  # list element -> row
    _inverted: tuple[np.ndarray, np.ndarray] | None = None

    def rows_of(self, positions: np.ndarray) -> np.ndarray:
        """Sorted unique rows whose value (entry, element) is at ``positions``."""
        if len(positions) == 0:
            return _EMPTY
        if self.indices is not None:
            order, starts = self._inverted_index()
            lo, hi = starts[positions], starts[positions + 1]
            sizes = hi - lo
            total = int(sizes.sum())
            if total == 0:
                return _EMPTY
            offsets = np.repeat(lo - np.cumsum(sizes) + sizes, sizes) + np.arange(total)
            return np.sort(order[offsets])
        if self.parents is not None:
            return np.unique(self.parents[positions])
        return positions.astype(np.int64, copy=False)

    def _inverted_index(self) -> tuple[np.ndarray, np.ndarray]:
        if self._inverted is None:
            idx = self.indices
            keep = np.flatnonzero(idx >= 0)  # type: ignore[operator]
            entries = idx[keep]  # type: ignore[index]
            order = keep[np.argsort(entries, kind="stable")].astype(np.int64)
            counts = np.bincount(entries, minlength=len(self.values))
            starts = np.zeros(len(self.values) + 1, dtype=np.int64)
            np.cumsum(counts, out=starts[1:])
            self._inverted = (order, starts)
        return self._inverted

    def lift(self, value_mask: pa.Array | np.ndarray) -> np.ndarray:
        """A per-value mask as a per-row mask."""
        m = value_mask if isinstance(value_mask, np.ndarray) else _to_numpy(value_mask)
        if self.indices is not None:
            if not len(m):
                return np.zeros(self.n, dtype=np.bool_)
            valid = self.indices >= 0
            return m[np.where(valid, self.indices, 0)] & valid
        if self.parents is not None:
            out = np.zeros(self.n, dtype=np.bool_)
            out[self.parents[m]] = True
            return out
        return m


@dataclass
class BatchView:
    """One canonical batch plus per-batch caches shared by every rule (folded strings...)."""

    batch: pa.RecordBatch
    _cache: dict[tuple[str, str], Values] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.batch.num_rows

    def column(self, name: str) -> pa.Array:
        return self.batch.column(name)

    def values(self, name: str) -> Values:
        key = (name, "raw")
        if key not in self._cache:
            arr = self.column(name)
            if pa.types.is_dictionary(arr.type):
                idx = arr.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
                v = Values(arr.dictionary, self.n, indices=idx)
            elif pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
                parents = pc.list_parent_indices(arr).to_numpy(zero_copy_only=False)
                v = Values(pc.list_flatten(arr), self.n, parents=parents.astype(np.int64))
            else:
                v = Values(arr, self.n)
            self._cache[key] = v
        return self._cache[key]

    def strings(self, name: str, *, cased: bool) -> Values:
        key = (name, "cased" if cased else "folded")
        if key not in self._cache:
            raw = self.values(name)
            vals = raw.values
            if not is_string_type(vals.type):
                vals = pc.cast(vals, pa.string())
            if not cased:
                vals = fold_column(vals)
            self._cache[key] = Values(vals, raw.n, raw.indices, raw.parents, raw._inverted)
        return self._cache[key]

    def ip_bin(self, name: str) -> Values:
        key = (name, "ip_bin")
        if key not in self._cache:
            if name in _BIN_OF_TEXT:
                self._cache[key] = Values(self.column(_BIN_OF_TEXT[name]), self.n)
            elif name in IP_BIN_COLUMNS:
                self._cache[key] = Values(self.column(name), self.n)
            else:
                raw = self.strings(name, cased=True)
                self._cache[key] = Values(ip_to_bin(raw.values), raw.n, raw.indices, raw.parents)
        return self._cache[key]


# ---------------------------------------------------------------------------------------
# Fused string groups


def _csr(owner_lists: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """item -> owners as (pointers, owners) arrays."""
    ptr = np.zeros(len(owner_lists) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum([len(x) for x in owner_lists])
    flat = np.fromiter((o for x in owner_lists for o in x), dtype=np.int64, count=int(ptr[-1]))
    return ptr, flat


def _expand(items: np.ndarray, positions: np.ndarray, ptr: np.ndarray, owners: np.ndarray):
    """(item, position) pairs -> (owner, position) pairs through the CSR ``ptr/owners``."""
    counts = ptr[items + 1] - ptr[items]
    total = int(counts.sum())
    starts = np.repeat(ptr[items] - np.cumsum(counts) + counts, counts) + np.arange(total)
    return owners[starts], np.repeat(positions, counts)


@dataclass
class _StringGroup:
    """All string leaves on one (column, cased): equality set, pattern set, globs."""

    column: str
    cased: bool
    literals: pa.Array
    literal_ptr: np.ndarray
    literal_leaves: np.ndarray
    patterns: mp.PatternSet | None
    pattern_ptr: np.ndarray
    pattern_leaves: np.ndarray
    globs: list[tuple[int, str, int]]  # (leaf id, RE2 pattern, prefilter pattern id or -1)
    leaf_ids: list[int]

    @classmethod
    def build(
        cls, column: str, leaves: list[tuple[int, StringLeaf]], *, cased: bool
    ) -> _StringGroup:
        literal_ids: dict[str, list[int]] = {}
        pattern_ids: dict[tuple[int, str], list[int]] = {}
        globs: list[tuple[int, str, int]] = []
        for leaf_id, leaf in leaves:
            for anchor, text in leaf.patterns:
                if anchor == EQUALS:
                    literal_ids.setdefault(text, []).append(leaf_id)
                else:
                    pattern_ids.setdefault((anchor, text), []).append(leaf_id)
            for glob in leaf.globs:
                globs.append((leaf_id, glob, -1))
        prefilter: list[tuple[int, str]] = []
        for i, (_, glob, _) in enumerate(globs):
            longest = _longest_literal(glob)
            if longest:
                key = (CONTAINS, longest)
                pattern_ids.setdefault(key, [])
                prefilter.append((i, longest))
        keys = list(pattern_ids)
        index = {k: i for i, k in enumerate(keys)}
        for i, longest in prefilter:
            leaf_id, glob, _ = globs[i]
            globs[i] = (leaf_id, glob, index[(CONTAINS, longest)])
        literal_ptr, literal_leaves = _csr(list(literal_ids.values()))
        pattern_ptr, pattern_leaves = _csr([pattern_ids[k] for k in keys])
        pset = None
        if keys:
            texts = [t.encode() for _, t in keys]
            pset = mp.compile_patterns(texts, [a for a, _ in keys], fold=not cased)
        return cls(
            column,
            cased,
            pa.array(list(literal_ids), pa.string()),
            literal_ptr,
            literal_leaves,
            pset,
            pattern_ptr,
            pattern_leaves,
            globs,
            [i for i, _ in leaves],
        )

    def run(self, view: BatchView) -> dict[int, np.ndarray]:
        """Sorted matching rows per leaf id (leaves with no match are absent).

        The pattern pass reads the raw column (a fold set folds what it needs), so the
        whole column is folded only for equality literals and globs without a literal.
        """
        if view.column(self.column).null_count == view.n:
            return {}
        v = view.strings(self.column, cased=True)
        owner_parts: list[np.ndarray] = []
        pos_parts: list[np.ndarray] = []
        if len(self.literals):
            folded = view.strings(self.column, cased=self.cased)
            idx = pc.index_in(folded.values, value_set=self.literals)
            idx = idx.fill_null(-1).to_numpy(zero_copy_only=False)
            positions = np.flatnonzero(idx >= 0)
            if len(positions):
                o, p = _expand(idx[positions], positions, self.literal_ptr, self.literal_leaves)
                owner_parts.append(o)
                pos_parts.append(p)
        pattern_rows: np.ndarray = _EMPTY
        pattern_ids: np.ndarray = _EMPTY
        if self.patterns is not None:
            pattern_rows, pattern_ids = mp.match_strings(self.patterns, v.values)
            if len(pattern_rows):
                o, p = _expand(pattern_ids, pattern_rows, self.pattern_ptr, self.pattern_leaves)
                owner_parts.append(o)
                pos_parts.append(p)
        for leaf_id, glob, pid in self.globs:
            if pid >= 0:
                lo, hi = np.searchsorted(pattern_ids, [pid, pid + 1])
                candidates = pattern_rows[lo:hi]
                if not len(candidates):
                    continue
                texts = v.values.take(candidates)
                texts = texts if self.cased else fold_column(texts)
                hit = _to_numpy(pc.match_substring_regex(texts, glob))
                positions = candidates[hit]
            else:
                folded = view.strings(self.column, cased=self.cased)
                positions = np.flatnonzero(
                    _to_numpy(pc.match_substring_regex(folded.values, glob))
                )
            owner_parts.append(np.full(len(positions), leaf_id, dtype=np.int64))
            pos_parts.append(positions.astype(np.int64))
        if not owner_parts:
            return {}
        owners = np.concatenate(owner_parts)
        positions = np.concatenate(pos_parts)
        if not len(owners):
            return {}
        order = np.lexsort((positions, owners))
        owners, positions = owners[order], positions[order]
        bounds = np.flatnonzero(np.diff(owners)) + 1
        out: dict[int, np.ndarray] = {}
        for chunk_owner, chunk in zip(
            owners[np.r_[0, bounds]], np.split(positions, bounds), strict=True
        ):
            out[int(chunk_owner)] = v.rows_of(np.unique(chunk))
        return out


def _longest_literal(glob: str) -> str:
    """The longest run of literal characters in an anchored RE2 glob (for prefiltering)."""
    body = glob.removeprefix("(?s)^").removesuffix("$")
    runs: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            current.append(body[i + 1])
            i += 2
            continue
        if c == ".":
            runs.append("".join(current))
            current = []
            i += 2 if body[i + 1 : i + 2] == "*" else 1
            continue
        current.append(c)
        i += 1
    runs.append("".join(current))
    return max(runs, key=len)


# ---------------------------------------------------------------------------------------
# Lazy leaves


def _lazy(leaf: Leaf, view: BatchView) -> rs.RowSet:
    if isinstance(leaf, RegexLeaf):
        v = view.strings(leaf.column, cased=True)
        hit = np.flatnonzero(_to_numpy(pc.match_substring_regex(v.values, leaf.pattern)))
        return rs.sparse(v.rows_of(hit))
    if isinstance(leaf, CidrLeaf):
        v = view.ip_bin(leaf.column)
        m = np.zeros(len(v.values), dtype=np.bool_)
        for lo, hi in leaf.ranges:
            lo_s, hi_s = pa.scalar(lo, pa.binary(16)), pa.scalar(hi, pa.binary(16))
            m |= _to_numpy(pc.and_(pc.greater_equal(v.values, lo_s), pc.less_equal(v.values, hi_s)))
        return rs.sparse(v.rows_of(np.flatnonzero(m)))
    if isinstance(leaf, CompareLeaf):
        return rs.dense(_compare(leaf, view))
    if isinstance(leaf, NullLeaf):
        col = view.column(leaf.column)
        return rs.dense(_to_numpy(pc.is_null(col) if leaf.is_null else pc.is_valid(col)))
    if isinstance(leaf, BoolLeaf):
        v = view.values(leaf.column)
        return rs.dense(v.lift(pc.equal(v.values, leaf.value)))
    if isinstance(leaf, FieldRefLeaf):
        return rs.dense(_fieldref(leaf, view))
    if isinstance(leaf, TimePartLeaf):
        col = view.column(leaf.column)
        func = {"week": pc.iso_week}.get(leaf.part) or getattr(pc, leaf.part)
        return rs.dense(_to_numpy(getattr(pc, leaf.op)(func(col), leaf.number)))
    if isinstance(leaf, StringLeaf):  # pragma: no cover - strings run fused
        msg = "string leaves run in their column group"
        raise TypeError(msg)
    msg = f"leaf {type(leaf).__name__}"
    raise UnsupportedError(msg)


def _compare(leaf: CompareLeaf, view: BatchView) -> np.ndarray:
    func = getattr(pc, leaf.op)
    number = leaf.number
    v = view.values(leaf.column)
    t = v.values.type
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        vals = v.values
        if isinstance(number, float) or number < 0 or pa.types.is_floating(t):
            vals, scalar = pc.cast(vals, pa.float64()), pa.scalar(float(number))
        else:
            scalar = pa.scalar(number, pa.int64())
        return v.lift(func(vals, scalar))
    s = view.strings(leaf.column, cased=True)
    trimmed = pc.utf8_trim_whitespace(s.values)
    ok = pc.match_substring_regex(trimmed, _NUMERIC_TEXT)
    nums = pc.cast(pc.if_else(ok, trimmed, "0"), pa.float64())
    return s.lift(pc.and_(ok, func(nums, pa.scalar(float(number)))))


def _row_strings(view: BatchView, name: str, *, cased: bool) -> pl.Series:
    arr = view.column(name)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if not is_string_type(arr.type):
        arr = pc.cast(arr, pa.string())
    if not cased:
        arr = fold_column(arr)
    return pl.Series(arr)


def _fieldref(leaf: FieldRefLeaf, view: BatchView) -> np.ndarray:
    a_col, b_col = view.column(leaf.column), view.column(leaf.other)
    numeric = all(
        pa.types.is_integer(c.type) or pa.types.is_floating(c.type) for c in (a_col, b_col)
    )
    if numeric and leaf.anchor == EQUALS:
        eq = pc.equal(pc.cast(a_col, pa.float64()), pc.cast(b_col, pa.float64()))
        return _to_numpy(eq)
    a = _row_strings(view, leaf.column, cased=leaf.cased)
    b = _row_strings(view, leaf.other, cased=leaf.cased)
    if leaf.anchor == EQUALS:
        out = a == b
    elif leaf.anchor == STARTSWITH:
        out = a.str.starts_with(b)
    elif leaf.anchor == ENDSWITH:
        out = a.str.ends_with(b)
    else:
        out = a.str.contains(b, literal=True)
    return out.fill_null(value=False).to_numpy()


# ---------------------------------------------------------------------------------------
# The executor


class Executor:
    """Evaluates every leaf of a plan per batch (string leaves fused per column)."""

    def __init__(self, leaves: Sequence[Leaf]) -> None:
        self.leaves = tuple(leaves)
        by_column: dict[tuple[str, bool], list[tuple[int, StringLeaf]]] = {}
        for i, leaf in enumerate(self.leaves):
            if isinstance(leaf, StringLeaf):
                by_column.setdefault((leaf.column, leaf.cased), []).append((i, leaf))
        self.groups = [
            _StringGroup.build(c, ls, cased=cased) for (c, cased), ls in by_column.items()
        ]
        self.fused = frozenset(i for ls in by_column.values() for i, _ in ls)

    def start(self, batch: pa.RecordBatch) -> BatchRun:
        return BatchRun(self, BatchView(batch))


class BatchRun:
    """One batch's leaf results: fused groups up front, other leaves on first use."""

    def __init__(self, executor: Executor, view: BatchView) -> None:
        self.executor = executor
        self.view = view
        self.n = view.n
        self._results: dict[int, rs.RowSet] = {}
        for group in executor.groups:
            for leaf_id, rows in group.run(view).items():
                self._results[leaf_id] = rs.sparse(rows)
        self._datasets: dict[frozenset[str], np.ndarray] = {}

    def leaf(self, i: int) -> rs.RowSet:
        if i not in self._results:
            if i in self.executor.fused:
                return rs.EMPTY
            self._results[i] = _lazy(self.executor.leaves[i], self.view)
        return self._results[i]

    def any_nonempty(self, leaf_ids: Sequence[int]) -> bool:
        return any(not self.leaf(i).empty for i in leaf_ids)

    def tree(self, tree: Tree) -> rs.RowSet:
        kind = tree[0]
        if kind == "leaf":
            return self.leaf(tree[1])
        if kind == "and":
            parts = []
            for child in tree[1]:
                part = self.tree(child)
                if part.empty:
                    return rs.EMPTY
                parts.append(part)
            return rs.and_(parts, self.n)
        if kind == "or":
            return rs.or_([self.tree(child) for child in tree[1]], self.n)
        if kind == "not":
            return rs.not_(self.tree(tree[1]))
        return rs.ALL if tree[1] else rs.EMPTY

    def datasets(self, wanted: frozenset[str]) -> np.ndarray:
        if wanted not in self._datasets:
            v = self.view.strings("event.dataset", cased=False)
            value_set = pa.array(sorted(wanted), pa.string())
            self._datasets[wanted] = v.lift(pc.is_in(v.values, value_set=value_set))
        return self._datasets[wanted]
