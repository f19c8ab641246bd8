"""IPv4/IPv6 text to 16 bytes (IPv4-mapped IPv6 form) and back, straight on string buffers.

Parsing agrees exactly with Python's ``ipaddress.ip_address`` on this interpreter
(3.11): the same strings are valid and give the same bytes. In particular:

- IPv4 octets are decimal, 1-3 ASCII digits, at most 255, no leading zeros
  (``"01.2.3.4"`` is invalid, as in ``ipaddress`` since bpo-36384).
- IPv6 accepts ``::`` compression, upper- and lower-case hex, 1-4 digit hextets
  (leading zeros allowed), and an embedded dotted quad as the last part
  (``::ffff:1.2.3.4``, ``64:ff9b::1.2.3.4``).
- Zone ids (``fe80::1%eth0``) are **accepted and stripped**, as ``ipaddress`` does:
  the 16 bytes are the address without the zone. A zone must be non-empty and
  contain no second ``%``. Dropping the zone is right for matching (indicators
  never carry zones); the text column keeps it for evidence.
- Anything with a ``/`` (a CIDR) is invalid: these are addresses, not networks.

IPv4 addresses are stored as ``::ffff:a.b.c.d``, so ``"1.2.3.4"`` and
``"::ffff:1.2.3.4"`` give the same bytes, and :func:`format_ips` writes that range
back as dotted IPv4.
"""

from __future__ import annotations

import numpy as np

from detect.kernels._jit import njit

__all__ = ["format_ips", "is_ipv4_mapped", "parse_ips"]

_MAX_TEXT = 39  # longest text format_ips writes: 8 hextets of 4 + 7 colons
_HEXDIG = np.frombuffer(b"0123456789abcdef", dtype=np.uint8).copy()  # frozen into the kernel


@njit
def _parse_v4(data: np.ndarray, s: int, e: int) -> int:
    """Dotted quad in ``data[s:e]`` as an int, or -1 when ``ipaddress`` would reject it."""
    value = 0
    octet = 0
    ndig = 0
    first = 0
    ndots = 0
    for i in range(s, e):
        c = np.int64(data[i])
        if c == 46:  # '.'
            if ndig == 0:
                return -1
            value = value * 256 + octet
            ndots += 1
            if ndots > 3:
                return -1
            octet = 0
            ndig = 0
        elif 48 <= c <= 57:
            if ndig == 0:
                first = c
            elif first == 48:  # leading zero
                return -1
            ndig += 1
            if ndig > 3:
                return -1
            octet = octet * 10 + (c - 48)
            if octet > 255:
                return -1
        else:
            return -1
    if ndig == 0 or ndots != 3:
        return -1
    return value * 256 + octet


@njit
def _parse_v6(
    data: np.ndarray,
    s: int,
    e: int,
    out: np.ndarray,
    row: int,
    pstart: np.ndarray,
    pend: np.ndarray,
    vals: np.ndarray,
    empty: np.ndarray,
) -> bool:
    """IPv6 text (zone already removed) in ``data[s:e]`` into ``out[row]``; mirrors CPython."""
    if s >= e:
        return False
    nraw = 0
    pstart[0] = s
    for i in range(s, e):
        if data[i] == 58:  # ':'
            pend[nraw] = i
            nraw += 1
            if nraw > 8:  # 10 or more parts: too many even before the dotted-quad split
                return False
            pstart[nraw] = i + 1
    pend[nraw] = e
    nraw += 1
    if nraw < 3:
        return False
    has_dot = False
    for i in range(pstart[nraw - 1], pend[nraw - 1]):
        if data[i] == 46:
            has_dot = True
            break
    if has_dot:
        v4 = _parse_v4(data, pstart[nraw - 1], pend[nraw - 1])
        if v4 < 0:
            return False
        nhex = nraw - 1
        nparts = nraw + 1
        vals[nhex] = v4 >> 16
        vals[nhex + 1] = v4 & 0xFFFF
        empty[nhex] = False
        empty[nhex + 1] = False
    else:
        nhex = nraw
        nparts = nraw
    if nparts > 9:
        return False
    for k in range(nhex):
        ps = pstart[k]
        pe = pend[k]
        if pe == ps:
            empty[k] = True
            vals[k] = 0
            continue
        if pe - ps > 4:
            return False
        h = 0
        for i in range(ps, pe):
            c = np.int64(data[i])
            if 48 <= c <= 57:
                d = c - 48
            elif 97 <= c <= 102:
                d = c - 87
            elif 65 <= c <= 70:
                d = c - 55
            else:
                return False
            h = h * 16 + d
        vals[k] = h
        empty[k] = False
    skip = -1
    for k in range(1, nparts - 1):
        if empty[k]:
            if skip >= 0:
                return False
            skip = k
    if skip >= 0:
        hi = skip
        lo = nparts - skip - 1
        if empty[0]:
            hi -= 1
            if hi != 0:
                return False
        if empty[nparts - 1]:
            lo -= 1
            if lo != 0:
                return False
        if hi + lo > 7:
            return False
    else:
        if nparts != 8 or empty[0] or empty[nparts - 1]:
            return False
        hi = nparts
        lo = 0
    for k in range(16):
        out[row, k] = 0
    for k in range(hi):
        out[row, 2 * k] = vals[k] >> 8
        out[row, 2 * k + 1] = vals[k] & 0xFF
    for j in range(lo):
        k = nparts - lo + j
        slot = 8 - lo + j
        out[row, 2 * slot] = vals[k] >> 8
        out[row, 2 * slot + 1] = vals[k] & 0xFF
    return True


