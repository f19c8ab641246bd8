"""Many literal byte patterns against one string column at once (Sigma ``contains`` and kin).

Each pattern carries an anchor: :data:`CONTAINS` (anywhere), :data:`STARTSWITH`,
:data:`ENDSWITH` or :data:`EQUALS` (the whole value). The result is every
``(row, pattern_id)`` pair that holds, once, sorted by pattern id then row. Matching
is byte-exact, or, for a set compiled with ``fold=True`` (Sigma's case-insensitive
default), of the folded patterns in the values' Unicode case folding (see "Case
folding" below). Empty patterns are answered in the wrapper (``""`` is contained in,
starts and ends every non-null value, and equals ``""``).

Two engines give identical answers (property-tested against each other and a naive
loop):

``numba``
    An Aho-Corasick automaton over a compressed alphabet (every byte that occurs in
    a pattern has its own class, all other bytes share class 0), unrolled into a full
    DFA table ``states x classes`` of int32. State numbers are stored premultiplied
    by the class count, and states that end a pattern are numbered last, so a step
    is ``s = trans[s + cls[byte]]`` and "any pattern ends here" is ``s >= out_min``.

    Pass 1 (the fast path: most rows match nothing) walks the row range's bytes as
    one stream, in four lanes of about equal bytes cut at row starts, advanced
    together so four independent table-lookup chains overlap in the CPU (one
    chain is latency-bound at ~5 cycles a byte). A lane that reaches an output state
    marks the row of that byte as a candidate. Crossing a row boundary only adds
    candidates, never loses a match. Pass 2 rescans candidate rows alone, from
    state 0 at the row start, follows each output state's chain of pattern ends
    (``term``, ``olink``), checks anchors and validity, and drops repeats with a
    per-pattern "last row" stamp.

    Table size is ``states x classes x 4`` bytes: the benchmark's 10k lower-case
    URL-like patterns (~12 bytes) give ~83k states x 30 classes, 10 MB (build 0.3-0.9 s,
    Hyperscan compile included); 100 patterns 0.1 MB. Sets whose table would pass
    :data:`TABLE_LIMIT_BYTES` (256 MB, e.g. 10k binary patterns of 25 bytes using all
    256 byte values) are refused with an error asking to split them.

``hyperscan``
    The distinct non-empty patterns compiled once into a block-mode Hyperscan
    database (each byte escaped as ``\\xHH``: Hyperscan's pure-literal API cuts
    patterns at NUL), serialised into the :class:`PatternSet` so that it pickles.
    The data buffer of the batch is scanned once as a whole; the per-match Python
    callback only appends ``(key, end)`` to two ``array.array``; a numba pass maps
    end offsets to rows (``searchsorted`` over the offsets) and drops matches that
    start before their row, break an anchor or fall on a null row, then dedupes.

Trade-off, and what ``engine="auto"`` does: Hyperscan scans several times faster
than the DFA (SIMD literal filters), but it reports every occurrence through a
Python call (~0.3 us each), and cannot dedupe per row or anchor inside the scan.
So it wins when matches are rare and loses when they are dense (short patterns such
as ``"/"``, or a STARTSWITH pattern that occurs in most rows). ``auto`` scans the
first :data:`SAMPLE_ROWS` rows with Hyperscan, counting callbacks (the scan stops
early once the count passes the limit); above :data:`DENSE_MATCHES_PER_ROW` per row
it uses numba, otherwise Hyperscan. Without the ``hyperscan`` module, numba.

Case folding (``fold=True``): the patterns are folded at compile time
(:func:`~detect.kernels.casefold.casefold_str`); the values would be folded with
:func:`~detect.kernels.casefold.casefold` before an exact match (what the numba engine
does, and any engine when a pattern is not ASCII). Folding the column costs a pass
that reads and writes every byte, so with Hyperscan and ASCII patterns the raw bytes
are scanned ignoring ASCII case instead, by a second database holding the patterns
``HS_FLAG_CASELESS`` plus, matched exactly, the UTF-8 of the 19 characters whose fold
holds ASCII (:func:`~detect.kernels.casefold.folds_into_ascii`: ``'K'``, ``'ß'``,
``'ﬁ'``, ``'İ'``...). Exact for every row without those: folding lowers ASCII, maps
every other character to non-ASCII bytes only, and keeps row starts and ends where
they are, so an ASCII pattern sits in the folded row exactly where it sits in the raw
row ignoring case (anchors included). Rows holding one of them are left out of the raw
result, folded alone and matched exactly. Benchmark (1M URL-like rows, 100 patterns):
24 ms against 30 ms folding the column first (``benchmarks/test_sigma_contains_bench.py``).

Examples
--------
>>> import pyarrow as pa
>>> pset = compile_patterns([b"cmd", b"/tmp", b"x", b"cmd.exe"], [CONTAINS, STARTSWITH,
...                                                           ENDSWITH, EQUALS])
>>> rows, ids = match_strings(pset, pa.array(["/tmp/cmd.exe", None, "cmd.exe", "box"]),
...                           engine="numba")
>>> list(zip(rows.tolist(), ids.tolist()))
[(0, 0), (2, 0), (0, 1), (3, 2), (2, 3)]
>>> folding = compile_patterns([b"/ADMIN.php", b"key", b"ss"], [CONTAINS, STARTSWITH, ENDSWITH],
...                            fold=True)
>>> rows, ids = match_strings(folding, pa.array(["GET /Admin.PHP", "\u212aEY", "STRAẞE", "ß"]))
>>> list(zip(rows.tolist(), ids.tolist()))
[(0, 0), (1, 1), (3, 2)]
"""

