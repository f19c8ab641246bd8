"""Jitted hash helpers shared by the set kernels: 64-bit mixing, byte hashing, a blocked filter.

Why these and not Python's ``hash``: the kernels hash inside ``nogil`` loops over raw
Arrow buffers, and the index built from the hashes is saved to disk (``np.save``) and
memory-mapped back in another process, so the hash must be deterministic (no per
process seed) and computable from bytes alone.

- :func:`_fmix64` is MurmurHash3's 64-bit finaliser: it spreads every input bit over
  every output bit, so both the low bits (table slot) and the high bits (filter
  word) of one hash are usable.
- :func:`_hash_bytes` hashes a byte range 8 bytes at a time into two independent
  accumulators (one multiply per word, half of them in each dependency chain,
  rather than one per byte as FNV-1a would), with optional SWAR ASCII case
  folding, then finalises with :func:`_fmix64`. Measured on 48-byte URLs: 36 ns
  per row with one accumulator; see the IOC benchmark for the current figure.
- The *filter* is a blocked Bloom filter with three bits in one 64-bit word per key,
  sized at 16 bits per key (2 MB per million keys, so it stays in L3). Most event
  values match no indicator; for them one cached load answers "no" without touching
  the larger hash table, which is where set probes otherwise spend their time
  (random DRAM accesses). False positive rate about 0.5 %; each costs one table
  probe. Measured on 10M IPv4 probes against 1M keys: 8 bits/key with 2 bits gave
  129 ms, 16 bits/key with 3 bits 66 ms, 32 bits/key no better.
- Hash tables take the slot from the *top* bits of the hash (``h >> shift``), so the
  cheap multiplicative :func:`_hash_lanes` is good enough for them.

All helpers are plain ``@njit`` functions (no ``inline='always'``, see DESIGN.md
"Kernel rules"); numba/LLVM inlines them where it pays.
"""

from __future__ import annotations

import numpy as np

from detect.kernels._jit import njit

__all__ = [
    "filter_words",
    "table_size",
]

# String hash schemes (the ``scheme`` argument of the string kernels; saved in indexes):
SCHEME_BYTES = 0  # _hash_bytes: indexes saved before the faster schemes existed
SCHEME_STRING = 1  # _hash_string: any bytes
SCHEME_WINDOW = 2  # _hash_window: length + first 16 bytes (fixed-length random keys)

_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_P1 = np.uint64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio
_P2 = np.uint64(0xBF58476D1CE4E5B9)
_S33 = np.uint64(33)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_S29 = np.uint64(29)
_S58 = np.uint64(58)
_S52 = np.uint64(52)
_S46 = np.uint64(46)
_S20 = np.uint64(20)
_M63 = np.uint64(63)
_ONE = np.uint64(1)
_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_HIGH = np.uint64(0x8080808080808080)
_ADD_A = np.uint64(0x3F3F3F3F3F3F3F3F)  # 0x80 - ord("A") per byte
_ADD_Z = np.uint64(0x2525252525252525)  # 0x80 - ord("Z") - 1 per byte


@njit
def _fmix64(h: np.uint64) -> np.uint64:
    """MurmurHash3 ``fmix64``: a bijective avalanche of all 64 bits."""
    h ^= h >> _S33
    h *= _M1
    h ^= h >> _S33
    h *= _M2
    h ^= h >> _S33
    return h


@njit
def _hash_lanes(hi: np.uint64, lo: np.uint64) -> np.uint64:
    """Hash of a 16-byte key given as two native uint64 lanes; use its *high* bits.

    Deliberately cheap (two multiplies): IP probes are memory-bound and a full
    avalanche cost 2x in the IP benchmark. The xor-shift folds the upper half of
    the lane (where an IPv4 address sits in the little-endian view) into the lower
    half, so the final multiply spreads every address bit into the top bits.
    """
    x = lo ^ (hi * _P1)
    x ^= x >> _S32
    return x * _P2


@njit
def _slot_shift(size: int) -> np.uint64:
    """Right shift that turns a hash into a slot of a power-of-two table (top bits)."""
    bits = 0
    while (1 << bits) < size:
        bits += 1
    return np.uint64(64 - bits)


@njit
def _fold_word(w: np.uint64) -> np.uint64:
    """ASCII ``A-Z`` to ``a-z`` in all 8 bytes of a word at once (SWAR); other bytes unchanged."""
    low7 = w & _LOW7
    ge_a = low7 + _ADD_A  # high bit set where byte >= 'A'
    gt_z = low7 + _ADD_Z  # high bit set where byte > 'Z'
    upper = (ge_a & ~gt_z) & ~w & _HIGH  # ASCII (high bit clear) and in 'A'..'Z'
    return w | (upper >> np.uint64(2))  # 0x80 >> 2 == 0x20


@njit
def _hash_bytes(data: np.ndarray, s: int, e: int, fold: bool) -> np.uint64:  # noqa: FBT001 (numba: no keyword-only)
    """Hash of ``data[s:e]``, ASCII ``A-Z`` folded to ``a-z`` when ``fold``.

    Words are little-endian assemblies of 8 bytes, written out term by term so LLVM
    turns them into one unaligned 64-bit load; folding is done on the whole word.
    The length enters the seed so that ``b"a"`` and ``b"a\x00"`` differ.
    """
    h = np.uint64(e - s) * _P1
    g = _P2
    i = s
    odd = False
    while i + 8 <= e:
        j = np.uint64(i)  # unsigned index: numba then skips negative-index wraparound
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
        if fold:
            w = _fold_word(w)
        # two independent accumulators (even / odd words) halve the multiply chain
        if odd:
            g = (g ^ w) * _P1
            g = (g << _S31) | (g >> _S33)
        else:
            h = (h ^ w) * _P2
            h = (h << _S31) | (h >> _S33)
        odd = not odd
        i += 8
    if i < e:
        w = np.uint64(0)
        for k in range(e - i):
            w |= np.uint64(data[i + k]) << np.uint64(8 * k)
        if fold:
            w = _fold_word(w)
        g = (g ^ w) * _P1
    h ^= g * _P2
    return _fmix64(h)


