"""DNS name features vs a naive Python reference (str ops, regex, math.log2), on every layout."""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from detect.kernels.dns_features import (
    FEATURE_NAMES,
    group_int64,
    intern_strings,
    is_in_dictionary,
    name_features,
    name_features_and_names,
)

_CONS = set(b"bcdfghjklmnpqrstvwxyz")
_HEX = re.compile(rb"[0-9a-f]+")
_B64 = re.compile(rb"[A-Za-z0-9+/]+={0,2}")
_CONS_RUN = re.compile(rb"[bcdfghjklmnpqrstvwxyz]+")


def _entropy(b: bytes) -> float:
    if not b:
        return 0.0
    n = len(b)
    return -sum(c / n * math.log2(c / n) for c in Counter(b).values())


def _longest(pattern: re.Pattern[bytes], b: bytes) -> int:
    return max((len(m.group()) for m in pattern.finditer(b)), default=0)


def naive_features(name: str | None, rd: str | None) -> dict[str, float] | None:
    """Features of one name, the obvious way (bytes, ASCII-only folding as DNS)."""
    if name is None:
        return None
    b = name.encode().lower()
    if b.endswith(b"."):
        b = b[:-1]
    r = None if rd is None else rd.encode().lower()
    if r is not None and r.endswith(b"."):
        r = r[:-1]
    if r and b == r:
        sub = b""
    elif r and b.endswith(b"." + r):
        sub = b[: -len(r) - 1]
    else:
        parts = b.rsplit(b".", 2)
        sub = parts[0] if len(parts) == 3 else b""
    labels = b.split(b".") if b else []
    first = labels[0] if labels else b""
    chars = sub.replace(b".", b"")
    return {
        "n_labels": len(labels),
        "max_label": max((len(x) for x in labels), default=0),
        "first_len": len(first),
        "first_dash": b"-" in first,
        "first_consonants": sum(ch in _CONS for ch in first),
        "first_consonant_run": _longest(_CONS_RUN, first),
        "first_entropy": _entropy(first),
        "sub_len": len(sub),
        "sub_chars": len(chars),
        "sub_entropy": _entropy(chars),
        "sub_digit_ratio": (sum(48 <= ch <= 57 for ch in chars) / len(chars)) if chars else 0.0,
        "sub_hex_run": _longest(_HEX, sub),
        "sub_base64_run": _longest(_B64, sub),
    }


def _layout(values: list[str | None], kind: str, start: int, *, large: bool) -> pa.Array:
    typ = pa.large_string() if large else pa.string()
    if kind == "plain":
        return pa.array(values, typ)
    if kind == "slice":
        return pa.array(["junk.example.com", None] * start + values, typ).slice(2 * start)
    if kind == "dictionary":
        return pa.array(["x.com"] * start + values, typ).dictionary_encode().slice(start)
    k = min(start, len(values))
    return pa.chunked_array([pa.array(values[:k], typ), pa.array(values[k:], typ)], typ)


_label = st.one_of(
    st.sampled_from(["www", "com", "co", "uk", "", "é", "xn--bcher-kva", "A", "ab+/==", "0x1F"]),
    st.text(alphabet="abcdefxyzQRS0129-+/=_é", max_size=30),
)
_name = st.lists(_label, min_size=1, max_size=5).map(".".join)
_event = st.one_of(st.none(), _name, _name.map(lambda d: d + "."), _name.map(str.upper),
                   st.text(max_size=12))  # fmt: skip
_EDGE = ["", ".", "..", "a.b", "A.B.C.", "aGVsbG8gd29ybGQ=.t.example.com", "abc===d.x.y.z",
         "DEADBEEFcafe.x.com", "bcdfghjklmnp.com", "a..b.example.com", "é.example.com",
         "x" * 70 + ".example.co.uk", "1.2.3.4", "-a-b.c.d"]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(
            _event, st.one_of(st.none(), st.sampled_from(["example.com", "co.uk", "b.c"]), _name)
        ),
        max_size=25,
    ),
    kind=st.sampled_from(["plain", "slice", "dictionary", "chunked"]),
    start=st.integers(0, 5),
    large=st.booleans(),
    rd_from_name=st.booleans(),
)
@example(pairs=[(v, None) for v in _EDGE], kind="plain", start=0, large=False,
         rd_from_name=True)  # fmt: skip
@example(pairs=[(v, "example.com") for v in _EDGE], kind="chunked", start=3, large=True,
         rd_from_name=False)  # fmt: skip