from __future__ import annotations

import contextlib
import functools
from array import array
from collections.abc import Sequence
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa

from detect import arrow_buffers as ab
from detect.kernels._jit import njit
from detect.kernels.casefold import casefold, casefold_str, folds_into_ascii
from detect.kernels.parallel import probe_pairs

__all__ = [
    "CONTAINS",
    "DENSE_MATCHES_PER_ROW",
    "ENDSWITH",
    "EQUALS",
    "SAMPLE_ROWS",
    "STARTSWITH",
    "PatternSet",
    "compile_patterns",
    "engines",
    "match_buffers",
    "match_strings",
]

CONTAINS, STARTSWITH, ENDSWITH, EQUALS = 0, 1, 2, 3

SAMPLE_ROWS = 4096  # rows scanned by ``engine="auto"`` to estimate match density
DENSE_MATCHES_PER_ROW = 0.25  # above this many Hyperscan callbacks a row, numba wins
TABLE_LIMIT_BYTES = 256 << 20  # refuse DFA tables larger than this (see module docstring)
LANES = 4  # pass 1 interleaves this many byte streams (written out in ``_candidates``)

_ONE_BYTE = np.zeros(1, dtype=np.uint8)  # numba needs a non-empty buffer to index
_EMPTY_ROWS = np.zeros(0, dtype=np.int64)


class PatternSet(NamedTuple):
    """Compiled patterns: numpy arrays and ints only, so it pickles (see module docstring)."""

    n_patterns: int
    pat_offsets: np.ndarray  # (n + 1,) int64: the input patterns, concatenated
    pat_data: np.ndarray  # uint8
    anchors: np.ndarray  # (n,) int8
    key_len: np.ndarray  # (k,) int64: length of each distinct non-empty pattern ("key")
    key_start: np.ndarray  # (k + 1,) int64: entries of key i are key_start[i]:key_start[i + 1]
    ent_pid: np.ndarray  # int32: pattern id of each entry, grouped by key
    ent_anchor: np.ndarray  # int8: anchor of each entry
    cls: np.ndarray  # (256,) int32: byte -> class
    n_classes: int
    trans: np.ndarray  # (states * n_classes,) int32, premultiplied next state
    out_min: int  # premultiplied number of the first state that ends a key
    term: np.ndarray  # (states,) int32: key that equals this state's string, -1 none
    olink: np.ndarray  # (states,) int32: nearest proper suffix state with term >= 0, -1 none
    hs_db: np.ndarray  # uint8: serialised Hyperscan database, empty when not built
    fold: bool  # match the values' case folding (patterns are folded)
    hs_caseless_db: np.ndarray  # uint8: ASCII keys caseless + folds_into_ascii, or empty


# ---------------------------------------------------------------- kernels


