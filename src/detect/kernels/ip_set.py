"""Exact membership of 16-byte IPs (IPv4-mapped form) in a set of indicator IPs.

Index (:class:`IpSetIndex`, plain numpy arrays, so ``np.save`` / ``np.load(mmap_mode="r")``
round-trips it; the byte order is the machine's, little-endian everywhere we run):

- ``keys``: ``(size, 2)`` uint64, an open-addressing table (linear probing, size a
  power of two, load factor <= 0.5, slot = top bits of the hash) of the indicator
  addresses that are not IPv4 (``::ffff:0:0/96``) as two native uint64 lanes of their
  16 bytes (``values.view(np.uint64)``); an empty slot holds the all-ones address;
- ``ids``: ``(size,)`` int32, the indicator id in each slot, -1 for empty slots;
- ``filter``: ``(words,)`` uint64, a blocked Bloom filter (see ``hashing``) that
  answers most misses with one cached load before the table is touched;
- ``all_ones_id``: ``(1,)`` int32, the id of ``ffff:...:ffff`` when it is an
  indicator (it cannot live in the table, being the empty marker), else -1;
- ``v4_table``: ``(size4,)`` uint64, the IPv4 indicators in a table of their own, keyed
  by the 32-bit address as it sits in bytes 12-15 (the upper half of the low native
  lane): each slot ``key << 32 | (id + 1)``, 0 when empty; same probing, load factor
  <= 0.5, slot = top bits of ``key * K1``. Half the bytes per slot of ``keys`` (16 MB
  for a million keys, so it stays in L3) and a one-multiply hash: an IPv4 row costs
  57 ms per 10M rows against 80 ms through the 16-byte table;
- ``v4_filter``: the blocked filter of the IPv4 keys (hash ``key * K2``);
- ``v4_text_filter``: the blocked filter of the IPv4 keys' dotted-quad *text*, used by
  :func:`probe_ip_text` to skip parsing text that cannot be an indicator.

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
    _filter_bits,
    _filter_maybe,
    _filter_word,
    _hash_lanes,
    _load_word,
    _slot_shift,
    filter_words,
    table_size,
)
from detect.kernels.ip_parse import _parse_v4, _parse_v4_fast, parse_ips
from detect.kernels.parallel import probe_ids, run_row_ranges

__all__ = ["IpSetIndex", "build_ip_set", "probe_ip_set", "probe_ip_text"]


class IpSetIndex(NamedTuple):
    """Hash sets of 16-byte and IPv4 addresses; every field a numpy array (see module docstring)."""

    keys: np.ndarray  # (size, 2) uint64, all-ones = empty; addresses that are not IPv4
    ids: np.ndarray  # (size,) int32, -1 empty
    filter: np.ndarray  # (words,) uint64
    all_ones_id: np.ndarray  # (1,) int32
    v4_table: np.ndarray  # (size4,) uint64: key << 32 | (id + 1), 0 = empty
    v4_filter: np.ndarray  # (words4,) uint64, on the hash of the 32-bit key
    v4_text_filter: np.ndarray  # (words4,) uint64, on the hash of the dotted-quad text


_EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)
_ZERO = np.uint64(0)
_M32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_V4_TAG = np.uint64(0xFFFF0000)  # bytes 8-11 = 00 00 ff ff, the low half of the low lane
_K1 = np.uint64(0x9E3779B97F4A7C15)  # slot hash of a 32-bit key (top bits)
_K2 = np.uint64(0xBF58476D1CE4E5B9)  # filter hash of a 32-bit key


@njit
def _v4_text_words(key: np.uint64) -> tuple[np.uint64, np.uint64]:
    """The dotted quad of a native 32-bit key (byte 12 in its low byte) as two
    little-endian words, zero-padded: what :func:`_text_words` loads for that text."""
    a = _ZERO
    b = _ZERO
    pos = 0
    for k in range(4):
        v = np.int64((key >> np.uint64(8 * k)) & np.uint64(0xFF))
        for d in range(3):
            digit = -1
            if d == 0 and v >= 100:
                digit = v // 100
            elif d == 1 and v >= 10:
                digit = (v // 10) % 10
            elif d == 2:
                digit = v % 10
            if digit >= 0:
                c = np.uint64(48 + digit)
                if pos < 8:
                    a |= c << np.uint64(8 * pos)
                else:
                    b |= c << np.uint64(8 * (pos - 8))
                pos += 1
        if k < 3:
            if pos < 8:
                a |= np.uint64(46) << np.uint64(8 * pos)
            else:
                b |= np.uint64(46) << np.uint64(8 * (pos - 8))
            pos += 1
    return a, b


@njit
def _build_ip_set(
    lanes: np.ndarray,
    valid: np.ndarray,
    ids_in: np.ndarray,
    keys: np.ndarray,
    ids: np.ndarray,
    filt: np.ndarray,
    all_ones_id: np.ndarray,
    v4_table: np.ndarray,
    v4_filter: np.ndarray,
    v4_text_filter: np.ndarray,
) -> None:
    """Insert every valid row into the empty tables (first id wins)."""
    size = keys.shape[0]
    shift = _slot_shift(size)
    size4 = v4_table.shape[0]
    shift4 = _slot_shift(size4)
    for row in range(lanes.shape[0]):
        if not valid[row]:
            continue
        hi = lanes[row, 0]
        lo = lanes[row, 1]
        if hi == _ZERO and (lo & _M32) == _V4_TAG:
            key = lo >> _S32
            slot = np.int64((key * _K1) >> shift4)
            while True:
                entry = v4_table[slot]
                if entry == _ZERO:
                    v4_table[slot] = (key << _S32) | (np.uint64(np.int64(ids_in[row]) + 1) & _M32)
                    _filter_add(v4_filter, key * _K2)
                    a, b = _v4_text_words(key)
                    _filter_add(v4_text_filter, _hash_lanes(a, b))
                    break
                if (entry >> _S32) == key:
                    break
                slot = (slot + 1) & (size4 - 1)
            continue
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
def _v4_lookup(v4_table: np.ndarray, key: np.uint64, slot: int) -> int:
    """Id of the 32-bit ``key`` in the IPv4 table, walking from its ``slot``; -1 if absent."""
    size4 = v4_table.shape[0]
    while True:
        entry = v4_table[slot]
        if entry == _ZERO:
            return -1
        if (entry >> _S32) == key:
            return np.int64(entry & _M32) - 1
        slot = (slot + 1) & (size4 - 1)


@njit
def _probe_ip_set(
    lanes: np.ndarray,
    validity: np.ndarray,
    has_nulls: bool,  # noqa: FBT001 (numba: no keyword-only)
    keys: np.ndarray,
    ids: np.ndarray,
    filt: np.ndarray,
    all_ones_id: np.ndarray,
    v4_table: np.ndarray,
    v4_filter: np.ndarray,
    v4_text_filter: np.ndarray,
    out: np.ndarray,
) -> None:
    """``out[row]`` = id of the indicator equal to ``lanes[row]``; -1 when none or not valid.

    Per block of rows, the hot loop handles IPv4-mapped rows only: it checks the IPv4
    filter (one multiply for the hash) and prefetches the table slot of every
    candidate (about 2 % of rows); a second loop walks the candidates, so the slots'
    cache misses overlap instead of being waited for one by one. Other rows (IPv6,
    nulls) are only listed by the hot loop and probed in a third loop against the
    16-byte table. Keeping the hot loop this small measured 52 ms against 65 ms for
    one loop that branches to either table (10M IPv4 rows, 1M keys); a separate pass
    that checks a block is all IPv4 first cost more than it saved (60 ms).
    ``has_nulls`` False skips reading ``validity``; ``v4_text_filter`` is for the text probe.
    """
    size = keys.shape[0]
    shift = _slot_shift(size)
    size4 = v4_table.shape[0]
    shift4 = _slot_shift(size4)
    n = lanes.shape[0]
    cand_rows = np.empty(_BLOCK, dtype=np.int64)
    cand_slots = np.empty(_BLOCK, dtype=np.int64)
    other_rows = np.empty(_BLOCK, dtype=np.int64)
    for start in range(0, n, _BLOCK):
        end = min(start + _BLOCK, n)
        m = 0
        mo = 0
        for row in range(start, end):
            out[row] = -1
            lo = lanes[row, 1]
            if (lanes[row, 0] | ((lo & _M32) ^ _V4_TAG)) != _ZERO or (
                has_nulls and not validity[row]
            ):
                other_rows[mo] = row
                mo += 1
                continue
            key = lo >> _S32
            if _filter_maybe(v4_filter, key * _K2):
                slot = np.int64((key * _K1) >> shift4)
                prefetch(v4_table, slot)
                cand_rows[m] = row
                cand_slots[m] = slot
                m += 1
        for j in range(m):
            row = cand_rows[j]
            out[row] = _v4_lookup(v4_table, lanes[row, 1] >> _S32, cand_slots[j])
        m = 0
        for j in range(mo):  # not IPv4 (or null): filter, prefetch, then walk, as above
            row = other_rows[j]
            if has_nulls and not validity[row]:
                continue
            hi = lanes[row, 0]
            lo = lanes[row, 1]
            if hi == _EMPTY and lo == _EMPTY:
                out[row] = all_ones_id[0]  # the empty marker cannot be in the table
                continue
            h = _hash_lanes(hi, lo)
            if _filter_maybe(filt, h):
                slot = np.int64(h >> shift)
                prefetch(keys, slot)
                cand_rows[m] = row
                cand_slots[m] = slot
                m += 1
        for j in range(m):
            row = cand_rows[j]
            hi = lanes[row, 0]
            lo = lanes[row, 1]
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


_FULL = np.uint64(0xFFFFFFFFFFFFFFFF)
_HIGHS = np.uint64(0x8080808080808080)
_ADD_3A = np.uint64(0x4646464646464646)  # 0x80 - ord(":") per byte


@njit
def _maybe_not_v4(a: np.uint64, b: np.uint64) -> bool:
    """Whether a byte of ``a`` or ``b`` is ``:`` or above (or not ASCII).

    Dotted-quad text is ``0-9`` and ``.`` only, all below ``:``. Adding 0x46 to an
    ASCII byte sets its high bit exactly when the byte is ``:`` (0x3a) or above, with
    no carry into the next byte; a non-ASCII byte has its high bit set already (its
    carry can only flag more). One test for both words, cheaper than looking for
    ``:`` itself (measured 84 ms against 93 ms per 10M rows).
    """
    return (((a + _ADD_3A) | a | (b + _ADD_3A) | b) & _HIGHS) != _ZERO


@njit
def _probe_ip_text(
    offsets: np.ndarray,
    data: np.ndarray,
    validity: np.ndarray,
    has_nulls: bool,  # noqa: FBT001 (numba: no keyword-only)
    v4_table: np.ndarray,
    v4_filter: np.ndarray,
    v4_text_filter: np.ndarray,
    out: np.ndarray,
    slow: np.ndarray,
) -> int:
    """``out[row]`` for IP text rows that cannot be IPv6; the others are listed in ``slow``.

    Why this is exact without parsing most rows: text without ``:`` is a valid address
    (for ``ipaddress`` and :mod:`detect.kernels.ip_parse`) only as a dotted quad, and a
    valid dotted quad is the *one* canonical text of its address (decimal, no leading
    zeros). So a 7-15 byte row without ``:`` whose 16 zero-padded bytes are not in the
    filter of the IPv4 indicators' texts is surely no indicator (-1) and is never
    parsed; a row that passes (hits and about 0.5 % false positives) is parsed exactly
    and probed in the IPv4 table (prefetched, as in :func:`_probe_ip_set`). Rows with a
    byte ``:`` or above (see :func:`_maybe_not_v4`), rows of other lengths and rows
    within 16 bytes of the buffer end go to ``slow`` (returned: their count) for the
    full parser. ``validity`` is read only
    when ``has_nulls``; ``out`` is -1 for null rows.
    """
    nd = len(data)
    size4 = v4_table.shape[0]
    shift4 = _slot_shift(size4)
    n = len(offsets) - 1
    cand_rows = np.empty(_BLOCK, dtype=np.int64)
    cand_keys = np.empty(_BLOCK, dtype=np.uint64)
    cand_slots = np.empty(_BLOCK, dtype=np.int64)
    n_slow = 0
    for start in range(0, n, _BLOCK):
        end = min(start + _BLOCK, n)
        # 1. hash every plausible dotted quad and prefetch its filter word
        f = 0
        out[start:end] = -1
        for row in range(start, end):
            if has_nulls and not validity[row]:
                continue
            s = np.int64(offsets[row])
            e = np.int64(offsets[row + 1])
            length = e - s
            if length < 7 or length > 15 or s + 16 > nd:
                if length >= 2:  # "::" is the shortest address
                    slow[n_slow] = row
                    n_slow += 1
                continue
            # the row's bytes, zero-padded to 16: 7..15 bytes, so ``a`` keeps 7 or 8
            a = _load_word(data, s) & (_FULL >> np.uint64(8 * (8 - min(length, 8))))
            b = _load_word(data, s + 8) & (
                (np.uint64(1) << np.uint64(8 * max(length - 8, 0))) - np.uint64(1)
            )
            if _maybe_not_v4(a, b):  # may be IPv6 (a ':'): the full parser decides
                slow[n_slow] = row
                n_slow += 1
                continue
            h = _hash_lanes(a, b)
            w = _filter_word(v4_text_filter, h)
            prefetch(v4_text_filter, w)
            cand_rows[f] = row
            cand_keys[f] = h
            cand_slots[f] = w
            f += 1
        # 2. rows passing the filter: parse, prefetch the table slot
        m = 0
        for j in range(f):
            bits = _filter_bits(cand_keys[j])
            if (v4_text_filter[cand_slots[j]] & bits) != bits:
                continue
            row = cand_rows[j]
            s = np.int64(offsets[row])
            e = np.int64(offsets[row + 1])
            v = _parse_v4_fast(data, s, e) if e + 8 <= nd else _parse_v4(data, s, e)
            if v >= 0:
                u = np.uint64(v)  # big-endian a.b.c.d to the native key (byte 12 lowest)
                key = (
                    ((u >> np.uint64(24)) & np.uint64(0xFF))
                    | ((u >> np.uint64(8)) & np.uint64(0xFF00))
                    | ((u << np.uint64(8)) & np.uint64(0xFF0000))
                    | ((u & np.uint64(0xFF)) << np.uint64(24))
                )
                slot = np.int64((key * _K1) >> shift4)
                prefetch(v4_table, slot)
                cand_rows[m] = row  # m <= j: overwrites entries already read
                cand_keys[m] = key
                cand_slots[m] = slot
                m += 1
        # 3. walk the table for those
        for j in range(m):
            out[cand_rows[j]] = _v4_lookup(v4_table, cand_keys[j], cand_slots[j])
    return n_slow


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
    n_v4 = int((valid & _is_v4_lanes(lanes)).sum())
    size = table_size(n_valid - n_v4)
    index = IpSetIndex(
        keys=np.full((size, 2), _EMPTY, dtype=np.uint64),
        ids=np.full(size, -1, dtype=np.int32),
        filter=np.zeros(filter_words(n_valid - n_v4), dtype=np.uint64),
        all_ones_id=np.full(1, -1, dtype=np.int32),
        v4_table=np.zeros(table_size(n_v4), dtype=np.uint64),
        v4_filter=np.zeros(filter_words(n_v4), dtype=np.uint64),
        v4_text_filter=np.zeros(filter_words(n_v4), dtype=np.uint64),
    )
    if n_valid:
        _build_ip_set(lanes, valid, ids_in, *index)
    return index


def _is_v4_lanes(lanes: np.ndarray) -> np.ndarray:
    """Which rows of ``(n, 2)`` native lanes are IPv4-mapped (``::ffff:0:0/96``)."""
    return (lanes[:, 0] == 0) & ((lanes[:, 1] & _M32) == _V4_TAG)


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
    has_nulls = not bool(validity.all())

    def run(a: int, b: int) -> None:
        _probe_ip_set(lanes[a:b], validity[a:b], has_nulls, *index, out[a:b])

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


def _probe_text_plain(index: IpSetIndex, chunk: pa.Array, threads: int) -> np.ndarray:
    n = len(chunk)
    if pa.types.is_null(chunk.type) or n == 0:
        return np.full(n, -1, dtype=np.int32)
    buf = ab.string_buffers(chunk)
    data = buf.data if len(buf.data) else np.zeros(1, dtype=np.uint8)
    has_nulls = buf.validity is not None
    validity = buf.validity if has_nulls else np.ones(0, np.bool_)  # then never read
    out = np.empty(n, dtype=np.int32)

    def run(a: int, b: int) -> np.ndarray:
        slow = np.empty(b - a, dtype=np.int64)
        k = _probe_ip_text(buf.offsets[a : b + 1], data, validity[a:b], has_nulls,
                           index.v4_table, index.v4_filter, index.v4_text_filter,
                           out[a:b], slow)  # fmt: skip
        return slow[:k] + a

    slow = np.concatenate(run_row_ranges(run, n, threads=threads))
    if len(slow) > n // 4:  # mostly IPv6: parse the whole chunk
        values, ok = parse_ips(buf.offsets, data, buf.validity)
        return probe_ip_lanes(index, as_lanes(values), ok, threads=threads)
    if len(slow):
        values, ok = parse_ips(*ab.string_buffers(chunk.take(pa.array(slow)))[:2])
        out[slow] = probe_ip_lanes(index, as_lanes(values), ok, threads=threads)
    return out


def probe_ip_text(
    index: IpSetIndex, values: pa.Array | pa.ChunkedArray, *, threads: int = 1
) -> np.ndarray:
    """Indicator id of every row's IP *text*, -1 when none (or null, or not an address).

    The same answer as ``probe_ip_set(index, enrich.ip_to_bin(values))``, without
    materialising the 16-byte column: IPv4 text that cannot be an indicator is
    rejected on a filter of the indicators' dotted-quad texts and never parsed (see
    :func:`_probe_ip_text`); IPv6 and unusual text go through the full parser.

    Parameters
    ----------
    index : from :func:`build_ip_set`.
    values : string / large_string Array or ChunkedArray (chunks in turn, slices
        honoured), or a dictionary array of those (the dictionary is probed once).
    threads : threads for the probe (same result as one thread).

    Examples
    --------
    >>> from detect.enrich import ip_to_bin
    >>> index = build_ip_set(ip_to_bin(pa.array(["10.0.0.1", "2001:db8::1"])), [7, 8])
    >>> probe_ip_text(index, pa.array(["10.0.0.1", "::ffff:10.0.0.1", "010.0.0.1", None,
    ...                                "2001:DB8::1"])).tolist()
    [7, 7, -1, -1, 8]
    """
    return probe_ids(values, lambda chunk: _probe_text_plain(index, chunk, threads))
