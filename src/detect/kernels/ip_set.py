"""Exact membership of 16-byte IPs (IPv4-mapped form) in a set of indicator IPs.

Index (:class:`IpSetIndex`, plain numpy arrays, so ``np.save`` / ``np.load(mmap_mode="r")``
round-trips it; the byte order is the machine's, little-endian everywhere we run):

- ``keys``: ``(size, 2)`` uint64, an open-addressing table (linear probing, size a
  power of two, load factor <= 0.5, slot = top bits of the hash) of the indicator
  addresses as two native uint64 lanes of their 16 bytes
  (``values.view(np.uint64)``); an empty slot holds the all-ones address;
- ``ids``: ``(size,)`` int32, the indicator id in each slot, -1 for empty slots;
- ``filter``: ``(words,)`` uint64, a blocked Bloom filter (see ``hashing``) that
  answers most misses with one cached load before the table is touched;
- ``all_ones_id``: ``(1,)`` int32, the id of ``ffff:...:ffff`` when it is an
  indicator (it cannot live in the table, being the empty marker), else -1.

Keys sit in the table itself, so a probe costs one cache miss, not two. A probe
hashes the two lanes, checks the filter, walks the table and verifies the full
16-byte key before it reports a hit, so there are no false positives. When a key
is given twice at build time the first id wins (feeds are merged before).

Examples
--------
>>> import pyarrow as pa
>>> from detect.enrich import ip_to_bin
>>> index = build_ip_set(ip_to_bin(pa.array(["10.0.0.1", "2001:db8::1"])), [7, 8])
>>> probe_ip_set(index, ip_to_bin(pa.array(["2001:DB8::1", None, "10.0.0.2", "10.0.0.1"]))).tolist()
[8, -1, -1, 7]
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from detect import arrow_buffers as ab
from detect.kernels._jit import njit
from detect.kernels._prefetch import prefetch
from detect.kernels.hashing import (
    _filter_add,
    _filter_maybe,
    _hash_lanes,
    _slot_shift,
    filter_words,
    table_size,
)
from detect.kernels.parallel import probe_ids, run_row_ranges

__all__ = ["IpSetIndex", "build_ip_set", "probe_ip_set"]


class IpSetIndex(NamedTuple):
    """Hash set of 16-byte addresses; every field a numpy array (see module docstring)."""

    keys: np.ndarray  # (size, 2) uint64, all-ones = empty
    ids: np.ndarray  # (size,) int32, -1 empty
    filter: np.ndarray  # (words,) uint64
    all_ones_id: np.ndarray  # (1,) int32


_EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)


@njit
def _build_ip_set(
    lanes: np.ndarray,
    valid: np.ndarray,
    ids_in: np.ndarray,
    keys: np.ndarray,
    ids: np.ndarray,
    filt: np.ndarray,
    all_ones_id: np.ndarray,
) -> None:
    """Insert every valid row into an empty table (first id wins)."""
    size = keys.shape[0]
    shift = _slot_shift(size)
    for row in range(lanes.shape[0]):
        if not valid[row]:
            continue
        hi = lanes[row, 0]
        lo = lanes[row, 1]
        if hi == _EMPTY and lo == _EMPTY:
            if all_ones_id[0] < 0:
                all_ones_id[0] = ids_in[row]
            continue
        h = _hash_lanes(hi, lo)
        slot = np.int64(h >> shift)
        while True:
            if ids[slot] < 0:
                keys[slot, 0] = hi
                keys[slot, 1] = lo
                ids[slot] = ids_in[row]
                _filter_add(filt, h)
                break
            if keys[slot, 0] == hi and keys[slot, 1] == lo:
                break
            slot = (slot + 1) & (size - 1)


_BLOCK = 512  # rows whose candidates are gathered (and prefetched) before any is walked


@njit
def _probe_ip_set(
    lanes: np.ndarray,
    validity: np.ndarray,
    keys: np.ndarray,
    ids: np.ndarray,
    filt: np.ndarray,
    all_ones_id: np.ndarray,
    out: np.ndarray,
) -> None:
    """``out[row]`` = id of the indicator equal to ``lanes[row]``; -1 when none or not valid.

    Two passes per block of rows: the first checks the filter and prefetches the table
    slot of every candidate (about 2 % of rows), the second walks the candidates. The
    slots' cache misses then overlap instead of being waited for one by one.
    """
    size = keys.shape[0]
    shift = _slot_shift(size)
    n = lanes.shape[0]
    cand_rows = np.empty(_BLOCK, dtype=np.int64)
    cand_slots = np.empty(_BLOCK, dtype=np.int64)
    for start in range(0, n, _BLOCK):
        end = min(start + _BLOCK, n)
        m = 0
        for row in range(start, end):
            out[row] = -1
            h = _hash_lanes(lanes[row, 0], lanes[row, 1])
            if validity[row] and _filter_maybe(filt, h):
                slot = np.int64(h >> shift)
                prefetch(keys, slot)
                cand_rows[m] = row
                cand_slots[m] = slot
                m += 1
            elif validity[row] and lanes[row, 0] == _EMPTY and lanes[row, 1] == _EMPTY:
                out[row] = all_ones_id[0]  # the empty marker cannot be in the table
        for j in range(m):
            row = cand_rows[j]
            hi = lanes[row, 0]
            lo = lanes[row, 1]
            if hi == _EMPTY and lo == _EMPTY:
                out[row] = all_ones_id[0]
                continue
            slot = cand_slots[j]
            while True:
                k0 = keys[slot, 0]
                k1 = keys[slot, 1]
                if k0 == hi and k1 == lo:
                    out[row] = ids[slot]
                    break
                if k0 == _EMPTY and k1 == _EMPTY:
                    break
                slot = (slot + 1) & (size - 1)


def as_lanes(values: np.ndarray) -> np.ndarray:
    """An ``(n, 16)`` uint8 matrix as ``(n, 2)`` native uint64 lanes (a view when possible)."""
    values = np.asarray(values)
    if values.ndim != 2 or values.shape[1] != 16 or values.dtype != np.uint8:
        msg = f"expected an (n, 16) uint8 array of addresses, got {values.dtype} {values.shape}"
        raise TypeError(msg)
    if not values.flags.c_contiguous or values.ctypes.data % 8:
        values = np.ascontiguousarray(values).copy()
    return values.view(np.uint64)


def _ip_matrix(
    values: pa.Array | pa.ChunkedArray | np.ndarray, validity: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(lanes, validity)`` from Arrow fixed_size_binary(16) or a numpy ``(n, 16)`` matrix."""
    if isinstance(values, pa.Array | pa.ChunkedArray):
        buf = ab.fixed_binary_buffers(values)
        arr, validity = buf.values, buf.validity
    else:
        arr = np.asarray(values)
    lanes = as_lanes(arr) if len(arr) else np.zeros((0, 2), np.uint64)
    n = lanes.shape[0]
    if validity is not None and len(validity) != n:
        msg = f"validity has {len(validity)} rows but values have {n}"
        raise ValueError(msg)
    return lanes, np.asarray(ab.validity_or_ones(validity, n), dtype=np.bool_)