@njit
def _candidates(trans, cls, out_min, offsets, data, lanes, cand):
    """Pass 1: ``cand[row] = 1`` for every row holding a byte where some key ends.

    The bytes ``offsets[lanes[0]]:offsets[lanes[4]]`` are scanned as four streams
    (lane ``j`` covers rows ``lanes[j]:lanes[j + 1]``) advanced in step; the state is
    not reset at row starts (pass 2 verifies), only at lane starts.
    """
    r0 = np.int64(lanes[0])
    r1 = np.int64(lanes[1])
    r2 = np.int64(lanes[2])
    r3 = np.int64(lanes[3])
    p0 = np.int64(offsets[r0])
    p1 = np.int64(offsets[r1])
    p2 = np.int64(offsets[r2])
    p3 = np.int64(offsets[r3])
    e0 = p1
    e1 = p2
    e2 = p3
    e3 = np.int64(offsets[lanes[4]])
    s0 = np.int32(0)
    s1 = np.int32(0)
    s2 = np.int32(0)
    s3 = np.int32(0)
    m = min(e0 - p0, e1 - p1, e2 - p2, e3 - p3)
    for _ in range(m):
        s0 = trans[s0 + cls[data[p0]]]
        s1 = trans[s1 + cls[data[p1]]]
        s2 = trans[s2 + cls[data[p2]]]
        s3 = trans[s3 + cls[data[p3]]]
        if s0 >= out_min:
            while offsets[r0 + 1] <= p0:
                r0 += 1
            cand[r0] = 1
        if s1 >= out_min:
            while offsets[r1 + 1] <= p1:
                r1 += 1
            cand[r1] = 1
        if s2 >= out_min:
            while offsets[r2 + 1] <= p2:
                r2 += 1
            cand[r2] = 1
        if s3 >= out_min:
            while offsets[r3 + 1] <= p3:
                r3 += 1
            cand[r3] = 1
        p0 += 1
        p1 += 1
        p2 += 1
        p3 += 1
    # the lanes' tails, one at a time (short: lanes hold about equal bytes)
    rows = np.array([r0, r1, r2, r3])
    pos = np.array([p0, p1, p2, p3])
    ends = np.array([e0, e1, e2, e3])
    states = np.array([s0, s1, s2, s3])
    for j in range(4):
        r = rows[j]
        s = states[j]
        for p in range(pos[j], ends[j]):
            s = trans[s + cls[data[p]]]
            if s >= out_min:
                while offsets[r + 1] <= p:
                    r += 1
                cand[r] = 1


@njit
def _grow(a, cap):
    out = np.empty(cap, dtype=a.dtype)
    out[: len(a)] = a
    return out


@njit
def _verify(
    trans, cls, n_classes, out_min, term, olink, key_len, key_start, ent_pid, ent_anchor,
    offsets, data, valid, cand, stamp,
):  # fmt: skip
    """Pass 2: exact pairs of the candidate rows, row-ascending; returns (rows, pids)."""
    cap = 1024
    out_rows = np.empty(cap, dtype=np.int64)
    out_pids = np.empty(cap, dtype=np.int32)
    cnt = 0
    for r in range(len(cand)):
        if cand[r] == 0 or not valid[r]:
            continue
        rs = np.int64(offsets[r])
        re = np.int64(offsets[r + 1])
        s = np.int32(0)
        for p in range(rs, re):
            s = trans[s + cls[data[p]]]
            if s < out_min:
                continue
            st = s // n_classes
            if term[st] < 0:
                st = olink[st]
            while st >= 0:
                k = term[st]
                end = p + 1
                start = end - key_len[k]
                for j in range(key_start[k], key_start[k + 1]):
                    a = ent_anchor[j]
                    if a == 1 and start != rs:
                        continue
                    if a == 2 and end != re:
                        continue
                    if a == 3 and (start != rs or end != re):
                        continue
                    pid = ent_pid[j]
                    if stamp[pid] == r:
                        continue
                    stamp[pid] = r
                    if cnt == cap:
                        cap *= 2
                        out_rows = _grow(out_rows, cap)
                        out_pids = _grow(out_pids, cap)
                    out_rows[cnt] = r
                    out_pids[cnt] = pid
                    cnt += 1
                st = olink[st]
    return out_rows[:cnt], out_pids[:cnt]


