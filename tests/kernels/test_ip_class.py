"""public_mask against the standard library's networks, random addresses and each edge."""

from __future__ import annotations

import ipaddress

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from detect import arrow_buffers as ab
from detect.enrich import ip_to_bin
from detect.kernels.ip_class import public_mask
from detect.kernels.ip_set import as_lanes

_NOT_PUBLIC = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "fe80::/10", "fc00::/7", "ff00::/8",
    )
]  # fmt: skip


def _naive(text: str) -> bool:
    ip = ipaddress.ip_address(text)
    if ip.version == 6 and ip.ipv4_mapped is not None:  # one address, as ip_to_bin stores it
        ip = ip.ipv4_mapped
    return not any(ip.version == net.version and ip in net for net in _NOT_PUBLIC)


def _edges() -> list[str]:
    out = []
    for net in _NOT_PUBLIC:
        top = (1 << net.max_prefixlen) - 1
        for v in (int(net.network_address) - 1, int(net.broadcast_address) + 1):
            if 0 <= v <= top:
                out.append(
                    str(ipaddress.ip_address(v) if net.version == 6 else ipaddress.IPv4Address(v))
                )
        out += [str(net.network_address), str(net.broadcast_address)]
    return out


@settings(deadline=None)
@given(st.lists(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)), max_size=50))
def test_public_mask_matches_naive(ips):
    texts = [str(i) for i in ips] + _edges()
    values = ab.fixed_binary_buffers(ip_to_bin(pa.array(texts))).values
    got = public_mask(np.ascontiguousarray(as_lanes(values)))
    assert got.tolist() == [_naive(t) for t in texts]
