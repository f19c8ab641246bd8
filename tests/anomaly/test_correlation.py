"""Sigma correlation rules (:mod:`detect.anomaly.correlation`): every type on hand-built
events, the spec's own rules, a naive reference and split-run equivalence (hypothesis),
the bundled rules' test events and SSH brute force on real Zeek logs."""

from __future__ import annotations

import glob
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sigma.collection import SigmaCollection

from detect.anomaly.base import FINDINGS_SCHEMA
from detect.anomaly.correlation import CorrelationDetector, parse_correlation_rules
from detect.enrich import enrich
from detect.schema import CANONICAL_SCHEMA, conform

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "rules" / "correlation"
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
US = 1_000_000

BASES = """
title: base a
id: 00000000-0000-4000-8000-00000000000a
name: rule_a
logsource: {product: zeek}
detection: {sel: {event.dataset: a}, condition: sel}
---
title: base b
id: 00000000-0000-4000-8000-00000000000b
name: rule_b
logsource: {product: zeek}
detection: {sel: {event.dataset: b}, condition: sel}
"""


def batch_of(events: list[dict[str, Any]]) -> pa.RecordBatch:
    names = [n for n in CANONICAL_SCHEMA.names if any(n in e for e in events)]
    columns = {n: pa.array([e.get(n) for e in events]) for n in names}
    return enrich(conform(columns, len(events)))


def ev(sec: float, ds: str = "a", src: str = "10.0.0.1", **kw: Any) -> dict[str, Any]:
    e = {"@timestamp": T0 + timedelta(seconds=sec), "event.dataset": ds, "source.ip": src}
    e.update({k.replace("__", "."): v for k, v in kw.items()})
    return e


def detector(corr: str, bases: str = BASES, **params: Any) -> CorrelationDetector:
    rules = SigmaCollection.from_yaml(corr + "\n---\n" + bases).rules
    return CorrelationDetector(rules, **params)


def corr_yaml(
    type_: str,
    cond: str | None,
    *,
    rules: str = "[rule_a]",
    ts: str = "10s",
    group: str = "[source.ip]",
    extra: str = "",
    rid: str = "c0",
) -> str:
    c = f"\n    condition: {cond}" if cond else ""
    return f"""
title: corr {rid}
name: {rid}
level: high
correlation:
    type: {type_}
    rules: {rules}
    group-by: {group}
    timespan: {ts}{c}{extra}
"""


def findings(det: CorrelationDetector, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = det.run(det.select(batch_of(events)), None, final=True)
    assert out.findings.schema == FINDINGS_SCHEMA
    return out.findings.to_pylist()


def starts(rows: list[dict[str, Any]]) -> list[tuple[str, float, int]]:
    return [(r["entity"], (r["window_start"] - T0).total_seconds(), r["event_count"]) for r in rows]


# ----------------------------------------------------------------------------- types


def test_event_count_boundary_is_half_open() -> None:
    det = detector(corr_yaml("event_count", "{gte: 3}"))
    inside = [ev(0), ev(5), ev(9.999999)]
    edge = [ev(0, src="10.0.0.2"), ev(5, src="10.0.0.2"), ev(10, src="10.0.0.2")]
    rows = findings(det, inside + edge)
    assert starts(rows) == [("10.0.0.1", 0.0, 3)]
    r = rows[0]
    assert (r["window_end"] - r["window_start"]).total_seconds() == 10
    assert r["severity"] == "high" and r["rule_id"] == "c0"
    evidence = json.loads(r["evidence"])
    assert evidence["count"] == 3 and evidence["group"] == {"source.ip": "10.0.0.1"}
    assert evidence["crossing"].startswith("2026-11-20T10:00:09.99999")


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ("{gt: 2}", [0.0]),
        ("{gte: 2}", [0.0]),
        ("{eq: 2}", [1.0]),
        ("{neq: 3}", [1.0]),
        ("{lt: 2}", [2.0]),
        ("{lte: 3}", [0.0]),
        ("{gt: 3}", []),
    ],
)
def test_event_count_operators(cond: str, expected: list[float]) -> None:
    # windows starting at 0, 1, 2 hold 3, 2, 1 events; the first satisfying one fires
    det = detector(corr_yaml("event_count", cond))
    assert [s for _, s, _ in starts(findings(det, [ev(0), ev(1), ev(2)]))] == expected