@njit
def _resolve(keys, ends, offsets, valid, key_len, key_start, ent_pid, ent_anchor, stamp):
    """Hyperscan matches (key, end), sorted by end, to exact pairs, row-ascending.

    The row of a match is the last row starting before its end; ends ascend, so one
    pointer walks the offsets forward (a binary search per match costs more).
    """
    cap = 1024
    out_rows = np.empty(cap, dtype=np.int64)
    out_pids = np.empty(cap, dtype=np.int32)
    cnt = 0
    n = len(offsets) - 1
    r = 0
    for i in range(len(keys)):
        last = ends[i] - 1
        if last >= offsets[r + 1]:  # far ahead: gallop, then bisect
            step = 1
            while r + step < n and offsets[r + step + 1] <= last:
                step *= 2
            lo_r, hi_r = r + step // 2, min(r + step, n - 1)
            while lo_r < hi_r:
                mid = (lo_r + hi_r) // 2
                if offsets[mid + 1] <= last:
                    lo_r = mid + 1
                else:
                    hi_r = mid
            r = lo_r
        if not valid[r]:
            continue
        rs = np.int64(offsets[r])
        re = np.int64(offsets[r + 1])
        k = keys[i]
        end = ends[i]
        start = end - key_len[k]
        if start < rs:
            continue
        for j in range(key_start[k], key_start[k + 1]):
            a = ent_anchor[j]
            if a == 1 and start != rs:
                continue
            if a == 2 and end != re:
                continue
            if a == 3 and (start != rs or end != re):
                continue
            pid = ent_pid[j]
            if stamp[pid] == r:
                continue
            stamp[pid] = r
            if cnt == cap:
                cap *= 2
                out_rows = _grow(out_rows, cap)
                out_pids = _grow(out_pids, cap)
            out_rows[cnt] = r
            out_pids[cnt] = pid
            cnt += 1
    return out_rows[:cnt], out_pids[:cnt]


# ---------------------------------------------------------------- compile


@functools.cache
def _hyperscan() -> ModuleType | None:
    try:
        import hyperscan
    except ImportError:
        return None
    return hyperscan


def engines() -> tuple[str, ...]:
    """Engines usable here: ``("numba",)``, plus ``"hyperscan"`` when the module imports."""
    return ("numba", "hyperscan") if _hyperscan() is not None else ("numba",)


def _build_dfa(
    keys: list[bytes],
) -> tuple[np.ndarray, int, np.ndarray, int, np.ndarray, np.ndarray]:
    """Aho-Corasick DFA of ``keys``: (cls, n_classes, trans, out_min, term, olink)."""
    present = np.zeros(256, dtype=np.bool_)
    for key in keys:
        present[np.frombuffer(key, dtype=np.uint8)] = True
    cls = np.zeros(256, dtype=np.int32)
    cls[present] = np.arange(1, int(present.sum()) + 1, dtype=np.int32)
    n_classes = int(present.sum()) + 1
    cls_of = cls.tolist()

    # trie: node 0 is the root; children keyed by (node, class)
    children: dict[tuple[int, int], int] = {}
    parent, via, depth, term_l = [0], [0], [0], [-1]
    for k, key in enumerate(keys):
        node = 0
        for b in key:
            c = cls_of[b]
            nxt = children.get((node, c))
            if nxt is None:
                nxt = len(parent)
                children[node, c] = nxt
                parent.append(node)
                via.append(c)
                depth.append(depth[node] + 1)
                term_l.append(-1)
            node = nxt
        term_l[node] = k
    n_states = len(parent)
    if n_states == 1:  # no keys: one state that never reports (out_min past it)
        none = np.full(1, -1, dtype=np.int32)
        return cls, n_classes, np.zeros(n_classes, np.int32), n_classes, none, none.copy()
    if n_states * n_classes * 4 > TABLE_LIMIT_BYTES:
        msg = (
            f"pattern set too large for the DFA: {n_states} states x {n_classes} byte classes"
            f" needs {n_states * n_classes * 4 >> 20} MB (limit {TABLE_LIMIT_BYTES >> 20} MB);"
            " split the patterns into several sets"
        )
        raise ValueError(msg)
    par = np.asarray(parent, dtype=np.int64)
    via_a = np.asarray(via, dtype=np.int64)
    dep = np.asarray(depth, dtype=np.int64)
    term = np.asarray(term_l, dtype=np.int32)

    # BFS by depth, vectorised per level: fail links, full transitions, output links
    trans = np.zeros((n_states, n_classes), dtype=np.int32)
    fail = np.zeros(n_states, dtype=np.int64)
    olink = np.full(n_states, -1, dtype=np.int32)
    order = np.argsort(dep, kind="stable")
    bounds = np.searchsorted(dep[order], np.arange(dep.max() + 2))
    level1 = order[bounds[1] : bounds[2]]
    trans[0, via_a[level1]] = level1
    for d in range(1, int(dep.max()) + 1):
        nodes = order[bounds[d] : bounds[d + 1]]
        if d > 1:
            fail[nodes] = trans[fail[par[nodes]], via_a[nodes]]
        f = fail[nodes]
        trans[nodes] = trans[f]
        olink[nodes] = np.where(term[f] >= 0, f, olink[f])
        kids = order[bounds[d + 1] : bounds[d + 2]] if d + 1 < len(bounds) - 1 else order[:0]
        trans[par[kids], via_a[kids]] = kids

    # renumber: states that end some key last, root stays 0; premultiply by n_classes
    is_out = (term >= 0) | (olink >= 0)
    new_order = np.argsort(is_out, kind="stable")
    new_id = np.empty(n_states, dtype=np.int64)
    new_id[new_order] = np.arange(n_states)
    out_min = int(n_states - is_out.sum()) * n_classes
    trans_new = (new_id[trans[new_order]] * n_classes).astype(np.int32).ravel()
    term_new = term[new_order]
    ol = olink[new_order]
    olink_new = np.where(ol >= 0, new_id[np.maximum(ol, 0)], -1).astype(np.int32)
    return cls, n_classes, trans_new, out_min, term_new, olink_new


