"""Domain suffix matching vs string splits and a Python dict, on every Arrow layout."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tests import naive

from detect import arrow_buffers as ab
from detect.kernels.domain_suffix import (
    build_domain_index,
    probe_domain_buffers,
    probe_domain_suffix,
)

LAYOUTS = ["plain", "slice", "chunked", "dictionary", "chunked_dictionary"]


def layout(values: list[str | None], kind: str, start: int, *, large: bool) -> pa.Array:
    """``values`` as one Arrow layout; every layout reads back as ``values``."""
    typ = pa.large_string() if large else pa.string()
    if kind == "plain":
        return pa.array(values, typ)
    if kind == "slice":
        return pa.array(["junk.com", None] * start + values, typ).slice(2 * start)
    if kind == "dictionary":
        return pa.array(["evil.com"] * start + values, typ).dictionary_encode().slice(start)
    k = min(start, len(values))
    if kind == "chunked":
        return pa.chunked_array([pa.array(values[:k], typ), pa.array(values[k:], typ)], typ)
    dicts = [
        pa.array(values[:k], typ).dictionary_encode(),
        pa.array(values[k:], typ).dictionary_encode(),
    ]
    return pa.chunked_array(dicts, dicts[0].type)


def _enc(values: list[str | None]) -> list[bytes | None]:
    return [None if v is None else v.encode() for v in values]


_label = st.one_of(
    st.sampled_from(["evil", "com", "b", "notevil", "EVIL", "Com", "", "é", "xn--bcher-kva", "a"]),
    st.text(alphabet="abcXYZ-é.", max_size=9),
)
_domain = st.lists(_label, min_size=1, max_size=5).map(".".join)
_event = st.one_of(
    st.none(),
    _domain,
    _domain.map(lambda d: d + "."),
    _domain.map(lambda d: d + ".."),
    _domain.map(str.upper),
    st.text(max_size=10),
)

_EDGE = ["", ".", "..", "evil.com", "EVIL.COM.", "a.b.evil.com", "notevil.com", ".evil.com",
         "evil.com..", "a..evil.com", "com", "evil.com.x", "ÉVIL.com", "évil.com"]  # fmt: skip


@settings(max_examples=250, deadline=None)
@given(
    domains=st.lists(st.one_of(_domain, st.none(), _domain.map(lambda d: d + ".")), max_size=10),
    values=st.lists(_event, max_size=30),
    kind=st.sampled_from(LAYOUTS),
    start=st.integers(0, 9),
    large=st.booleans(),
)
@example(domains=[], values=[], kind="plain", start=0, large=False)
@example(domains=["evil.com"], values=[None, None], kind="slice", start=3, large=True)
@example(
    domains=["evil.com", "b.evil.com", "com", "Évil.com", "EVIL.com"],
    values=_EDGE,
    kind="plain",
    start=0,
    large=False,
)
@example(domains=["evil.com", "b.evil.com"], values=_EDGE * 2, kind="dictionary", start=2,
         large=True)  # fmt: skip
@example(domains=["evil.com", "a"], values=_EDGE, kind="chunked_dictionary", start=5, large=False)
def test_matches_splits(
    domains: list[str | None], values: list[str | None], kind: str, start: int, large: bool
) -> None:
    ids = list(range(10, 10 + len(domains)))
    index = build_domain_index(pa.array(domains, pa.string()), ids)
    rows, got = probe_domain_suffix(index, layout(values, kind, start, large=large))
    pairs = list(zip(rows.tolist(), got.tolist(), strict=True))
    assert rows.tolist() == sorted(rows.tolist())
    assert len(set(pairs)) == len(pairs)
    assert set(pairs) == naive.domain_suffix_pairs(_enc(values), _enc(domains), ids)


def test_dictionary_equals_decoded() -> None:
    values = ["a.evil.com", None, "x.org", "a.evil.com", "EVIL.COM."] * 50
    index = build_domain_index(pa.array(["evil.com", "a.evil.com", "org"]), [1, 2, 3])
    plain = probe_domain_suffix(index, pa.array(values))
    encoded = probe_domain_suffix(index, pa.array(values).dictionary_encode())
    assert all(np.array_equal(a, b) for a, b in zip(plain, encoded, strict=True))


def test_output_grows() -> None:
    """Many pairs per row and many rows: the resumable kernel's output grows correctly."""
    labels = [f"l{i}" for i in range(40)]
    domains = [".".join(labels[k:]) for k in range(40)]
    index = build_domain_index(pa.array(domains), np.arange(40))
    rows, ids = probe_domain_suffix(index, pa.array([domains[0]] * 3000))
    assert len(rows) == 40 * 3000
    assert set(ids[rows == 2999].tolist()) == set(range(40))


def test_threads_identical() -> None:
    rng = np.random.default_rng(5)
    words = np.array(["evil", "good", "b", "com", "org", "x"])
    values = [".".join(rng.choice(words, rng.integers(1, 5))) for _ in range(200_000)]
    index = build_domain_index(pa.array(["evil.com", "b.evil.com", "org", "x.org"]), [1, 2, 3, 4])
    arr = pa.array(values)
    one = probe_domain_suffix(index, arr)
    four = probe_domain_suffix(index, arr, threads=4)
    assert len(one[0]) > 1000
    assert all(np.array_equal(a, b) for a, b in zip(one, four, strict=True))


def test_kernel_callable_from_njit() -> None:
    from detect.kernels._jit import njit
    from detect.kernels.domain_suffix import _probe_domain_suffix

    index = build_domain_index(pa.array(["evil.com"]), [7])

    @njit
    def count_hits(offsets, data, validity, idx):
        rows = np.empty(64, np.int64)
        ids = np.empty(64, np.int32)
        _, count = _probe_domain_suffix(offsets, data, validity, idx[0], idx[1], idx[2], idx[3],
                                        idx[4], idx[5], 0, 0, rows, ids, 0)  # fmt: skip
        return count

    buf = ab.string_buffers(pa.array(["a.evil.com", "notevil.com", "EVIL.COM."], pa.large_string()))
    assert count_hits(buf.offsets, buf.data, np.ones(3, np.bool_), tuple(index)) == 2
    rows, ids = probe_domain_buffers(index, buf.offsets, buf.data, None)
    assert rows.tolist() == [0, 2]
    assert ids.tolist() == [7, 7]