def test_range_conditions_are_anded(tmp_path: Path) -> None:
    (tmp_path / "r.yml").write_text(corr_yaml("event_count", "{gt: 1, lte: 2}") + "---" + BASES)
    loaded, errors = parse_correlation_rules([tmp_path])
    assert errors == []
    det = CorrelationDetector(loaded)
    assert det.plans[0].condition == {"gt": 1, "lte": 2}
    assert [s for _, s, _ in starts(findings(det, [ev(0), ev(1), ev(2)]))] == [1.0]


def test_cross_file_references(tmp_path: Path) -> None:
    (tmp_path / "corr.yml").write_text(corr_yaml("event_count", "{gte: 2}"))
    (tmp_path / "bases.yml").write_text(BASES)
    loaded, errors = parse_correlation_rules([tmp_path])
    assert errors == []
    det = CorrelationDetector(loaded)
    assert det.unsupported == [] and len(det.plans) == 1
    assert len(findings(det, [ev(0), ev(1)])) == 1


def test_episodes_do_not_overlap() -> None:
    det = detector(corr_yaml("event_count", "{gte: 2}"))
    events = [ev(s) for s in range(0, 30, 2)]  # 15 events, every 2 s
    assert [s for _, s, _ in starts(findings(det, events))] == [0.0, 10.0, 20.0]


def test_value_count_distinct_non_null() -> None:
    det = detector(corr_yaml("value_count", "{field: destination.port, gte: 3}"))
    a = [ev(i, destination__port=p) for i, p in enumerate([22, 22, 80, None])]
    b = [ev(i, src="10.0.0.2", destination__port=p) for i, p in enumerate([22, 80, 443])]
    rows = findings(det, a + b)
    assert starts(rows) == [("10.0.0.2", 0.0, 3)]
    assert json.loads(rows[0]["evidence"])["values"] == ["22", "443", "80"]


def test_temporal_any_order_within_timespan() -> None:
    det = detector(corr_yaml("temporal", None, rules="[rule_a, rule_b]"))
    g1 = [ev(0, "b"), ev(9, "a")]  # any order
    g2 = [ev(0, "a", "10.0.0.2"), ev(10, "b", "10.0.0.2")]  # exactly timespan apart
    g3 = [ev(0, "a", "10.0.0.3"), ev(1, "a", "10.0.0.3")]  # one rule only
    assert starts(findings(det, g1 + g2 + g3)) == [("10.0.0.1", 0.0, 2)]


def test_temporal_ordered_order_matters() -> None:
    det = detector(corr_yaml("temporal_ordered", None, rules="[rule_a, rule_b]"))
    ok = [ev(0, "a"), ev(5, "b")]
    wrong = [ev(0, "b", "10.0.0.2"), ev(5, "a", "10.0.0.2")]
    same_time = [ev(0, "a", "10.0.0.3"), ev(0, "b", "10.0.0.3")]
    later = [ev(0, "b", "10.0.0.4"), ev(1, "a", "10.0.0.4"), ev(2, "b", "10.0.0.4")]
    rows = findings(det, ok + wrong + same_time + later)
    assert sorted(starts(rows)) == [("10.0.0.1", 0.0, 2), ("10.0.0.4", 0.0, 3)]


@pytest.mark.parametrize(
    ("type_", "cond", "expected"),
    [
        ("value_sum", "{field: source.bytes, gt: 100}", ["10.0.0.2"]),
        ("value_sum", "{field: source.bytes, lte: 30}", ["10.0.0.1"]),  # window at 2 s
        ("value_avg", "{field: source.bytes, gte: 50}", ["10.0.0.2"]),
        ("value_percentile", "{field: source.bytes, percentile: 50, gt: 40}", ["10.0.0.2"]),
        ("value_percentile", "{field: source.bytes, percentile: 100, eq: 60}", ["10.0.0.2"]),
        ("value_median", "{field: source.bytes, lt: 25}", ["10.0.0.1"]),
    ],
)
def test_value_metrics(type_: str, cond: str, expected: list[str]) -> None:
    det = detector(corr_yaml(type_, cond))
    a = [ev(i, source__bytes=b) for i, b in enumerate([10, 20, 30, None])]  # sum 60, avg 20
    b = [ev(i, src="10.0.0.2", source__bytes=b) for i, b in enumerate([40, 50, 60])]  # 150, 50
    assert sorted({e for e, _, _ in starts(findings(det, a + b))}) == expected


def test_value_percentile_needs_percentile() -> None:
    det = detector(corr_yaml("value_percentile", "{field: source.bytes, lte: 1}"))
    assert det.plans == []
    assert "percentile" in det.unsupported[0].reason