def _hs_expressions(keys: list[bytes]) -> list[bytes]:
    return [b"".join(b"\\x%02x" % b for b in key) for key in keys]


def _hs_compile(hs: ModuleType, keys: list[bytes], *, caseless: bool = False) -> Any:
    """Block-mode database of ``keys`` (ids = positions); ``caseless``: the keys ignoring
    ASCII case, plus :func:`folds_into_ascii` exactly (ids after the keys)."""
    db = hs.Database(mode=hs.HS_MODE_BLOCK)
    flags: int | list[int] = 0
    if caseless:
        specials = list(folds_into_ascii())
        flags = [hs.HS_FLAG_CASELESS] * len(keys) + [0] * len(specials)
        keys = keys + specials
    try:
        db.compile(expressions=_hs_expressions(keys), ids=list(range(len(keys))),
                   elements=len(keys), flags=flags)  # fmt: skip
    except hs.error as e:
        msg = f"hyperscan could not compile {len(keys)} patterns: {e}"
        raise ValueError(msg) from e
    return db


def compile_patterns(
    patterns: Sequence[bytes], anchors: Sequence[int], *, fold: bool = False
) -> PatternSet:
    """Compile literal byte patterns with their anchors; pattern ids are list positions.

    Parameters
    ----------
    patterns : raw bytes. Duplicates, empty patterns, NUL and non-ASCII allowed.
    anchors : one of ``CONTAINS``, ``STARTSWITH``, ``ENDSWITH``, ``EQUALS`` per pattern.
    fold : match case-insensitively under Unicode case folding (Sigma's default): the
        patterns (UTF-8) are folded here and :func:`match_strings` matches them against
        the folded values. Off: bytes are compared exactly.

    The Hyperscan databases are built too when the module imports (see module docstring).
    """
    if fold:
        try:
            patterns = [casefold_str(bytes(p).decode()).encode() for p in patterns]
        except UnicodeDecodeError as e:
            msg = f"fold=True needs UTF-8 patterns: {e}"
            raise ValueError(msg) from e
    pats = [bytes(p) for p in patterns]
    anc = np.asarray(anchors, dtype=np.int64).reshape(-1)
    if len(anc) != len(pats):
        msg = f"got {len(pats)} patterns but {len(anc)} anchors; give one anchor per pattern"
        raise ValueError(msg)
    if len(anc) and (anc.min() < 0 or anc.max() > EQUALS):
        bad = int(anc[(anc < 0) | (anc > EQUALS)][0])
        msg = f"unknown anchor {bad}; use CONTAINS, STARTSWITH, ENDSWITH or EQUALS (0-3)"
        raise ValueError(msg)
    if len(pats) > np.iinfo(np.int32).max:
        msg = f"too many patterns ({len(pats)}); at most 2**31 - 1 fit int32 ids"
        raise ValueError(msg)
    lens = np.fromiter((len(p) for p in pats), dtype=np.int64, count=len(pats))
    pat_offsets = np.zeros(len(pats) + 1, dtype=np.int64)
    np.cumsum(lens, out=pat_offsets[1:])
    pat_data = np.frombuffer(b"".join(pats), dtype=np.uint8).copy()

    key_of: dict[bytes, int] = {}
    pid_key = np.full(len(pats), -1, dtype=np.int64)
    for i, p in enumerate(pats):
        if p:
            pid_key[i] = key_of.setdefault(p, len(key_of))
    keys = list(key_of)
    keyed = np.flatnonzero(pid_key >= 0)
    grouped = keyed[np.argsort(pid_key[keyed], kind="stable")]
    key_start = np.zeros(len(keys) + 1, dtype=np.int64)
    np.cumsum(np.bincount(pid_key[keyed], minlength=len(keys)), out=key_start[1:])
    key_len = np.fromiter((len(k) for k in keys), dtype=np.int64, count=len(keys))

    cls, n_classes, trans, out_min, term, olink = _build_dfa(keys)
    hs = _hyperscan()
    hs_db = hs_caseless_db = np.zeros(0, dtype=np.uint8)
    if hs is not None and keys:
        hs_db = np.frombuffer(hs.dumpb(_hs_compile(hs, keys)), dtype=np.uint8).copy()
        if fold and all(k.isascii() for k in keys):
            raw = hs.dumpb(_hs_compile(hs, keys, caseless=True))
            hs_caseless_db = np.frombuffer(raw, dtype=np.uint8).copy()
    return PatternSet(
        n_patterns=len(pats),
        pat_offsets=pat_offsets,
        pat_data=pat_data,
        anchors=anc.astype(np.int8),
        key_len=key_len,
        key_start=key_start,
        ent_pid=grouped.astype(np.int32),
        ent_anchor=anc[grouped].astype(np.int8),
        cls=cls,
        n_classes=n_classes,
        trans=trans,
        out_min=out_min,
        term=term,
        olink=olink,
        hs_db=hs_db,
        fold=fold,
        hs_caseless_db=hs_caseless_db,
    )


