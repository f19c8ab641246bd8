"""Merging one indicator from several feeds, against a naive reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from detect.indicators.merge import merge
from detect.indicators.model import SEVERITIES, indicator_table

DAYS = [None, *(datetime(2024, m, 1, tzinfo=UTC) for m in (1, 3, 6, 9))]
PROBES = [d + timedelta(days=k) for d in DAYS if d is not None for k in (-1, 0, 1)]

rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(["a.com", "b.com", "1.2.3.4"]),
        st.sampled_from(["f1", "f2", "f3"]),
        st.one_of(st.none(), st.integers(0, 100)),
        st.one_of(st.none(), st.sampled_from(SEVERITIES)),
        st.lists(st.sampled_from(["x", "y", "T1071"]), max_size=2),
        st.sampled_from(DAYS),
        st.sampled_from(DAYS),
        st.one_of(st.none(), st.booleans()),
    ),
    max_size=25,
)


def naive(rows: list[tuple]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for value, source, conf, sev, tags, vf, vu, to_ids in rows:
        m = out.setdefault(value, {"sources": [], "confs": [], "sevs": [], "tags": [],
                                   "vf": [], "vu": [], "to_ids": False})
        if source not in m["sources"]:
            m["sources"].append(source)
        m["confs"].append(conf)
        m["sevs"].append(sev)
        for t in tags:
            if t not in m["tags"]:
                m["tags"].append(t)
        m["vf"].append(vf)
        m["vu"].append(vu)
        m["to_ids"] |= to_ids is not False
    result = {}
    for value, m in out.items():
        confs = [c for c in m["confs"] if c is not None]
        conf = max(confs) if confs else None
        ranks = [SEVERITIES.index(s) for s in m["sevs"] if s is not None]
        rank = max(ranks) if ranks else 2
        if conf is not None and conf < 30:
            rank -= 1
        elif conf is not None and conf >= 90:
            rank += 1
        rank = min(max(rank, 0), 4)
        result[value] = {
            "sources": m["sources"], "confidence": conf, "tags": m["tags"],
            "valid_from": None if None in m["vf"] else min(m["vf"]),
            "valid_until": None if None in m["vu"] else max(m["vu"]),
            "to_ids": m["to_ids"],
            "severity": SEVERITIES[rank] if m["to_ids"] else "informational",
        }
    return result


@settings(max_examples=200, deadline=None)
@given(rows_strategy)
def test_merge_matches_the_naive_reference(rows: list[tuple]) -> None:
    table = indicator_table({
        "type": ["ip" if r[0][0].isdigit() else "domain" for r in rows],
        "value": [r[0] for r in rows],
        "source": [r[1] for r in rows],
        "confidence": [r[2] for r in rows],
        "severity": [r[3] for r in rows],
        "tags": [r[4] for r in rows],
        "valid_from": [r[5] for r in rows],
        "valid_until": [r[6] for r in rows],
        "to_ids": [r[7] for r in rows],
    })
    got = {r["value"]: r for r in merge(table).to_pylist()}
    want = naive(rows)
    assert set(got) == set(want)
    for value, w in want.items():
        g = got[value]
        assert g["sources"] == w["sources"]
        assert g["confidence"] == w["confidence"]
        assert g["tags"] == w["tags"]
        assert g["valid_from"] == w["valid_from"]
        assert g["valid_until"] == w["valid_until"]
        assert g["to_ids"] == w["to_ids"]
        assert g["severity"] == w["severity"], (value, rows)
    # validity: the merged indicator is valid exactly when some feed's row is
    for value, g in got.items():
        own = [(r[5], r[6]) for r in rows if r[0] == value]
        for t in PROBES:
            feed_says = any((a is None or a <= t) and (b is None or t <= b) for a, b in own)
            merged_says = (
                (g["valid_from"] is None or g["valid_from"] <= t)
                and (g["valid_until"] is None or t <= g["valid_until"])
                and not any(gap["start"] < t < gap["end"] for gap in g["validity_gaps"])
            )
            assert merged_says == feed_says, (value, t, own, g["validity_gaps"])
