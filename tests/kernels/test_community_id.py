"""Community ID kernel vs the published pycommunityid vectors and vs the package itself."""

from __future__ import annotations

import ipaddress
import os
import time

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tests import naive

from detect.kernels.community_id import ID_LENGTH, community_id
from detect.kernels.sha1 import sha1_short

# (src, dst, sport/type, dport/code, proto, id with seed 0, id with seed 1), from
# tests/communityid_test.py of corelight/pycommunityid.
PUBLISHED = [
    (
        "192.168.0.89",
        "192.168.0.1",
        8,
        0,
        1,
        "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=",
        "1:03g6IloqVBdcZlPyX8r0hgoE7kA=",
    ),
    (
        "192.168.0.1",
        "192.168.0.89",
        0,
        8,
        1,
        "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=",
        "1:03g6IloqVBdcZlPyX8r0hgoE7kA=",
    ),
    (
        "192.168.0.89",
        "192.168.0.1",
        20,
        0,
        1,
        "1:3o2RFccXzUgjl7zDpqmY7yJi8rI=",
        "1:lCXHHxavE1Vq3oX9NH5ladQg02o=",
    ),
    (
        "192.168.0.89",
        "192.168.0.1",
        20,
        1,
        1,
        "1:tz/fHIDUHs19NkixVVoOZywde+I=",
        "1:Ie3wmFyxiEyikbsbcO03d2nh+PM=",
    ),
    (
        "192.168.0.1",
        "192.168.0.89",
        0,
        20,
        1,
        "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=",
        "1:03g6IloqVBdcZlPyX8r0hgoE7kA=",
    ),
    (
        "fe80::200:86ff:fe05:80da",
        "fe80::260:97ff:fe07:69ea",
        135,
        0,
        58,
        "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
        "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY=",
    ),
    (
        "fe80::260:97ff:fe07:69ea",
        "fe80::200:86ff:fe05:80da",
        136,
        0,
        58,
        "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
        "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY=",
    ),
    (
        "3ffe:507:0:1:260:97ff:fe07:69ea",
        "3ffe:507:0:1:200:86ff:fe05:80da",
        3,
        0,
        58,
        "1:NdobDX8PQNJbAyfkWxhtL2Pqp5w=",
        "1:OlOWx9psIbBFi7lOCw/4MhlKR9M=",
    ),
    (
        "3ffe:507:0:1:200:86ff:fe05:80da",
        "3ffe:507:0:1:260:97ff:fe07:69ea",
        3,
        0,
        58,
        "1:/OGBt9BN1ofenrmSPWYicpij2Vc=",
        "1:Ij4ZxnC87/MXzhOjvH2vHu7LRmE=",
    ),
    (
        "192.168.170.8",
        "192.168.170.56",
        7,
        80,
        132,
        "1:jQgCxbku+pNGw8WPbEc/TS/uTpQ=",
        "1:Y1/0jQg6e+I3ZwZZ9LP65DNbTXU=",
    ),
    (
        "192.168.170.56",
        "192.168.170.8",
        80,
        7,
        132,
        "1:jQgCxbku+pNGw8WPbEc/TS/uTpQ=",
        "1:Y1/0jQg6e+I3ZwZZ9LP65DNbTXU=",
    ),
    (
        "128.232.110.120",
        "66.35.250.204",
        34855,
        80,
        6,
        "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
        "1:3V71V58M3Ksw/yuFALMcW0LAHvc=",
    ),
    (
        "66.35.250.204",
        "128.232.110.120",
        80,
        34855,
        6,
        "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
        "1:3V71V58M3Ksw/yuFALMcW0LAHvc=",
    ),
    (
        "10.0.0.1",
        "10.0.0.2",
        10,
        11569,
        6,
        "1:SXBGMX1lBOwhhoDrZynfROxnhnM=",
        "1:HmBRGR+fUyXF4t8WEtal7Y0gEAo=",
    ),
    (
        "192.168.1.52",
        "8.8.8.8",
        54585,
        53,
        17,
        "1:d/FP5EW3wiY1vCndhwleRRKHowQ=",
        "1:Q9We8WO3piVF8yEQBNJF4uiSVrI=",
    ),
    (
        "8.8.8.8",
        "192.168.1.52",
        53,
        54585,
        17,
        "1:d/FP5EW3wiY1vCndhwleRRKHowQ=",
        "1:Q9We8WO3piVF8yEQBNJF4uiSVrI=",
    ),
    (
        "10.1.24.4",
        "10.1.12.1",
        0,
        0,
        46,
        "1:/nQI4Rh/TtY3mf0R2gJFBkVlgS4=",
        "1:BK3BVW3U2eemuwVQVN3zd/GULno=",
    ),
    (
        "10.1.12.1",
        "10.1.24.4",
        0,
        0,
        46,
        "1:/nQI4Rh/TtY3mf0R2gJFBkVlgS4=",
        "1:BK3BVW3U2eemuwVQVN3zd/GULno=",
    ),
]