@njit
def _octet_fast(
    data: np.ndarray, p: np.uint64, e: np.uint64
) -> tuple[np.int64, np.uint64, np.int64]:
    """``(value, digits, bad)`` of the 1-3 digit octet at ``data[p:]``, without branches.

    Reads 3 bytes whatever the row end (the caller guarantees they exist) and masks
    what lies at or past ``e``; the digit count is computed, not branched on, so
    random 1-3 digit octets cost no branch mispredictions. Unsigned indices: numba
    then emits no negative-index wraparound.
    """
    one = np.uint64(1)
    two = np.uint64(2)
    nine = np.uint64(9)
    d0 = np.int64(data[p]) - 48
    d1 = np.int64(data[p + one]) - 48
    d2 = np.int64(data[p + two]) - 48
    ok0 = np.uint64(d0) <= nine
    ok1 = (np.uint64(d1) <= nine) & (p + one < e)
    ok2 = (np.uint64(d2) <= nine) & (p + two < e) & ok1
    i1 = np.int64(ok1)
    i2 = np.int64(ok2)
    v2 = d0 * 10 + d1
    v3 = v2 * 10 + d2
    octet = d0 + i1 * (v2 - d0) + i2 * (v3 - v2)
    bad = np.int64(not ok0) | np.int64(octet > 255) | (np.int64(d0 == 0) & i1)  # 0-255, no "01"
    return octet, np.uint64(1 + i1 + i2), bad


@njit
def _parse_v4_fast(data: np.ndarray, s: int, e: int) -> np.int64:
    """Dotted quad in ``data[s:e]`` as an int, or -1; needs ``e + 8 <= len(data)``.

    Accepts exactly what :func:`_parse_v4` accepts (-1 sends the caller to the full
    parsers). Measured on 10M random dotted quads: 22 ns per row against 32 ns for a
    branchy per-octet version and 37 ns for :func:`_parse_v4` (on a loaded machine).
    """
    p = np.uint64(s)
    ue = np.uint64(e)
    one = np.uint64(1)
    o0, n0, b0 = _octet_fast(data, p, ue)
    p += n0
    bad = b0 | np.int64(p >= ue) | np.int64(data[p] != 46)
    p += one
    o1, n1, b1 = _octet_fast(data, p, ue)
    p += n1
    bad |= b1 | np.int64(p >= ue) | np.int64(data[p] != 46)
    p += one
    o2, n2, b2 = _octet_fast(data, p, ue)
    p += n2
    bad |= b2 | np.int64(p >= ue) | np.int64(data[p] != 46)
    p += one
    o3, n3, b3 = _octet_fast(data, p, ue)
    p += n3
    bad |= b3 | np.int64(p != ue)
    return np.int64(-1) if bad else (o0 << 24) | (o1 << 16) | (o2 << 8) | o3


