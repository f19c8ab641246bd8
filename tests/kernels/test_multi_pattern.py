"""Multi-pattern matching, both engines, against a naive ``bytes`` loop on every Arrow layout."""

from __future__ import annotations

import doctest
import pickle

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from detect import arrow_buffers as ab
from detect.kernels import multi_pattern as mp
from detect.kernels.casefold import casefold
from detect.kernels.multi_pattern import (
    CONTAINS,
    ENDSWITH,
    EQUALS,
    STARTSWITH,
    compile_patterns,
    engines,
    match_buffers,
    match_strings,
)

ENGINES = [
    "numba",
    pytest.param(
        "hyperscan",
        marks=pytest.mark.skipif("hyperscan" not in engines(), reason="hyperscan not installed"),
    ),
    "auto",
]
LAYOUTS = ["plain", "slice", "chunked", "dictionary"]


def naive_pairs(
    patterns: list[bytes], anchors: list[int], values: list[bytes | None]
) -> list[tuple[int, int]]:
    """Every (row, pattern id) that holds, sorted by pattern id then row."""
    test = {
        CONTAINS: lambda v, p: p in v,
        STARTSWITH: lambda v, p: v.startswith(p),
        ENDSWITH: lambda v, p: v.endswith(p),
        EQUALS: lambda v, p: v == p,
    }
    return [
        (r, i)
        for i, (p, a) in enumerate(zip(patterns, anchors, strict=True))
        for r, v in enumerate(values)
        if v is not None and test[a](v, p)
    ]


def layout(
    values: list[bytes | None], kind: str, start: int, *, large: bool, text: bool = False
) -> pa.Array:
    """``values`` as one Arrow layout (binary bytes viewed as strings need not be UTF-8)."""
    if text:
        typ = pa.large_string() if large else pa.string()
    else:
        typ = pa.large_binary() if large else pa.binary()
    if kind == "plain":
        return pa.array(values, typ)
    if kind == "slice":  # junk before and after, offset starting mid validity byte
        junk: list[bytes | None] = [b"JUNKabc", None] * start
        return pa.array(junk + values + junk, typ).slice(2 * start, len(values))
    if kind == "dictionary":
        return pa.array([b"JUNK"] * start + values, typ).dictionary_encode().slice(start)
    k = min(start, len(values))
    return pa.chunked_array([pa.array(values[:k], typ), pa.array(values[k:], typ)], typ)


def got_pairs(rows: np.ndarray, ids: np.ndarray) -> list[tuple[int, int]]:
    assert rows.dtype == np.int64
    assert ids.dtype == np.int32
    return list(zip(rows.tolist(), ids.tolist(), strict=True))


_atoms = st.sampled_from([b"a", b"b", b"ab", b"\x00", "é".encode(), b"/", b"abab", b""])
_bytes = st.lists(_atoms, max_size=6).map(b"".join)
_pattern = st.one_of(_bytes, st.binary(max_size=4))
_value = st.one_of(st.none(), _bytes, st.binary(max_size=12))


@settings(max_examples=150, deadline=None)
@given(
    patterns=st.lists(st.tuples(_pattern, st.integers(0, 3)), max_size=10),
    values=st.lists(_value, max_size=25),
    kind=st.sampled_from(LAYOUTS),
    start=st.integers(0, 9),
    large=st.booleans(),
)
@example(patterns=[], values=[], kind="plain", start=0, large=False)
@example(patterns=[(b"", 0), (b"", 3), (b"", 1)], values=[b"", None, b"x"], kind="slice",
         start=3, large=True)  # fmt: skip
@example(patterns=[(b"ab", 0), (b"ab", 0), (b"b", 2), (b"abab", 3), (b"a", 1)],
         values=[b"abab", b"ab", b"xab", None, b"bab"], kind="chunked", start=2,
         large=False)  # fmt: skip
@example(patterns=[(b"\x00", 0), ("é".encode(), 2)], values=[b"a\x00", "café".encode(), b""],
         kind="dictionary", start=1, large=True)  # fmt: skip
