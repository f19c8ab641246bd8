"""Domain suffix match: a domain and every parent on label boundaries against indicator domains.

``evil.com`` matches ``evil.com``, ``a.b.evil.com``, ``EVIL.COM.`` (ASCII case folded,
one trailing dot ignored) but never ``notevil.com``. Every matching indicator is
reported: ``a.b.evil.com`` gives one pair for ``evil.com`` and one for ``b.evil.com``
when both are indicators.

How: one right-to-left pass per event domain. Bytes are folded and packed into
64-bit words per label (one multiply per 8 bytes, not per byte); at every dot the
label's hash is chained into a running *suffix* hash, which therefore is the hash of
the suffix starting after that dot. Each suffix hash goes through the blocked
filter, then the table; a hash hit is verified byte for byte, so there are no false
positives. Cost: one pass over the bytes plus one filter load per label.

Index (:class:`DomainIndex`, plain numpy arrays for ``np.save`` / memory-mapping):
``offsets`` ``(m + 1,)`` int64 and ``data`` uint8 (distinct domains, lower-cased,
one trailing dot removed), ``ids`` ``(m,)`` int32, ``slots`` ``(size,)`` int32 (-1
empty, power-of-two size, load <= 0.5, slot = top hash bits), ``slot_hash``
``(size,)`` uint64, ``filter`` ``(words,)`` uint64. The first id of a repeated
domain wins; empty domains are skipped.

Examples
--------
>>> import pyarrow as pa
>>> index = build_domain_index(pa.array(["evil.com", "b.evil.com"]), [1, 2])
>>> events = pa.array(["a.b.EVIL.com.", "notevil.com", None, "evil.com"])
>>> rows, ids = probe_domain_suffix(index, events)
>>> list(zip(rows.tolist(), ids.tolist()))
[(0, 1), (0, 2), (3, 1)]
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from detect import arrow_buffers as ab
from detect.kernels._jit import njit
from detect.kernels.hashing import (
    _filter_add,
    _filter_maybe,
    _fmix64,
    _slot_shift,
)
from detect.kernels.parallel import probe_pairs, run_row_ranges
from detect.kernels.string_set import key_table

__all__ = ["DomainIndex", "build_domain_index", "probe_domain_buffers", "probe_domain_suffix"]

_ONE_BYTE = np.zeros(1, dtype=np.uint8)
_P1 = np.uint64(0x9E3779B97F4A7C15)
_P2 = np.uint64(0xBF58476D1CE4E5B9)
_SEED = np.uint64(0x243F6A8885A308D3)
_DOT = np.uint8(46)


class DomainIndex(NamedTuple):
    """Hash set of lower-case domains; every field a numpy array (see module docstring)."""

    offsets: np.ndarray  # (m + 1,) int64
    data: np.ndarray  # uint8
    ids: np.ndarray  # (m,) int32
    slots: np.ndarray  # (size,) int32, -1 empty
    slot_hash: np.ndarray  # (size,) uint64
    filter: np.ndarray  # (words,) uint64


@njit
def _domain_hash(data: np.ndarray, s: int, e: int) -> np.uint64:
    """Suffix hash of the whole of ``data[s:e]`` (folded); the same arithmetic as the probe.

    Kept arithmetic-for-arithmetic equal to the loop in :func:`_probe_domain_suffix`
    (a shared per-byte helper would sit in the hot loop; see DESIGN.md).
    """
    sh = _SEED
    lh = np.uint64(0)
    w = np.uint64(0)
    nb = 0
    llen = 0
    i = e - 1
    while i >= s - 1:
        if i < s or data[i] == _DOT:
            if nb > 0:
                lh = (lh ^ w) * _P1
            sh = (sh ^ (lh + np.uint64(llen))) * _P2
            sh ^= sh >> np.uint64(29)
            lh = np.uint64(0)
            w = np.uint64(0)
            nb = 0
            llen = 0
        else:
            c = data[i]
            if np.uint8(65) <= c <= np.uint8(90):
                c += np.uint8(32)
            w = (w << np.uint64(8)) | np.uint64(c)
            nb += 1
            llen += 1
            if nb == 8:
                lh = (lh ^ w) * _P1
                lh ^= lh >> np.uint64(29)
                w = np.uint64(0)
                nb = 0
        i -= 1
    return _fmix64(sh)


@njit
def _build_domain_index(
    offsets: np.ndarray,
    data: np.ndarray,
    valid: np.ndarray,
    ids_in: np.ndarray,
    k_offsets: np.ndarray,
    k_data: np.ndarray,
    ids: np.ndarray,
    slots: np.ndarray,
    slot_hash: np.ndarray,
    filt: np.ndarray,
) -> int:
    """Insert every valid, non-empty domain (folded, one trailing dot off); first id wins."""
    size = len(slots)
    shift = _slot_shift(size)
    m = 0
    pos = 0
    k_offsets[0] = 0
    for row in range(len(offsets) - 1):
        if not valid[row]:
            continue
        s = offsets[row]
        e = offsets[row + 1]
        if e > s and data[e - 1] == _DOT:
            e -= 1
        if e <= s:
            continue
        length = e - s
        h = _domain_hash(data, s, e)
        slot = np.int64(h >> shift)
        while True:
            entry = slots[slot]
            if entry < 0:
                for i in range(length):
                    c = data[s + i]
                    k_data[pos + i] = c + np.uint8(32) if np.uint8(65) <= c <= np.uint8(90) else c
                pos += length
                k_offsets[m + 1] = pos
                ids[m] = ids_in[row]
                slots[slot] = m
                slot_hash[slot] = h
                _filter_add(filt, h)
                m += 1
                break
            if slot_hash[slot] == h:
                ks = k_offsets[entry]
                if k_offsets[entry + 1] - ks == length:
                    same = True
                    for i in range(length):
                        c = data[s + i]
                        if np.uint8(65) <= c <= np.uint8(90):
                            c += np.uint8(32)
                        if k_data[ks + i] != c:
                            same = False
                            break
                    if same:
                        break
            slot = (slot + 1) & (size - 1)
    return m


@njit
def _probe_domain_suffix(
    offsets: np.ndarray,
    data: np.ndarray,
    validity: np.ndarray,
    k_offsets: np.ndarray,
    k_data: np.ndarray,
    ids: np.ndarray,
    slots: np.ndarray,
    slot_hash: np.ndarray,
    filt: np.ndarray,
    row_base: int,
    row_start: int,
    out_rows: np.ndarray,
    out_ids: np.ndarray,
    count: int,
) -> tuple[int, int]:
    """Append ``(row_base + row, id)`` pairs from ``row_start`` on; returns ``(next_row, count)``.

    Rows ascend; within a row the shortest suffix comes first. The kernel stops
    before a row that might not fit (a row gives at most one pair per label, so at
    most its length + 1) and returns where it stopped; the caller grows the output
    and calls again. Growing *inside* the loop was measured 5-8x slower: numba then
    reference-counts the reassigned arrays on every row.
    """
    size = len(slots)
    shift = _slot_shift(size)
    cap = len(out_rows)
    n = len(offsets) - 1
    for row in range(row_start, n):
        if not validity[row]:
            continue
        s = offsets[row]
        e = offsets[row + 1]
        if cap - count < e - s + 2:
            return row, count
        if e > s and data[e - 1] == _DOT:
            e -= 1
        if e <= s:
            continue
        sh = _SEED
        lh = np.uint64(0)
        w = np.uint64(0)
        nb = 0
        llen = 0
        i = e - 1
        while i >= s - 1:
            if i < s or data[i] == _DOT:
                if nb > 0:
                    lh = (lh ^ w) * _P1
                sh = (sh ^ (lh + np.uint64(llen))) * _P2
                sh ^= sh >> np.uint64(29)
                lh = np.uint64(0)
                w = np.uint64(0)
                nb = 0
                llen = 0
                h = _fmix64(sh)
                if _filter_maybe(filt, h):
                    ss = i + 1  # the suffix is data[ss:e]
                    slot = np.int64(h >> shift)
                    while True:
                        entry = slots[slot]
                        if entry < 0:
                            break
                        if slot_hash[slot] == h:
                            ks = k_offsets[entry]
                            if k_offsets[entry + 1] - ks == e - ss:
                                same = True
                                for j in range(e - ss):
                                    c = data[ss + j]
                                    if np.uint8(65) <= c <= np.uint8(90):
                                        c += np.uint8(32)
                                    if k_data[ks + j] != c:
                                        same = False
                                        break
                                if same:
                                    out_rows[count] = row_base + row
                                    out_ids[count] = ids[entry]
                                    count += 1
                                    break
                        slot = (slot + 1) & (size - 1)
            else:
                c = data[i]
                if np.uint8(65) <= c <= np.uint8(90):
                    c += np.uint8(32)
                w = (w << np.uint64(8)) | np.uint64(c)
                nb += 1
                llen += 1
                if nb == 8:
                    lh = (lh ^ w) * _P1
                    lh ^= lh >> np.uint64(29)
                    w = np.uint64(0)
                    nb = 0
            i -= 1
    return n, count


def build_domain_index(values: pa.Array | pa.ChunkedArray, ids: npt.ArrayLike) -> DomainIndex:
    """Build the index from indicator domains (string / large_string) and their ids.

    Domains are folded to ASCII lower case and one trailing dot is removed here too,
    so the index holds the same normal form the probe compares against. Nulls and
    empty domains are skipped. A chunked or dictionary array is combined / decoded.
    """
    keys = key_table(values, ids, "domains")
    m = 0
    if keys.n_valid:
        m = _build_domain_index(
            keys.offsets, keys.data, keys.valid, keys.ids_in, keys.k_offsets, keys.k_data,
            keys.out_ids, keys.slots, keys.slot_hash, keys.filt,
        )  # fmt: skip
    k_offsets, k_data, out_ids = keys.trimmed(m)
    return DomainIndex(
        offsets=k_offsets,
        data=k_data,
        ids=out_ids,
        slots=keys.slots,
        slot_hash=keys.slot_hash,
        filter=keys.filt,
    )


def probe_domain_buffers(
    index: DomainIndex,
    offsets: np.ndarray,
    data: np.ndarray,
    validity: np.ndarray | None,
    *,
    threads: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Kernel call on string buffers (int32 or int64 offsets): ``(rows int64, ids int32)``."""
    n = len(offsets) - 1
    valid = ab.validity_or_ones(validity, n)
    data = data if len(data) else _ONE_BYTE
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)

    def run(a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        rows = np.empty(max(1024, (b - a) // 8), dtype=np.int64)
        ids = np.empty(len(rows), dtype=np.int32)
        row, count = 0, 0
        while True:
            row, count = _probe_domain_suffix(
                offsets[a : b + 1], data, valid[a:b], index.offsets, index.data, index.ids,
                index.slots, index.slot_hash, index.filter, a, row, rows, ids, count,
            )  # fmt: skip
            if row >= b - a:
                return rows[:count].copy(), ids[:count].copy()
            need = 2 * len(rows) + int(offsets[a + row + 1] - offsets[a + row]) + 2
            rows = np.concatenate([rows[:count], np.empty(need - count, dtype=np.int64)])
            ids = np.concatenate([ids[:count], np.empty(need - count, dtype=np.int32)])

    parts = run_row_ranges(run, n, threads=threads)
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def probe_domain_suffix(
    index: DomainIndex, values: pa.Array | pa.ChunkedArray, *, threads: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Every ``(row, id)`` where an indicator domain equals the row's domain or a parent of it.

    ``values``: string / large_string (or binary), sliced, chunked (rows numbered
    across chunks) or dictionary-encoded (the dictionary is matched once and the
    pairs expanded per row). Nulls never match.

    Returns
    -------
    rows : int64, ascending; ids : int32, the matching indicator per pair.
    """

    def plain(chunk: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        if pa.types.is_null(chunk.type):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
        buf = ab.string_buffers(chunk)
        return probe_domain_buffers(index, buf.offsets, buf.data, buf.validity, threads=threads)

    return probe_pairs(values, plain)
