"""Community ID v1 flow hashes, vectorised, from 16-byte addresses, ports and protocol numbers.

Mirrors the reference ``communityid`` package (``CommunityID().calc(FlowTuple(...))``):

- hashed bytes: seed (2, big-endian), source and destination address (4 bytes for
  an IPv4(-mapped) address, 16 otherwise), protocol (1), a zero byte, and for
  TCP, UDP, SCTP, ICMP and ICMPv6 the two ports (2 each, big-endian);
- endpoints are ordered so both directions of a flow get the same id: the smaller
  address first (byte-wise, a shorter address being smaller when it is a prefix),
  and on equal addresses the smaller port first;
- ICMP (1) and ICMPv6 (58): the "ports" are the message type and code; a type
  with a known reply type (echo, timestamp, router solicitation, ...) hashes as
  (type, reply type) and is ordered like any flow, any other type hashes as
  (type, code) and is one-way (never swapped), exactly like Zeek and the package;
- other protocols hash without ports;
- output: ``"1:" + base64(sha1)``, always 30 ASCII bytes.

One deliberate difference: an address given as IPv4-mapped IPv6 text
(``::ffff:1.2.3.4``) is hashed as IPv4, because the 16-byte form cannot tell it from
``1.2.3.4``. On the wire such a flow is IPv4 anyway.
"""

from __future__ import annotations

import numpy as np

from detect.kernels._jit import njit
from detect.kernels.sha1 import _sha1_block

__all__ = ["ID_LENGTH", "PORT_PROTOCOLS", "community_id"]

ID_LENGTH = 30  # "1:" + 28 base64 characters of a 20-byte digest
PORT_PROTOCOLS = (1, 6, 17, 58, 132)
_B64 = np.frombuffer(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", dtype=np.uint8
).copy()


def _reply_table(pairs: tuple[tuple[int, int], ...]) -> np.ndarray:
    table = np.full(256, -1, dtype=np.int64)
    for a, b in pairs:
        table[a] = b
        table[b] = a
    return table


# Message types with a reply type, as Zeek and communityid.icmp / icmp6 pair them.
_ICMP_REPLY = _reply_table(((8, 0), (13, 14), (15, 16), (10, 9), (17, 18)))
_ICMP6_REPLY = _reply_table(
    ((128, 129), (130, 131), (133, 134), (135, 136), (139, 140), (144, 145))
)


@njit
def _community_id(
    src: np.ndarray,
    dst: np.ndarray,
    sport: np.ndarray,
    dport: np.ndarray,
    proto: np.ndarray,
    valid: np.ndarray,
    seed: int,
    data: np.ndarray,
    offsets: np.ndarray,
) -> None:
    """Write ids of rows where ``valid`` is set; ``data`` has room for n * ID_LENGTH bytes."""
    block = np.zeros(64, dtype=np.uint8)
    w = np.zeros(80, dtype=np.int64)
    digest = np.zeros(20, dtype=np.uint8)
    b64 = _B64
    pos = 0
    offsets[0] = 0
    for row in range(src.shape[0]):
        if not valid[row]:
            offsets[row + 1] = pos
            continue
        p = proto[row]
        sp = np.int64(sport[row])
        dp = np.int64(dport[row])
        has_ports = p in (1, 6, 17, 58, 132)
        one_way = False
        if p in (1, 58):
            reply = -1
            if sp < 256:
                reply = _ICMP_REPLY[sp] if p == 1 else _ICMP6_REPLY[sp]
            if reply >= 0:
                dp = reply
            else:
                one_way = True
        # address widths: 4 bytes for ::ffff:0:0/96, else 16
        s_v4 = src[row, 10] == 0xFF and src[row, 11] == 0xFF
        d_v4 = dst[row, 10] == 0xFF and dst[row, 11] == 0xFF
        for k in range(10):
            if src[row, k] != 0:
                s_v4 = False
            if dst[row, k] != 0:
                d_v4 = False
        s0 = 12 if s_v4 else 0
        d0 = 12 if d_v4 else 0
        slen = 16 - s0
        dlen = 16 - d0
        # ordering: compare NBO bytes like Python compares bytes objects
        cmp = 0
        for k in range(min(slen, dlen)):
            a = src[row, s0 + k]
            b = dst[row, d0 + k]
            if a != b:
                cmp = -1 if a < b else 1
                break
        if cmp == 0 and slen != dlen:
            cmp = -1 if slen < dlen else 1
        ordered = one_way or cmp < 0 or (cmp == 0 and has_ports and sp < dp)
        # seed, addresses, proto, pad, ports
        block[0] = (seed >> 8) & 0xFF
        block[1] = seed & 0xFF
        n = 2
        if ordered:
            for k in range(slen):
                block[n + k] = src[row, s0 + k]
            n += slen
            for k in range(dlen):
                block[n + k] = dst[row, d0 + k]
            n += dlen
            first_port = sp
            second_port = dp
        else:
            for k in range(dlen):
                block[n + k] = dst[row, d0 + k]
            n += dlen
            for k in range(slen):
                block[n + k] = src[row, s0 + k]
            n += slen
            first_port = dp
            second_port = sp
        block[n] = p
        block[n + 1] = 0
        n += 2
        if has_ports:
            block[n] = (first_port >> 8) & 0xFF
            block[n + 1] = first_port & 0xFF
            block[n + 2] = (second_port >> 8) & 0xFF
            block[n + 3] = second_port & 0xFF
            n += 4
        _sha1_block(block, n, w, digest, 0)
        data[pos] = 49  # '1'
        data[pos + 1] = 58  # ':'
        q = pos + 2
        for g in range(6):  # 18 bytes -> 24 characters
            x = (
                (np.int64(digest[3 * g]) << 16)
                | (np.int64(digest[3 * g + 1]) << 8)
                | np.int64(digest[3 * g + 2])
            )
            data[q] = b64[(x >> 18) & 63]
            data[q + 1] = b64[(x >> 12) & 63]
            data[q + 2] = b64[(x >> 6) & 63]
            data[q + 3] = b64[x & 63]
            q += 4
        x = (np.int64(digest[18]) << 16) | (np.int64(digest[19]) << 8)  # last 2 bytes
        data[q] = b64[(x >> 18) & 63]
        data[q + 1] = b64[(x >> 12) & 63]
        data[q + 2] = b64[(x >> 6) & 63]
        data[q + 3] = 61  # '='
        pos += 30
        offsets[row + 1] = pos