def test_matches_naive(
    patterns: list[tuple[bytes, int]],
    values: list[bytes | None],
    kind: str,
    start: int,
    large: bool,
) -> None:
    pats = [p for p, _ in patterns]
    anchors = [a for _, a in patterns]
    pset = compile_patterns(pats, anchors)
    want = naive_pairs(pats, anchors, values)
    arr = layout(values, kind, start, large=large)
    for engine in engines():
        assert got_pairs(*match_strings(pset, arr, engine=engine)) == want, engine


@settings(max_examples=40, deadline=None)
@given(
    words=st.lists(st.sampled_from(["cmd", "exe", "/tmp", "power", "shell", "ell"]), max_size=8),
    values=st.lists(st.text(alphabet="cmdexe/tmpowrshl.", max_size=40) | st.none(), max_size=60),
    anchors=st.lists(st.integers(0, 3), min_size=8, max_size=8),
)
def test_many_rows_all_lanes(
    words: list[str], values: list[str | None], anchors: list[int]
) -> None:
    """Enough text for all four pass-1 lanes and their tails; matches cross row bounds."""
    pats = [w.encode() for w in words]
    anc = anchors[: len(pats)]
    vals = [None if v is None else v.encode() for v in values]
    pset = compile_patterns(pats, anc)
    want = naive_pairs(pats, anc, vals)
    for engine in engines():
        assert got_pairs(*match_strings(pset, pa.array(values), engine=engine)) == want


# text whose folding is not ASCII lower-casing: the 'ſ'/'K'/'ß'/'ﬁ'/'İ' kind fold into
# ASCII ('s', 'k', 'ss', 'fi', 'i' + dot), others change outside ASCII or not at all
_fold_atoms = st.sampled_from(
    ["a", "A", "s", "S", "k", "K", "ss", "fi", "i", "I", "/", "é", "É", "σ", "Σ", "ς",
     "ſ", "\u212a", "ß", "ẞ", "ﬁ", "İ", "\u0307", "ŉ", "n", "\x00", ""]
)  # fmt: skip
_fold_text = st.lists(_fold_atoms, max_size=6).map("".join)


def folded_pairs(
    patterns: list[str], anchors: list[int], values: list[str | None]
) -> list[tuple[int, int]]:
    """The naive pairs of the folded patterns in the folded values (``str.casefold``)."""
    return naive_pairs(
        [p.casefold().encode() for p in patterns],
        anchors,
        [None if v is None else v.casefold().encode() for v in values],
    )


@settings(max_examples=150, deadline=None)
@given(
    patterns=st.lists(st.tuples(_fold_text, st.integers(0, 3)), max_size=8),
    values=st.lists(st.none() | _fold_text, max_size=25),
    kind=st.sampled_from(LAYOUTS),
    start=st.integers(0, 9),
    large=st.booleans(),
    ascii_only=st.booleans(),
)
@example(patterns=[("k", 0), ("SS", 3), ("fi", 1), ("i", 2)],
         values=["\u212a", "ß", "ﬁle", "İ", None, "K", "Straße"], kind="plain", start=0,
         large=False, ascii_only=True)  # fmt: skip
def test_fold_matches_folded_naive(
    patterns: list[tuple[str, int]],
    values: list[str | None],
    kind: str,
    start: int,
    large: bool,
    ascii_only: bool,
) -> None:
    """``fold=True``: the pairs of the folded patterns in the folded values, every engine
    (ASCII pattern sets take the caseless Hyperscan path; others fold the column)."""
    pats = [p for p, _ in patterns]
    if ascii_only:
        pats = [p.encode("ascii", "ignore").decode() for p in pats]
    anchors = [a for _, a in patterns]
    pset = compile_patterns([p.encode() for p in pats], anchors, fold=True)
    want = folded_pairs(pats, anchors, values)
    arr = layout([None if v is None else v.encode() for v in values], kind, start,
                 large=large, text=True)  # fmt: skip
    for engine in engines():
        assert got_pairs(*match_strings(pset, arr, engine=engine)) == want, engine


