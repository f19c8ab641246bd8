"""Organisations, their sensors, internal hosts and servers.

Each organisation gets its own RFC1918 range (``10.<org>.<vlan>.<host>``, servers in
``10.<org>.0.0/24``) so pooled telemetry stays unambiguous, and some hosts also
carry an IPv6 ULA address. Host activity is log-normal, so a few hosts are busy
and most are quiet, as on a real network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from detect.synthetic.records import PROTOCOLS, TRANSPORTS, hex_strings, ipv4_strings, vocab
from detect.synthetic.sampling import AliasTable

USER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36 Edg/122.0.2365.66",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.3 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Microsoft-Delivery-Optimization/10.0",
    "Microsoft-CryptoAPI/10.0",
    "Windows-Update-Agent/10.0.10011.16384 Client-Protocol/2.50",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "Debian APT-HTTP/1.3 (2.6.1)",
)
# Relative frequency of each user agent among hosts.
_UA_WEIGHTS = np.array([30, 15, 10, 8, 5, 6, 6, 8, 2, 2, 3], dtype=np.float64)

# Internal services: (last octet in 10.<org>.0.0/24, port, transport, protocol, weight).
SERVICES: tuple[tuple[int, int, str, str | None, float], ...] = (
    (10, 445, "tcp", "smb", 14.0),
    (10, 88, "tcp", "krb", 8.0),
    (10, 389, "tcp", "ldap", 8.0),
    (10, 135, "tcp", "dce_rpc", 3.0),
    (20, 445, "tcp", "smb", 12.0),
    (30, 443, "tcp", "tls", 6.0),
    (30, 80, "tcp", "http", 1.0),
    (25, 25, "tcp", "smtp", 1.5),
    (40, 3306, "tcp", "mysql", 2.0),
    (40, 5432, "tcp", None, 1.5),
    (50, 22, "tcp", "ssh", 3.0),
    (60, 3389, "tcp", "rdp", 2.0),
    (70, 9100, "tcp", None, 0.5),
    (10, 123, "udp", "ntp", 2.0),
)
RESOLVER_OCTET = 10


@dataclass(frozen=True)
class Population:
    """Internal address plan and per-host traits of every organisation."""

    org_names: pa.Array  # dictionary of organization.name
    observer_names: pa.Array  # dictionary of observer.name, index-aligned with orgs
    host_org: np.ndarray  # int32 (H,)
    host_ip4_int: np.ndarray  # uint32 (H,)
    host_ip4: pa.Array  # string (H,)
    host_ip6: pa.Array  # string (H,), null where the host has no IPv6
    host_has_v6: np.ndarray  # bool (H,)
    host_cdf: np.ndarray  # float64 (H,), cumulative activity share
    host_alias: AliasTable  # draws hosts by activity
    host_ua: np.ndarray  # int32 (H,) index into USER_AGENTS
    host_ja3: np.ndarray  # int32 (H,) index into client_ja3
    client_ja3: pa.Array  # string pool of client JA3 hashes
    user_agents: pa.Array
    resolver_ip4: pa.Array  # string (orgs,)
    resolver_ip6: pa.Array  # string (orgs,)
    service_ip: pa.Array  # string (orgs * len(SERVICES),), row org * S + s
    service_port: np.ndarray  # uint16 (S,)
    service_transport: np.ndarray  # int32 codes into TRANSPORTS (S,)
    service_protocol: np.ndarray  # int32 codes into PROTOCOLS, -1 none (S,)
    service_cdf: np.ndarray  # float64 (S,)

    @property
    def hosts(self) -> int:
        """Number of internal hosts over all organisations."""
        return len(self.host_org)

    def org_hosts(self, org: int) -> np.ndarray:
        """Indices of the hosts of one organisation."""
        return np.flatnonzero(self.host_org == org)


def org_ip4(org: int, third: int, fourth: int) -> int:
    """``10.<org>.<third>.<fourth>`` as an integer (org is 1-based)."""
    return (10 << 24) | (org << 16) | (third << 8) | fourth


def build_population(
    rng: np.random.Generator, *, organizations: int, hosts_per_org: int
) -> Population:
    """Draw every organisation's hosts; sizes vary by a factor of about three."""
    sizes = np.maximum(
        20, (hosts_per_org * rng.uniform(0.5, 1.5, size=organizations)).astype(np.int64)
    )
    sizes = np.minimum(sizes, 250 * 200)
    orgs, ip4 = [], []
    for k, size in enumerate(sizes):
        # distinct (vlan, host) slots: 10.<k+1>.<1..200>.<10..249>
        slots = rng.choice(200 * 240, size=int(size), replace=False)
        vlan = 1 + slots // 240
        host = 10 + slots % 240
        ip4.append(org_ip4(k + 1, 0, 0) + (vlan << 8) + host)
        orgs.append(np.full(int(size), k, dtype=np.int32))
    host_org = np.concatenate(orgs)
    host_ip4_int = np.concatenate(ip4).astype(np.uint32)
    order = np.lexsort((host_ip4_int, host_org))
    host_org, host_ip4_int = host_org[order], host_ip4_int[order]
    n = len(host_org)
    has_v6 = rng.random(n) < 0.15
    v6_text = pa.array(
        [
            f"fd12:3456:{o + 1:x}:{(a >> 8) & 0xFF:x}::{a & 0xFF:x}" if v else None
            for o, a, v in zip(host_org.tolist(), host_ip4_int.tolist(), has_v6.tolist(),
                               strict=True)
        ],
        type=pa.string(),
    )
    activity = rng.lognormal(0.0, 1.0, size=n)
    cdf = np.cumsum(activity)
    cdf /= cdf[-1]
    ua_p = _UA_WEIGHTS / _UA_WEIGHTS.sum()
    host_ua = rng.choice(len(USER_AGENTS), size=n, p=ua_p).astype(np.int32)
    n_ja3 = 24
    client_ja3 = hex_strings(rng, n_ja3, 16)
    # a host's TLS stack follows its user agent family, with some spread
    host_ja3 = ((host_ua * 2 + (rng.random(n) < 0.3)) % n_ja3).astype(np.int32)

    names = [f"org-{k + 1:02d}" for k in range(organizations)]
    observers = [f"zeek-{name}" for name in names]
    resolver4 = ipv4_strings(np.array([org_ip4(k + 1, 0, RESOLVER_OCTET)
                                       for k in range(organizations)], dtype=np.uint32))
    resolver6 = pa.array([f"fd12:3456:{k + 1:x}::{RESOLVER_OCTET:x}"
                          for k in range(organizations)], type=pa.string())
    svc_ints = np.array(
        [org_ip4(k + 1, 0, octet) for k in range(organizations) for octet, *_ in SERVICES],
        dtype=np.uint32,
    )
    weights = np.array([s[4] for s in SERVICES])
    svc_cdf = np.cumsum(weights) / weights.sum()
    return Population(
        org_names=vocab(names),
        observer_names=vocab(observers),
        host_org=host_org,
        host_ip4_int=host_ip4_int,
        host_ip4=ipv4_strings(host_ip4_int),
        host_ip6=v6_text,
        host_has_v6=has_v6,
        host_cdf=cdf,
        host_alias=AliasTable.from_weights(activity),
        host_ua=host_ua,
        host_ja3=host_ja3,
        client_ja3=client_ja3,
        user_agents=vocab(USER_AGENTS),
        resolver_ip4=resolver4,
        resolver_ip6=resolver6,
        service_ip=ipv4_strings(svc_ints),
        service_port=np.array([s[1] for s in SERVICES], dtype=np.uint16),
        service_transport=np.array([TRANSPORTS.index(s[2]) for s in SERVICES], dtype=np.int32),
        service_protocol=np.array(
            [PROTOCOLS.index(s[3]) if s[3] else -1 for s in SERVICES], dtype=np.int32
        ),
        service_cdf=svc_cdf,
    )
