"""SpreadDetector: naive reference, k-org boundaries, hits, ignore, state, split runs, data."""

from __future__ import annotations

import doctest
import itertools
import json
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

import detect
import detect.anomaly.spread as spread_mod
from detect.anomaly.first_seen import DEFAULT_IGNORE
from detect.anomaly.spread import ROW_SCHEMA, SpreadDetector

US = 1_000_000
H = 3600
DAY = 86_400
T0 = 1_704_067_200  # 2024-01-01
TS = pa.timestamp("us", tz="UTC")


def batch_of(events: list[tuple]) -> pa.RecordBatch:
    """Events (t seconds, org, source ip, destination ip, registered domain)."""
    return pa.record_batch(
        {
            "@timestamp": pa.array([(T0 + e[0]) * US for e in events], pa.int64()).cast(TS),
            "organization.name": pa.array([e[1] for e in events], pa.string()).dictionary_encode(),
            "source.ip": pa.array([e[2] for e in events], pa.string()),
            "destination.ip": pa.array([e[3] for e in events], pa.string()),
            "dns.question.registered_domain": pa.array([e[4] for e in events], pa.string()),
        }
    )


def hits_of(hits: list[tuple]) -> pa.Table:
    """Hits (t seconds, org, rule_id, rule_kind)."""
    return pa.table(
        {
            "@timestamp": pa.array([(T0 + h[0]) * US for h in hits], pa.int64()).cast(TS),
            "organization.name": pa.array([h[1] for h in hits], pa.string()),
            "rule_id": pa.array([h[2] for h in hits], pa.string()),
            "rule_kind": pa.array([h[3] for h in hits], pa.string()),
        }
    )


def rows_for(det: SpreadDetector, events: list[tuple], hits: list[tuple]) -> pa.Table:
    parts = [det.select(batch_of(events))] if events else []
    if hits:
        parts.append(det.select_hits(hits_of(hits)))
    return pa.concat_tables(parts) if parts else ROW_SCHEMA.empty_table()


def key(f: pa.Table) -> list[tuple]:
    out = []
    for r in f.to_pylist():
        ev = json.loads(r["evidence"])
        orgs = tuple(
            (o["name"], o["first_seen"][:19], o["last_seen"][:19], o["events"])
            for o in ev["organizations"]
        )
        out.append(
            (
                r["rule_id"],
                r["entity"],
                int(r["window_start"].timestamp()) - T0,
                r["event_count"],
                orgs,
                ev["sources"],
            )
        )
    return out


