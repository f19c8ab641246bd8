"""Exact membership of Arrow strings in a set of byte strings (URLs, hashes, JA3, emails, UAs).

Index (:class:`StringSetIndex`, plain numpy arrays for ``np.save`` / memory-mapping):

- ``offsets`` ``(m + 1,)`` int64 and ``data`` uint8: the distinct keys, concatenated
  (lower-cased at build time when the index folds case);
- ``ids`` ``(m,)`` int32: indicator id per key;
- ``slots`` ``(size,)`` int32: open-addressing table of key numbers, -1 empty
  (linear probing, power-of-two size, load factor <= 0.5, slot = top hash bits);
- ``slot_hash`` ``(size,)`` uint64: each slot's full hash, so a probe compares
  hashes in the table and reads key bytes only when they agree;
- ``filter`` ``(words,)`` uint64: blocked Bloom filter (see ``hashing``);
- ``fold`` ``(1,)`` uint8: 1 when keys were folded to ASCII lower case at build time
  and probes fold event bytes the same way (hashes and emails: events may be upper
  case), 0 for exact bytes (URLs, whose paths are case-sensitive).

A hit is always verified byte for byte, so there are no false positives. When a key
is given twice the first id wins. Only ASCII ``A-Z`` is folded; other bytes,
including UTF-8, compare exactly.

Examples
--------
>>> import pyarrow as pa
>>> index = build_string_set(pa.array(["d41d8cd98f00b204e9800998ecf8427e", "x@y.org"]), [5, 6],
...                          fold_case=True)
>>> events = pa.array(["D41D8CD98F00B204E9800998ECF8427E", None, "X@Y.ORG", ""])
>>> probe_string_set(index, events).tolist()
[5, -1, 6, -1]
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
    _hash_bytes,
    _slot_shift,
    filter_words,
    table_size,
)
from detect.kernels.parallel import probe_ids, run_row_ranges

__all__ = ["StringSetIndex", "build_string_set", "probe_string_buffers", "probe_string_set"]

_ONE_BYTE = np.zeros(1, dtype=np.uint8)  # numba needs a non-empty buffer to index


class StringSetIndex(NamedTuple):
    """Hash set of byte strings; every field a numpy array (see module docstring)."""

    offsets: np.ndarray  # (m + 1,) int64
    data: np.ndarray  # uint8
    ids: np.ndarray  # (m,) int32
    slots: np.ndarray  # (size,) int32, -1 empty
    slot_hash: np.ndarray  # (size,) uint64
    filter: np.ndarray  # (words,) uint64
    fold: np.ndarray  # (1,) uint8


@njit
def _fold_byte(c: np.uint8) -> np.uint8:
    return c + np.uint8(32) if np.uint8(65) <= c <= np.uint8(90) else c


@njit
def _build_string_set(
    offsets: np.ndarray,
    data: np.ndarray,
    valid: np.ndarray,
    ids_in: np.ndarray,
    fold: bool,  # noqa: FBT001 (numba kernels take no keyword-only arguments)
    k_offsets: np.ndarray,
    k_data: np.ndarray,
    ids: np.ndarray,
    slots: np.ndarray,
    slot_hash: np.ndarray,
    filt: np.ndarray,
) -> int:
    """Copy (and fold) every new valid key into ``k_data`` and the table; returns key count."""
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
        length = e - s
        h = _hash_bytes(data, s, e, fold)
        slot = np.int64(h >> shift)
        while True:
            entry = slots[slot]
            if entry < 0:
                for i in range(length):
                    c = data[s + i]
                    k_data[pos + i] = _fold_byte(c) if fold else c
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
                        if fold:
                            c = _fold_byte(c)
                        if k_data[ks + i] != c:
                            same = False
                            break
                    if same:
                        break
            slot = (slot + 1) & (size - 1)
    return m


@njit
def _probe_string_set(
    offsets: np.ndarray,
    data: np.ndarray,
    validity: np.ndarray,
    k_offsets: np.ndarray,
    k_data: np.ndarray,
    ids: np.ndarray,
    slots: np.ndarray,
    slot_hash: np.ndarray,
    filt: np.ndarray,
    fold: bool,  # noqa: FBT001 (numba kernels take no keyword-only arguments)
    out: np.ndarray,
) -> None:
    """``out[row]`` = id of the key equal to row ``row`` (folded when ``fold``), else -1."""
    size = len(slots)
    shift = _slot_shift(size)
    for row in range(len(offsets) - 1):
        res = -1
        if validity[row]:
            s = offsets[row]
            e = offsets[row + 1]
            h = _hash_bytes(data, s, e, fold)
            if _filter_maybe(filt, h):
                slot = np.int64(h >> shift)
                while True:
                    entry = slots[slot]
                    if entry < 0:
                        break
                    if slot_hash[slot] == h:
                        ks = k_offsets[entry]
                        if k_offsets[entry + 1] - ks == e - s:
                            same = True
                            for i in range(e - s):
                                c = data[s + i]
                                if fold and np.uint8(65) <= c <= np.uint8(90):
                                    c += np.uint8(32)
                                if k_data[ks + i] != c:
                                    same = False
                                    break
                            if same:
                                res = ids[entry]
                                break
                    slot = (slot + 1) & (size - 1)
        out[row] = res


def build_string_set(
    values: pa.Array | pa.ChunkedArray,
    ids: npt.ArrayLike,
    *,
    fold_case: bool = False,
) -> StringSetIndex:
    """Build the set from indicator strings (string / large_string / binary) and their ids.

    Parameters
    ----------
    values : the indicator values; nulls are skipped. A chunked array is combined.
    ids : one int32-range id per value.
    fold_case : store keys ASCII-lower-cased and fold event bytes at probe time.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    buf = ab.string_buffers(values)
    n = len(buf.offsets) - 1
    ids_in = np.asarray(ids, dtype=np.int32)
    if len(ids_in) != n:
        msg = f"ids has {len(ids_in)} values but there are {n} strings"
        raise ValueError(msg)
    valid = ab.validity_or_ones(buf.validity, n)
    n_valid = int(valid.sum())
    total = int(buf.offsets[-1] - buf.offsets[0]) if n else 0
    size = table_size(n_valid)
    k_offsets = np.zeros(n_valid + 1, dtype=np.int64)
    k_data = np.empty(max(total, 1), dtype=np.uint8)
    out_ids = np.empty(n_valid, dtype=np.int32)
    slots = np.full(size, -1, dtype=np.int32)
    slot_hash = np.zeros(size, dtype=np.uint64)
    filt = np.zeros(filter_words(n_valid), dtype=np.uint64)
    data = buf.data if len(buf.data) else _ONE_BYTE
    m = 0
    if n_valid:
        m = _build_string_set(
            buf.offsets, data, valid, ids_in, fold_case,
            k_offsets, k_data, out_ids, slots, slot_hash, filt,
        )  # fmt: skip
    used = int(k_offsets[m])
    return StringSetIndex(
        offsets=k_offsets[: m + 1].copy(),
        data=k_data[: max(used, 1)].copy(),
        ids=out_ids[:m].copy(),
        slots=slots,
        slot_hash=slot_hash,
        filter=filt,
        fold=np.array([fold_case], dtype=np.uint8),
    )


