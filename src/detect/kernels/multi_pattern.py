"""TEMPORARY stand-in (pyarrow per pattern) until the numba kernel lands."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

CONTAINS, STARTSWITH, ENDSWITH, EQUALS = 0, 1, 2, 3


class PatternSet(NamedTuple):
    patterns: tuple
    anchors: tuple


def compile_patterns(patterns, anchors):
    return PatternSet(tuple(patterns), tuple(anchors))


def match_strings(pset, arr, *, engine="auto"):
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    rows, ids = [], []
    for i, (p, a) in enumerate(zip(pset.patterns, pset.anchors, strict=False)):
        t = p.decode()
        f = {0: pc.match_substring, 1: pc.starts_with, 2: pc.ends_with, 3: pc.equal}[a]
        m = f(arr, t).fill_null(False).to_numpy(zero_copy_only=False)
        r = np.flatnonzero(m)
        rows.append(r.astype(np.int64))
        ids.append(np.full(len(r), i, np.int32))
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    return np.concatenate(rows), np.concatenate(ids)