# ---------------------------------------------------------------- match


def _keys_of(pset: PatternSet) -> list[bytes]:
    """The distinct non-empty patterns in key order (to rebuild a Hyperscan database)."""
    first = pset.ent_pid[pset.key_start[:-1]]
    raw = pset.pat_data.tobytes()
    offs = pset.pat_offsets
    return [raw[offs[p] : offs[p + 1]] for p in first.tolist()]


def _hs_database(hs: ModuleType, pset: PatternSet, *, caseless: bool = False) -> Any:
    """The set's database: deserialised, or compiled when absent or built for another CPU."""
    saved = pset.hs_caseless_db if caseless else pset.hs_db
    if len(saved):
        try:
            return hs.loadb(saved.tobytes(), hs.HS_MODE_BLOCK)
        except hs.error:  # another Hyperscan version or CPU: compile afresh
            pass
    return _hs_compile(hs, _keys_of(pset), caseless=caseless)


def _lanes(offsets: np.ndarray) -> np.ndarray:
    """Row bounds of :data:`LANES` lanes of about equal bytes, cut at row starts."""
    n = len(offsets) - 1
    lo, hi = int(offsets[0]), int(offsets[n])
    cuts = lo + (hi - lo) * np.arange(LANES + 1, dtype=np.int64) // LANES
    lanes = np.searchsorted(offsets, cuts, side="left").astype(np.int64)
    lanes[0], lanes[-1] = 0, n
    return np.minimum(np.maximum.accumulate(lanes), n)


