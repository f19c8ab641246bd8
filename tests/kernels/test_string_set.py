"""Exact string sets vs a Python dict, on every Arrow layout the kernel meets."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tests import naive

from detect import arrow_buffers as ab
from detect.kernels.hashing import SCHEME_BYTES, SCHEME_STRING, SCHEME_WINDOW
from detect.kernels.string_set import (
    _build,
    build_string_set,
    index_scheme,
    probe_string_buffers,
    probe_string_set,
)

LAYOUTS = ["plain", "slice", "chunked", "dictionary", "chunked_dictionary"]


def layout(values: list[str | None], kind: str, start: int, *, large: bool) -> pa.Array:
    """``values`` as one Arrow layout; every layout reads back as ``values``."""
    typ = pa.large_string() if large else pa.string()
    if kind == "plain":
        return pa.array(values, typ)
    if kind == "slice":  # a prefix of junk so the offset starts mid validity byte
        return pa.array(["JUNK", None] * start + values, typ).slice(2 * start)
    if kind == "dictionary":
        return pa.array(["JUNK"] * start + values, typ).dictionary_encode().slice(start)
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


_keys = st.sampled_from(
    ["d41d8cd98f00b204e9800998ecf8427e", "x@y.org", "http://a.b/P?q=1", "", "é", "Ab", "ab"]
)
_value = st.one_of(st.none(), _keys, _keys.map(str.upper), st.text(max_size=12))


@settings(max_examples=250, deadline=None)
@given(
    keys=st.lists(st.one_of(_keys, st.text(max_size=10), st.none()), max_size=12),
    values=st.lists(_value, max_size=30),
    kind=st.sampled_from(LAYOUTS),
    start=st.integers(0, 9),
    large=st.booleans(),
    fold=st.booleans(),
)
@example(keys=[], values=[], kind="plain", start=0, large=False, fold=False)
@example(keys=["a"], values=[None, None, None], kind="slice", start=3, large=True, fold=True)
@example(keys=["", "Ab", "ab"], values=["", "AB", "ab", "aB"], kind="dictionary", start=1,
         large=False, fold=True)  # fmt: skip
@example(keys=["É", "é"], values=["É", "é", "e"], kind="chunked", start=1, large=True, fold=True)
def test_matches_dict(
    keys: list[str | None],
    values: list[str | None],
    kind: str,
    start: int,
    large: bool,
    fold: bool,
) -> None:
    ids = list(range(100, 100 + len(keys)))
    index = build_string_set(pa.array(keys, pa.large_string() if large else pa.string()), ids,
                             fold_case=fold)  # fmt: skip
    got = probe_string_set(index, layout(values, kind, start, large=large)).tolist()
    assert got == naive.string_set_ids(_enc(values), _enc(keys), ids, fold=fold)


def test_threads_and_binary() -> None:
    rng = np.random.default_rng(3)
    keys = [f"{k:032x}" for k in rng.integers(0, 2**62, 2000)]
    values = [keys[i] if i < 2000 else f"{i:032x}" for i in rng.integers(0, 4000, 300_000)]
    index = build_string_set(pa.array(keys, pa.binary()), np.arange(2000))
    arr = pa.array(values, pa.binary())
    one = probe_string_set(index, arr)
    assert np.array_equal(one, probe_string_set(index, arr, threads=4))
    assert one.tolist() == naive.string_set_ids(
        [v.encode() for v in values], [k.encode() for k in keys], list(range(2000)), fold=False
    )


def test_index_round_trips_through_np_save(tmp_path) -> None:
    index = build_string_set(pa.array(["a", "bb", None]), [1, 2, 3], fold_case=True)
    for name, arr in index._asdict().items():
        np.save(tmp_path / f"{name}.npy", arr)
    loaded = type(index)(
        **{k: np.load(tmp_path / f"{k}.npy", mmap_mode="r") for k in index._fields}
    )
    assert probe_string_set(loaded, pa.array(["BB", "a", "c"])).tolist() == [2, 1, -1]


def test_wrapper_validates() -> None:
    with pytest.raises(ValueError, match="ids"):
        build_string_set(pa.array(["a"]), [1, 2])
    with pytest.raises(TypeError, match="string"):
        build_string_set(pa.array([1]), [1])


def test_kernel_callable_from_njit() -> None:
    from detect.kernels._jit import njit
    from detect.kernels.string_set import _probe_string_set

    index = build_string_set(pa.array(["evil", "bad"]), [4, 5])

    @njit
    def count_hits(offsets, data, validity, idx):
        out = np.empty(len(offsets) - 1, np.int32)
        _probe_string_set(offsets, data, validity, idx[0], idx[1], idx[2], idx[3], idx[4],
                          idx[5], False, SCHEME_STRING, -1, out)  # fmt: skip
        return (out >= 0).sum()

    buf = ab.string_buffers(pa.array(["bad", "good", "evil"]))
    assert index_scheme(index) == (False, SCHEME_STRING, -1)
    idx = tuple(index)[:6]
    assert count_hits(buf.offsets, buf.data, np.ones(3, np.bool_), idx) == 2
    assert probe_string_buffers(index, buf.offsets, buf.data, None).tolist() == [5, -1, 4]


# ---------------------------------------------------------------- hash schemes

_HEX = "0123456789abcdefABCDEF"
_digest = st.text(alphabet=_HEX, min_size=32, max_size=32)


@settings(max_examples=250, deadline=None)
@given(
    keys=st.lists(st.one_of(_digest, st.none()), max_size=12),
    values=st.lists(
        st.one_of(
            st.none(),
            _digest,
            st.text(max_size=40),
            st.text(alphabet=_HEX + "é", min_size=31, max_size=33),
        ),
        max_size=30,
    ),
    picks=st.lists(st.integers(0, 11), max_size=10),
    kind=st.sampled_from(LAYOUTS),
    start=st.integers(0, 9),
    large=st.booleans(),
    fold=st.booleans(),
    scheme=st.sampled_from([None, SCHEME_BYTES, SCHEME_STRING, SCHEME_WINDOW]),
)
@example(keys=["d41d8cd98f00b204e9800998ecf8427e", "d41d8cd98f00b204FFFFFFFFFFFFFFFF"],
         values=["D41D8CD98F00B204E9800998ECF8427E", "d41d8cd98f00b204ffffffffffffffff",
                 "d41d8cd98f00b204e9800998ecf8427", "d41d8cd98f00b204e9800998ecf8427ee"],
         picks=[], kind="plain", start=0, large=False, fold=True,
         scheme=SCHEME_WINDOW)  # fmt: skip
def test_digests_every_scheme(
    keys: list[str | None],
    values: list[str | None],
    picks: list[int],
    kind: str,
    start: int,
    large: bool,
    fold: bool,
    scheme: int | None,
) -> None:
    """Fixed-length hex keys (where the 16-byte window scheme applies), every scheme forced.

    Events: digests of the keys (also upper-cased), other digests, strings one byte
    shorter or longer, other text; the window scheme must still verify every byte.
    """
    present = [k for k in keys if k is not None]
    values = values + [present[p % len(present)] for p in picks if present]
    values += [v.swapcase() for v in values[-len(picks) :] if v is not None] if picks else []
    ids = list(range(100, 100 + len(keys)))
    typ = pa.large_string() if large else pa.string()
    index = _build(pa.array(keys, typ), ids, fold_case=fold, scheme=scheme)
    got = probe_string_set(index, layout(values, kind, start, large=large)).tolist()
    assert got == naive.string_set_ids(_enc(values), _enc(keys), ids, fold=fold)


def test_scheme_choice() -> None:
    """Random digests get the window scheme; shared prefixes, mixed lengths, URLs do not."""
    rng = np.random.default_rng(1)
    digests = [f"{a:016x}{b:016x}" for a, b in rng.integers(0, 2**63, (1000, 2))]
    assert index_scheme(build_string_set(pa.array(digests), np.arange(1000))) == (
        False, SCHEME_WINDOW, 32)  # fmt: skip
    same_prefix = ["0" * 16 + d[16:] for d in digests]
    assert index_scheme(build_string_set(pa.array(same_prefix), np.arange(1000)))[1] == (
        SCHEME_STRING)  # fmt: skip
    assert index_scheme(build_string_set(pa.array([*digests[:-1], "ab"]), np.arange(1000)))[1] == (
        SCHEME_STRING)  # fmt: skip
    short = [d[:15] for d in digests]
    assert index_scheme(build_string_set(pa.array(short), np.arange(1000)))[1] == SCHEME_STRING
    # the same-prefix set still answers correctly (slower scheme, same result)
    index = build_string_set(pa.array(same_prefix), np.arange(1000), fold_case=True)
    probe = pa.array([same_prefix[7].upper(), digests[7], None])
    assert probe_string_set(index, probe).tolist() == [7, -1, -1]


def test_legacy_flags_byte_reads_as_bytes_scheme(tmp_path) -> None:
    """An index saved before the schemes existed (``fold`` 0/1) is probed with ``_hash_bytes``."""
    keys = pa.array(["d41d8cd98f00b204e9800998ecf8427e", "http://a.b/P?q=1", "x"])
    index = _build(keys, [1, 2, 3], fold_case=True, scheme=SCHEME_BYTES)
    assert index.fold.tolist() == [1]
    for name, arr in index._asdict().items():
        np.save(tmp_path / f"{name}.npy", arr)
    loaded = type(index)(
        **{k: np.load(tmp_path / f"{k}.npy", mmap_mode="r") for k in index._fields}
    )
    probe = pa.array(["X", "D41D8CD98F00B204E9800998ECF8427E", "http://a.b/p?q=1", "y"])
    assert probe_string_set(loaded, probe).tolist() == [3, 1, 2, -1]
