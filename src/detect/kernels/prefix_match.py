"""Longest-prefix match of 16-byte IPs against CIDRs (IPv4 and IPv6, nested prefixes).

Build flattens the prefixes once into sorted, disjoint ranges that tile the whole
128-bit address space: boundary ``j`` starts a range that runs to boundary ``j + 1``
and is labelled with the id of the *most specific* prefix covering it (-1 for
gaps). A probe is then one search for the last boundary <= the address; there is
no per-row walk over nested prefixes.

The search starts with a first-level table (DIR-24-8 style): the top bits of the
key (a monotone bucketing) index an int32 table whose entry is the answer itself
when no boundary falls inside the bucket after its lowest key -- one load for most
rows -- and otherwise the boundary to search forward from (galloping, then binary
search: usually one or two loads in the same cache line, O(log n) for a dense
bucket). The table has about 8 buckets per boundary, at most 2**24. Measured on
10M events against 1M prefixes: v4 from 870 ms (a 2**20 bucket table of
``first`` offsets, then a binary search in the bucket) to 190-300 ms; v6 from 1217
to 450-700 ms. IPv4 gets its own copy of the ranges that fall inside
``::ffff:0:0/96``, from the prefixes inside it only (an IPv6 prefix that merely spans it,
such as ``::/0`` or ``::/64``, holds no IPv4 address, as for ``ipaddress``), with start
and id packed in one word, so a v4 search touches one array; the IPv6 copy leaves those
ranges out (no IPv6 key falls inside them).

Index (:class:`PrefixIndex`, plain numpy arrays for ``np.save`` / memory-mapping):

- ``v6_bounds``: ``(k, 3)`` uint64 rows ``[hi, lo, id]``: boundaries as the big-endian
  16 bytes split in two lanes (compare ``hi`` then ``lo``; row 0 is ``::``) and the
  label of the range each starts (int64 two's complement, -1 for none);
- ``v6_table``: ``(2**bits,)`` int32 first-level table (entry ``>= -1``: the answer;
  ``-2 - a``: search forward from boundary ``a``); ``v6_params``: ``(2,)`` uint64
  ``[base, shift]``: bucket of a key = ``min((hi - base) >> shift, nb - 1)``, 0 below
  ``base``;
- ``v4_ranges``: ``(k4,)`` uint64, ``start << 32 | (id + 1)`` of each IPv4 range, sorted;
  ``v4_table``: ``(2**bits4,)`` int32, the same first level for IPv4, bucket =
  ``addr >> (32 - bits4)``.

Prefix lengths are given in the 16-byte form: an IPv4 ``/24`` is length 120
(:func:`v4_length`). Host bits under the mask are ignored (``ipaddress`` with
``strict=False``). When the same prefix is given twice the first id wins.

Examples
--------
>>> import numpy as np, pyarrow as pa
>>> from detect.enrich import ip_to_bin
>>> nets = ip_to_bin(pa.array(["10.0.0.0", "10.1.2.3", "2001:db8::"]))
>>> index = build_prefix_index(nets, [v4_length(8), v4_length(32), 32], [1, 2, 3])
>>> events = ip_to_bin(pa.array(["10.1.2.3", "10.9.9.9", "11.0.0.1", "2001:db8::5"]))
>>> probe_prefix(index, events).tolist()
[2, 1, -1, 3]
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from detect.kernels._jit import njit
from detect.kernels.ip_set import _ip_matrix
from detect.kernels.parallel import probe_ids, run_row_ranges

__all__ = ["PrefixIndex", "build_prefix_index", "probe_prefix", "probe_prefix_lanes", "v4_length"]

_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_V4_TAG = np.uint64(0xFFFF)  # bits 32-47 of the low lane of ::ffff:a.b.c.d
_V4_LO = 0xFFFF_0000_0000  # ::ffff:0.0.0.0, low lane
_V4_HI = 0xFFFF_FFFF_FFFF  # ::ffff:255.255.255.255, low lane
# first-level tables: about 8 buckets per boundary, at most 2**24 (64 MB of int32);
# measured on 1M prefixes, 10M events: v4 2**21 buckets 359 ms, 2**23 308 ms, 2**24 190-270 ms
_V4_EXTRA, _V4_CAP = 3, 24
_V6_EXTRA, _V6_CAP = 3, 24


class PrefixIndex(NamedTuple):
    """Flattened CIDR ranges; every field a numpy array (see module docstring)."""

    v6_bounds: np.ndarray
    v6_table: np.ndarray
    v6_params: np.ndarray
    v4_ranges: np.ndarray
    v4_table: np.ndarray


def v4_length(length: npt.ArrayLike) -> np.ndarray:
    """IPv4 prefix lengths (0-32) in the 16-byte form the index takes (96-128)."""
    return np.asarray(length, dtype=np.int64) + 96


@njit
def _bswap64(x: np.uint64) -> np.uint64:
    """Byte swap (LLVM turns this into one ``bswap``): native little-endian lane -> big-endian."""
    x = ((x & np.uint64(0x00FF00FF00FF00FF)) << np.uint64(8)) | (
        (x >> np.uint64(8)) & np.uint64(0x00FF00FF00FF00FF)
    )
    x = ((x & np.uint64(0x0000FFFF0000FFFF)) << np.uint64(16)) | (
        (x >> np.uint64(16)) & np.uint64(0x0000FFFF0000FFFF)
    )
    return (x << np.uint64(32)) | (x >> np.uint64(32))


@njit
def _less(ahi: np.uint64, alo: np.uint64, bhi: np.uint64, blo: np.uint64) -> bool:
    return ahi < bhi or (ahi == bhi and alo < blo)


@njit
def _flatten(
    start_hi: np.ndarray,
    start_lo: np.ndarray,
    end_hi: np.ndarray,
    end_lo: np.ndarray,
    lengths: np.ndarray,
    ids: np.ndarray,
    order: np.ndarray,
    out_hi: np.ndarray,
    out_lo: np.ndarray,
    out_ids: np.ndarray,
) -> int:
    """Sweep prefixes sorted by (start, length, input order) into labelled boundaries.

    A stack holds the prefixes that cover the sweep position, innermost on top
    (CIDRs nest or are disjoint, so their ends are non-increasing down the stack).
    Each prefix start emits a boundary with its id; each pop emits one at end + 1
    with the id of the prefix below. Boundaries at the same position keep the last
    label; runs with the same label are merged. Returns the number of boundaries.
    """
    n = len(order)
    st_hi = np.empty(n + 1, dtype=np.uint64)
    st_lo = np.empty(n + 1, dtype=np.uint64)
    st_id = np.empty(n + 1, dtype=np.int32)
    sp = 0
    nb = 1
    out_hi[0] = 0
    out_lo[0] = 0
    out_ids[0] = -1
    prev = -1
    for t in range(n + 1):
        if t < n:
            p = order[t]
            if (
                prev >= 0
                and start_hi[p] == start_hi[prev]
                and start_lo[p] == start_lo[prev]
                and lengths[p] == lengths[prev]
            ):
                continue  # the same prefix again: the first id wins
            prev = p
            shi = start_hi[p]
            slo = start_lo[p]
        while sp > 0 and (t == n or _less(st_hi[sp - 1], st_lo[sp - 1], shi, slo)):
            ehi = st_hi[sp - 1]
            elo = st_lo[sp - 1]
            sp -= 1
            if ehi == _ALL and elo == _ALL:
                continue  # ends at the top of the address space: nothing follows
            nlo = elo + np.uint64(1)
            nhi = ehi + np.uint64(1) if nlo == 0 else ehi
            label = st_id[sp - 1] if sp > 0 else -1
            if out_hi[nb - 1] == nhi and out_lo[nb - 1] == nlo:
                out_ids[nb - 1] = label
            else:
                out_hi[nb] = nhi
                out_lo[nb] = nlo
                out_ids[nb] = label
                nb += 1
        if t == n:
            break
        if out_hi[nb - 1] == shi and out_lo[nb - 1] == slo:
            out_ids[nb - 1] = ids[p]
        else:
            out_hi[nb] = shi
            out_lo[nb] = slo
            out_ids[nb] = ids[p]
            nb += 1
        st_hi[sp] = end_hi[p]
        st_lo[sp] = end_lo[p]
        st_id[sp] = ids[p]
        sp += 1
    # merge neighbours with the same label
    k = 1
    for j in range(1, nb):
        if out_ids[j] != out_ids[k - 1]:
            out_hi[k] = out_hi[j]
            out_lo[k] = out_lo[j]
            out_ids[k] = out_ids[j]
            k += 1
    return k


@njit
def _direct_table(
    b_hi: np.ndarray,
    b_lo: np.ndarray,
    b_ids: np.ndarray,
    base: np.uint64,
    shift: np.uint64,
    nb: int,
) -> np.ndarray:
    """The first-level table over ``nb`` buckets of the sorted boundaries ``(b_hi, b_lo)``.

    Bucket of a key: 0 below ``base``, else ``min((hi - base) >> shift, nb - 1)`` (monotone).
    ``table[b] >= -1`` is the answer for every key of bucket ``b`` (no boundary inside
    it after its lowest key); ``table[b] = -2 - a`` says boundary ``a`` is <= every key
    of the bucket and the answer is found by a forward search from ``a``.
    """
    table = np.empty(nb, dtype=np.int32)
    k = len(b_hi)
    j = 0  # first boundary whose bucket is >= b
    last = np.uint64(nb - 1)
    for b in range(nb):
        lo_idx = j
        while j < k:
            h = b_hi[j]
            if h < base:
                kb = 0
            else:
                d = (h - base) >> shift
                kb = nb - 1 if d >= last else np.int64(d)
            if kb > b:
                break
            j += 1
        # boundaries lo_idx..j-1 lie in bucket b; boundary lo_idx - 1 is below it
        a = lo_idx - 1
        inside = j - lo_idx
        if inside > 0 and b > 0:
            ub = np.uint64(b)
            off = ub << shift
            lowest = base + off
            no_wrap = (off >> shift) == ub and lowest >= base
            if no_wrap and b_hi[lo_idx] == lowest and b_lo[lo_idx] == 0:
                a = lo_idx  # a boundary at the bucket's lowest key
                inside -= 1
        elif inside > 0:  # bucket 0 starts at key 0, where boundary 0 always sits
            a = 0
            inside -= 1
        table[b] = b_ids[a] if inside == 0 else np.int32(-2 - a)
    return table


@njit
def _search_v4(v4_ranges: np.ndarray, lo_i: np.int64, v: np.uint64) -> np.int32:
    """Id of the last range <= ``v``, searching forward from range ``lo_i`` (<= ``v``).

    Galloping (1, 2, 4, ... ranges ahead, then a binary search): typically one or two
    loads in the same cache line, O(log n) when a bucket holds many boundaries.
    """
    k4 = len(v4_ranges)
    s32 = np.uint64(32)
    step = 1
    hi_i = lo_i + 1
    while hi_i < k4 and (v4_ranges[hi_i] >> s32) <= v:
        lo_i = hi_i
        step <<= 1
        hi_i = lo_i + step
    hi_i = min(hi_i, k4)
    while hi_i - lo_i > 1:
        mid = (lo_i + hi_i) >> 1
        if (v4_ranges[mid] >> s32) <= v:
            lo_i = mid
        else:
            hi_i = mid
    return np.int32(np.int64(v4_ranges[lo_i] & np.uint64(0xFFFFFFFF)) - 1)


@njit
def _search_v6(v6_bounds: np.ndarray, lo_i: np.int64, hi: np.uint64, lo: np.uint64) -> np.int32:
    """As :func:`_search_v4` over the ``(hi, lo, id)`` rows of the IPv6 boundaries."""
    k6 = v6_bounds.shape[0]
    step = 1
    hi_i = lo_i + 1
    while hi_i < k6 and (
        v6_bounds[hi_i, 0] < hi or (v6_bounds[hi_i, 0] == hi and v6_bounds[hi_i, 1] <= lo)
    ):
        lo_i = hi_i
        step <<= 1
        hi_i = lo_i + step
    hi_i = min(hi_i, k6)
    while hi_i - lo_i > 1:
        mid = (lo_i + hi_i) >> 1
        if v6_bounds[mid, 0] < hi or (v6_bounds[mid, 0] == hi and v6_bounds[mid, 1] <= lo):
            lo_i = mid
        else:
            hi_i = mid
    return np.int32(np.int64(v6_bounds[lo_i, 2]))


@njit
def _probe_prefix(
    lanes: np.ndarray,
    validity: np.ndarray,
    v6_bounds: np.ndarray,
    v6_table: np.ndarray,
    v6_params: np.ndarray,
    v4_ranges: np.ndarray,
    v4_table: np.ndarray,
    out: np.ndarray,
) -> None:
    """``out[row]`` = id of the longest prefix containing ``lanes[row]`` (native lanes), else -1.

    One first-level load answers most rows; a row whose bucket holds a boundary
    searches forward from the boundary the table gives. (A two-pass variant that
    first issued all first-level loads of a block of rows measured 1.3-1.8x slower.)
    """
    base = v6_params[0]
    shift = v6_params[1]
    nb6 = len(v6_table)
    last6 = np.uint64(nb6 - 1)
    nb4 = len(v4_table)
    bits4 = 0
    while (1 << bits4) < nb4:
        bits4 += 1
    shift4 = np.uint64(32 - bits4)
    s32 = np.uint64(32)
    m32 = np.uint64(0xFFFFFFFF)
    for row in range(lanes.shape[0]):
        if not validity[row]:
            out[row] = -1
            continue
        hi = _bswap64(lanes[row, 0])
        lo = _bswap64(lanes[row, 1])
        if hi == 0 and (lo >> s32) == _V4_TAG:
            v = lo & m32
            e = v4_table[np.int64(v >> shift4)]
            if e <= -2:
                e = _search_v4(v4_ranges, np.int64(-2 - e), v)
        else:
            b = 0
            if hi >= base:
                d = (hi - base) >> shift  # compared unsigned: an int64 cast could go negative
                b = nb6 - 1 if d >= last6 else np.int64(d)
            e = v6_table[b]
            if e <= -2:
                e = _search_v6(v6_bounds, np.int64(-2 - e), hi, lo)
        out[row] = e


def _table_bits(k: int, extra: int, cap: int) -> int:
    """First-level table size: about ``2**extra`` buckets per boundary, 2**8 to 2**cap buckets."""
    return max(8, min(cap, k.bit_length() + extra))


def _flat(
    start_hi: np.ndarray,
    start_lo: np.ndarray,
    end_hi: np.ndarray,
    end_lo: np.ndarray,
    lens: np.ndarray,
    ids_in: np.ndarray,
    subset: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``subset`` prefixes flattened into labelled boundaries ``(hi, lo, id)``."""
    idx = np.flatnonzero(subset)
    cols = [a[idx] for a in (start_hi, start_lo, end_hi, end_lo, lens, ids_in)]
    order = np.lexsort((np.arange(len(idx)), cols[4], cols[1], cols[0]))
    cap = 2 * len(idx) + 1
    b_hi = np.empty(cap, dtype=np.uint64)
    b_lo = np.empty(cap, dtype=np.uint64)
    b_ids = np.empty(cap, dtype=np.int32)
    k = _flatten(*cols, order, b_hi, b_lo, b_ids)
    return b_hi[:k].copy(), b_lo[:k].copy(), b_ids[:k].copy()