def _addr(text: str) -> np.ndarray:
    b = naive.ip_to_bytes(text)
    assert b is not None
    return np.frombuffer(b, dtype=np.uint8)


def _ids(src, dst, sport, dport, proto, *, valid=None, seed=0) -> list[str | None]:
    offsets, data, ok = community_id(
        np.asarray(src, np.uint8).reshape(-1, 16),
        np.asarray(dst, np.uint8).reshape(-1, 16),
        np.asarray(sport),
        np.asarray(dport),
        np.asarray(proto),
        valid=valid,
        seed=seed,
    )
    raw = bytes(data)
    return [raw[offsets[i] : offsets[i + 1]].decode() if ok[i] else None for i in range(len(ok))]


@pytest.mark.parametrize("seed", [0, 1])
def test_published_vectors(seed: int) -> None:
    src = np.stack([_addr(v[0]) for v in PUBLISHED])
    dst = np.stack([_addr(v[1]) for v in PUBLISHED])
    got = _ids(
        src,
        dst,
        [v[2] for v in PUBLISHED],
        [v[3] for v in PUBLISHED],
        [v[4] for v in PUBLISHED],
        seed=seed,
    )
    assert got == [v[5 + seed] for v in PUBLISHED]


def test_output_layout_and_masking() -> None:
    a, b = _addr("10.0.0.1"), _addr("10.0.0.2")
    offsets, data, ok = community_id(
        np.stack([a, a, a]),
        np.stack([b, b, b]),
        np.array([1, 1, 1]),
        np.array([2, 2, 2]),
        np.array([6, -1, 6]),
        valid=np.array([True, True, False]),
    )
    assert ok.tolist() == [True, False, False]
    assert offsets.tolist() == [0, ID_LENGTH, ID_LENGTH, ID_LENGTH]
    assert len(data) == ID_LENGTH


def test_empty_input() -> None:
    z = np.zeros((0, 16), np.uint8)
    offsets, data, ok = community_id(z, z, np.zeros(0), np.zeros(0), np.zeros(0))
    assert offsets.tolist() == [0] and len(data) == 0 and len(ok) == 0


def test_bad_input_is_reported() -> None:
    a = _addr("10.0.0.1")[None]
    with pytest.raises(ValueError, match="out of range"):
        community_id(a, a, np.array([70000]), np.array([1]), np.array([6]))
    with pytest.raises(ValueError, match="seed"):
        community_id(a, a, np.array([1]), np.array([1]), np.array([6]), seed=-1)
    with pytest.raises(TypeError, match=r"\(n, 16\)"):
        community_id(a[:, :4], a, np.array([1]), np.array([1]), np.array([6]))


