"""FirstSeenDetector: naive reference, boundaries, warm-up, bounded state, split runs, data."""

from __future__ import annotations

import doctest
import ipaddress
import itertools
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import detect
import detect.anomaly.first_seen as fs_mod
from detect import arrow_buffers as ab
from detect.anomaly.first_seen import DEFAULT_IGNORE, DEST_SCHEMA, FirstSeenDetector, public_ip_mask
from detect.enrich import ip_to_bin

US = 1_000_000
H = 3600
DAY = 86_400
T0 = 1_704_067_200  # 2024-01-01, seconds
TS = pa.timestamp("us", tz="UTC")


def rows_of(events: list[tuple]) -> pa.Table:
    """Compact rows from (t seconds, type, value, org, src)."""
    return pa.table(
        {
            "@timestamp": pa.array([int((T0 + e[0]) * US) for e in events], pa.int64()).cast(TS),
            "organization.name": pa.array([e[3] for e in events], pa.string()),
            "source.ip": pa.array([e[4] for e in events], pa.string()),
            "type": pa.array([e[1] for e in events], pa.string()),
            "value": pa.array([e[2] for e in events], pa.string()),
        },
        schema=DEST_SCHEMA,
    )


def key(f: pa.Table) -> list[tuple]:
    return [
        (
            r["rule_id"],
            r["entity"],
            int(r["window_start"].timestamp()) - T0,
            int(r["first_seen"].timestamp()) - T0,
            int(r["last_seen"].timestamp()) - T0,
            r["event_count"],
            tuple(json.loads(r["evidence"])["sources"]),
        )
        for r in f.to_pylist()
    ]


def naive(events: list[tuple], W: int, L: int, M: int, max_sources: int = 5) -> list[tuple]:
    """Per (type, value, window): new when no event of it in [ws - L, ws); ws >= start + M."""
    if not events:
        return []
    start = min(e[0] for e in events)
    groups = defaultdict(list)
    for e in events:
        groups[(e[1], e[2], e[0] // W * W)].append(e)
    out = []
    for (typ, val, ws), group in groups.items():
        before = [e for e in events if e[1] == typ and e[2] == val and ws - L <= e[0] < ws]
        if before or ws < start + M:
            continue
        evs = sorted(group, key=lambda e: (e[0], e[3] or "", e[4] or ""))
        srcs = list(dict.fromkeys((e[3], e[4]) for e in evs if e[4] is not None))
        listed = tuple(s if o is None else f"{o}/{s}" for o, s in srcs)[:max_sources]
        out.append(
            (
                f"anomaly:first-seen:{typ}",
                val,
                ws,
                evs[0][0],
                max(e[0] for e in evs),
                len(evs),
                listed,
            )
        )
    return sorted(out, key=lambda r: (r[2], r[0], r[1]))


def test_module_examples():
    res = doctest.testmod(fs_mod, optionflags=doctest.ELLIPSIS)
    assert res.attempted > 0
    assert res.failed == 0


PRIVATE = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/3",
        "::/127",
        "fe80::/10",
        "fc00::/7",
        "ff00::/8",
    )
]


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(0, 2**32 - 1), max_size=40),
    st.lists(st.integers(0, 2**128 - 1), max_size=20),
    st.lists(st.sampled_from([0xFE80, 0xFC00, 0xFD12, 0xFF02, 0x2001, 0]), max_size=10),
)
def test_public_ip_mask_matches_ipaddress(v4, v6, heads):
    addrs = [ipaddress.IPv4Address(x) for x in v4] + [ipaddress.IPv6Address(x) for x in v6]
    addrs += [ipaddress.IPv6Address((h << 112) | 1) for h in heads]
    addrs += [ipaddress.ip_address(a) for a in ("10.0.0.1", "8.8.8.8", "::1", "::", "::2")]
    vals = ab.fixed_binary_buffers(ip_to_bin(pa.array([str(a) for a in addrs]))).values
    # ::ffff:a.b.c.d has the 16 bytes of a.b.c.d (the canonical form): it is that IPv4
    addrs = [getattr(a, "ipv4_mapped", None) or a for a in addrs]
    expect = [not any(a in n for n in PRIVATE if n.version == a.version) for a in addrs]
    assert public_ip_mask(vals).tolist() == expect


