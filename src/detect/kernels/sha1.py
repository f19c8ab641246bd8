"""SHA-1 of short messages (at most 55 bytes: one 64-byte block) in numba.

Community ID hashes at most 40 bytes per flow, so a single-block SHA-1 is all it
needs, and doing it inside the kernel avoids a per-row ``hashlib`` call. SHA-1 is
used here as the Community ID spec fixes it, not for security.

Arithmetic is on int64 holding 32-bit values and masked after each step: mixing
numba's unsigned and signed integers would otherwise promote to float64.
"""

from __future__ import annotations

import numpy as np

from detect.kernels._jit import njit

__all__ = ["MAX_SHORT_MESSAGE", "sha1_short"]

MAX_SHORT_MESSAGE = 55
_M32 = 0xFFFFFFFF


@njit
def _sha1_block(block: np.ndarray, nbytes: int, w: np.ndarray, out: np.ndarray, pos: int) -> None:
    """SHA-1 of ``block[:nbytes]`` (``nbytes`` <= 55) into ``out[pos:pos + 20]``.

    ``block`` is a 64-byte scratch array whose tail is overwritten with the padding;
    ``w`` is an 80-entry int64 scratch array for the message schedule.
    """
    block[nbytes] = 0x80
    for i in range(nbytes + 1, 56):
        block[i] = 0
    bits = nbytes * 8
    for i in range(8):
        block[63 - i] = (bits >> (8 * i)) & 0xFF
    for t in range(16):
        w[t] = (
            (np.int64(block[4 * t]) << 24)
            | (np.int64(block[4 * t + 1]) << 16)
            | (np.int64(block[4 * t + 2]) << 8)
            | np.int64(block[4 * t + 3])
        )
    for t in range(16, 80):
        x = w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]
        w[t] = ((x << 1) | (x >> 31)) & _M32
    h0 = 0x67452301
    h1 = 0xEFCDAB89
    h2 = 0x98BADCFE
    h3 = 0x10325476
    h4 = 0xC3D2E1F0
    a = h0
    b = h1
    c = h2
    d = h3
    e = h4
    # four loops of 20 rounds instead of one with a branch per round: ~1.5x faster
    for t in range(20):
        f = (b & c) | ((~b & _M32) & d)
        tmp = ((((a << 5) | (a >> 27)) & _M32) + f + e + 0x5A827999 + w[t]) & _M32
        e = d
        d = c
        c = ((b << 30) | (b >> 2)) & _M32
        b = a
        a = tmp
    for t in range(20, 40):
        f = b ^ c ^ d
        tmp = ((((a << 5) | (a >> 27)) & _M32) + f + e + 0x6ED9EBA1 + w[t]) & _M32
        e = d
        d = c
        c = ((b << 30) | (b >> 2)) & _M32
        b = a
        a = tmp
    for t in range(40, 60):
        f = (b & c) | (b & d) | (c & d)
        tmp = ((((a << 5) | (a >> 27)) & _M32) + f + e + 0x8F1BBCDC + w[t]) & _M32
        e = d
        d = c
        c = ((b << 30) | (b >> 2)) & _M32
        b = a
        a = tmp
    for t in range(60, 80):
        f = b ^ c ^ d
        tmp = ((((a << 5) | (a >> 27)) & _M32) + f + e + 0xCA62C1D6 + w[t]) & _M32
        e = d
        d = c
        c = ((b << 30) | (b >> 2)) & _M32
        b = a
        a = tmp
    h0 = (h0 + a) & _M32
    h1 = (h1 + b) & _M32
    h2 = (h2 + c) & _M32
    h3 = (h3 + d) & _M32
    h4 = (h4 + e) & _M32
    for i, h in enumerate((h0, h1, h2, h3, h4)):
        out[pos + 4 * i] = (h >> 24) & 0xFF
        out[pos + 4 * i + 1] = (h >> 16) & 0xFF
        out[pos + 4 * i + 2] = (h >> 8) & 0xFF
        out[pos + 4 * i + 3] = h & 0xFF


@njit
def _sha1_short(messages: np.ndarray, lengths: np.ndarray, out: np.ndarray) -> None:
    block = np.zeros(64, dtype=np.uint8)
    w = np.zeros(80, dtype=np.int64)
    flat = out.reshape(-1)
    for row in range(messages.shape[0]):
        n = lengths[row]
        for i in range(n):
            block[i] = messages[row, i]
        _sha1_block(block, n, w, flat, 20 * row)


def sha1_short(messages: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """SHA-1 digests, shape (n, 20), of ``messages[i, :lengths[i]]`` (each at most 55 bytes)."""
    messages = np.ascontiguousarray(messages, dtype=np.uint8)
    lengths = np.asarray(lengths, dtype=np.int64)
    if messages.ndim != 2 or len(lengths) != messages.shape[0]:
        msg = "messages must be (n, k) uint8 with one length per row"
        raise ValueError(msg)
    if len(lengths) and (
        lengths.min() < 0 or lengths.max() > min(MAX_SHORT_MESSAGE, messages.shape[1])
    ):
        msg = f"message lengths must be within 0..{MAX_SHORT_MESSAGE} and the row width"
        raise ValueError(msg)
    out = np.zeros((len(lengths), 20), dtype=np.uint8)
    _sha1_short(messages, lengths, out)
    return out
