"""IP membership straight from text (``probe_ip_text``) vs ``ipaddress`` and a dict."""

from __future__ import annotations

import ipaddress

import numpy as np
import pyarrow as pa
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tests import naive
from tests.kernels.test_ip_parse import EDGE_CASES, _ip_text

from detect.enrich import ip_to_bin
from detect.kernels.ip_set import build_ip_set, probe_ip_set, probe_ip_text

_POOL = ["10.0.0.1", "0.0.0.0", "255.255.255.255", "1.2.3.4", "2001:db8::1", "::1", "::"]


@st.composite
def _spelling(draw: st.DrawFn) -> str:
    """An indicator-like address in a spelling that must (or must not) match it."""
    v4 = draw(st.sampled_from(_POOL[:4]))
    form = draw(st.sampled_from(["plain", "mapped", "zero", "upper", "exploded", "v6"]))
    if form == "mapped":
        return "::ffff:" + v4
    if form == "zero":  # leading zeros: invalid, never a hit
        return ".".join(p.rjust(2, "0") for p in v4.split("."))
    if form == "upper":
        return "::FFFF:" + v4
    if form == "exploded":
        return ipaddress.IPv6Address("::ffff:" + v4).exploded
    if form == "v6":
        return draw(st.sampled_from(["2001:DB8::1", "2001:db8:0::1", "::1", "::", "::1%eth0"]))
    return v4


_text = st.one_of(_ip_text, _spelling(), st.sampled_from(_POOL))
_keys = st.lists(st.one_of(st.none(), st.sampled_from(_POOL), _ip_text), max_size=12)


def _want(values: list[str | None], keys: list[str | None]) -> list[int]:
    key_bytes = [naive.ip_to_bytes(k) for k in keys]
    return naive.ip_set_ids([naive.ip_to_bytes(v) for v in values], key_bytes,
                            list(range(len(keys))))  # fmt: skip


def _layout(values: list[str | None], kind: str, start: int) -> pa.Array | pa.ChunkedArray:
    if kind == "large":
        return pa.array(values, pa.large_string())
    if kind == "slice":
        return pa.array(["1.2.3.4", None] * start + values, pa.string()).slice(2 * start)
    if kind == "dictionary":
        return pa.array(values, pa.string()).dictionary_encode()
    if kind == "chunked":
        k = min(start, len(values))
        return pa.chunked_array([pa.array(values[:k], pa.string()),
                                 pa.array(values[k:], pa.string())], pa.string())  # fmt: skip
    return pa.array(values, pa.string())


@settings(max_examples=400, deadline=None)
@given(
    keys=_keys,
    values=st.lists(st.one_of(st.none(), _text), max_size=40),
    kind=st.sampled_from(["plain", "large", "slice", "dictionary", "chunked"]),
    start=st.integers(0, 9),
)
@example(keys=_POOL, values=[*EDGE_CASES, None, *_POOL], kind="plain", start=0)
@example(keys=[], values=["1.2.3.4"], kind="plain", start=0)
@example(keys=["1.2.3.4", "1.2.3.4"], values=["::ffff:1.2.3.4", "1.2.3.4"], kind="large", start=0)
def test_matches_ipaddress_and_dict(
    keys: list[str | None], values: list[str | None], kind: str, start: int
) -> None:
    index = build_ip_set(ip_to_bin(pa.array(keys, pa.string())), np.arange(len(keys)))
    arr = _layout(values, kind, start)
    want = _want(values, keys)
    assert probe_ip_text(index, arr).tolist() == want
    assert probe_ip_set(index, ip_to_bin(arr)).tolist() == want


def test_large_mostly_v4_with_some_v6_and_threads() -> None:
    """Enough rows for the block loop, the prefetched walk, the few-slow-rows path
    (IPv6 rows parsed apart) and threads; then mostly IPv6 (whole chunk parsed)."""
    rng = np.random.default_rng(5)
    keys = [str(ipaddress.IPv4Address(int(x))) for x in rng.integers(0, 2**32, 3000)]
    keys += [str(ipaddress.IPv6Address(int(x) << 64)) for x in rng.integers(0, 2**63, 500)]
    index = build_ip_set(ip_to_bin(pa.array(keys)), np.arange(len(keys)))
    randoms = [str(ipaddress.IPv4Address(int(x))) for x in rng.integers(0, 2**32, 150_000)]
    picks = [keys[i] for i in rng.integers(0, len(keys), 20_000)]
    odd = ["::ffff:" + keys[0], "0" + keys[1], "", "-", None, keys[3000].upper(), "x" * 30]
    values = randoms + picks + odd * 50
    order = rng.permutation(len(values))
    values = [values[i] for i in order]
    want = _want(values[:30_000], keys)
    arr = pa.array(values)
    got = probe_ip_text(index, arr)
    assert got[:30_000].tolist() == want
    assert np.array_equal(got, probe_ip_set(index, ip_to_bin(arr)))
    assert np.array_equal(got, probe_ip_text(index, arr, threads=2))
    assert (got >= 0).sum() >= 20_000
    v6 = pa.array(keys[3000:] * 20 + ["1.2.3.4", None])
    assert np.array_equal(probe_ip_text(index, v6), probe_ip_set(index, ip_to_bin(v6)))