def test_sha1_matches_hashlib() -> None:
    import hashlib

    rng = np.random.default_rng(7)
    msgs = rng.integers(0, 256, (300, 55), dtype=np.uint8)
    lengths = rng.integers(0, 56, 300)
    lengths[:2] = [0, 55]
    digests = sha1_short(msgs, lengths)
    for i in range(300):
        assert bytes(digests[i]) == hashlib.sha1(bytes(msgs[i, : lengths[i]])).digest()


_v4 = st.integers(0, 2**32 - 1).map(lambda i: str(ipaddress.IPv4Address(i)))
_v6 = st.integers(0, 2**128 - 1).map(lambda i: str(ipaddress.IPv6Address(i)))
_near = st.sampled_from(["10.0.0.1", "10.0.0.2", "::1", "::2", "fe80::1", "0.0.0.0", "::"])
_address = st.one_of(_v4, _v6, _near)
_proto = st.sampled_from([1, 6, 17, 58, 132, 0, 46, 47, 255])
_port = st.one_of(st.integers(0, 65535), st.sampled_from([0, 8, 13, 128, 129, 133, 135, 140, 145]))


@settings(max_examples=300, deadline=None)
@given(
    flows=st.lists(
        st.tuples(_address, _address, _port, _port, _proto, st.booleans()), min_size=0, max_size=30
    ),
    seed=st.sampled_from([0, 1, 65535]),
)
@example(flows=[("1.2.3.4", "::1", 1, 2, 6, True)], seed=0)  # mixed families: 4 + 16 bytes
@example(flows=[("10.0.0.1", "10.0.0.1", 5, 5, 17, True)], seed=0)  # identical endpoints
def test_matches_communityid_package(flows, seed) -> None:
    src = np.stack([_addr(f[0]) for f in flows]) if flows else np.zeros((0, 16), np.uint8)
    dst = np.stack([_addr(f[1]) for f in flows]) if flows else np.zeros((0, 16), np.uint8)
    valid = np.array([f[5] for f in flows], dtype=bool)
    got = _ids(
        src,
        dst,
        [f[2] for f in flows],
        [f[3] for f in flows],
        [f[4] for f in flows],
        valid=valid,
        seed=seed,
    )
    want = [
        naive.community_id(naive.ip_to_bytes(f[0]), naive.ip_to_bytes(f[1]), f[2], f[3], f[4], seed)
        if f[5]
        else None
        for f in flows
    ]
    assert got == want


def test_kernel_callable_from_njit() -> None:
    """The private kernel composes inside other jitted code (numba-stats' test_njit)."""
    from detect.kernels._jit import njit
    from detect.kernels.community_id import _community_id

    @njit
    def run(src, dst, sport, dport, proto, valid, data, offsets):
        _community_id(src, dst, sport, dport, proto, valid, 0, data, offsets)
        return offsets[-1]

    a, b = _addr("128.232.110.120")[None], _addr("66.35.250.204")[None]
    data = np.empty(ID_LENGTH, np.uint8)
    offsets = np.empty(2, np.int32)
    n = run(a, b, np.array([34855]), np.array([80]), np.array([6]), np.array([True]), data, offsets)
    assert n == ID_LENGTH and bytes(data) == b"1:LQU9qZlK+B5F3KDmev6m5PMibrg="


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="timing needs the JIT")
def test_throughput_smoke() -> None:
    """1M flows well under a second once compiled (the benchmark reports the real rate)."""
    rng = np.random.default_rng(1)
    n = 200_000
    src = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    src[: n // 2, :10] = 0
    src[: n // 2, 10:12] = 255
    dst = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    ports = rng.integers(0, 65536, n)
    proto = rng.choice(np.array([6, 17, 1]), n)
    community_id(src[:1], dst[:1], ports[:1], ports[:1], proto[:1])  # compile / load cache
    t0 = time.perf_counter()
    _, _, ok = community_id(src, dst, ports, ports[::-1].copy(), proto)
    assert ok.all()
    assert time.perf_counter() - t0 < 2.0