def _numba_pairs(
    pset: PatternSet, offsets: np.ndarray, data: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    n = len(offsets) - 1
    cand = np.zeros(n, dtype=np.uint8)
    _candidates(pset.trans, pset.cls, pset.out_min, offsets, data, _lanes(offsets), cand)
    stamp = np.full(pset.n_patterns, -1, dtype=np.int64)
    return _verify(
        pset.trans, pset.cls, pset.n_classes, pset.out_min, pset.term, pset.olink,
        pset.key_len, pset.key_start, pset.ent_pid, pset.ent_anchor,
        offsets, data, valid, cand, stamp,
    )  # fmt: skip


def _hs_scan(hs: ModuleType, db: Any, buf: memoryview, limit: int = -1) -> tuple[array, array]:
    """Raw Hyperscan matches of ``buf``: (key ids, end offsets); stops past ``limit`` if >= 0."""
    keys, ends = array("i"), array("q")
    add_key, add_end = keys.append, ends.append
    if limit < 0:

        def on_match(key: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            add_key(key)
            add_end(end)

    else:

        def on_match(key: int, _start: int, end: int, _flags: int, _ctx: object) -> bool:
            add_key(key)
            add_end(end)
            return len(keys) > limit

    with contextlib.suppress(hs.ScanTerminated):  # raised when on_match stops the scan
        db.scan(buf, match_event_handler=on_match, scratch=hs.Scratch(db))
    return keys, ends


def _hs_matches(
    hs: ModuleType, db: Any, offsets: np.ndarray, data: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Raw matches over the rows' bytes: (key ids int32, end offsets into ``data``), by end."""
    n = len(offsets) - 1
    lo, hi = int(offsets[0]), int(offsets[n])
    if hi <= lo:
        return np.zeros(0, np.int32), np.zeros(0, np.int64)
    keys_a, ends_a = _hs_scan(hs, db, memoryview(data[lo:hi]))
    keys = np.frombuffer(keys_a, dtype=np.int32) if len(keys_a) else np.zeros(0, np.int32)
    ends = np.frombuffer(ends_a, dtype=np.int64) + lo if len(ends_a) else np.zeros(0, np.int64)
    if len(ends) > 1 and not np.all(ends[1:] >= ends[:-1]):
        order = np.argsort(ends, kind="stable")
        keys, ends = keys[order], ends[order]
    return keys, ends


def _match_pairs(
    pset: PatternSet, keys: np.ndarray, ends: np.ndarray, offsets: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``(rows, pids)`` of raw matches (see :func:`_resolve`), rows ascending."""
    stamp = np.full(pset.n_patterns, -1, dtype=np.int64)
    return _resolve(keys, ends, offsets, valid, pset.key_len, pset.key_start,
                    pset.ent_pid, pset.ent_anchor, stamp)  # fmt: skip


def _dense(hs: ModuleType, db: Any, offsets: np.ndarray, data: np.ndarray) -> bool:
    """Whether Hyperscan would call back more than DENSE_MATCHES_PER_ROW times a row."""
    rows = min(len(offsets) - 1, SAMPLE_ROWS)
    lo, hi = int(offsets[0]), int(offsets[rows])
    if hi <= lo:
        return False
    limit = int(DENSE_MATCHES_PER_ROW * rows)
    keys, _ = _hs_scan(hs, db, memoryview(data[lo:hi]), limit)
    return len(keys) > limit


def _empty_pattern_pairs(
    pset: PatternSet, offsets: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of the empty patterns: every valid row, or (EQUALS) every valid empty row."""
    lens = np.diff(pset.pat_offsets)
    empty = np.flatnonzero(lens == 0)
    if not len(empty):
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    all_rows = np.flatnonzero(valid)
    empty_rows = all_rows[offsets[all_rows + 1] == offsets[all_rows]]
    parts = [empty_rows if pset.anchors[p] == EQUALS else all_rows for p in empty.tolist()]
    rows = np.concatenate(parts).astype(np.int64)
    pids = np.repeat(empty.astype(np.int32), [len(p) for p in parts])
    return rows, pids


def match_buffers(
    pset: PatternSet,
    offsets: np.ndarray,
    data: np.ndarray,
    valid: np.ndarray | None,
    *,
    engine: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Every ``(row, pattern_id)`` that holds on string buffers (int32 or int64 offsets).

    Returns ``(rows int64, pattern_ids int32)`` sorted by pattern id then row, each pair
    once; null rows never match. ``engine``: ``"auto"``, ``"numba"`` or ``"hyperscan"``
    (see module docstring). The bytes are compared exactly with the set's patterns
    (folded ones for a ``fold`` set: :func:`match_strings` folds the values).
    """
    hs = _check_engine(engine)
    if offsets.dtype not in (np.int32, np.int64):
        msg = f"offsets must be int32 or int64, got {offsets.dtype}"
        raise TypeError(msg)
    n = len(offsets) - 1
    valid = ab.validity_or_ones(valid, n).astype(np.bool_, copy=False)
    data = data if len(data) else _ONE_BYTE
    e_rows, e_pids = _empty_pattern_pairs(pset, offsets, valid)
    rows, pids = np.zeros(0, np.int64), np.zeros(0, np.int32)
    if n and len(pset.key_len):
        use_hs = hs is not None and engine != "numba"
        db = _hs_database(hs, pset) if use_hs else None
        if use_hs and engine == "auto" and _dense(hs, db, offsets, data):
            use_hs = False
        if use_hs:
            keys, ends = _hs_matches(hs, db, offsets, data)
            rows, pids = _match_pairs(pset, keys, ends, offsets, valid)
        else:
            rows, pids = _numba_pairs(pset, offsets, data, valid)
    return _by_pattern([(rows, pids), (e_rows, e_pids)])


def _check_engine(engine: str) -> ModuleType | None:
    """The hyperscan module or None, after checking ``engine`` can run here."""
    if engine not in {"auto", "numba", "hyperscan"}:
        msg = f"unknown engine {engine!r}; use 'auto', 'numba' or 'hyperscan'"
        raise ValueError(msg)
    hs = _hyperscan()
    if engine == "hyperscan" and hs is None:
        msg = "engine 'hyperscan' needs the hyperscan module; pip install hyperscan"
        raise ValueError(msg)
    return hs


def _by_pattern(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint ``(rows, pids)`` parts as one, sorted by pattern id then row.

    The first part's rows ascend already: alone, a stable sort by id is enough.
    """
    parts = [parts[0]] + [p for p in parts[1:] if len(p[0])]
    if len(parts) == 1:
        rows, pids = parts[0]
        order = np.argsort(pids, kind="stable")
    else:
        rows = np.concatenate([r for r, _ in parts])
        pids = np.concatenate([p for _, p in parts])
        order = np.lexsort((rows, pids))
    return rows[order], pids[order]


def _caseless_ok(pset: PatternSet) -> bool:
    """Whether a fold set can scan raw values ignoring ASCII case (all its patterns ASCII)."""
    return pset.fold and bool((pset.pat_data < 0x80).all())


def _match_plain(pset: PatternSet, chunk: pa.Array, engine: str) -> tuple[np.ndarray, np.ndarray]:
    buf = ab.string_buffers(chunk)
    return match_buffers(pset, buf.offsets, buf.data, buf.validity, engine=engine)


def _match_folded(pset: PatternSet, chunk: pa.Array, engine: str) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of a fold set on one chunk of raw values: as matching ``casefold(chunk)``.

    With Hyperscan and ASCII patterns the raw bytes are scanned ignoring ASCII case,
    which is exact for every row without a :func:`folds_into_ascii` character (see the
    module docstring); the same scan reports those characters, and only their rows
    are folded and matched again. Otherwise the chunk is folded and matched.
    """
    if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
        msg = f"a fold pattern set needs a string or large_string array, got {chunk.type}"
        raise TypeError(msg)
    hs = _hyperscan()
    if hs is None or engine == "numba" or not len(pset.key_len) or not _caseless_ok(pset):
        return _match_plain(pset, casefold(chunk), engine)
    buf = ab.string_buffers(chunk)
    offsets, data = buf.offsets, buf.data if len(buf.data) else _ONE_BYTE
    n = len(offsets) - 1
    db = _hs_database(hs, pset, caseless=True)
    if engine == "auto" and n and _dense(hs, db, offsets, data):
        return _match_plain(pset, casefold(chunk), "numba")
    valid = np.array(ab.validity_or_ones(buf.validity, n), dtype=np.bool_)  # a copy: cleared
    keys, ends = _hs_matches(hs, db, offsets, data)
    special = keys >= len(pset.key_len)
    redo = _EMPTY_ROWS
    if special.any():
        redo = np.unique(np.searchsorted(offsets, ends[special] - 1, side="right") - 1)
        redo = redo[valid[redo]].astype(np.int64)
        valid[redo] = False
        keys, ends = keys[~special], ends[~special]
    parts = [_match_pairs(pset, keys, ends, offsets, valid),
             _empty_pattern_pairs(pset, offsets, valid)]  # fmt: skip
    if len(redo):
        redo_rows, redo_pids = _match_plain(pset, casefold(chunk.take(redo)), engine)
        parts.append((redo[redo_rows], redo_pids))
    return _by_pattern(parts)


def match_strings(
    pset: PatternSet, arr: pa.Array | pa.ChunkedArray, *, engine: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`match_buffers` over a string / large_string array, sliced or chunked.

    Rows are positions in ``arr`` (across chunks); a dictionary chunk is matched on
    its dictionary once and expanded. Sorted by pattern id then row. A ``fold`` set
    matches the values' case folding (:func:`~detect.kernels.casefold.casefold`).
    """
    _check_engine(engine)

    def plain(chunk: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        if pa.types.is_null(chunk.type):
            return np.zeros(0, np.int64), np.zeros(0, np.int32)
        if pset.fold:
            return _match_folded(pset, chunk, engine)
        return _match_plain(pset, chunk, engine)

    single = isinstance(arr, pa.Array) and not pa.types.is_dictionary(arr.type)
    if single:
        return plain(arr)
    rows, pids = probe_pairs(arr, plain)
    order = np.lexsort((rows, pids))
    return rows[order].astype(np.int64, copy=False), pids[order].astype(np.int32, copy=False)