def test_aliases_map_fields_per_rule() -> None:
    extra = """
    aliases:
        internal_ip: {rule_a: destination.ip, rule_b: source.ip}"""
    det = detector(
        corr_yaml("temporal", None, rules="[rule_a, rule_b]", group="[internal_ip]", extra=extra)
    )
    events = [
        ev(0, "a", src="203.0.113.9", destination__ip="10.0.0.5"),  # reaches 10.0.0.5
        ev(3, "b", src="10.0.0.5", destination__ip="203.0.113.9"),  # 10.0.0.5 goes out
        ev(0, "a", src="203.0.113.9", destination__ip="10.0.0.6"),
        ev(3, "b", src="10.0.0.7", destination__ip="203.0.113.9"),
    ]
    rows = findings(det, events)
    assert starts(rows) == [("10.0.0.5", 0.0, 2)]
    assert json.loads(rows[0]["evidence"])["group"] == {"internal_ip": "10.0.0.5"}


CHAIN = """
title: outer
id: 00000000-0000-4000-8000-0000000000c2
level: critical
correlation:
    type: temporal_ordered
    rules: [inner, rule_b]
    group-by: [source.ip]
    timespan: 20s
    generate: {generate}
---
title: inner
id: 00000000-0000-4000-8000-0000000000c1
name: inner
correlation:
    type: event_count
    rules: [rule_a]
    group-by: [source.ip, destination.ip]
    timespan: 10s
    condition: {{gte: 3}}
"""


@pytest.mark.parametrize("generate", ["false", "true"])
def test_chained_correlation_and_generate(generate: str) -> None:
    det = detector(CHAIN.format(generate=generate))
    a = [ev(s, "a", destination__ip="192.0.2.1") for s in (0, 1, 2)]  # crossing at 2 s
    a2 = [ev(s, "a", "10.0.0.2", destination__ip="192.0.2.1") for s in (0, 1, 2)]
    events = [*a, ev(3, "b"), *a2, ev(1, "b", "10.0.0.2")]
    rows = findings(det, events)
    outer = [r for r in rows if r["rule_id"].endswith("c2")]
    assert starts(outer) == [("10.0.0.1", 2.0, 2)]  # window starts at the inner crossing
    assert outer[0]["severity"] == "critical"
    inner = [r for r in rows if r["rule_id"].endswith("c1")]
    base = {"00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"}
    if generate == "false":
        assert inner == []
        assert det.suppressed_correlations == {"00000000-0000-4000-8000-0000000000c1"}
        assert det.suppressed_base_rules == {"00000000-0000-4000-8000-00000000000b"} | (
            {"00000000-0000-4000-8000-00000000000a"}  # inner itself has generate false
        )
    else:
        assert len(inner) == 2  # 10.0.0.2's inner fires too, but its b came first
        assert det.suppressed_correlations == frozenset()
        assert det.suppressed_base_rules == {"00000000-0000-4000-8000-00000000000a"}
    assert base >= det.suppressed_base_rules


def test_unsupported_reasons_never_crash() -> None:
    windows = """
title: failed login
id: 00000000-0000-4000-8000-0000000000aa
name: failed_login
logsource: {product: windows, service: security}
detection: {sel: {EventID: 4625}, condition: sel}
"""
    det = detector(corr_yaml("event_count", "{gte: 2}", rules="[failed_login]"), bases=windows)
    assert det.plans == []
    assert "EventID" in det.unsupported[0].reason
    det = detector(corr_yaml("event_count", "{gte: 2}", group="[ComputerName]"))
    assert "ComputerName" in det.unsupported[0].reason
    det = detector(corr_yaml("temporal", "rule_a and not rule_b", rules="[rule_a, rule_b]"))
    assert "extended" in det.unsupported[0].reason


# ----------------------------------------------------------------------------- spec files


def _spec_files(shared: Path) -> list[Path]:
    root = shared / "sigma" / "sigma-specification"
    files = sorted((root / "tests" / "schema" / "correlation").glob("*.yml"))
    files += sorted((root / "examples-extracted-from-spec").glob("correlation*.yml"))
    return files


def test_spec_rules_load_or_are_reported(shared_datasets: Path) -> None:
    files = _spec_files(shared_datasets)
    if not files:
        pytest.skip("sigma-specification correlation files not present")
    seen = 0
    for f in files:
        coll = SigmaCollection.from_yaml(
            f.read_text(), collect_errors=True, resolve_references=False
        )
        corrs = [r for r in coll.rules if type(r).__name__ == "SigmaCorrelationRule"]
        if not corrs:
            continue
        det = CorrelationDetector(coll.rules)
        ran = {p.rule_id for p in det.plans}
        reported = {u.rule_id: u.reason for u in det.unsupported}
        for _i, c in enumerate(corrs):
            key = str(c.id) if c.id else (c.name or None)
            assert key is None or key in ran or key in reported, (f, key)
            seen += 1
        assert all(r for r in reported.values())
        det.run(det.select(batch_of([ev(0)])), None, final=True)
    assert seen >= 8


