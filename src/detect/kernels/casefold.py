"""Unicode full case folding of Arrow string columns: exactly Python's ``str.casefold()``.

Sigma matching is case-insensitive under Unicode case folding, which is not lower
casing: ``'ß'`` folds to ``'ss'``, ``'ﬁ'`` to ``'fi'``, final sigma ``'ς'`` to ``'σ'``,
Cherokee small letters to the capitals, ``'İ'`` to ``'i̇'`` (``pyarrow.compute.utf8_lower``
and polars ``to_lowercase`` do none of these). :func:`casefold` folds a string column
and :func:`casefold_str` folds a pattern; both are the same function, Python's
``str.casefold`` (full folding, CaseFolding.txt statuses C + F, no Turkic T), of the
Unicode version of the running Python.

Fold table (:func:`casefold_table`, built once per process and cached): every code
point whose ``chr(c).casefold()`` differs from ``chr(c)``, sorted, with its folded
UTF-8 bytes flattened (``offsets``/``data``), plus a two-level index for O(1) lookup
(``pages``: code point >> 8 -> first slot of its page in ``slots`` or -1; ``slots``:
code point & 0xFF -> row of the table or -1). CPython folds code point by code point
(no context, unlike ``lower`` with final sigma), so a per-code-point table is exact.
The build asks Python to fold whole blocks of 4096 and then 256 code points and goes
code point by code point only in the ~25 pages that change: ~0.04 s, once per process
(``functools.cache``; no file cache, which would have to track the Unicode version).

Kernel (one thread, no Python per row), three passes at most:

1. ASCII: one flat, vectorised pass writes ``data[s:e]`` with ``A-Z`` lowered (other
   bytes copied) into a buffer from Arrow's memory pool and notes any byte >= 0x80.
   None: that buffer is the result, with the input's offsets (rebased only for a
   slice) and validity. About as fast as ``pc.ascii_lower`` alone, which would still
   need a separate check (``pc.utf8_lower`` has no ASCII shortcut: 20x slower).
2. Non-ASCII, in place: a scan skips ASCII 8 bytes at a time, decodes each other code
   point and looks it up (two array reads instead of a binary search over 1,530 rows;
   whole pages without folds, CJK for one, fail at the first read). Folds that keep
   their byte length (``'ü'``, ``'ß'`` -> ``'ss'``, Cyrillic, Greek) overwrite the
   bytes of pass 1 in place: offsets unchanged.
3. From the first fold that changes length (``'ẞ'`` 3 -> 2 bytes, ``'İ'`` 2 -> 3,
   ``'ΐ'`` 2 -> 6), the rest is rebuilt in a second buffer (runs of pass-1 bytes
   copied, folded bytes from the table) and the later offsets are shifted by the bytes
   gained. The kernel returns to its Python caller to get or grow that buffer and
   resumes (numba reference-counts an array variable reassigned inside a loop, which
   made the whole loop 3-5x slower).

Measured with ``benchmarks/test_casefold_bench.py`` (one thread, busy 2-core machine),
ours vs ``pc.utf8_lower``: 2M all-ASCII host names 2.7 vs 66 ms; 2M URLs, 2 % with an
IDN label, 16 vs 72 ms; the same with length-changing folds 33 vs 75 ms (5M rows: 11
vs 157, 44 vs 177, 157 vs 368 ms).

Invalid UTF-8 (which validated Arrow string arrays never hold) is copied through byte
for byte: a lead byte without its continuation bytes, overlong forms, and surrogates
are left as they are, and nothing reads past the row's end.

Layouts: ``string`` -> ``string`` and ``large_string`` -> ``large_string``; slices are
read in place; nulls stay null (the bytes under a null row are folded too, harmlessly).
A ``ChunkedArray`` is folded chunk by chunk and comes back as a ``ChunkedArray`` with
the same chunks (nothing is combined). A ``string`` output over 2 GiB (the int32
offset limit) raises ``OverflowError``; cast to ``large_string`` first.

Examples
--------
>>> import pyarrow as pa
>>> casefold(pa.array(["Straße", None, "ﬁLE.EXE", "ΌΣΟΣ", "ꮳꮃꭹ"])).to_pylist()
['strasse', None, 'file.exe', 'όσοσ', 'ᏣᎳᎩ']
>>> casefold_str("Straße") == "Straße".casefold()
True
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from detect import arrow_buffers as ab
from detect.kernels._jit import njit

__all__ = [
    "FoldTable",
    "casefold",
    "casefold_buffers",
    "casefold_str",
    "casefold_table",
    "folds_into_ascii",
]

_PAGE = 256
_MAX_CP = 0x110000
_INT32_MAX = 2**31 - 1
_ONE_BYTE = np.zeros(1, dtype=np.uint8)  # numba needs a non-empty buffer to index
_EMPTY = np.zeros(0, dtype=np.uint8)

_HIGH = np.uint64(0x8080808080808080)
_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_ADD_A = np.uint64(0x3F3F3F3F3F3F3F3F)  # + byte >= 'A' (0x41) sets the high bit
_ADD_Z = np.uint64(0x2525252525252525)  # + byte > 'Z' (0x5A) sets the high bit


class FoldTable(NamedTuple):
    """Code points that change under ``str.casefold`` and their folded UTF-8 bytes."""

    code_points: np.ndarray  # (m,) int32, sorted
    offsets: np.ndarray  # (m + 1,) int32: folded bytes of row k are data[offsets[k]:offsets[k+1]]
    data: np.ndarray  # uint8
    pages: np.ndarray  # (0x1100,) int32: code point >> 8 -> first slot of the page, -1 none
    slots: np.ndarray  # (256 * pages with folds,) int32: row of the table, -1 unchanged


@functools.cache
def casefold_table() -> FoldTable:
    """The fold table of this Python's ``str.casefold`` (built once, ~0.04 s, then cached)."""
    # every code point as one str (surrogates too: casefold leaves them alone), then only
    # the 4096- and 256-code-point blocks that change under folding are looked at per char
    everything = np.arange(_MAX_CP, dtype="<u4").tobytes().decode("utf-32-le", "surrogatepass")
    cps: list[int] = []
    folded: list[bytes] = []
    for block in range(0, _MAX_CP, 16 * _PAGE):
        text = everything[block : block + 16 * _PAGE]
        if text.casefold() == text:
            continue
        for base in range(block, block + 16 * _PAGE, _PAGE):
            page = everything[base : base + _PAGE]
            if page.casefold() == page:
                continue
            for c in range(base, base + _PAGE):
                f = everything[c].casefold()
                if f != everything[c]:
                    cps.append(c)
                    folded.append(f.encode())
    code_points = np.array(cps, dtype=np.int32)
    offsets = np.zeros(len(folded) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum([len(f) for f in folded])
    data = np.frombuffer(b"".join(folded), dtype=np.uint8).copy()
    pages = np.full(_MAX_CP // _PAGE, -1, dtype=np.int32)
    page_ids = np.unique(code_points >> 8)
    pages[page_ids] = np.arange(len(page_ids), dtype=np.int32) * _PAGE
    slots = np.full(len(page_ids) * _PAGE, -1, dtype=np.int32)
    slots[pages[code_points >> 8] + (code_points & 0xFF)] = np.arange(len(cps), dtype=np.int32)
    return FoldTable(code_points, offsets, data, pages, slots)


@functools.cache
def folds_into_ascii() -> tuple[bytes, ...]:
    """UTF-8 of the non-ASCII code points whose fold holds an ASCII byte (``'ſ'`` -> ``'s'``).

    Why it matters: only these 19 (``'K'`` Kelvin, ``'ß'``, ``'ﬁ'``, ``'İ'``...) give a
    row's folded text ASCII that its raw text lacks, so a row without any of them holds
    an ASCII pattern under folding exactly where it holds it ignoring ASCII case.

    >>> "K".encode() in folds_into_ascii(), "é".encode() in folds_into_ascii()
    (True, False)
    """
    t = casefold_table()
    return tuple(
        chr(cp).encode("utf-8", "surrogatepass")
        for k, cp in enumerate(t.code_points.tolist())
        if cp >= 0x80 and bool((t.data[t.offsets[k] : t.offsets[k + 1]] < 0x80).any())
    )


def casefold_str(s: str) -> str:
    """Fold a pattern: ``s.casefold()``, the same function :func:`casefold` applies to columns."""
    return s.casefold()


@njit
def _ascii_lower(data: np.ndarray, s: int, e: int, out: np.ndarray) -> bool:
    """``out[k] = data[s + k]`` with ``A-Z`` -> ``a-z``; whether any byte was >= 0x80.

    Other bytes, UTF-8 included, are copied unchanged. Unsigned indices let numba skip
    the negative-index check, so LLVM vectorises the loop (~0.07 ns a byte here).
    """
    base = np.uint64(s)
    acc = np.uint8(0)
    for k in range(np.uint64(e - s)):
        c = data[base + k]
        acc |= c
        out[k] = c + np.uint8(32) if np.uint8(65) <= c <= np.uint8(90) else c
    return acc >= 0x80


# _fold_non_ascii's resumable state, an int64 array: where it stopped and why
_I, _K, _POS, _SRC, _DELTA, _COPYING = range(6)
_DONE, _NEED_COPY, _NEED_ROOM = 0, 1, 2


@njit
def _fold_non_ascii(
    offsets: np.ndarray,
    data: np.ndarray,
    low: np.ndarray,
    out: np.ndarray,
    out_off: np.ndarray,
    t_off: np.ndarray,
    t_data: np.ndarray,
    pages: np.ndarray,
    slots: np.ndarray,
    state: np.ndarray,
) -> int:
    """Fold the non-ASCII code points of ``data[s:e]`` (``s, e = offsets[0], offsets[-1]``).

    ``low`` is ``data[s:e]`` with ASCII lowered already; ``out_off`` comes in as
    ``offsets - s``. While every fold keeps its byte length (``'ü'``, ``'ß'``,
    Cyrillic, Greek) the folded bytes are written into ``low`` in place. At the first
    fold that changes length (``'ẞ'`` 3 -> 2 bytes, ``'İ'`` 2 -> 3) the kernel returns
    ``_NEED_COPY``; the caller gives it ``out`` (holding ``low[:at]``) and calls again,
    and from there on the result is built in ``out``: runs of unchanged bytes copied
    from ``low``, folded bytes from the table, and every later row boundary shifted by
    the bytes gained so far. ``_NEED_ROOM`` asks for a bigger ``out`` (copied up to
    ``state[_POS]``). The kernel never allocates: numba reference-counts an array
    variable that is reassigned in a loop, and that ran the whole loop ~6x slower.

    ASCII is skipped 8 bytes at a time; a cursor over the row boundaries bounds
    decoding by the row's end, so malformed UTF-8 is kept byte for byte and never
    merges with the next row.
    """
    n = len(offsets) - 1
    s = offsets[0]
    e = offsets[n]
    i = state[_I]
    k = state[_K]  # next row boundary not yet passed
    pos = state[_POS]  # write position in ``out`` while copying
    src = state[_SRC]  # bytes of ``low`` already emitted while copying
    delta = state[_DELTA]  # output bytes minus input bytes so far
    copying = state[_COPYING] != 0
    cap = len(out)
    while i < e:
        while i + 8 <= e:  # skip ASCII, a word at a time
            j = np.uint64(i)
            w = (
                np.uint64(data[j])
                | (np.uint64(data[j + np.uint64(1)]) << np.uint64(8))
                | (np.uint64(data[j + np.uint64(2)]) << np.uint64(16))
                | (np.uint64(data[j + np.uint64(3)]) << np.uint64(24))
                | (np.uint64(data[j + np.uint64(4)]) << np.uint64(32))
                | (np.uint64(data[j + np.uint64(5)]) << np.uint64(40))
                | (np.uint64(data[j + np.uint64(6)]) << np.uint64(48))
                | (np.uint64(data[j + np.uint64(7)]) << np.uint64(56))
            )
            if w & _HIGH:
                break
            i += 8
        while i < e and data[i] < 0x80:
            i += 1
        if i >= e:
            break
        while offsets[k] <= i:  # the row holding byte i ends at offsets[k]
            out_off[k] += delta
            k += 1
        re = offsets[k]
        # decode one code point within the row; anything malformed is one byte, kept
        c0 = np.int64(data[i])
        cp = -1
        size = 1
        if 0xC2 <= c0 <= 0xDF and i + 1 < re and (data[i + 1] & 0xC0) == 0x80:
            cp = ((c0 & 0x1F) << 6) | (np.int64(data[i + 1]) & 0x3F)
            size = 2
        elif (
            0xE0 <= c0 <= 0xEF
            and i + 2 < re
            and (data[i + 1] & 0xC0) == 0x80
            and (data[i + 2] & 0xC0) == 0x80
        ):
            cp = (
                ((c0 & 0x0F) << 12)
                | ((np.int64(data[i + 1]) & 0x3F) << 6)
                | (np.int64(data[i + 2]) & 0x3F)
            )
            size = 3
            if cp < 0x800:  # overlong
                cp = -1
                size = 1
        elif (
            0xF0 <= c0 <= 0xF4
            and i + 3 < re
            and (data[i + 1] & 0xC0) == 0x80
            and (data[i + 2] & 0xC0) == 0x80
            and (data[i + 3] & 0xC0) == 0x80
        ):
            cp = (
                ((c0 & 0x07) << 18)
                | ((np.int64(data[i + 1]) & 0x3F) << 12)
                | ((np.int64(data[i + 2]) & 0x3F) << 6)
                | (np.int64(data[i + 3]) & 0x3F)
            )
            size = 4
            if cp < 0x10000 or cp >= 0x110000:  # overlong or past U+10FFFF
                cp = -1
                size = 1
        row = -1
        if cp >= 0:
            page = pages[cp >> 8]
            if page >= 0:
                row = slots[page + (cp & 0xFF)]
        if row >= 0:
            fs = t_off[row]
            flen = t_off[row + 1] - fs
            at = i - s
            if not copying:
                if flen == size:
                    for q in range(flen):
                        low[at + q] = t_data[fs + q]
                    i += size
                    continue
                state[_I] = i
                state[_K] = k
                state[_POS] = at
                state[_SRC] = at
                state[_DELTA] = delta
                state[_COPYING] = 1
                return _NEED_COPY
            run = at - src
            if pos + run + flen > cap:
                state[_I] = i
                state[_K] = k
                state[_POS] = pos
                state[_SRC] = src
                state[_DELTA] = delta
                return _NEED_ROOM
            a = np.uint64(src)
            b = np.uint64(pos)
            for q in range(np.uint64(run)):
                out[b + q] = low[a + q]
            pos += run
            for q in range(flen):
                out[pos + q] = t_data[fs + q]
            pos += flen
            src = at + size
            delta += flen - size
        i += size
    if copying:
        run = (e - s) - src
        if pos + run > cap:
            state[_I] = e
            state[_K] = k
            state[_POS] = pos
            state[_SRC] = src
            state[_DELTA] = delta
            return _NEED_ROOM
        a = np.uint64(src)
        b = np.uint64(pos)
        for q in range(np.uint64(run)):
            out[b + q] = low[a + q]
        pos += run
        while k <= n:
            out_off[k] += delta
            k += 1
    state[_POS] = pos if copying else e - s
    return _DONE


def casefold_buffers(offsets: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fold rows ``data[offsets[i]:offsets[i + 1]]``: new (offsets rebased to 0, data).

    Output offsets have the input's dtype (the input's own array when it starts at 0
    and no fold changes a length). The buffer-level entry point, no Arrow involved;
    :func:`casefold` wraps it.
    """
    n = len(offsets) - 1
    if n <= 0:
        return np.zeros(1, dtype=offsets.dtype), _EMPTY
    s, e = int(offsets[0]), int(offsets[n])
    buf = data if len(data) else _ONE_BYTE
    # from Arrow's pool (mimalloc): reused between batches, where a fresh numpy buffer of
    # this size is a new mmap whose pages fault in on first write (~2x the pass itself)
    low = np.frombuffer(pa.allocate_buffer(max(e - s, 1)), dtype=np.uint8)
    rebased = offsets if s == 0 else offsets - offsets.dtype.type(s)
    if not _ascii_lower(buf, s, e, low):
        return rebased, low[: e - s]
    t = casefold_table()
    out_off = rebased.copy() if s == 0 else rebased
    state = np.zeros(6, dtype=np.int64)
    state[_I], state[_K] = s, 1
    out = _ONE_BYTE
    while True:
        status = _fold_non_ascii(
            offsets, buf, low, out, out_off, t.offsets, t.data, t.pages, t.slots, state
        )
        if status == _DONE:
            break
        used = int(state[_POS])
        if status == _NEED_COPY:  # the first fold that changes length: build the result apart
            out = np.empty(used + (e - s - used) * 9 // 8 + 64, dtype=np.uint8)
            out[:used] = low[:used]
        else:  # _NEED_ROOM
            bigger = np.empty(2 * len(out) + 64, dtype=np.uint8)
            bigger[:used] = out[:used]
            out = bigger
    size = int(state[_POS])
    if state[_COPYING] == 0:
        return (rebased if s == 0 else out_off), low[:size]
    if offsets.dtype == np.int32 and size > _INT32_MAX:
        msg = f"folded strings need {size} bytes, over a string array's 2 GiB; use large_string"
        raise OverflowError(msg)
    return out_off, out[:size]


def _casefold_one(arr: pa.Array) -> pa.Array:
    typ = arr.type
    if not (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        msg = f"casefold expects a string or large_string array, got {typ}"
        raise TypeError(msg)
    buf = ab.string_buffers(arr)
    out_off, out = casefold_buffers(buf.offsets, buf.data)
    return ab.string_array(out_off, out, buf.validity)


def casefold(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """``str.casefold`` of every value; nulls stay null, type and chunk layout are kept.

    Equal to ``pa.array([None if v is None else v.casefold() for v in arr.to_pylist()])``
    (with ``arr.type``). A ChunkedArray gives a ChunkedArray with the same chunks.
    """
    return ab.map_chunks(_casefold_one, arr)