@njit
def _parse_ips(
    offsets: np.ndarray,
    data: np.ndarray,
    validity: np.ndarray,
    out: np.ndarray,
    valid: np.ndarray,
) -> None:
    """Parse every row into ``out`` (C-contiguous ``(n, 16)`` uint8); every row is
    written, invalid and null rows with zeros."""
    out64 = out.view(np.uint64)  # the same memory as (n, 2) native lanes
    pstart = np.empty(12, dtype=np.int64)
    pend = np.empty(12, dtype=np.int64)
    vals = np.empty(12, dtype=np.int64)
    empty = np.empty(12, dtype=np.bool_)
    nd = len(data)
    zero = np.uint64(0)
    tag = np.uint64(0xFFFF0000)  # bytes 10-11 = ff ff in the little-endian low lane
    for row in range(len(offsets) - 1):
        out64[row, 0] = zero
        out64[row, 1] = zero
        if not validity[row]:
            valid[row] = False
            continue
        s = np.int64(offsets[row])
        e = np.int64(offsets[row + 1])
        # fast path: dotted IPv4 (7-15 bytes), the common case
        v4 = np.int64(-1)
        if 7 <= e - s <= 15 and e + 8 <= nd:  # _parse_v4_fast reads up to e + 7
            v4 = _parse_v4_fast(data, s, e)
        if v4 < 0:
            v4 = _parse_v4(data, s, e)
        if v4 >= 0:
            u = np.uint64(v4)
            # a.b.c.d lands in bytes 12-15 (big-endian) = bits 32-63 of the low lane
            out64[row, 1] = tag | (
                ((u >> np.uint64(24)) & np.uint64(0xFF)) << np.uint64(32)
                | ((u >> np.uint64(16)) & np.uint64(0xFF)) << np.uint64(40)
                | ((u >> np.uint64(8)) & np.uint64(0xFF)) << np.uint64(48)
                | (u & np.uint64(0xFF)) << np.uint64(56)
            )
            valid[row] = True
            continue
        pct = -1
        ok = e > s
        for i in range(s, e):
            c = np.int64(data[i])
            if c == 47:  # '/': a network, not an address
                ok = False
                break
            if c == 37 and pct < 0:  # '%': zone id starts
                pct = i
        if ok and pct >= 0:
            if pct + 1 >= e:
                ok = False
            else:
                for i in range(pct + 1, e):
                    if data[i] == 37:
                        ok = False
                        break
            if ok:
                ok = _parse_v6(data, s, pct, out, row, pstart, pend, vals, empty)
        elif ok:
            ok = _parse_v6(data, s, e, out, row, pstart, pend, vals, empty)
        if not ok:
            out64[row, 0] = zero
            out64[row, 1] = zero
        valid[row] = ok