def build_prefix_index(
    networks: pa.Array | pa.ChunkedArray | np.ndarray,
    lengths: npt.ArrayLike,
    ids: npt.ArrayLike,
    *,
    validity: np.ndarray | None = None,
) -> PrefixIndex:
    """Flatten CIDRs into the range index.

    Parameters
    ----------
    networks : fixed_size_binary(16) Arrow array or ``(n, 16)`` uint8 matrix of the
        network addresses (IPv4 in ``::ffff:a.b.c.d`` form); null rows are skipped.
    lengths : n prefix lengths in the 16-byte form, 0-128 (IPv4: :func:`v4_length`).
    ids : n indicator ids (int32 range).
    validity : for a numpy ``networks``, which rows are valid (None: all).

    Returns
    -------
    PrefixIndex
        Plain numpy arrays; 1M prefixes build in well under a second.
    """
    lanes, valid = _ip_matrix(networks, validity)
    lens = np.asarray(lengths, dtype=np.int64)
    ids_in = np.asarray(ids, dtype=np.int32)
    n = lanes.shape[0]
    if len(lens) != n or len(ids_in) != n:
        msg = (
            "networks, lengths and ids must have the same length, "
            f"got {n}, {len(lens)}, {len(ids_in)}"
        )
        raise ValueError(msg)
    if n and (lens.min() < 0 or lens.max() > 128):
        bad = int(lens[(lens < 0) | (lens > 128)][0])
        msg = f"prefix length {bad} is outside 0-128; IPv4 lengths take +96 (v4_length)"
        raise ValueError(msg)
    if n and ids_in.min() < 0:
        msg = "indicator ids must be >= 0 (negative values mark table entries)"
        raise ValueError(msg)
    keep = np.flatnonzero(valid)
    hi = lanes[keep, 0].byteswap()
    lo = lanes[keep, 1].byteswap()
    lens, ids_in = lens[keep], ids_in[keep]
    # host masks per lane: bits below the prefix are host bits
    host_hi = np.where(
        lens >= 64, 0, np.right_shift(_ALL, np.minimum(lens, 63).astype(np.uint64))
    ).astype(np.uint64)
    host_hi[lens == 0] = _ALL
    lo_len = np.clip(lens - 64, 0, 64)
    host_lo = np.where(
        lo_len >= 64, 0, np.right_shift(_ALL, np.minimum(lo_len, 63).astype(np.uint64))
    ).astype(np.uint64)
    host_lo[lo_len == 0] = _ALL
    start_hi, start_lo = hi & ~host_hi, lo & ~host_lo
    end_hi, end_lo = start_hi | host_hi, start_lo | host_lo
    bounds = (start_hi, start_lo, end_hi, end_lo, lens, ids_in)
    b_hi, b_lo, b_ids = _flat(*bounds, np.ones(len(keep), dtype=np.bool_))

    # IPv6 copy: an IPv6 (non-mapped) key never falls inside ::ffff:0:0/96, so the
    # boundaries strictly inside it (the IPv4 ranges, which get their own copy below)
    # are left out; the first-level table spans the high lane between the first and
    # the last non-zero boundary
    in_v4 = (b_hi == 0) & (b_lo > _V4_LO) & (b_lo <= _V4_HI)
    at = int(np.searchsorted(b_hi, 0, side="right"))  # boundaries with hi == 0 come first
    after = _V4_HI + 1  # ::1:0:0:0, the first key after the IPv4 range
    j = int(np.searchsorted(b_lo[:at], after, side="right")) - 1
    b6_hi, b6_lo, b6_ids = b_hi[~in_v4], b_lo[~in_v4], b_ids[~in_v4]
    if in_v4.any() and b_lo[j] != after:  # the range after IPv4 keeps its label
        pos = int(np.searchsorted(b6_lo[: at - int(in_v4.sum())], after))
        b6_hi = np.insert(b6_hi, pos, 0)
        b6_lo = np.insert(b6_lo, pos, after)
        b6_ids = np.insert(b6_ids, pos, b_ids[j])
    bits = _table_bits(len(b6_hi), _V6_EXTRA, _V6_CAP)
    nz = b6_hi[b6_hi > 0]
    base = np.uint64(nz[0]) if len(nz) else np.uint64(0)
    span = int(b6_hi[-1]) - int(base) if len(nz) else 0
    shift = max(max(span - 1, 0).bit_length() - bits, 0)  # keys above clamp to the last
    v6_table = _direct_table(b6_hi, b6_lo, b6_ids, base, np.uint64(shift), 1 << bits)
    v6_bounds = np.empty((len(b6_hi), 3), dtype=np.uint64)
    v6_bounds[:, 0] = b6_hi
    v6_bounds[:, 1] = b6_lo
    v6_bounds[:, 2] = b6_ids.astype(np.int64).view(np.uint64)

    # IPv4 copy: the ranges of the prefixes inside ::ffff:0:0/96 (IPv4 ones, or IPv6 ones
    # naming mapped addresses), start and id + 1 packed in one word. An IPv6 prefix that
    # merely spans the block (::/0, ::/64) holds no IPv4 address, as for ``ipaddress``
    mapped = (start_hi == 0) & (start_lo >= _V4_LO) & (end_hi == 0) & (end_lo <= _V4_HI)
    b_hi, b_lo, b_ids = _flat(*bounds, mapped)
    at = len(b_hi)  # every boundary of mapped prefixes has hi == 0
    in_v4 = (b_lo > _V4_LO) & (b_lo <= _V4_HI)
    below = int(np.searchsorted(b_lo[:at], _V4_LO, side="right")) - 1
    v4_starts = np.concatenate([[0], (b_lo[in_v4] - _V4_LO)]).astype(np.uint64)
    v4_ids = np.concatenate([[b_ids[below]], b_ids[in_v4]]).astype(np.int32)
    bits4 = _table_bits(len(v4_starts), _V4_EXTRA, _V4_CAP)
    v4_table = _direct_table(
        v4_starts, np.zeros_like(v4_starts), v4_ids, np.uint64(0), np.uint64(32 - bits4), 1 << bits4
    )
    v4_ranges = (v4_starts << np.uint64(32)) | (v4_ids.astype(np.int64) + 1).astype(np.uint64)
    return PrefixIndex(
        v6_bounds=v6_bounds,
        v6_table=v6_table,
        v6_params=np.array([base, shift], dtype=np.uint64),
        v4_ranges=v4_ranges,
        v4_table=v4_table,
    )