@example(pairs=[], kind="slice", start=2, large=False, rd_from_name=False)
def test_features_match_reference(
    pairs: list[tuple[str | None, str | None]], kind: str, start: int, large: bool,
    rd_from_name: bool,
) -> None:  # fmt: skip
    names = [p[0] for p in pairs]
    if rd_from_name:  # the registered domain the enrich step would give (or a null)
        from detect.enrich import registered_domain

        rds = registered_domain(pa.array(names, pa.string())).to_pylist() if names else []
    else:
        rds = [p[1] for p in pairs]
    feats, folded = name_features_and_names(
        _layout(names, kind, start, large=large), _layout(rds, "plain", 0, large=not large)
    )
    assert all(len(getattr(feats, f)) == len(names) for f in FEATURE_NAMES)
    for i, (name, rd) in enumerate(zip(names, rds, strict=True)):
        want = naive_features(name, rd)
        if want is None:
            assert all(getattr(feats, f)[i] == 0 for f in FEATURE_NAMES)
            continue
        for f in FEATURE_NAMES:
            got = getattr(feats, f)[i]
            if isinstance(want[f], float):
                assert got == pytest.approx(want[f], abs=1e-9), (f, name, rd)
            else:
                assert got == want[f], (f, name, rd)
    want_names = [None if n is None else n.encode().lower() for n in names]
    want_names = [b[:-1] if b is not None and b.endswith(b".") else b for b in want_names]
    got_names = [None if v is None else v.encode() for v in folded.to_pylist()]
    assert got_names == want_names


def test_null_and_empty_columns() -> None:
    f = name_features(pa.nulls(3, pa.string()))
    assert f.n_labels.tolist() == [0, 0, 0]
    f = name_features(pa.array([], pa.string()), pa.array([], pa.string()))
    assert len(f.sub_entropy) == 0
    f = name_features(pa.chunked_array([], pa.string()))
    assert len(f.first_len) == 0


def test_long_label_beyond_entropy_table() -> None:
    name = "".join(chr(97 + i % 26) for i in range(3000)) + ".example.com"
    f = name_features(pa.array([name]), pa.array(["example.com"]))
    assert f.sub_entropy[0] == pytest.approx(_entropy(name[:3000].encode()), abs=1e-9)
    assert f.first_len[0] == 3000


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet="abé.", max_size=6)), max_size=40),
       st.booleans())  # fmt: skip
def test_intern_strings_exact(values: list[str | None], large: bool) -> None:
    codes, first = intern_strings(pa.array(values, pa.large_string() if large else pa.string()))
    seen: dict[str, int] = {}
    want = [-1 if v is None else seen.setdefault(v, len(seen)) for v in values]
    assert codes.tolist() == want
    assert [values[r] for r in first.tolist()] == list(seen)


_WORDS = st.sampled_from(["", "a", "10.0.0.1", "10.0.0.12", "2001:db8::1", "abcdefgh",
                          "abcdefghijklmnop", "abcdefghijklmnopq", "é" * 9, "x" * 40])  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.none(), _WORDS, st.text(alphabet="ab.é", max_size=24)), max_size=40),
    st.integers(0, 3),
    st.booleans(),
)
def test_intern_strings_every_length_and_slice(values, cut: int, large: bool) -> None:
    """Keys of 0-40 bytes (words, padded and hashed), sliced so rows sit at the buffer end."""
    arr = pa.array(values, pa.large_string() if large else pa.string())
    arr = arr.slice(min(cut, len(values)))
    values = values[min(cut, len(values)) :]
    codes, first = intern_strings(arr)
    seen: dict[str, int] = {}
    want = [-1 if v is None else seen.setdefault(v, len(seen)) for v in values]
    assert codes.tolist() == want
    assert [values[r] for r in first.tolist()] == list(seen)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(-(2**62), 2**62) | st.integers(0, 5), max_size=60),
    st.sampled_from([0, 1, 7, 64, 5000]),
)
def test_group_int64(keys: list[int], size_hint: int) -> None:
    ids, first, m = group_int64(np.array(keys, dtype=np.int64), size_hint=size_hint)
    seen: dict[int, int] = {}
    want_first = [k not in seen and seen.setdefault(k, len(seen)) >= 0 for k in keys]
    assert ids.tolist() == [seen[k] for k in keys]
    assert first.tolist() == want_first
    assert m == len(seen)


def test_is_in_dictionary() -> None:
    arr = pa.array(["TXT", "a", None, "null", "Txt"]).dictionary_encode()
    assert is_in_dictionary(arr, frozenset({"TXT", "NULL"})).tolist() == [
        True, False, False, True, True,
    ]  # fmt: skip
    plain = pa.chunked_array([pa.array(["NXDOMAIN", None]), pa.array(["3"])])
    assert is_in_dictionary(plain, frozenset({"NXDOMAIN", "3"})).tolist() == [True, False, True]


@pytest.mark.parametrize("distinct", [511, 512, 513, 5000])
def test_tables_grow_past_the_first_size(distinct: int) -> None:
    """Interning and grouping rehash into bigger tables as distinct values arrive."""
    rng = np.random.default_rng(distinct)
    keys = rng.integers(0, distinct, 4 * distinct)
    keys[:distinct] = rng.permutation(distinct)  # every value present
    values = [f"k{k}.example" for k in keys.tolist()]
    codes, first = intern_strings(pa.array(values))
    seen: dict[str, int] = {}
    assert codes.tolist() == [seen.setdefault(v, len(seen)) for v in values]
    assert len(first) == distinct
    ids, flags, m = group_int64(keys * 7919 - 3)
    order: dict[int, int] = {}
    assert ids.tolist() == [order.setdefault(k, len(order)) for k in keys.tolist()]
    assert m == distinct
    assert int(flags.sum()) == distinct
