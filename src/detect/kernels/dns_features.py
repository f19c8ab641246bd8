"""Per-name DNS features for tunnelling / DGA detection, and exact grouping helpers.

One pass over the Arrow string buffers of the query names (and of their registered
domains) gives, per row, everything ``detect.anomaly.dns_tunnel`` needs (DETECTORS.md
d.3-d.5). Names are read case-insensitively (ASCII ``A-Z`` folded, as DNS does) and one
trailing dot is ignored. Other bytes, UTF-8 included, are taken one byte = one symbol.

Parts of a name (after folding and dropping one trailing dot):

- *labels*: the pieces between dots (``a..b`` has three labels, one empty); the empty
  name has none;
- *first label*: the leftmost label (for ``xjq.com`` the registered-domain label: the
  one Maltrail's DGA tests look at);
- *subdomain part*: the labels left of the registered domain, without the joining dot
  (``a.b`` for ``a.b.example.co.uk`` with registered domain ``example.co.uk``). When
  the registered domain is null or is not a label-aligned suffix of the name, the
  last two labels are taken as the registered domain instead (Maltrail's and
  Zircolite's approximation), so ``10.0.0.1`` has the subdomain part ``10.0``.

Features (:class:`NameFeatures`, one numpy array each, 0 for null names):

============================ ======= ===========================================================
``n_labels``                 int32   number of labels
``max_label``                int32   longest label, bytes
``first_len``                int32   first label length
``first_dash``               bool    the first label has a ``-``
``first_consonants``         int32   bytes of the first label in ``bcdfghjklmnpqrstvwxyz``
``first_consonant_run``      int32   longest run of such consonants in the first label
``first_entropy``            float64 Shannon entropy (base 2) of the first label's bytes
``sub_len``                  int32   subdomain part length (dots included)
``sub_chars``                int32   subdomain part length without its dots
``sub_entropy``              float64 Shannon entropy (base 2) of the dot-stripped subdomain part
``sub_digit_ratio``          float64 digits / ``sub_chars`` (0 when empty)
``sub_hex_run``              int32   longest run of ``[0-9a-f]`` in the subdomain part
``sub_base64_run``           int32   longest match of ``[A-Za-z0-9+/]+={0,2}`` in it
============================ ======= ===========================================================

Runs never cross a dot. Entropy ``H = -sum p_c log2 p_c`` over the byte frequencies
is computed as ``log2 N - (sum c log2 c) / N`` with a table of ``c log2 c``, so the
only transcendental call per row is a table lookup (agrees with the textbook sum to
~1e-15).

The same pass writes the normalised name (folded, one trailing dot dropped) so that
callers store and group a canonical spelling.

Grouping: :func:`intern_strings` gives exact dense codes for strings (hash table,
every hit verified byte for byte) and :func:`group_int64` dense ids for int64 keys,
plus a first-occurrence flag; an exact distinct count per group is then a
``bincount`` of the first occurrences of (group, code) pairs.

Examples
--------
>>> import pyarrow as pa
>>> f = name_features(pa.array(["AbC.x1y2.Example.com.", None]), pa.array(["example.com", None]))
>>> f.n_labels.tolist(), f.first_len.tolist(), f.sub_len.tolist(), f.sub_chars.tolist()
([4, 0], [3, 0], [8, 0], [7, 0])
>>> round(float(f.first_entropy[0]), 4), f.sub_hex_run.tolist()
(1.585, [3, 0])
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detect import arrow_buffers as ab
from detect.kernels._jit import njit
from detect.kernels._prefetch import prefetch
from detect.kernels.hashing import _fmix64, _hash_string, _load_word, _slot_shift

__all__ = [
    "FEATURE_NAMES",
    "NameFeatures",
    "group_int64",
    "intern_buffers",
    "intern_strings",
    "is_in_dictionary",
    "name_feature_buffers",
    "name_features",
    "name_features_and_names",
]

_DOT = np.uint8(46)
_ONE_BYTE = np.zeros(1, dtype=np.uint8)
_TABLE_SIZE = 1024


def _xlogx_table() -> np.ndarray:
    """``c * log2(c)`` for ``c`` in ``0 .. _TABLE_SIZE - 1`` (0 for ``c = 0``)."""
    c = np.arange(_TABLE_SIZE, dtype=np.float64)
    out = np.zeros(_TABLE_SIZE, dtype=np.float64)
    out[1:] = c[1:] * np.log2(c[1:])
    return out


_XLOGX = _xlogx_table()

# byte classes, bit flags per byte value (after folding)
_CONSONANT, _DIGIT, _HEX, _B64 = 1, 2, 4, 8


def _class_table() -> np.ndarray:
    t = np.zeros(256, dtype=np.uint8)
    for ch in b"bcdfghjklmnpqrstvwxyz":
        t[ch] |= _CONSONANT
    for ch in b"0123456789":
        t[ch] |= _DIGIT | _HEX | _B64
    for ch in b"abcdef":
        t[ch] |= _HEX
    for ch in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/":
        t[ch] |= _B64
    return t


_CLASSES = _class_table()

FEATURE_NAMES = (
    "n_labels",
    "max_label",
    "first_len",
    "first_dash",
    "first_consonants",
    "first_consonant_run",
    "first_entropy",
    "sub_len",
    "sub_chars",
    "sub_entropy",
    "sub_digit_ratio",
    "sub_hex_run",
    "sub_base64_run",
)


class NameFeatures(NamedTuple):
    """Per-name features (see the module docstring); every field has one entry per row."""

    n_labels: np.ndarray
    max_label: np.ndarray
    first_len: np.ndarray
    first_dash: np.ndarray
    first_consonants: np.ndarray
    first_consonant_run: np.ndarray
    first_entropy: np.ndarray
    sub_len: np.ndarray
    sub_chars: np.ndarray
    sub_entropy: np.ndarray
    sub_digit_ratio: np.ndarray
    sub_hex_run: np.ndarray
    sub_base64_run: np.ndarray


@njit
def _name_features(
    offsets: np.ndarray,
    data: np.ndarray,
    valid: np.ndarray,
    r_offsets: np.ndarray,
    r_data: np.ndarray,
    r_valid: np.ndarray,
    xlogx: np.ndarray,
    classes: np.ndarray,
    out_off: np.ndarray,
    out_data: np.ndarray,
    ints: np.ndarray,
    floats: np.ndarray,
) -> None:
    """Fill ``ints`` ``(10, n)`` int32, ``floats`` ``(3, n)`` float64 and the folded names.

    ``ints`` rows: n_labels, max_label, first_len, first_dash, first_consonants,
    first_consonant_run, sub_len, sub_chars, sub_hex_run, sub_base64_run (10);
    ``floats`` rows: first_entropy, sub_entropy, sub_digit_ratio. Arrays come
    zeroed; null rows are left at 0.
    """
    n = len(offsets) - 1
    table = len(xlogx)
    cnt_a = np.zeros(256, dtype=np.int64)
    cnt_b = np.zeros(256, dtype=np.int64)
    pos = 0
    out_off[0] = 0
    for row in range(n):
        if not valid[row]:
            out_off[row + 1] = pos
            continue
        s = offsets[row]
        e = offsets[row + 1]
        if e > s and data[e - 1] == _DOT:
            e -= 1
        # registered domain -> end of the subdomain part [s, se)
        se = s
        matched = False
        if r_valid[row]:
            rs = r_offsets[row]
            re = r_offsets[row + 1]
            if re > rs and r_data[re - 1] == _DOT:
                re -= 1
            m = re - rs
            if 0 < m <= e - s:
                same = True
                for k in range(m):
                    a = data[e - m + k]
                    b = r_data[rs + k]
                    if np.uint8(65) <= a <= np.uint8(90):
                        a += np.uint8(32)
                    if np.uint8(65) <= b <= np.uint8(90):
                        b += np.uint8(32)
                    if a != b:
                        same = False
                        break
                if same:
                    if m == e - s:
                        matched = True
                    elif data[e - m - 1] == _DOT:
                        se = e - m - 1
                        matched = True
        if not matched:
            dots = 0
            i = e - 1
            while i >= s:
                if data[i] == _DOT:
                    dots += 1
                    if dots == 2:
                        se = i
                        break
                i -= 1
        label = 0
        cur = 0
        max_label = 0
        first_len = 0
        dash = 0
        cons = 0
        cons_cur = 0
        cons_run = 0
        schars = 0
        digits = 0
        hex_cur = 0
        hex_max = 0
        b_cur = 0
        b_eq = 0
        b_max = 0
        for i in range(s, e):
            c = data[i]
            if np.uint8(65) <= c <= np.uint8(90):
                c += np.uint8(32)
            out_data[pos] = c
            pos += 1
            if c == _DOT:
                if label == 0:
                    first_len = cur
                max_label = max(max_label, cur)
                cur = 0
                label += 1
                hex_cur = 0
                b_cur = 0
                b_eq = 0
                continue
            cur += 1
            cls = classes[c]
            if label == 0:
                cnt_a[c] += 1
                if c == np.uint8(45):
                    dash = 1
                if cls & 1:
                    cons += 1
                    cons_cur += 1
                    cons_run = max(cons_run, cons_cur)
                else:
                    cons_cur = 0
            if i < se:
                cnt_b[c] += 1
                schars += 1
                if cls & 2:
                    digits += 1
                if cls & 4:
                    hex_cur += 1
                    hex_max = max(hex_max, hex_cur)
                else:
                    hex_cur = 0
                if cls & 8:
                    if b_eq > 0:
                        b_cur = 0
                        b_eq = 0
                    b_cur += 1
                    b_max = max(b_max, b_cur)
                elif c == np.uint8(61):
                    if b_cur > 0 and b_eq < 2:
                        b_eq += 1
                        b_max = max(b_max, b_cur + b_eq)
                    else:
                        b_cur = 0
                        b_eq = 0
                else:
                    b_cur = 0
                    b_eq = 0
        if label == 0:
            first_len = cur
        max_label = max(max_label, cur)
        out_off[row + 1] = pos
        # entropies: second pass over the (short) first label and subdomain part
        h_first = 0.0
        if first_len > 0:
            acc = 0.0
            for i in range(s, s + first_len):
                c = data[i]
                if np.uint8(65) <= c <= np.uint8(90):
                    c += np.uint8(32)
                k = cnt_a[c]
                if k > 0:
                    acc += xlogx[k] if k < table else k * np.log2(k)
                    cnt_a[c] = 0
            lg = xlogx[first_len] / first_len if first_len < table else np.log2(first_len)
            h_first = lg - acc / first_len
        h_sub = 0.0
        if schars > 0:
            acc = 0.0
            for i in range(s, se):
                c = data[i]
                if np.uint8(65) <= c <= np.uint8(90):
                    c += np.uint8(32)
                k = cnt_b[c]
                if k > 0:
                    acc += xlogx[k] if k < table else k * np.log2(k)
                    cnt_b[c] = 0
            lg = xlogx[schars] / schars if schars < table else np.log2(schars)
            h_sub = lg - acc / schars
        ints[0, row] = label + 1
        ints[1, row] = max_label
        ints[2, row] = first_len
        ints[3, row] = dash
        ints[4, row] = cons
        ints[5, row] = cons_run
        ints[6, row] = se - s
        ints[7, row] = schars
        ints[8, row] = hex_max
        ints[9, row] = b_max
        floats[0, row] = max(h_first, 0.0)
        floats[1, row] = max(h_sub, 0.0)
        floats[2, row] = digits / schars if schars > 0 else 0.0
        if e == s:
            ints[0, row] = 0


def name_feature_buffers(
    offsets: np.ndarray,
    data: np.ndarray,
    validity: np.ndarray | None,
    r_offsets: np.ndarray,
    r_data: np.ndarray,
    r_validity: np.ndarray | None,
) -> tuple[NameFeatures, np.ndarray, np.ndarray]:
    """Kernel call on buffers: ``(features, folded offsets, folded data)``.

    ``offsets``/``data``/``validity``: the names; ``r_*``: the registered domains,
    same row count (all-null allowed). The folded names have offsets of the input's
    dtype, starting at 0, and the input's validity.
    """
    n = len(offsets) - 1
    if len(r_offsets) - 1 != n:
        msg = f"names have {n} rows, registered domains {len(r_offsets) - 1}"
        raise ValueError(msg)
    valid = ab.validity_or_ones(validity, n)
    r_valid = ab.validity_or_ones(r_validity, n)
    total = int(offsets[-1] - offsets[0]) if n else 0
    out_off = np.zeros(n + 1, dtype=offsets.dtype)
    out_data = np.empty(max(total, 1), dtype=np.uint8)
    ints = np.zeros((10, n), dtype=np.int32)
    floats = np.zeros((3, n), dtype=np.float64)
    if n:
        _name_features(
            offsets, data if len(data) else _ONE_BYTE, valid, r_offsets,
            r_data if len(r_data) else _ONE_BYTE, r_valid, _XLOGX, _CLASSES, out_off, out_data,
            ints, floats,
        )  # fmt: skip
    feats = NameFeatures(
        n_labels=ints[0],
        max_label=ints[1],
        first_len=ints[2],
        first_dash=ints[3].astype(np.bool_),
        first_consonants=ints[4],
        first_consonant_run=ints[5],
        first_entropy=floats[0],
        sub_len=ints[6],
        sub_chars=ints[7],
        sub_entropy=floats[1],
        sub_digit_ratio=floats[2],
        sub_hex_run=ints[8],
        sub_base64_run=ints[9],
    )
    return feats, out_off, out_data[: int(out_off[-1])]


def _plain(arr: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if pa.types.is_null(arr.type):
        arr = pa.nulls(len(arr), pa.string())
    return arr


def _name_features_one(names: pa.Array, registered: pa.Array) -> tuple[NameFeatures, pa.Array]:
    names = _plain(names)
    registered = _plain(registered)
    nb = ab.string_buffers(names)
    rb = ab.string_buffers(registered)
    feats, off, data = name_feature_buffers(
        nb.offsets, nb.data, nb.validity, rb.offsets, rb.data, rb.validity
    )
    return feats, ab.string_array(off, data, nb.validity)


def name_features_and_names(
    names: pa.Array | pa.ChunkedArray, registered: pa.Array | pa.ChunkedArray | None = None
) -> tuple[NameFeatures, pa.Array | pa.ChunkedArray]:
    """:func:`name_features` plus the normalised names (folded, one trailing dot dropped).

    A chunked ``names`` is processed chunk by chunk (``registered`` is sliced to
    match; a registered slice spanning several of its chunks is combined, a copy).
    """
    if registered is None:
        registered = pa.nulls(len(names), pa.string())
    if isinstance(names, pa.ChunkedArray):
        parts, folded, start = [], [], 0
        for chunk in names.chunks:
            reg = registered.slice(start, len(chunk))
            if isinstance(reg, pa.ChunkedArray):
                reg = reg.combine_chunks() if reg.num_chunks != 1 else reg.chunk(0)
            f, nm = _name_features_one(chunk, reg)
            parts.append(f)
            folded.append(nm)
            start += len(chunk)
        if not parts:
            f, nm = _name_features_one(pa.array([], pa.string()), pa.array([], pa.string()))
            return f, pa.chunked_array([nm])
        feats = NameFeatures(*(np.concatenate(cols) for cols in zip(*parts, strict=True)))
        return feats, pa.chunked_array(folded)
    if isinstance(registered, pa.ChunkedArray):
        registered = (
            registered.combine_chunks() if registered.num_chunks != 1 else registered.chunk(0)
        )
    return _name_features_one(names, registered)


def name_features(
    names: pa.Array | pa.ChunkedArray, registered: pa.Array | pa.ChunkedArray | None = None
) -> NameFeatures:
    """Features of every name (string / large_string, sliced, chunked or dictionary).

    ``registered``: the registered domain of each name (``dns.question.registered_domain``),
    or ``None`` to take the last two labels. Null names give zeros.
    """
    return name_features_and_names(names, registered)[0]


_GOLD = np.uint64(0x9E3779B97F4A7C15)
_LONG = np.int64(1) << np.int64(40)  # meta flag: the key words hold a hash, not the bytes
_M40 = (np.int64(1) << np.int64(40)) - np.int64(1)


@njit
def _short_words(data: np.ndarray, s: int, e: int, nd: int) -> tuple[np.uint64, np.uint64]:
    """``data[s:e]`` (at most 16 bytes) zero-padded to 16, as two little-endian words."""
    length = e - s
    if s + 16 <= nd:  # two unaligned loads, masked to the string
        a = _load_word(data, s)
        b = _load_word(data, s + 8)
        if length < 8:
            a &= (np.uint64(1) << np.uint64(8 * length)) - np.uint64(1)
        if length < 16:
            b &= (np.uint64(1) << np.uint64(8 * max(length - 8, 0))) - np.uint64(1)
        return a, b
    a = np.uint64(0)
    b = np.uint64(0)
    for k in range(length):  # near the buffer's end: byte by byte
        v = np.uint64(data[s + k])
        if k < 8:
            a |= v << np.uint64(8 * k)
        else:
            b |= v << np.uint64(8 * (k - 8))
    return a, b


@njit
def _intern(
    offsets: np.ndarray,
    data: np.ndarray,
    valid: np.ndarray,
    codes: np.ndarray,
    table: np.ndarray,
    first_row: np.ndarray,
    row_start: int,
    m: int,
) -> tuple[int, int]:
    """Dense codes in first-appearance order, -1 for nulls, from ``row_start`` on.

    ``table`` rows are ``(word a, word b, meta, code)``, code -1 = empty. A string of at
    most 16 bytes (IPs, ports, most names) is its own key: its zero-padded bytes as two
    words and its length in ``meta``, compared in two instructions with no indirection.
    A longer one keys on its hash (``meta`` flagged :data:`_LONG`) and is compared byte
    by byte with the first row of the candidate code. 3x faster than hashing and
    comparing every string byte by byte (2M IP texts), and faster than Arrow's
    ``dictionary_encode``. Returns ``(next_row, m)``: stops before a row when the table
    is half full, so the caller can double it (:func:`_rehash`) and resume.
    """
    size = table.shape[0]
    shift = _slot_shift(size)
    n = len(offsets) - 1
    nd = len(data)
    for row in range(row_start, n):
        if not valid[row]:
            codes[row] = -1
            continue
        if 2 * (m + 1) > size:
            return row, m
        s = np.int64(offsets[row])
        e = np.int64(offsets[row + 1])
        length = e - s
        if length <= 16:
            a, b = _short_words(data, s, e, nd)
            meta = length
            h = _fmix64(a ^ (b * _GOLD) ^ np.uint64(length))
        else:
            h = _hash_string(data, s, e, False)
            a, b, meta = h, np.uint64(0), length | _LONG
        ai, bi = np.int64(a), np.int64(b)
        slot = np.int64(h >> shift)
        while True:
            entry = table[slot, 3]
            if entry < 0:
                table[slot, 0] = ai
                table[slot, 1] = bi
                table[slot, 2] = meta
                table[slot, 3] = m
                first_row[m] = row
                codes[row] = m
                m += 1
                break
            if table[slot, 0] == ai and table[slot, 1] == bi and table[slot, 2] == meta:
                if meta < _LONG:
                    codes[row] = entry
                    break
                r = first_row[entry]
                rs = np.int64(offsets[r])
                same = True
                for k in range(length):
                    if data[rs + k] != data[s + k]:
                        same = False
                        break
                if same:
                    codes[row] = entry
                    break
            slot = (slot + 1) & (size - 1)
    return n, m


@njit
def _rehash(table: np.ndarray, new_table: np.ndarray) -> None:
    """Move every entry of an :func:`_intern` table into one twice the size."""
    size = new_table.shape[0]
    shift = _slot_shift(size)
    for i in range(table.shape[0]):
        if table[i, 3] < 0:
            continue
        a, b, meta = np.uint64(table[i, 0]), np.uint64(table[i, 1]), table[i, 2]
        h = a if meta >= _LONG else _fmix64(a ^ (b * _GOLD) ^ np.uint64(meta))
        slot = np.int64(h >> shift)
        while new_table[slot, 3] >= 0:
            slot = (slot + 1) & (size - 1)
        new_table[slot, :] = table[i, :]


_FIRST_TABLE = 1024


def intern_buffers(
    offsets: np.ndarray, data: np.ndarray, validity: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact dense codes (int64, first-appearance order, -1 for null) and each code's first row.

    The number of distinct values is ``len(first_row)``.
    """
    n = len(offsets) - 1
    codes = np.empty(n, dtype=np.int64)
    if n == 0:
        return codes, np.zeros(0, dtype=np.int64)
    data = data if len(data) else _ONE_BYTE
    valid = ab.validity_or_ones(validity, n)
    table = np.full((_FIRST_TABLE, 4), -1, dtype=np.int64)
    first_row = np.empty(n, dtype=np.int64)
    row, m = 0, 0
    while True:
        row, m = _intern(offsets, data, valid, codes, table, first_row, row, m)
        if row >= n:
            return codes, first_row[:m]
        bigger = np.full((2 * table.shape[0], 4), -1, dtype=np.int64)
        _rehash(table, bigger)
        table = bigger