def test_select_public_ips_and_registered_domains():
    batch = pa.record_batch(
        {
            "@timestamp": pa.array([T0 * US] * 6, pa.int64()).cast(TS),
            "organization.name": pa.array(["a"] * 6).dictionary_encode(),
            "source.ip": ["10.0.0.1"] * 6,
            "destination.ip": [
                "10.0.0.2",
                "192.168.1.1",
                "8.8.8.8",
                "FE80::1",
                "2001:DB8::1",
                None,
            ],
            "dns.question.name": [
                "a.b.Example.co.uk.",
                "4.3.2.1.in-addr.arpa",
                None,
                "printer.local",
                None,
                "x.github.io",
            ],
            "url.registered_domain": [None, None, None, None, "evil.org", None],
        }
    )
    rows = FirstSeenDetector().select(batch)
    got = sorted(zip(rows["type"].to_pylist(), rows["value"].to_pylist(), strict=True))
    assert got == [
        ("domain", "evil.org"),
        ("domain", "example.co.uk"),
        ("domain", "x.github.io"),
        ("ip", "2001:db8::1"),
        ("ip", "8.8.8.8"),
    ]
    ign = FirstSeenDetector(ignore=(*DEFAULT_IGNORE, "co.uk", "8.0.0.0/8", "GitHub.io.")).select(
        batch
    )
    assert sorted(ign["value"].to_pylist()) == ["2001:db8::1", "evil.org"]


def test_hand_built_boundaries():
    # lookback 1 day, window 1 h, warm-up 1 day
    det = FirstSeenDetector(lookback_days=1, min_history_days=1, window=3600, ignore=())
    ev = [
        (0, "ip", "1.1.1.1", "a", "s1"),  # history starts
        (DAY - 1, "domain", "old.com", "a", "s1"),  # warm-up: recorded, not reported
        (DAY + 10, "domain", "old.com", "b", "s2"),  # seen within lookback: not new
        (DAY + 20, "domain", "new.com", "b", "s2"),  # new
        (DAY + 30, "domain", "new.com", "a", "s1"),
        (DAY + 40, "domain", "new.com", "b", "s2"),
        (2 * DAY + H, "ip", "1.1.1.1", "a", "s1"),  # last seen 0 < ws - L = DAY + H: new
        (2 * DAY + H, "domain", "old.com", "a", None),  # last DAY + 40 >= DAY + H? no -> new
        (2 * DAY + 2 * H, "domain", "x.com", None, "s9"),  # org null counts hub-wide
        (3 * DAY + 2 * H, "domain", "x.com", "c", "s9"),  # exactly lookback later: not new
    ]
    f = det.run(rows_of(ev), None, final=True).findings
    got = [(r[0], r[1], r[2], r[5]) for r in key(f)]
    assert got == [
        ("anomaly:first-seen:domain", "new.com", DAY, 3),
        ("anomaly:first-seen:domain", "old.com", 2 * DAY + H, 1),
        ("anomaly:first-seen:ip", "1.1.1.1", 2 * DAY + H, 1),
        ("anomaly:first-seen:domain", "x.com", 2 * DAY + 2 * H, 1),
    ]
    ev0 = json.loads(f["evidence"][0].as_py())
    assert ev0["sources"] == ["b/s2", "a/s1"]
    assert ev0["organizations"] == ["a", "b"]
    assert ev0["source_count"] == 2
    assert f["severity"].to_pylist() == ["low", "informational", "informational", "informational"]


def test_private_ips_ignored_and_warmup():
    batch = pa.record_batch(
        {
            "@timestamp": pa.array([T0 * US, (T0 + 8 * DAY) * US, (T0 + 8 * DAY) * US]).cast(TS),
            "source.ip": ["10.0.0.1"] * 3,
            "destination.ip": ["8.8.8.8", "192.168.7.7", "fd00::5"],
        }
    )
    det = FirstSeenDetector()
    assert det.run(det.select(batch), None, final=True).findings.num_rows == 0
    # the public one alone, two days apart: within the 7-day warm-up, nothing
    early = batch.slice(0, 1)
    later = pa.record_batch(
        {
            "@timestamp": pa.array([(T0 + 2 * DAY) * US]).cast(TS),
            "source.ip": ["10.0.0.1"],
            "destination.ip": ["9.9.9.9"],
        }
    )
    out = det.run(det.select(early), None)
    assert det.run(det.select(later), out.state, final=True).findings.num_rows == 0
    out2 = FirstSeenDetector(min_history_days=2).run(det.select(early), None)
    f = FirstSeenDetector(min_history_days=2).run(det.select(later), out2.state, final=True)
    assert f.findings["entity"].to_pylist() == ["9.9.9.9"]


