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


# --- indicator matching kernels (detect.kernels.ip_set, prefix_match, string_set, domain_suffix)


def ip_set_ids(values: list[bytes | None], keys: list[bytes | None], ids: list[int]) -> list[int]:
    """Id of the first key equal to each 16-byte value; -1 for no key or a null value."""
    table: dict[bytes, int] = {}
    for key, i in zip(keys, ids, strict=True):
        if key is not None:
            table.setdefault(key, i)
    return [-1 if v is None else table.get(v, -1) for v in values]


def prefix_ids(
    values: list[bytes | None], networks: list[tuple[bytes, int] | None], ids: list[int]
) -> list[int]:
    """Longest-prefix match with ``ipaddress`` over the 16-byte form; first id among equals.

    An IPv4 address (``::ffff:a.b.c.d``) is only in networks inside ``::ffff:0:0/96``, as
    ``ipaddress`` says of IPv4 addresses and IPv6 networks (``::/0`` holds none of them).
    """
    mapped = ipaddress.IPv6Network("::ffff:0:0/96")
    nets = [
        (ipaddress.IPv6Network((n[0], int(n[1])), strict=False), i)
        for n, i in zip(networks, ids, strict=True)
        if n is not None
    ]
    out = []
    for v in values:
        best, best_len = -1, -1
        if v is not None:
            addr = ipaddress.IPv6Address(v)
            v4 = addr in mapped
            for net, i in nets:
                if v4 and not net.subnet_of(mapped):
                    continue
                if addr in net and net.prefixlen > best_len:
                    best, best_len = i, net.prefixlen
        out.append(best)
    return out


def string_set_ids(
    values: list[bytes | None], keys: list[bytes | None], ids: list[int], *, fold: bool
) -> list[int]:
    """Exact byte match with a Python dict; ``fold`` lower-cases ASCII on both sides."""
    table: dict[bytes, int] = {}
    for key, i in zip(keys, ids, strict=True):
        if key is not None:
            table.setdefault(key.lower() if fold else key, i)
    return [-1 if v is None else table.get(v.lower() if fold else v, -1) for v in values]


def _domain_norm(value: bytes) -> bytes:
    """ASCII lower case (``bytes.lower`` folds only A-Z), one trailing dot dropped."""
    value = value.lower()
    return value[:-1] if value.endswith(b".") else value


def domain_suffix_pairs(
    values: list[bytes | None], domains: list[bytes | None], ids: list[int]
) -> set[tuple[int, int]]:
    """Every (row, id) whose indicator domain is the row's domain or a parent of it."""
    table: dict[bytes, int] = {}
    for d, i in zip(domains, ids, strict=True):
        if d is not None and _domain_norm(d):
            table.setdefault(_domain_norm(d), i)
    pairs = set()
    for row, v in enumerate(values):
        if v is None or not _domain_norm(v):
            continue
        labels = _domain_norm(v).split(b".")
        for k in range(len(labels)):
            hit = table.get(b".".join(labels[k:]))
            if hit is not None:
                pairs.add((row, hit))
    return pairs