def test_fold_folds_only_rows_that_fold_into_ascii(monkeypatch: pytest.MonkeyPatch) -> None:
    """ASCII patterns on Hyperscan: the column is scanned raw; only the 'K' row is folded."""
    if "hyperscan" not in engines():
        pytest.skip("hyperscan not installed")
    folded: list[int] = []

    def counting(arr: pa.Array) -> pa.Array:
        folded.append(len(arr))
        return casefold(arr)

    monkeypatch.setattr(mp, "casefold", counting)
    values = ["GET /Admin.PHP", "\u212aey", "café /admin.php", None, "ok"] * 40
    pset = compile_patterns([b"/admin.php", b"key", b"OK"], [CONTAINS, STARTSWITH, EQUALS],
                            fold=True)  # fmt: skip
    got = got_pairs(*match_strings(pset, pa.array(values), engine="hyperscan"))
    assert got == folded_pairs(["/admin.php", "key", "OK"], [CONTAINS, STARTSWITH, EQUALS],
                               values)  # fmt: skip
    assert folded == [40]  # the 40 "\u212aey" rows, nothing else
    folded.clear()
    pset = compile_patterns(["é".encode()], [CONTAINS], fold=True)  # not ASCII: fold it all
    match_strings(pset, pa.array(values), engine="hyperscan")
    assert folded == [len(values)]


def test_fold_errors() -> None:
    with pytest.raises(ValueError, match="fold=True needs UTF-8 patterns"):
        compile_patterns([b"\xff"], [CONTAINS], fold=True)
    pset = compile_patterns([b"a"], [CONTAINS], fold=True)
    with pytest.raises(TypeError, match="needs a string or large_string array, got binary"):
        match_strings(pset, pa.array([b"a"], pa.binary()))


@pytest.mark.parametrize("engine", ENGINES)
def test_example_anchors(engine: str) -> None:
    pats = [b"cmd", b"/tmp", b"x", b"cmd.exe", b"cmd", b""]
    anchors = [CONTAINS, STARTSWITH, ENDSWITH, EQUALS, CONTAINS, EQUALS]
    pset = compile_patterns(pats, anchors)
    arr = pa.array(["/tmp/cmd.exe cmd", None, "cmd.exe", "box", "", "x/tmp"], pa.large_string())
    assert got_pairs(*match_strings(pset, arr, engine=engine)) == [
        (0, 0), (2, 0), (0, 1), (3, 2), (2, 3), (0, 4), (2, 4), (4, 5),
    ]  # fmt: skip


@pytest.mark.parametrize("engine", ENGINES)
def test_null_rows_with_bytes_never_match(engine: str) -> None:
    """A null row whose offsets still span bytes (allowed by Arrow) gives no pair."""
    offsets = np.array([0, 3, 6], dtype=np.int32)
    data = np.frombuffer(b"abcabc", dtype=np.uint8)
    pset = compile_patterns([b"abc", b"b"], [EQUALS, CONTAINS])
    rows, ids = match_buffers(pset, offsets, data, np.array([False, True]), engine=engine)
    assert got_pairs(rows, ids) == [(1, 0), (1, 1)]


@pytest.mark.parametrize("engine", ENGINES)
def test_dense_matches(engine: str) -> None:
    """Every byte ends a match (the case ``auto`` hands to numba); each pair still once."""
    n = 5000
    arr = pa.array(["a/b/c/d"] * n)
    pset = compile_patterns([b"/", b"a", b"d", b"q"], [CONTAINS, STARTSWITH, ENDSWITH, CONTAINS])
    rows, ids = match_strings(pset, arr, engine=engine)
    want_rows = np.tile(np.arange(n), 3)
    assert np.array_equal(rows, want_rows)
    assert np.array_equal(ids, np.repeat([0, 1, 2], n))


def test_auto_picks_by_density() -> None:
    if "hyperscan" not in engines():
        pytest.skip("hyperscan not installed")
    hs = mp._hyperscan()
    pset = compile_patterns([b"/", b"zzz"], [CONTAINS, CONTAINS])
    db = mp._hs_database(hs, pset)
    dense = ab.string_buffers(pa.array(["a/b/c"] * 100))
    sparse = ab.string_buffers(pa.array(["abc"] * 100 + ["zzz"]))
    assert mp._dense(hs, db, dense.offsets, dense.data)
    assert not mp._dense(hs, db, sparse.offsets, sparse.data)