def test_late_rows_and_final_flush():
    det = FirstSeenDetector(min_history_days=0, ignore=())
    out = det.run(
        rows_of([(0, "ip", "1.1.1.1", "a", "s"), (2 * H, "ip", "2.2.2.2", "a", "s")]), None
    )
    assert out.findings["entity"].to_pylist() == ["1.1.1.1"]  # 2.2.2.2's window still open
    late = det.run(rows_of([(10, "ip", "3.3.3.3", "a", "s")]), out.state, final=True)
    assert late.late == 1
    assert late.findings["entity"].to_pylist() == ["2.2.2.2"]


def test_state_pruned_by_lookback_and_capped():
    det = FirstSeenDetector(lookback_days=1, min_history_days=0, ignore=())
    ev = [(i * 60, "ip", f"1.0.{i // 250}.{i % 250 + 1}", "a", "s") for i in range(1000)]
    out = det.run(rows_of(ev), None, final=True)
    assert out.findings.num_rows == 1000
    seen = out.state.filter(pa.compute.equal(out.state["_kind"], 1))
    assert seen.num_rows == 1000
    # two days later everything has aged out of the lookback
    out2 = det.run(rows_of([(3 * DAY, "ip", "9.9.9.9", "a", "s")]), out.state, final=True)
    assert out2.state.filter(pa.compute.equal(out2.state["_kind"], 1)).num_rows == 1
    # cap: 100 entries, the newest kept; an evicted value comes back as new
    cap = FirstSeenDetector(lookback_days=30, min_history_days=0, max_entries=100, ignore=())
    o = cap.run(rows_of(ev), None, final=True)
    s = o.state.filter(pa.compute.equal(o.state["_kind"], 1))
    assert s.num_rows == 100
    assert set(s["value"].to_pylist()) == {e[2] for e in ev[-100:]}
    back = rows_of([(DAY, "ip", ev[0][2], "a", "s"), (DAY, "ip", ev[-1][2], "a", "s")])
    assert cap.run(back, o.state, final=True).findings["entity"].to_pylist() == [ev[0][2]]


