"""Exact string sets vs a Python dict, on every Arrow layout the kernel meets."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tests import naive

from detect import arrow_buffers as ab
from detect.kernels.string_set import (
    build_string_set,
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
                          idx[5], False, out)  # fmt: skip
        return (out >= 0).sum()

    buf = ab.string_buffers(pa.array(["bad", "good", "evil"]))
    idx = tuple(index)[:6]
    assert count_hits(buf.offsets, buf.data, np.ones(3, np.bool_), idx) == 2
    assert probe_string_buffers(index, buf.offsets, buf.data, None).tolist() == [5, -1, 4]
