"""chunk_codes against interning the decoded column (the naive reference: first-appearance
order over plain Python values)."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from detect.kernels.dictionary_codes import chunk_codes

_words = st.sampled_from(["", "a", "A", "b", "é", "x" * 20])
_values = st.lists(st.one_of(st.none(), _words), max_size=30)


def _chunk(values: list[str | None], kind: str, start: int) -> pa.Array:
    arr = pa.array(values, pa.string())
    if kind == "dict":
        arr = arr.dictionary_encode()
    elif kind == "dict-null-entry":  # a null inside the dictionary, not in the indices
        entries = pa.array([None, *dict.fromkeys(v for v in values if v is not None)])
        pos = {v: i for i, v in enumerate(entries.to_pylist())}
        arr = pa.DictionaryArray.from_arrays(pa.array([pos[v] for v in values], pa.int8()), entries)
    elif kind == "large":
        arr = arr.cast(pa.large_string())
    k = min(start, len(arr))
    return arr.slice(k)


def _reference(rows: list[str | None]) -> tuple[list[int], int]:
    ids: dict[str, int] = {}
    out = []
    for v in rows:
        if v is None:
            out.append(-1)
        else:
            out.append(ids.setdefault(v, len(ids)))
    return out, len(ids)


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(
        st.tuples(_values, st.sampled_from(["dict", "plain", "dict-null-entry", "large"]),
                  st.integers(0, 3)),
        max_size=5,
    )
)
def test_chunk_codes_equal_interning_the_decoded_rows(parts) -> None:
    chunks = [_chunk(v, kind, start) for v, kind, start in parts]
    rows = [r for c in chunks for r in c.to_pylist()]
    codes, n = chunk_codes(chunks)
    assert (codes.tolist(), n) == _reference(rows)


def test_chunk_codes_share_ids_across_dictionaries() -> None:
    a = pa.array(["org-b", "org-a"]).dictionary_encode()
    b = pa.DictionaryArray.from_arrays(pa.array([0, 0, 1]), pa.array(["org-a", "org-c"]))
    codes, n = chunk_codes([a, b, pa.array(["org-c", None])])
    assert codes.tolist() == [0, 1, 1, 1, 2, 2, -1]
    assert n == 3