def community_id(
    src: np.ndarray,
    dst: np.ndarray,
    sport: np.ndarray,
    dport: np.ndarray,
    proto: np.ndarray,
    *,
    valid: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Community ID v1 per flow, as string buffers ``(offsets int32, data uint8, valid bool)``.

    Parameters
    ----------
    src, dst : (n, 16) uint8 addresses in IPv4-mapped IPv6 form (``parse_ips`` output)
    sport, dport : (n,) integer ports (ICMP: type and code), 0..65535
    proto : (n,) IANA protocol numbers 0..255; -1 for rows without a protocol
    valid : (n,) bool, rows to compute; others get an empty string (make them null)
    seed : Community ID seed, 0..65535

    Rows whose protocol is negative are not computed and come back not valid.

    Examples
    --------
    >>> import numpy as np, ipaddress
    >>> a = np.frombuffer(ipaddress.ip_address("::ffff:128.232.110.120").packed, np.uint8)
    >>> b = np.frombuffer(ipaddress.ip_address("::ffff:66.35.250.204").packed, np.uint8)
    >>> off, data, ok = community_id(a[None], b[None], np.array([34855]), np.array([80]),
    ...                              np.array([6]))
    >>> bytes(data).decode()
    '1:LQU9qZlK+B5F3KDmev6m5PMibrg='
    """
    src = _as_addresses(src, "src")
    dst = _as_addresses(dst, "dst")
    n = src.shape[0]
    sport = np.asarray(sport)
    dport = np.asarray(dport)
    proto = np.asarray(proto)
    for name, arr in (("dst", dst), ("sport", sport), ("dport", dport), ("proto", proto)):
        if arr.shape[0] != n:
            msg = f"{name} has {arr.shape[0]} rows but src has {n}"
            raise ValueError(msg)
    if not 0 <= seed <= 0xFFFF:
        msg = f"seed must be within 0..65535, got {seed}"
        raise ValueError(msg)
    sport = sport.astype(np.int64, copy=False)
    dport = dport.astype(np.int64, copy=False)
    proto = proto.astype(np.int64, copy=False)
    ok = proto >= 0
    if valid is not None:
        ok &= np.asarray(valid, dtype=np.bool_)
    if n and ok.any():
        bad = ok & ((proto > 255) | (sport < 0) | (sport > 0xFFFF) | (dport < 0) | (dport > 0xFFFF))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            msg = (
                f"row {row}: protocol {proto[row]} / ports {sport[row]}, {dport[row]} out of "
                "range; mask such rows with valid="
            )
            raise ValueError(msg)
    offsets = np.empty(n + 1, dtype=np.int32)
    data = np.empty(max(int(np.count_nonzero(ok)) * ID_LENGTH, 1), dtype=np.uint8)
    _community_id(src, dst, sport, dport, proto, ok, seed, data, offsets)
    return offsets, data[: offsets[-1]], ok


def _as_addresses(values: np.ndarray, name: str) -> np.ndarray:
    values = np.ascontiguousarray(values)
    if values.ndim != 2 or values.shape[1] != 16 or values.dtype != np.uint8:
        msg = f"{name} must be an (n, 16) uint8 array, got {values.dtype} {values.shape}"
        raise TypeError(msg)
    return values