def probe_string_buffers(
    index: StringSetIndex,
    offsets: np.ndarray,
    data: np.ndarray,
    validity: np.ndarray | None,
    *,
    threads: int = 1,
) -> np.ndarray:
    """Kernel call on string buffers (int32 or int64 offsets): int32 id per row, -1 none."""
    n = len(offsets) - 1
    valid = ab.validity_or_ones(validity, n)
    data = data if len(data) else _ONE_BYTE
    fold = bool(index.fold[0])
    out = np.empty(n, dtype=np.int32)

    def run(a: int, b: int) -> None:
        _probe_string_set(
            offsets[a : b + 1], data, valid[a:b], index.offsets, index.data, index.ids,
            index.slots, index.slot_hash, index.filter, fold, out[a:b],
        )  # fmt: skip

    if n:
        run_row_ranges(run, n, threads=threads)
    return out


def probe_string_set(
    index: StringSetIndex, values: pa.Array | pa.ChunkedArray, *, threads: int = 1
) -> np.ndarray:
    """Indicator id of every row (int32), -1 when no key equals it or the row is null.

    ``values``: string, large_string, binary or large_binary, a dictionary of those
    (the dictionary is probed once, then gathered by index), sliced or chunked.
    Case folding follows the index (``build_string_set(..., fold_case=...)``).
    """

    def plain(chunk: pa.Array) -> np.ndarray:
        if pa.types.is_null(chunk.type):
            return np.full(len(chunk), -1, dtype=np.int32)
        buf = ab.string_buffers(chunk)
        return probe_string_buffers(index, buf.offsets, buf.data, buf.validity, threads=threads)

    return probe_ids(values, plain)