def iso(t: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(T0 + t, UTC).strftime("%Y-%m-%dT%H:%M:%S")


PUBLIC = {"8.8.8.8", "203.0.113.7", "2001:db8::1"}


def naive(events: list[tuple], hits: list[tuple], W: int, k: int) -> list[tuple]:
    """Group (kind, value, window); fire when >= k distinct non-null organisations."""
    groups: dict[tuple, list[tuple]] = defaultdict(list)
    for t, org, src, dip, dom in events:
        if org is None:
            continue
        if dip in PUBLIC:
            groups[("destination", dip, t // W * W)].append((t, org, src))
        if dom is not None:
            groups[("destination", dom, t // W * W)].append((t, org, src))
    for t, org, rid, _kind in hits:
        if org is not None and not rid.startswith("anomaly:spread"):
            groups[("hit", rid, t // W * W)].append((t, org, None))
    out = []
    for (kind, value, ws), evs in groups.items():
        per = defaultdict(list)
        for t, org, _ in evs:
            per[org].append(t)
        if len(per) < k:
            continue
        orgs = tuple((o, iso(min(ts)), iso(max(ts)), len(ts)) for o, ts in sorted(per.items()))
        n_src = len({(o, s) for _, o, s in evs if s is not None})
        out.append((f"anomaly:spread:{kind}", value, ws, len(evs), orgs, n_src))
    return sorted(out, key=lambda r: (r[2], r[0], r[1]))


def test_module_examples():
    res = doctest.testmod(spread_mod, optionflags=doctest.ELLIPSIS)
    assert res.attempted > 0
    assert res.failed == 0


def test_exactly_k_orgs_null_org_private_and_window_boundary():
    det = SpreadDetector(min_orgs=3)
    ev = [
        # 203.0.113.7: orgs a, b, c (+ a null org): exactly 3 -> fires
        (10, "a", "10.0.0.1", "203.0.113.7", None),
        (20, "b", "10.0.0.1", "203.0.113.7", None),
        (30, "c", "10.0.0.2", "203.0.113.7", None),
        (40, "c", "10.0.0.3", "203.0.113.7", None),
        (50, None, "10.0.0.4", "203.0.113.7", None),
        # 8.8.8.8: a, b and a null org: 2 orgs -> nothing
        (10, "a", "10.0.0.1", "8.8.8.8", None),
        (20, "b", "10.0.0.1", "8.8.8.8", None),
        (30, None, "10.0.0.1", "8.8.8.8", None),
        # private destination seen by 4 orgs: never a destination value
        *[(60, o, "10.0.0.1", "10.9.9.9", None) for o in "abcd"],
        # evil.org: a, b before midnight, c after: fixed windows, no finding
        (DAY - 5, "a", "10.0.0.1", None, "evil.org"),
        (DAY - 4, "b", "10.0.0.1", None, "evil.org"),
        (DAY + 1, "c", "10.0.0.1", None, "evil.org"),
    ]
    f = det.run(det.select(batch_of(ev)), None, final=True).findings
    assert key(f) == [
        (
            "anomaly:spread:destination",
            "203.0.113.7",
            0,
            4,
            (
                ("a", iso(10), iso(10), 1),
                ("b", iso(20), iso(20), 1),
                ("c", iso(30), iso(40), 2),
            ),
            4,
        )
    ]
    assert f["severity"].to_pylist() == ["medium"]
    assert f["score"].to_pylist() == [3.0]
    assert (
        SpreadDetector(min_orgs=4).run(det.select(batch_of(ev)), None, final=True).findings.num_rows
        == 0
    )
    two = SpreadDetector(min_orgs=2).run(det.select(batch_of(ev)), None, final=True).findings
    assert sorted(set(two["entity"].to_pylist())) == ["203.0.113.7", "8.8.8.8", "evil.org"]


def test_hits_and_exclusions():
    det = SpreadDetector()
    hits = [
        (0, "a", "sigma:abc", "sigma"),
        (1, "b", "sigma:abc", "sigma"),
        (2, "c", "sigma:abc", "sigma"),
        (3, None, "ioc:1", "ioc"),
        (4, "a", "anomaly:spread:destination", "anomaly"),
        (5, "b", "anomaly:spread:destination", "anomaly"),
        (6, "c", "anomaly:spread:destination", "anomaly"),
    ]
    rows = det.select_hits(hits_of(hits))
    assert rows.schema == ROW_SCHEMA
    assert rows.num_rows == 3
    f = det.run(rows, None, final=True).findings
    assert f["rule_id"].to_pylist() == ["anomaly:spread:hit"]
    assert f["entity"].to_pylist() == ["sigma:abc"]
    assert f["severity"].to_pylist() == ["high"]
    ev = json.loads(f["evidence"][0].as_py())
    assert ev["type"] == "sigma" and ev["org_count"] == 3 and ev["sources"] == 0
    assert det.select_hits(pa.table({"rule_id": ["x"]})).num_rows == 0


def test_ignore_domains_and_cidrs():
    ev = [(i, o, "10.0.0.1", "198.51.100.9", "cdn.net") for i, o in enumerate("abcd")]
    ev += [(i, o, "10.0.0.1", None, "x.svc.local") for i, o in enumerate("abcd")]
    base = SpreadDetector()
    f = base.run(base.select(batch_of(ev)), None, final=True).findings
    assert sorted(f["entity"].to_pylist()) == ["198.51.100.9", "cdn.net"]  # .local ignored
    det = SpreadDetector(ignore=(*DEFAULT_IGNORE, "cdn.net", "198.51.100.0/24"))
    assert det.run(det.select(batch_of(ev)), None, final=True).findings.num_rows == 0


def test_late_rows_and_state_holds_open_windows_only():
    det = SpreadDetector(min_orgs=2)
    ev = [(t, o, "10.0.0.1", "8.8.8.8", None) for t in range(0, 2 * DAY, 600) for o in "ab"]
    out = det.run(det.select(batch_of(ev)), None)
    assert [r[2] for r in key(out.findings)] == [0]  # day 2 still open
    pending = out.state.filter(pc.equal(out.state["_kind"], 1))
    assert pending.num_rows == 2  # one aggregate per (value, org, source) of day 2
    assert pending["count"].to_pylist() == [144, 144]
    late = det.run(det.select(batch_of([(5, "c", "10.0.0.1", "8.8.8.8", None)])), out.state)
    assert late.late == 1
    fin = det.run(ROW_SCHEMA.empty_table(), out.state, final=True)
    assert [r[2] for r in key(fin.findings)] == [DAY]
    assert fin.state.filter(pc.equal(fin.state["_kind"], 1)).num_rows == 0


EVENTS = st.lists(
    st.tuples(
        st.integers(0, 3 * DAY),
        st.sampled_from(["a", "b", "c", "d", None]),
        st.sampled_from(["10.0.0.1", "10.0.0.2", None]),
        st.sampled_from(["8.8.8.8", "203.0.113.7", "2001:db8::1", "10.1.1.1", None]),
        st.sampled_from(["x.com", "y.org", None]),
    ),
    max_size=60,
)
HITS = st.lists(
    st.tuples(
        st.integers(0, 3 * DAY),
        st.sampled_from(["a", "b", "c", None]),
        st.sampled_from(["r1", "r2", "anomaly:spread:hit"]),
        st.just("sigma"),
    ),
    max_size=20,
)


@settings(max_examples=60, deadline=None)
@given(EVENTS, HITS, st.sampled_from([2, 3]), st.sampled_from([6 * H, DAY]))
def test_matches_naive_reference(events, hits, k, window):
    det = SpreadDetector(min_orgs=k, window=window)
    f = det.run(rows_for(det, events, hits), None, final=True).findings
    assert key(f) == naive(events, hits, window, k)


@settings(max_examples=40, deadline=None)
@given(EVENTS, HITS, st.lists(st.integers(0, 1000), max_size=4))
def test_split_runs_equal_one_run(events, hits, cuts):
    det = SpreadDetector(min_orgs=2, window=6 * H)
    rows = rows_for(det, events, hits)
    order = np.argsort(rows["@timestamp"].cast(pa.int64()).to_numpy(), kind="stable")
    rows = rows.take(pa.array(order, pa.int64()))
    one = det.run(rows, None, final=True).findings
    n = rows.num_rows
    bounds = [0, *sorted({c % (n + 1) for c in cuts}), n]
    state, parts = None, []
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        out = det.run(rows.slice(a, b - a), state, final=i == len(bounds) - 2)
        assert out.late == 0
        parts.append(out.findings)
        state = out.state
    assert pa.concat_tables(parts).equals(one)


def test_generated_data_planted_campaign(tmp_path):
    import duckdb

    r = detect.generate(tmp_path, events=20_000, seed=11, days=2, organizations=5)
    det = SpreadDetector()
    rows = pa.concat_tables(
        [det.select(b) for b in detect.read([str(p) for p in r.files.values()])]
    )
    orgs = sorted(set(rows["organization.name"].to_pylist()))
    assert len(orgs) == 5  # the generator fills organization.name
    # plant: a fresh C2 domain contacted by hosts of three organisations on day 2
    t = int(r.start.timestamp()) - T0 + DAY + 3 * H
    plant = [
        (t + 60 * i, org, f"10.{i}.0.5", "192.0.2.1", "fresh-c2.top")
        for i, org in enumerate(orgs[:3])
    ]
    rows = pa.concat_tables([rows, det.select(batch_of(plant))])
    f = det.run(rows, None, final=True).findings
    mine = [x for x in key(f) if x[1] in ("fresh-c2.top", "192.0.2.1")]
    assert [(x[1], [o[0] for o in x[4]]) for x in mine] == [
        ("192.0.2.1", orgs[:3]),
        ("fresh-c2.top", orgs[:3]),
    ]
    # every (value, day) against DuckDB's count(DISTINCT org)
    con = duckdb.connect()
    con.execute("SET threads = 1")
    con.register("r", rows)
    ref = con.execute(
        """SELECT kind, value, epoch_us("@timestamp") // 86400000000 * 86400,
                  count(DISTINCT "organization.name"), count(*)
           FROM r GROUP BY ALL HAVING count(DISTINCT "organization.name") >= 3"""
    ).fetchall()
    got = {(x[0].rsplit(":", 1)[1], x[1], x[2] + T0, len(x[4]), x[3]) for x in key(f)}
    assert got == set(ref)
    print(f"\ngenerated: {rows.num_rows} rows, 5 orgs, {f.num_rows} spread findings (k=3)")