@njit
def _load_word(data: np.ndarray, i: int) -> np.uint64:
    """``data[i:i + 8]`` as one little-endian uint64 (LLVM emits one unaligned load)."""
    j = np.uint64(i)  # unsigned index: numba then skips negative-index wraparound
    return (
        np.uint64(data[j])
        | (np.uint64(data[j + np.uint64(1)]) << np.uint64(8))
        | (np.uint64(data[j + np.uint64(2)]) << np.uint64(16))
        | (np.uint64(data[j + np.uint64(3)]) << np.uint64(24))
        | (np.uint64(data[j + np.uint64(4)]) << np.uint64(32))
        | (np.uint64(data[j + np.uint64(5)]) << np.uint64(40))
        | (np.uint64(data[j + np.uint64(6)]) << np.uint64(48))
        | (np.uint64(data[j + np.uint64(7)]) << np.uint64(56))
    )


@njit
def _hash_string(data: np.ndarray, s: int, e: int, fold: bool) -> np.uint64:  # noqa: FBT001
    """Hash of ``data[s:e]`` (``A-Z`` folded when ``fold``): :func:`_hash_bytes`, but faster.

    16 bytes per step into two independent lanes, and the tail of a string of 8 bytes
    or more is one *overlapping* word load ending at ``e`` instead of a byte loop (the
    length in the seed keeps this unambiguous). About 2x faster than
    :func:`_hash_bytes` on 32-64 byte strings.
    """
    n = e - s
    h = np.uint64(n) * _P1
    g = _P2
    i = s
    while i + 16 <= e:
        a = _load_word(data, i)
        b = _load_word(data, i + 8)
        if fold:
            a = _fold_word(a)
            b = _fold_word(b)
        h = (h ^ a) * _P2
        h = (h << _S31) | (h >> _S33)
        g = (g ^ b) * _P1
        g = (g << _S31) | (g >> _S33)
        i += 16
    if n >= 8:
        if i + 8 <= e:
            a = _load_word(data, i)
            h = (h ^ (_fold_word(a) if fold else a)) * _P2
            i += 8
        if i < e:
            b = _load_word(data, e - 8)
            g = (g ^ (_fold_word(b) if fold else b)) * _P1
    elif n > 0:
        w = np.uint64(0)
        for k in range(n):
            w |= np.uint64(data[s + k]) << np.uint64(8 * k)
        g = (g ^ (_fold_word(w) if fold else w)) * _P1
    h ^= g * _P2
    return _fmix64(h)


@njit
def _hash_window(data: np.ndarray, s: int, n: int, fold: bool) -> np.uint64:  # noqa: FBT001
    """Hash of the length ``n`` (>= 16) and the first 16 bytes of ``data[s:s + n]`` only.

    For sets of fixed-length random keys (hex digests: 16 hex characters are already
    64 uniformly random bits) hashing the rest buys nothing; a hash hit is verified
    on all bytes anyway. The builder uses it only when the keys are all the same
    length and their windows are nearly all distinct.
    """
    a = _load_word(data, s)
    b = _load_word(data, s + 8)
    if fold:
        a = _fold_word(a)
        b = _fold_word(b)
    x = (a ^ (np.uint64(n) * _P1)) * _P2
    x = ((x << _S31) | (x >> _S33)) ^ b
    return _fmix64(x)


@njit
def _filter_bits(h: np.uint64) -> np.uint64:
    """The three bits of the filter word a key with hash ``h`` sets (hash bits 46-63)."""
    return (
        (_ONE << ((h >> _S58) & _M63))
        | (_ONE << ((h >> _S52) & _M63))
        | (_ONE << ((h >> _S46) & _M63))
    )


@njit
def _filter_word(words: np.ndarray, h: np.uint64) -> int:
    """The word of the filter a key with hash ``h`` lives in (hash bits 20 and up)."""
    return np.int64((h >> _S20) & np.uint64(len(words) - 1))


@njit
def _filter_add(words: np.ndarray, h: np.uint64) -> None:
    """Set the key's three bits in the word chosen by :func:`_filter_word`."""
    w = _filter_word(words, h)
    words[w] |= _filter_bits(h)


@njit
def _filter_maybe(words: np.ndarray, h: np.uint64) -> bool:
    """False when the key is surely absent; True when it may be present."""
    bits = _filter_bits(h)
    w = _filter_word(words, h)
    return (words[w] & bits) == bits


def table_size(n_keys: int) -> int:
    """Open-addressing table size: a power of two with load factor at most 0.5."""
    size = 16
    while size < 2 * n_keys:
        size *= 2
    return size


def filter_words(n_keys: int) -> int:
    """Filter size in 64-bit words: a power of two, at least 16 bits per key."""
    words = 8
    while words * 64 < 16 * n_keys:
        words *= 2
    return words