def test_pickles_and_matches_after() -> None:
    pset = compile_patterns([b"ab", b"", b"b"], [CONTAINS, EQUALS, ENDSWITH])
    back = pickle.loads(pickle.dumps(pset))
    arr = pa.array(["ab", "", None, "xb"])
    for engine in engines():
        assert got_pairs(*match_strings(back, arr, engine=engine)) == [
            (0, 0), (1, 1), (0, 2), (3, 2),
        ]  # fmt: skip


def test_hyperscan_database_rebuilt_when_missing() -> None:
    if "hyperscan" not in engines():
        pytest.skip("hyperscan not installed")
    pset = compile_patterns([b"ab", b"\x00b"], [CONTAINS, CONTAINS])
    bare = pset._replace(hs_db=np.zeros(0, np.uint8))
    corrupt = pset._replace(hs_db=np.arange(64, dtype=np.uint8))
    arr = pa.array([b"ab", b"\x00b"], pa.binary())
    for p in (bare, corrupt):
        assert got_pairs(*match_strings(p, arr, engine="hyperscan")) == [(0, 0), (1, 1)]


def test_chunked_with_null_type_and_empty_chunks() -> None:
    pset = compile_patterns([b"a"], [CONTAINS])
    arr = pa.chunked_array([pa.array([], pa.string()), pa.array(["a", "b"]), pa.array(["ba"])])
    for engine in engines():
        assert got_pairs(*match_strings(pset, arr, engine=engine)) == [(0, 0), (2, 0)]
    assert got_pairs(*match_strings(pset, pa.array([None, None], pa.null()))) == []


def test_errors() -> None:
    with pytest.raises(ValueError, match="one anchor per pattern"):
        compile_patterns([b"a", b"b"], [CONTAINS])
    with pytest.raises(ValueError, match="unknown anchor 7"):
        compile_patterns([b"a"], [7])
    pset = compile_patterns([b"a"], [CONTAINS])
    with pytest.raises(ValueError, match="unknown engine 'regex'"):
        match_strings(pset, pa.array(["a"]), engine="regex")
    with pytest.raises(TypeError, match="expected a string or binary array"):
        match_strings(pset, pa.array([1]))


def test_table_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mp, "TABLE_LIMIT_BYTES", 64)
    with pytest.raises(ValueError, match="split the patterns"):
        compile_patterns([b"abcdefgh"], [CONTAINS])


def test_hyperscan_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mp, "_hyperscan", lambda: None)
    assert engines() == ("numba",)
    pset = compile_patterns([b"a"], [CONTAINS])
    assert len(pset.hs_db) == 0
    assert got_pairs(*match_strings(pset, pa.array(["a"]))) == [(0, 0)]
    with pytest.raises(ValueError, match="pip install hyperscan"):
        match_strings(pset, pa.array(["a"]), engine="hyperscan")


def test_many_patterns_table_size() -> None:
    """2,000 random lower-case patterns: the DFA stays small, both engines agree."""
    rng = np.random.default_rng(1)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz0123456789./-_", dtype=np.uint8)
    pats = [letters[rng.integers(0, len(letters), rng.integers(4, 16))].tobytes()
            for _ in range(2000)]  # fmt: skip
    vals = [letters[rng.integers(0, len(letters), 60)].tobytes() for _ in range(2000)]
    vals[::50] = [v[:10] + pats[i] + v[10:] for i, v in enumerate(vals[::50])]
    pset = compile_patterns(pats, [CONTAINS] * len(pats))
    assert pset.trans.nbytes < 20 << 20
    want = naive_pairs(pats, [CONTAINS] * len(pats), vals)
    arr = pa.array(vals, pa.binary())
    for engine in engines():
        assert got_pairs(*match_strings(pset, arr, engine=engine)) == want


def test_docstring_examples_run() -> None:
    result = doctest.testmod(mp, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0
