"""Row sets for evaluating rule trees: sparse row lists, dense masks, complements.

Most leaves of most rules match few rows of a batch, so a rule's tree is evaluated on
sorted row ids (``and`` filters the smallest list by the others, ``or`` unions), a
``not`` is kept as a complement instead of materialising millions of rows, and
predicates that are naturally dense (``exists``, numeric comparisons, logsource) stay
boolean masks that sparse rows are filtered through. Cost follows the matches, not
the batch, for the common ``selection and not filter`` shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_EMPTY = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class RowSet:
    """Exactly one of: sorted unique ``rows``; ``rows`` complemented; a dense ``mask``."""

    rows: np.ndarray | None = None
    mask: np.ndarray | None = None
    negated: bool = False

    @property
    def empty(self) -> bool:
        if self.mask is not None:
            return not self.mask.any()
        return not self.negated and len(self.rows) == 0  # type: ignore[arg-type]


EMPTY = RowSet(rows=_EMPTY)
ALL = RowSet(rows=_EMPTY, negated=True)


def sparse(rows: np.ndarray) -> RowSet:
    return RowSet(rows=rows)


def dense(mask: np.ndarray) -> RowSet:
    return RowSet(mask=mask)


def member(rows: np.ndarray, query: np.ndarray) -> np.ndarray:
    """For each of ``query``, whether it is in sorted ``rows``."""
    if len(rows) == 0 or len(query) == 0:
        return np.zeros(len(query), dtype=np.bool_)
    idx = np.searchsorted(rows, query)
    idx[idx == len(rows)] = 0
    return rows[idx] == query


def contains(rs: RowSet, query: np.ndarray) -> np.ndarray:
    """For each row id of ``query``, whether it is in ``rs``."""
    if rs.mask is not None:
        return rs.mask[query]
    hit = member(rs.rows, query)  # type: ignore[arg-type]
    return ~hit if rs.negated else hit


def _union(lists: Sequence[np.ndarray]) -> np.ndarray:
    lists = [x for x in lists if len(x)]
    if not lists:
        return _EMPTY
    if len(lists) == 1:
        return lists[0]
    return np.unique(np.concatenate(lists))


def _intersect(lists: Sequence[np.ndarray]) -> np.ndarray:
    ordered = sorted(lists, key=len)
    out = ordered[0]
    for other in ordered[1:]:
        if not len(out):
            break
        out = out[member(other, out)]
    return out


def and_(sets: Sequence[RowSet], n: int) -> RowSet:
    pos = [s.rows for s in sets if s.mask is None and not s.negated]
    neg = [s.rows for s in sets if s.mask is None and s.negated]
    masks = [s.mask for s in sets if s.mask is not None]
    if pos:
        out = _intersect(pos)  # type: ignore[arg-type]
        for m in masks:
            out = out[m[out]]  # type: ignore[index]
        for r in neg:
            out = out[~member(r, out)]  # type: ignore[arg-type]
        return sparse(out)
    if masks:
        m = masks[0].copy()  # type: ignore[union-attr]
        for other in masks[1:]:
            m &= other
        for r in neg:
            m[r] = False
        return dense(m)
    return RowSet(rows=_union(neg), negated=True)  # type: ignore[arg-type]


def or_(sets: Sequence[RowSet], n: int) -> RowSet:
    pos = [s.rows for s in sets if s.mask is None and not s.negated]
    neg = [s.rows for s in sets if s.mask is None and s.negated]
    masks = [s.mask for s in sets if s.mask is not None]
    if masks:
        m = masks[0].copy()  # type: ignore[union-attr]
        for other in masks[1:]:
            m |= other
        for r in pos:
            m[r] = True
        for r in neg:
            c = np.ones(n, dtype=np.bool_)
            c[r] = False
            m |= c
        return dense(m)
    if neg:
        excluded = _intersect(neg)  # type: ignore[arg-type]
        union_pos = _union(pos)  # type: ignore[arg-type]
        return RowSet(rows=excluded[~member(union_pos, excluded)], negated=True)
    return sparse(_union(pos))  # type: ignore[arg-type]


def not_(rs: RowSet) -> RowSet:
    if rs.mask is not None:
        return dense(~rs.mask)
    return RowSet(rows=rs.rows, negated=not rs.negated)


def to_rows(rs: RowSet, n: int) -> np.ndarray:
    """The set as sorted row ids."""
    if rs.mask is not None:
        return np.flatnonzero(rs.mask).astype(np.int64)
    if rs.negated:
        keep = np.ones(n, dtype=np.bool_)
        keep[rs.rows] = False
        return np.flatnonzero(keep).astype(np.int64)
    return rs.rows  # type: ignore[return-value]