def probe_prefix_lanes(
    index: PrefixIndex, lanes: np.ndarray, validity: np.ndarray, *, threads: int = 1
) -> np.ndarray:
    """Kernel call on ``(n, 2)`` native uint64 lanes and a bool mask: int32 id per row."""
    out = np.empty(lanes.shape[0], dtype=np.int32)

    def run(a: int, b: int) -> None:
        _probe_prefix(lanes[a:b], validity[a:b], *index, out[a:b])

    if lanes.shape[0]:
        run_row_ranges(run, lanes.shape[0], threads=threads)
    return out


def probe_prefix(
    index: PrefixIndex,
    values: pa.Array | pa.ChunkedArray | np.ndarray,
    *,
    validity: np.ndarray | None = None,
    threads: int = 1,
) -> np.ndarray:
    """Id of the longest prefix containing each row's address, -1 when none (or null).

    ``values`` as for :func:`detect.kernels.ip_set.probe_ip_set`: fixed_size_binary(16)
    Array / ChunkedArray / dictionary, or an ``(n, 16)`` uint8 matrix with ``validity``.
    """
    if isinstance(values, np.ndarray):
        lanes, valid = _ip_matrix(values, validity)
        return probe_prefix_lanes(index, lanes, valid, threads=threads)

    def plain(chunk: pa.Array) -> np.ndarray:
        if pa.types.is_null(chunk.type):
            return np.full(len(chunk), -1, dtype=np.int32)
        lanes, valid = _ip_matrix(chunk, None)
        return probe_prefix_lanes(index, lanes, valid, threads=threads)

    return probe_ids(values, plain)
