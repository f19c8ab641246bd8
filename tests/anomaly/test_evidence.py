"""Column-wise evidence JSON equals json.dumps(sort_keys=True) of the same objects."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from detect.anomaly import evidence as ev
from detect.anomaly.keys import iso_us

_TIMES = st.integers(-62_135_596_800_000_000, 253_402_300_799_999_999)  # years 1..9999


@given(st.lists(st.one_of(st.none(), st.text()), max_size=30))
def test_json_strings_match_json_dumps(values):
    assert ev.json_strings(pa.array(values, pa.string())).to_pylist() == [
        json.dumps(v) for v in values
    ]


@given(st.lists(_TIMES, max_size=30))
def test_json_times_match_iso_us(values):
    got = ev.json_times(np.array(values, dtype=np.int64)).to_pylist()
    assert got == [json.dumps(iso_us(v)) for v in values]


@given(
    st.lists(
        st.lists(st.tuples(st.text(), st.integers(-(2**62), 2**62), _TIMES), max_size=4),
        max_size=8,
    )
)
def test_objects_in_lists_match_json_dumps(groups):
    flat = [x for g in groups for x in g]
    objs = ev.json_object(
        {
            "name": ev.json_strings(pa.array([x[0] for x in flat], pa.string())),
            "events": ev.json_ints(np.array([x[1] for x in flat], dtype=np.int64)),
            "at": ev.json_times(np.array([x[2] for x in flat], dtype=np.int64)),
        }
    )
    offsets = np.r_[0, np.cumsum([len(g) for g in groups])].astype(np.int64)
    lists = ev.json_lists(objs, offsets)
    top = ev.json_object({"items": lists, "w": ev.json_constant(86400.0, len(groups))})
    want = [
        json.dumps(
            {"items": [{"name": n, "events": e, "at": iso_us(t)} for n, e, t in g], "w": 86400.0},
            sort_keys=True,
        )
        for g in groups
    ]
    assert top.to_pylist() == want
