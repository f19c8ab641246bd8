"""Events' URLs in the indicators' normal form, one pass over the Arrow string buffers.

The normal form is :func:`detect.indicators.normalize.normalize_url`'s: scheme and host
lower case, default port (80, 443, 21) dropped, fragment dropped, an empty path as ``/``,
a bare trailing ``?`` dropped; text that is not ``scheme://...`` unchanged. The Arrow
compute version (a capturing regex and a dozen string kernels) cost ~2 us a URL and
~20 ms per batch even when the column was all null. This kernel finds the parts by
bytes; a row whose authority holds non-ASCII bytes (Unicode lower case needed) or a newline
is marked for the caller's compute path.
"""

from __future__ import annotations

import numpy as np

from detect.kernels._jit import njit

__all__ = ["normalize_url_buffers"]

_SLASH, _QUERY, _HASH, _AT, _COLON, _NEWLINE = 47, 63, 35, 64, 58, 10


@njit
def _lower(c: np.uint8) -> np.uint8:
    return c + np.uint8(32) if np.uint8(65) <= c <= np.uint8(90) else c


@njit
def _scheme_char(c: np.uint8, first: bool) -> bool:  # noqa: FBT001
    alpha = (np.uint8(65) <= c <= np.uint8(90)) or (np.uint8(97) <= c <= np.uint8(122))
    if first:
        return alpha
    digit = np.uint8(48) <= c <= np.uint8(57)
    return alpha or digit or c == 43 or c == 46 or c == 45  # noqa: PLR1714 (numba: no set `in`)


@njit
def _ends_with_port(data, hp0, hp1, port):
    """Whether ``data[hp0:hp1]`` ends with ``":" + port`` (port an ASCII digit string)."""
    n = len(port)
    if hp1 - hp0 < n + 1 or data[hp1 - n - 1] != _COLON:
        return False
    for k in range(n):  # noqa: SIM110  (numba: a flat loop)
        if data[hp1 - n + k] != port[k]:
            return False
    return True


@njit
def _scheme_is(data, s, e, name):
    if e - s != len(name):
        return False
    for k in range(len(name)):  # noqa: SIM110  (numba: a flat loop)
        if _lower(data[s + k]) != name[k]:
            return False
    return True


@njit
def _normalize_urls(offsets, data, valid, out_offsets, out_data, fallback):
    """Row by row: ``out`` gets the normal form, or the row unchanged when it is no URL
    or when ``fallback`` is set (non-ASCII host)."""
    http = np.array([104, 116, 116, 112], np.uint8)
    https = np.array([104, 116, 116, 112, 115], np.uint8)
    ftp = np.array([102, 116, 112], np.uint8)
    p80 = np.array([56, 48], np.uint8)
    p443 = np.array([52, 52, 51], np.uint8)
    p21 = np.array([50, 49], np.uint8)
    w = 0
    out_offsets[0] = 0
    for row in range(len(offsets) - 1):
        s = np.int64(offsets[row])
        e = np.int64(offsets[row + 1])
        if not valid[row]:
            out_offsets[row + 1] = w
            continue
        i = s
        ok = i < e and _scheme_char(data[i], True)
        if ok:
            i += 1
            while i < e and _scheme_char(data[i], False):
                i += 1
            ok = i + 3 <= e and data[i] == _COLON
            ok = ok and data[i + 1] == _SLASH and data[i + 2] == _SLASH
        a0 = i + 3
        auth_end = a0
        at = np.int64(-1)
        if ok:
            while auth_end < e and data[auth_end] != _SLASH and data[auth_end] != _QUERY and (
                data[auth_end] != _HASH
            ):
                c = data[auth_end]
                if c == _AT:
                    at = auth_end
                elif c >= 128 or c == _NEWLINE:  # Unicode lower case; RE2's "." stops at \n
                    fallback[row] = True
                    ok = False
                auth_end += 1
            hp0 = at + 1 if at >= 0 else a0
        if not ok:  # no URL (or the caller folds this one): the row as it is
            for p in range(s, e):
                out_data[w] = data[p]
                w += 1
            out_offsets[row + 1] = w
            continue
        scheme_end = i
        rest_end = auth_end
        n_query = 0
        while rest_end < e and data[rest_end] != _HASH:
            if data[rest_end] == _QUERY:
                n_query += 1
            rest_end += 1
        for p in range(s, scheme_end):
            out_data[w] = _lower(data[p])
            w += 1
        out_data[w] = _COLON
        out_data[w + 1] = _SLASH
        out_data[w + 2] = _SLASH
        w += 3
        if at > a0:  # userinfo as written ("@" alone is no userinfo)
            for p in range(a0, at + 1):
                out_data[w] = data[p]
                w += 1
        hp1 = auth_end
        if _scheme_is(data, s, scheme_end, http) and _ends_with_port(data, hp0, hp1, p80):
            hp1 -= 3
        elif _scheme_is(data, s, scheme_end, https) and _ends_with_port(data, hp0, hp1, p443):
            hp1 -= 4
        elif _scheme_is(data, s, scheme_end, ftp) and _ends_with_port(data, hp0, hp1, p21):
            hp1 -= 3
        for p in range(hp0, hp1):
            out_data[w] = _lower(data[p])
            w += 1
        r0, r1 = auth_end, rest_end
        if n_query == 1 and r1 > r0 and data[r1 - 1] == _QUERY:  # a bare trailing "?"
            r1 -= 1
        if r1 == r0 or data[r0] == _QUERY:
            out_data[w] = _SLASH
            w += 1
        for p in range(r0, r1):
            out_data[w] = data[p]
            w += 1
        out_offsets[row + 1] = w
    return w


def normalize_url_buffers(
    offsets: np.ndarray, data: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(out_offsets, out_data, fallback)``: each valid row in normal form (rebased
    offsets, 64-bit when the input's are or 32-bit ones could overflow), null rows
    empty; ``fallback`` marks rows left as they were because their authority is not
    plain ASCII.

    >>> raw = b"HTTP://Evil.COM:80/A?b#c"
    >>> off, out, fb = normalize_url_buffers(
    ...     np.array([0, len(raw)]), np.frombuffer(raw, np.uint8), np.ones(1, bool))
    >>> bytes(out[off[0]:off[1]]), fb.tolist()
    (b'http://evil.com/A?b', [False])
    """
    n = len(offsets) - 1
    span = int(offsets[n]) - int(offsets[0]) if n else 0
    wide = offsets.dtype == np.int64 or span + n >= 2**31  # 32-bit offsets could overflow
    out_offsets = np.empty(n + 1, np.int64 if wide else np.int32)
    out_data = np.empty(max(span + n, 1), np.uint8)  # a row grows by one byte at most
    fallback = np.zeros(n, np.bool_)
    used = _normalize_urls(offsets, data, valid, out_offsets, out_data, fallback)
    return out_offsets, out_data[:used], fallback