def parse_ips(
    offsets: np.ndarray, data: np.ndarray, validity: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Parse IP text rows ``data[offsets[i]:offsets[i+1]]`` into 16 bytes each.

    Parameters
    ----------
    offsets : int32 or int64 array of length n + 1 (as from ``arrow_buffers.string_buffers``)
    data : uint8 array holding the text
    validity : bool array of length n, or None when there are no nulls

    Returns
    -------
    values : (n, 16) uint8, IPv4 as ``::ffff:a.b.c.d``; zero where not valid
    valid : (n,) bool, False for nulls and for text ``ipaddress`` rejects

    Examples
    --------
    >>> import numpy as np
    >>> text = b"10.0.0.1::1"
    >>> values, valid = parse_ips(np.array([0, 8, 11], np.int32), np.frombuffer(text, np.uint8))
    >>> valid.tolist(), values[0, 10:].tolist(), int(values[1, 15])
    ([True, True], [255, 255, 10, 0, 0, 1], 1)
    """
    offsets = np.asarray(offsets)
    if offsets.dtype not in (np.int32, np.int64) or offsets.ndim != 1 or len(offsets) < 1:
        msg = f"offsets must be a 1-d int32 or int64 array of length n + 1, got {offsets.dtype}"
        raise TypeError(msg)
    data = np.asarray(data)
    if data.dtype != np.uint8:
        msg = f"data must be uint8, got {data.dtype}"
        raise TypeError(msg)
    n = len(offsets) - 1
    if validity is None:
        validity = np.ones(n, dtype=np.bool_)
    elif len(validity) != n:
        msg = f"validity has {len(validity)} rows but offsets describe {n}"
        raise ValueError(msg)
    out = np.empty((n, 16), dtype=np.uint8)  # every row is written by the kernel
    valid = np.empty(n, dtype=np.bool_)
    if n:
        if len(data) == 0:  # numba cannot type-specialise on a 0-length buffer differently
            data = np.zeros(1, dtype=np.uint8)
        validity = np.asarray(validity, dtype=np.bool_)
        _parse_ips(offsets, data, validity, out, valid)
    return out, valid


@njit
def _is_ipv4_mapped(values: np.ndarray, out: np.ndarray) -> None:
    for row in range(values.shape[0]):
        m = values[row, 10] == 0xFF and values[row, 11] == 0xFF
        if m:
            for k in range(10):
                if values[row, k] != 0:
                    m = False
                    break
        out[row] = m


def is_ipv4_mapped(values: np.ndarray) -> np.ndarray:
    """Which rows of an (n, 16) uint8 array are IPv4 (``::ffff:0:0/96``)."""
    values = _check_values(values)
    out = np.empty(values.shape[0], dtype=np.bool_)
    _is_ipv4_mapped(values, out)
    return out


@njit
def _format_ips(
    values: np.ndarray, validity: np.ndarray, offsets: np.ndarray, data: np.ndarray
) -> None:
    """Write text per row; Python's ``str(ipaddress)`` form, IPv4-mapped as dotted quad."""
    hexdig = _HEXDIG
    hextets = np.empty(8, dtype=np.int64)
    pos = 0
    offsets[0] = 0
    for row in range(values.shape[0]):
        if validity[row]:
            mapped = values[row, 10] == 0xFF and values[row, 11] == 0xFF
            if mapped:
                for k in range(10):
                    if values[row, k] != 0:
                        mapped = False
                        break
            if mapped:
                for k in range(12, 16):
                    v = np.int64(values[row, k])
                    if v >= 100:
                        data[pos] = 48 + v // 100
                        pos += 1
                    if v >= 10:
                        data[pos] = 48 + (v // 10) % 10
                        pos += 1
                    data[pos] = 48 + v % 10
                    pos += 1
                    if k < 15:
                        data[pos] = 46
                        pos += 1
            else:
                for k in range(8):
                    hextets[k] = np.int64(values[row, 2 * k]) * 256 + values[row, 2 * k + 1]
                best_start = -1
                best_len = 0
                run_start = -1
                run_len = 0
                for k in range(8):
                    if hextets[k] == 0:
                        run_len += 1
                        if run_start == -1:
                            run_start = k
                        if run_len > best_len:
                            best_len = run_len
                            best_start = run_start
                    else:
                        run_len = 0
                        run_start = -1
                if best_len < 2:
                    best_start = -1
                    best_len = 0
                first = True
                after_gap = False
                for k in range(8):
                    if best_start <= k < best_start + best_len:
                        if k == best_start:
                            data[pos] = 58
                            data[pos + 1] = 58
                            pos += 2
                            after_gap = True
                        continue
                    if not first and not after_gap:
                        data[pos] = 58
                        pos += 1
                    h = hextets[k]
                    started = False
                    for shift in (12, 8, 4, 0):
                        d = (h >> shift) & 0xF
                        if d != 0 or started or shift == 0:
                            data[pos] = hexdig[d]
                            pos += 1
                            started = True
                    first = False
                    after_gap = False
        offsets[row + 1] = pos


def format_ips(
    values: np.ndarray, validity: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Text of (n, 16) addresses as string buffers ``(offsets int32, data uint8)``.

    The inverse of :func:`parse_ips` for display and evidence: IPv4-mapped rows are
    written as dotted IPv4, others as ``str(ipaddress.IPv6Address(...))`` writes them
    (RFC 5952: lower-case, longest zero run compressed). Rows that are not valid get
    an empty string; pair the result with ``validity`` to make them null.
    """
    values = _check_values(values)
    n = values.shape[0]
    validity = np.ones(n, dtype=np.bool_) if validity is None else np.asarray(validity, np.bool_)
    offsets = np.empty(n + 1, dtype=np.int32)
    data = np.empty(max(n * _MAX_TEXT, 1), dtype=np.uint8)
    _format_ips(values, validity, offsets, data)
    return offsets, data[: offsets[-1]].copy()


def _check_values(values: np.ndarray) -> np.ndarray:
    values = np.ascontiguousarray(values)
    if values.ndim != 2 or values.shape[1] != 16 or values.dtype != np.uint8:
        msg = f"expected an (n, 16) uint8 array, got {values.dtype} with shape {values.shape}"
        raise TypeError(msg)
    return values
