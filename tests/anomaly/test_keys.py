"""State tables of the detectors: parts written by ``make_state`` and read back."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from detect.anomaly.keys import KIND, make_state, state_part, state_watermark

SCHEMA = pa.schema([pa.field("value", pa.string()), pa.field("n", pa.int64())])


def _part(rows: list[tuple[str | None, int]]) -> pa.Table:
    return pa.table({"value": [r[0] for r in rows], "n": [r[1] for r in rows]}, schema=SCHEMA)


def _buffer_addresses(table: pa.Table) -> set[int]:
    return {
        b.address for col in table.columns for ch in col.chunks for b in ch.buffers() if b
    }


_rows = st.lists(st.tuples(st.none() | st.text(max_size=5), st.integers(-5, 5)), max_size=20)


@settings(max_examples=100, deadline=None)
@given(
    parts=st.dictionaries(st.integers(1, 4), _rows, max_size=4),
    wm=st.none() | st.integers(-(2**62), 2**62),  # int64 microseconds, as watermarks are
)
def test_state_part_view_equals_copy(parts: dict[int, list], wm: int | None) -> None:
    """A view (zero-copy slice) holds the same rows as the filtered copy, for every kind;
    when the kind's rows are not contiguous (two states concatenated) it copies too."""
    state = make_state(SCHEMA, wm, {k: _part(v) for k, v in parts.items()})
    assert state_watermark(state) == wm
    for kind in range(1, 5):
        copied = state_part(state, kind, ["value", "n"])
        viewed = state_part(state, kind, ["value", "n"], view=True)
        if not parts.get(kind):
            assert copied is None
            assert viewed is None
            continue
        assert copied is not None
        assert viewed is not None
        assert viewed.equals(copied)
        assert viewed.to_pylist() == _part(parts[kind]).to_pylist()
        assert _buffer_addresses(viewed) <= _buffer_addresses(state)  # no copy
    twice = pa.concat_tables([state, state.filter(pa.compute.not_equal(state[KIND], 0))])
    for kind, rows in parts.items():
        if rows:
            got = state_part(twice, kind, ["value", "n"], view=True)
            assert got is not None
            assert got.to_pylist() == _part(rows + rows).to_pylist()