EVENTS = st.lists(
    st.tuples(
        st.integers(0, 3 * DAY),
        st.sampled_from(["ip", "domain"]),
        st.sampled_from(["v1", "v2", "v3", "v4", "v5", "v6"]),
        st.sampled_from(["a", "b", "c", None]),
        st.sampled_from(["s1", "s2", "s3", None]),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(EVENTS, st.sampled_from([H, 6 * H, DAY]), st.sampled_from([0.25, 1.0]))
def test_matches_naive_reference(events, window, lookback):
    det = FirstSeenDetector(
        window=window, lookback_days=lookback, min_history_days=0.5, max_sources=2, ignore=()
    )
    f = det.run(rows_of(events), None, final=True).findings
    assert key(f) == naive(events, window, int(lookback * DAY), DAY // 2, max_sources=2)


@settings(max_examples=40, deadline=None)
@given(EVENTS, st.lists(st.integers(0, 1000), max_size=4))
def test_split_runs_equal_one_run(events, cuts):
    det = FirstSeenDetector(window=H, lookback_days=0.25, min_history_days=0.5, ignore=())
    events = sorted(events, key=lambda e: e[0])
    one = det.run(rows_of(events), None, final=True).findings
    bounds = [0, *sorted({c % (len(events) + 1) for c in cuts}), len(events)]
    state, parts = None, []
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        out = det.run(rows_of(events[a:b]), state, final=i == len(bounds) - 2)
        assert out.late == 0
        parts.append(out.findings)
        state = out.state
    assert pa.concat_tables(parts).equals(one)


def test_generated_data(tmp_path):
    r = detect.generate(tmp_path, events=20_000, seed=5, days=3, organizations=3)
    det = FirstSeenDetector(min_history_days=1)
    rows = pa.concat_tables(
        [det.select(b) for b in detect.read([str(p) for p in r.files.values()])]
    )
    assert set(rows["type"].to_pylist()) == {"ip", "domain"}
    f = det.run(rows, None, final=True).findings
    days = Counter(d.date().isoformat() for d in f["window_start"].to_pylist())
    print(f"generated: {rows.num_rows} values, first-seen per day {sorted(days.items())}")
    assert f.num_rows > 0
    start = r.start.date().isoformat()
    assert start not in days  # warm-up day
    # a planted brand-new domain on day 3 is found
    t = int(r.start.timestamp()) + 2 * DAY + 5 * H
    plant = rows_of([(t - T0, "domain", "brand-new-c2.xyz", "org-01", "10.1.0.9")])
    f2 = det.run(pa.concat_tables([rows, plant]), None, final=True).findings
    assert "brand-new-c2.xyz" in f2["entity"].to_pylist()


@pytest.mark.shared
def test_real_zeek_first_seen_per_day(shared_datasets):
    root = shared_datasets / "zeek" / "rita-missing-host"
    paths = sorted(str(p) for d in sorted(root.glob("2024-*")) for p in d.glob("conn.*.log.gz"))
    if not paths:
        pytest.skip("rita-missing-host conn logs absent")
    det = FirstSeenDetector(min_history_days=1)
    rows = pa.concat_tables([det.select(b) for b in detect.read(paths)])
    out = det.run(rows, None, final=True)
    per_day = Counter(d.date().isoformat() for d in out.findings["window_start"].to_pylist())
    no_warm = FirstSeenDetector(min_history_days=0).run(rows, None, final=True).findings
    per_day0 = Counter(d.date().isoformat() for d in no_warm["window_start"].to_pylist())
    print(
        f"\nrita-missing-host conn: {rows.num_rows} public destination rows; first-seen per "
        f"day (min_history_days=1) {sorted(per_day.items())}; without warm-up "
        f"{sorted(per_day0.items())}; state {out.state.num_rows} rows"
    )
    days = sorted(per_day0)
    assert len(days) == 3
    assert per_day0[days[0]] > per_day0[days[1]] >= per_day0[days[2]]
    assert days[0] not in per_day
    assert all(per_day[d] <= per_day0[d] for d in days[1:])


def test_run_on_datetime_rows():
    # rows straight from a table whose timestamps are datetimes (not selected)
    t = [datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 9, tzinfo=UTC)]
    rows = pa.table(
        {
            "@timestamp": pa.array(t, TS),
            "organization.name": ["a", "a"],
            "source.ip": ["s", "s"],
            "type": ["domain", "domain"],
            "value": ["a.com", "b.com"],
        }
    )
    f = FirstSeenDetector().run(rows, None, final=True).findings
    assert f["entity"].to_pylist() == ["b.com"]
    assert np.isclose(f["score"][0].as_py(), 1.0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(-(10**6), 10**6), st.integers(0, 10**6)),
        max_size=80,
    ),
    st.integers(1, 5000),
    st.booleans(),
)
def test_merge_tuples_matches_naive(rows, width, huge_ids):
    """Hash-grouped merge (and the sort fallback for keys too wide to pack) vs a dict."""
    from detect.anomaly.first_seen import merge_tuples

    off = (1 << 61) if huge_ids else 0
    ids = np.array([r[0] + off for r in rows], np.int64)
    first = np.array([r[1] for r in rows], np.int64)
    last = first + np.array([r[2] for r in rows], np.int64) % (width - first % width)
    count = np.array([r[2] + 1 for r in rows], np.int64)
    rep, f, la, c = merge_tuples(ids, first, last, count, width)
    acc: dict = {}
    for i in range(len(rows)):
        k = (int(ids[i]), int(first[i]) // width)
        if k not in acc:
            acc[k] = [i, int(first[i]), int(last[i]), 0]
        a = acc[k]
        a[1], a[2], a[3] = min(a[1], int(first[i])), max(a[2], int(last[i])), a[3] + int(count[i])
    want = [acc[k] for k in sorted(acc)]
    got = sorted(
        zip(rep.tolist(), f.tolist(), la.tolist(), c.tolist(), strict=True),
        key=lambda t: (int(ids[t[0]]), t[1] // width),
    )
    assert [list(t) for t in got] == want
