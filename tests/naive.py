"""Slow, obviously-right references for the enrichment kernels (stumpy's ``tests/naive.py``).

Each function does per row, in plain Python and with the reference library, what a
kernel does vectorised. Property tests compare the two.
"""

from __future__ import annotations

import ipaddress

import communityid
from publicsuffixlist import PublicSuffixList

_MAPPED_PREFIX = b"\x00" * 10 + b"\xff\xff"
_PSL = PublicSuffixList(only_icann=False)


def ip_to_bytes(text: str | None) -> bytes | None:
    """``ipaddress.ip_address`` as 16 bytes, IPv4 as ``::ffff:a.b.c.d``; None if invalid."""
    if text is None:
        return None
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if addr.version == 4:
        return _MAPPED_PREFIX + addr.packed
    return addr.packed


def bytes_to_ip(value: bytes | None) -> str | None:
    """Text of 16 bytes: dotted IPv4 for the mapped range, else ``str(IPv6Address)``."""
    if value is None:
        return None
    addr = ipaddress.IPv6Address(value)
    if addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def _addr_text(value: bytes) -> str:
    """Address as the communityid package sees it: IPv4-mapped given as IPv4 text."""
    text = bytes_to_ip(value)
    assert text is not None
    return text


def community_id(
    src: bytes | None,
    dst: bytes | None,
    sport: int | None,
    dport: int | None,
    proto: int | None,
    seed: int = 0,
) -> str | None:
    """Community ID by the ``communityid`` package; None where it cannot be computed."""
    if src is None or dst is None or proto is None or proto < 0:
        return None
    saddr, daddr = _addr_text(src), _addr_text(dst)
    if proto in communityid.PORT_PROTOS:
        if sport is None or dport is None:
            return None
        tpl = communityid.FlowTuple(proto, saddr, daddr, sport, dport)
    else:
        tpl = communityid.FlowTuple(proto, saddr, daddr)
    return communityid.CommunityID(seed).calc(tpl)


def registered_domain(name: str | None) -> str | None:
    """Registered domain per the full PSL; null for IPs, single labels and bad names."""
    if name is None:
        return None
    host = name.strip().lower()
    if host.endswith("."):
        host = host[:-1]
    if not host or ":" in host or host.startswith(".") or ".." in host:
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return _PSL.privatesuffix(host)
    return None