# ----------------------------------------------------------------------------- bundled rules


def _expand(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for e in events:
        n, every = e.pop("repeat", [1, 0])
        t = datetime.fromisoformat(str(e["@timestamp"]).replace("Z", "+00:00"))
        for i in range(n):
            x = {k: (v.format(i=i, i2=i % 2) if isinstance(v, str) else v) for k, v in e.items()}
            x["@timestamp"] = t + timedelta(seconds=i * every)
            x["destination.port"] = e.get("destination.port")
            out.append({k: v for k, v in x.items() if v is not None})
    return out


@pytest.mark.parametrize("rule_file", sorted(PACK.glob("*.yml")), ids=lambda p: p.stem)
def test_bundled_rule_events(rule_file: Path) -> None:
    loaded, errors = parse_correlation_rules([PACK])
    assert errors == []
    det = CorrelationDetector(loaded)
    assert det.unsupported == []
    spec = yaml.safe_load((PACK / "tests" / rule_file.name).read_text())
    rows = findings(det, _expand(spec["events"]))
    ids = {str(r.id) for r in SigmaCollection.from_yaml(rule_file.read_text()).rules}
    got = sorted((r["rule_id"], r["entity"], r["event_count"]) for r in rows if r["rule_id"] in ids)
    want = sorted((e["rule_id"], e["entity"], e["event_count"]) for e in spec["expect"])
    assert got == want


# ----------------------------------------------------------------------------- naive reference


def naive(
    events: list[tuple[int, str, int | None, int | None]],
    kind: str,
    op: str,
    thr: float,
    width: int,
) -> list[tuple[str, int, int]]:
    """Per group: windows [t, t + width) at each distinct event time, greedy, non-overlapping."""
    out = []
    for g in sorted({e[1] for e in events}):
        evs = sorted((e for e in events if e[1] == g), key=lambda e: e[0])
        blocked = None
        for t in sorted({e[0] for e in evs}):
            if blocked is not None and t < blocked:
                continue
            win = [e for e in evs if t <= e[0] < t + width]
            if kind == "event_count":
                m = float(len(win))
            elif kind == "value_count":
                m = float(len({e[2] for e in win if e[2] is not None}))
            else:
                m = float(sum(e[3] for e in win if e[3] is not None))
            ok = {
                "gt": m > thr,
                "gte": m >= thr,
                "lt": m < thr,
                "lte": m <= thr,
                "eq": m == thr,
                "neq": m != thr,
            }[op]
            if ok:
                out.append((g, t, len(win)))
                blocked = t + width
    return sorted(out)


EVENTS = st.lists(
    st.tuples(
        st.integers(0, 60),  # seconds
        st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
        st.one_of(st.none(), st.integers(1, 5)),  # destination.port
        st.one_of(st.none(), st.integers(0, 50)),  # source.bytes
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(
    events=EVENTS,
    kind=st.sampled_from(["event_count", "value_count", "value_sum"]),
    op=st.sampled_from(["gt", "gte", "lt", "lte", "eq", "neq"]),
    thr=st.integers(0, 6),
    width=st.sampled_from([1, 5, 10]),
)
def test_matches_naive_reference(events, kind, op, thr, width) -> None:
    field = {
        "event_count": "",
        "value_count": "field: destination.port, ",
        "value_sum": "field: source.bytes, ",
    }[kind]
    t = thr * 10 if kind == "value_sum" else thr
    det = detector(corr_yaml(kind, f"{{{field}{op}: {t}}}", ts=f"{width}s"))
    batch = [ev(s, src=g, destination__port=p, source__bytes=b) for s, g, p, b in events]
    got = sorted(starts(findings(det, batch))) if batch else []
    got = [(g, int(s), n) for g, s, n in got]
    assert got == naive(events, kind, op, t, width)


SPLIT_RULES = """
title: inner
id: 00000000-0000-4000-8000-0000000000d1
name: inner
correlation:
    type: event_count
    rules: [rule_a]
    group-by: [source.ip]
    timespan: 10s
    condition: {gte: 2}
---
title: outer
id: 00000000-0000-4000-8000-0000000000d2
correlation:
    type: temporal_ordered
    rules: [inner, rule_b]
    group-by: [source.ip]
    timespan: 20s
    generate: true
---
title: ports
id: 00000000-0000-4000-8000-0000000000d3
correlation:
    type: value_count
    rules: [rule_a, rule_b]
    group-by: [source.ip]
    timespan: 15s
    condition: {field: destination.port, gte: 2}
"""


_SPLIT_EVENTS = st.lists(  # (second, source, group value, port)
    st.tuples(
        st.integers(0, 120),
        st.sampled_from(["a", "b"]),
        st.sampled_from(["10.0.0.1", "10.0.0.2"]),
        st.integers(1, 4),
    ),
    max_size=40,
)


def _rows(det, events) -> pa.Table:
    return det.select(batch_of([ev(s, d, g, destination__port=p) for s, d, g, p in events]))


@settings(max_examples=40, deadline=None)
@given(
    events=_SPLIT_EVENTS,
    cuts=st.lists(st.integers(0, 40), max_size=4),
    lateness=st.sampled_from([0.0, 5.0]),
)
def test_split_runs_equal_one_run(events, cuts, lateness) -> None:
    det = detector(SPLIT_RULES, lateness=lateness)
    evs = sorted(events)
    if not evs:
        return
    rows = _rows(det, evs)
    one = det.run(rows, None, final=True)
    key = ["window_start", "rule_id", "entity"]
    bounds = sorted({0, len(evs), *(min(c, len(evs)) for c in cuts)})
    state, parts, late = None, [], 0
    for k, (a, b) in enumerate(itertools.pairwise(bounds)):
        chunk = _rows(det, evs[a:b])
        out = det.run(chunk, state, final=k == len(bounds) - 2)
        state, late = out.state, late + out.late
        parts.append(out.findings)
    assert late == 0
    split = pa.concat_tables(parts).sort_by([(k, "ascending") for k in key])
    assert split.to_pylist() == one.findings.sort_by([(k, "ascending") for k in key]).to_pylist()


def test_late_rows_are_counted() -> None:
    det = detector(corr_yaml("event_count", "{gte: 2}"), lateness=0.0)
    first = det.run(det.select(batch_of([ev(100)])), None)
    out = det.run(det.select(batch_of([ev(50), ev(101)])), first.state)
    assert out.late == 1


# ----------------------------------------------------------------------------- real data


def test_ssh_brute_force_on_zeek(shared_datasets: Path) -> None:
    import detect

    files = sorted(glob.glob(str(shared_datasets / "zeek" / "rita-missing-host" / "*" / "ssh.*")))
    if not files:
        pytest.skip("rita-missing-host ssh logs not present")
    loaded, _ = parse_correlation_rules([PACK / "ssh_brute_force.yml"])
    det = CorrelationDetector(loaded)
    rows = pa.concat_tables([det.select(b) for b in detect.read(files)])
    assert rows.num_rows > 17_000  # every ssh row is a session
    out = det.run(rows, None, final=True)
    counts: dict[str, int] = {}
    for r in out.findings.to_pylist():
        src = json.loads(r["evidence"])["group"]["source.ip"]
        counts[src] = counts.get(src, 0) + 1
    top = sorted(counts.items(), key=lambda kv: -kv[1])
    print("\nSSH brute force episodes per source:", top[:10])
    assert {"179.43.180.108", "170.64.237.193", "88.218.249.242"} <= {s for s, _ in top[:5]}


@settings(max_examples=40, deadline=None)
@given(
    events=_SPLIT_EVENTS,
    cuts=st.lists(st.integers(0, 40), max_size=4),
)
def test_held_flushes_then_final_equal_one_run(events, cuts) -> None:
    """Flushes with the watermark held (inside a run) decide nothing and lose nothing, in
    any order of the chunks: the final run gives the findings of one run."""
    from detect.anomaly.keys import watermark_held

    det = detector(SPLIT_RULES, lateness=0.0)
    if not events:
        return
    rows = _rows(det, events)
    one = det.run(rows, None, final=True)
    key = ["window_start", "rule_id", "entity"]
    bounds = sorted({0, len(events), *(min(c, len(events)) for c in cuts)})
    state, parts, late = None, [], 0
    chunks = list(itertools.pairwise(bounds))
    for k, (a, b) in enumerate(chunks):
        chunk = _rows(det, events[a:b])
        if k < len(chunks) - 1:
            with watermark_held():
                out = det.run(chunk, state)
        else:
            out = det.run(chunk, state, final=True)
        state, late = out.state, late + out.late
        parts.append(out.findings)
    assert late == 0
    split = pa.concat_tables(parts).sort_by([(k, "ascending") for k in key])
    assert split.to_pylist() == one.findings.sort_by([(k, "ascending") for k in key]).to_pylist()