def intern_strings(arr: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Exact dense codes of a string column and each code's first row (chunks combined).

    Bytes are compared exactly (no folding). ``len(first_row)`` is the distinct count.

    >>> codes, first = intern_strings(pa.array(["b", None, "a", "b"]))
    >>> codes.tolist(), first.tolist()
    ([0, -1, 1, 0], [0, 2])
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    arr = _plain(arr)
    buf = ab.string_buffers(arr)
    return intern_buffers(buf.offsets, buf.data, buf.validity)


_GROUP_BLOCK = 64  # rows hashed (and their slots prefetched) before any is inserted


@njit
def _group_int64(
    keys: np.ndarray, ids: np.ndarray, first: np.ndarray, table: np.ndarray, row_start: int, m: int
) -> tuple[int, int]:
    """Insert ``keys[row_start:]`` into ``table`` (``(size, 2)``: fmix64 hash, id; id -1 =
    empty) until it would pass half full; returns ``(next row, distinct so far)``.

    ``fmix64`` is a bijection, so equal hashes are equal keys and no key is stored. Hash
    and id share a cache line, and a block's slots are prefetched before the block is
    inserted, so the misses of a table larger than the cache overlap (2.3x faster than
    one probe at a time over two arrays on 2.4M keys).
    """
    size = table.shape[0]
    shift = _slot_shift(size)
    n = len(keys)
    hashes = np.empty(_GROUP_BLOCK, dtype=np.uint64)
    slots = np.empty(_GROUP_BLOCK, dtype=np.int64)
    for start in range(row_start, n, _GROUP_BLOCK):
        if 2 * (m + _GROUP_BLOCK) > size:
            return start, m
        end = min(start + _GROUP_BLOCK, n)
        for row in range(start, end):
            h = _fmix64(np.uint64(keys[row]))
            slot = np.int64(h >> shift)
            prefetch(table, slot)
            hashes[row - start] = h
            slots[row - start] = slot
        for row in range(start, end):
            h = hashes[row - start]
            slot = slots[row - start]
            while True:
                entry = table[slot, 1]
                if entry < 0:
                    table[slot, 0] = np.int64(h)
                    table[slot, 1] = m
                    ids[row] = m
                    first[row] = True
                    m += 1
                    break
                if np.uint64(table[slot, 0]) == h:
                    ids[row] = entry
                    first[row] = False
                    break
                slot = (slot + 1) & (size - 1)
    return n, m


@njit
def _rehash_int64(table: np.ndarray, new_table: np.ndarray) -> None:
    """Move every entry of a :func:`_group_int64` table into one twice the size."""
    size = new_table.shape[0]
    shift = _slot_shift(size)
    for i in range(table.shape[0]):
        if table[i, 1] < 0:
            continue
        slot = np.int64(np.uint64(table[i, 0]) >> shift)
        while new_table[slot, 1] >= 0:
            slot = (slot + 1) & (size - 1)
        new_table[slot, 0] = table[i, 0]
        new_table[slot, 1] = table[i, 1]


def group_int64(keys: np.ndarray, *, size_hint: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """Dense ids of int64 keys in first-appearance order, a first-occurrence flag, the count.

    ``size_hint``: the expected number of distinct keys (e.g. the row count when most keys
    are distinct); the table starts at that size instead of growing to it by rehashing.

    >>> ids, first, m = group_int64(np.array([7, 3, 7, 7, 2]))
    >>> ids.tolist(), first.tolist(), m
    ([0, 1, 0, 0, 2], [True, True, False, False, True], 3)
    """
    keys = np.ascontiguousarray(keys, dtype=np.int64)
    n = len(keys)
    ids = np.empty(n, dtype=np.int64)
    first = np.zeros(n, dtype=np.bool_)
    if n == 0:
        return ids, first, 0
    size = max(4 * _GROUP_BLOCK, 1 << (2 * min(n, _FIRST_TABLE)).bit_length())
    if size_hint > 0:  # a power of two holding min(hint, n) keys at most half full
        size = max(size, 1 << (2 * int(min(size_hint, n))).bit_length())
    table = np.full((size, 2), -1, dtype=np.int64)
    row, m = 0, 0
    while True:
        row, m = _group_int64(keys, ids, first, table, row, m)
        if row >= n:
            return ids, first, int(m)
        bigger = np.full((2 * table.shape[0], 2), -1, dtype=np.int64)
        _rehash_int64(table, bigger)
        table = bigger


def is_in_dictionary(arr: pa.Array | pa.ChunkedArray, values: frozenset[str]) -> np.ndarray:
    """``bool`` per row: the (upper-cased) value is in ``values``; work per distinct value."""
    if isinstance(arr, pa.ChunkedArray):
        if arr.num_chunks == 0:
            return np.zeros(0, dtype=np.bool_)
        return np.concatenate([is_in_dictionary(c, values) for c in arr.chunks])
    n = len(arr)
    if pa.types.is_null(arr.type) or arr.null_count == n:
        return np.zeros(n, dtype=np.bool_)
    enc = arr if pa.types.is_dictionary(arr.type) else pc.dictionary_encode(arr)
    parts = ab.dictionary_parts(enc)
    table = np.array(
        [v is not None and str(v).upper() in values for v in parts.dictionary.to_pylist()]
        + [False],
        dtype=np.bool_,
    )
    idx = parts.indices.astype(np.intp, copy=False)
    if parts.validity is not None:
        idx = np.where(parts.validity, idx, len(table) - 1)
    return table[idx]