def build_ip_set(
    values: pa.Array | pa.ChunkedArray | np.ndarray,
    ids: npt.ArrayLike,
    *,
    validity: np.ndarray | None = None,
) -> IpSetIndex:
    """Build the hash set from indicator addresses and their ids.

    Parameters
    ----------
    values : fixed_size_binary(16) Arrow array (as ``enrich.ip_to_bin`` gives) or an
        ``(n, 16)`` uint8 numpy matrix; null / invalid rows are skipped.
    ids : n integers (int32 range), the indicator id reported for each value.
    validity : for a numpy ``values``, which rows are valid (None: all).

    Returns
    -------
    IpSetIndex
        Plain numpy arrays; 1M addresses build in well under a second.
    """
    lanes, valid = _ip_matrix(values, validity)
    ids_in = np.asarray(ids, dtype=np.int32)
    if len(ids_in) != lanes.shape[0]:
        msg = f"ids has {len(ids_in)} values but there are {lanes.shape[0]} addresses"
        raise ValueError(msg)
    n_valid = int(valid.sum())
    size = table_size(n_valid)
    index = IpSetIndex(
        keys=np.full((size, 2), _EMPTY, dtype=np.uint64),
        ids=np.full(size, -1, dtype=np.int32),
        filter=np.zeros(filter_words(n_valid), dtype=np.uint64),
        all_ones_id=np.full(1, -1, dtype=np.int32),
    )
    if n_valid:
        _build_ip_set(lanes, valid, ids_in, *index)
    return index


def _probe_plain(index: IpSetIndex, chunk: pa.Array, threads: int) -> np.ndarray:
    if pa.types.is_null(chunk.type):
        return np.full(len(chunk), -1, dtype=np.int32)
    lanes, valid = _ip_matrix(chunk, None)
    return probe_ip_lanes(index, lanes, valid, threads=threads)


def probe_ip_lanes(
    index: IpSetIndex, lanes: np.ndarray, validity: np.ndarray, *, threads: int = 1
) -> np.ndarray:
    """Kernel call on ``(n, 2)`` uint64 lanes and a bool mask: int32 id per row, -1 none."""
    out = np.empty(lanes.shape[0], dtype=np.int32)

    def run(a: int, b: int) -> None:
        _probe_ip_set(
            lanes[a:b],
            validity[a:b],
            index.keys,
            index.ids,
            index.filter,
            index.all_ones_id,
            out[a:b],
        )

    if lanes.shape[0]:
        run_row_ranges(run, lanes.shape[0], threads=threads)
    return out


def probe_ip_set(
    index: IpSetIndex,
    values: pa.Array | pa.ChunkedArray | np.ndarray,
    *,
    validity: np.ndarray | None = None,
    threads: int = 1,
) -> np.ndarray:
    """Indicator id of every row's address, -1 when it is in no indicator (or null).

    Parameters
    ----------
    index : from :func:`build_ip_set` (or loaded back with ``np.load``).
    values : fixed_size_binary(16) Array / ChunkedArray (chunks in turn, slices
        honoured), a dictionary array of those (the dictionary is probed once and
        gathered by index), or an ``(n, 16)`` uint8 numpy matrix with ``validity``.
    threads : threads for the probe (same result as one thread).

    Returns
    -------
    numpy.ndarray
        int32, one per row.
    """
    if isinstance(values, np.ndarray):
        lanes, valid = _ip_matrix(values, validity)
        return probe_ip_lanes(index, lanes, valid, threads=threads)
    return probe_ids(values, lambda chunk: _probe_plain(index, chunk, threads))
