"""The indicator engine end to end: semantics, lifecycle, cache, and known hits on real data."""

from __future__ import annotations

import gzip
import ipaddress
import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import detect
from detect.config import load_settings
from detect.enrich import enrich
from detect.indicators.engine import IndicatorEngine, explain_value, load_index
from detect.schema import conform

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("type,value,source,confidence,severity,tags,valid_from,valid_until\n"
                    + "\n".join(rows) + "\n")
    return path


def engine_for(tmp_path: Path, feeds: list[Path], **flags) -> IndicatorEngine:
    settings = load_settings(environ={}, flags={
        "indicators": tuple(str(f) for f in feeds), "cache_dir": tmp_path / "cache", **flags})
    return IndicatorEngine(load_index(settings), retro_hunt=settings.retro_hunt)


def events(**columns: list) -> pa.RecordBatch:
    n = len(next(iter(columns.values())))
    cols = {name.replace("__", "."): pa.array(values) for name, values in columns.items()}
    cols.setdefault("@timestamp", pa.array([T0] * n, pa.timestamp("us", "UTC")))
    return enrich(conform(cols, n))


def hits(engine: IndicatorEngine, batch: pa.RecordBatch) -> list[tuple[int, str, str]]:
    table = engine.match(batch)
    return sorted(zip(table.column("event_index").to_pylist(), table.column("rule_id").to_pylist(),
                      table.column("field").to_pylist(), strict=True))


def test_longest_prefix_and_exact_ips(tmp_path: Path) -> None:
    feed = write_csv(tmp_path / "f.csv", ["cidr,10.0.0.0/8,a,,,,,", "cidr,10.1.0.0/16,a,,,,,",
                                          "ip,10.1.2.3,a,,,,,", "cidr,2001:db8::/32,a,,,,,"])
    eng = engine_for(tmp_path, [feed])
    batch = events(source__ip=["10.1.2.3", "10.1.9.9", "10.9.9.9", "2001:db8::1", "11.0.0.1"])
    assert hits(eng, batch) == [
        (0, "ioc:cidr:10.1.0.0/16", "source.ip"),  # the longest covering prefix only
        (0, "ioc:ip:10.1.2.3", "source.ip"),  # and the exact address, another indicator
        (1, "ioc:cidr:10.1.0.0/16", "source.ip"),
        (2, "ioc:cidr:10.0.0.0/8", "source.ip"),
        (3, "ioc:cidr:2001:db8::/32", "source.ip"),
    ]


def test_domains_match_on_label_boundaries(tmp_path: Path) -> None:
    feed = write_csv(tmp_path / "f.csv", ["domain,evil.com,a,,,,,", "domain,b.evil.com,a,,,,,"])
    eng = engine_for(tmp_path, [feed])
    batch = events(dns__question__name=["a.b.EVIL.com.", "notevil.com", "evil.com", None, "com"])
    assert hits(eng, batch) == [
        (0, "ioc:domain:b.evil.com", "dns.question.name"),
        (0, "ioc:domain:evil.com", "dns.question.name"),
        (2, "ioc:domain:evil.com", "dns.question.name"),
    ]


def test_urls_hashes_and_lists(tmp_path: Path) -> None:
    feed = write_csv(tmp_path / "f.csv", [
        "url,http://Bad.example/x?a=1,a,,,,,", f"sha256,{'AB' * 32},a,,,,,",
        "ip,192.0.2.7,a,,,,,", "email,Boss@Evil.example,a,,,,,"])
    eng = engine_for(tmp_path, [feed])
    batch = events(
        url__full=["HTTP://bad.EXAMPLE:80/x?a=1#frag", "http://bad.example/X?a=1"],
        file__hash__sha256=["ab" * 32, None],
        dns__answers__data=[["cname.example", "192.0.2.7"], []],
        email__to__address=[[], ["someone@x.org", "boss@evil.example"]],
    )
    assert hits(eng, batch) == [
        (0, "ioc:ip:192.0.2.7", "dns.answers.data"),
        (0, f"ioc:sha256:{'ab' * 32}", "file.hash.sha256"),
        (0, "ioc:url:http://bad.example/x?a=1", "url.full"),
        (1, "ioc:email:boss@evil.example", "email.to.address"),
    ]


def test_a_value_twice_in_a_list_column_is_one_hit(tmp_path: Path) -> None:
    feed = write_csv(tmp_path / "f.csv", ["ip,10.1.2.3,a,,,,,", "cidr,10.0.0.0/8,a,,,,,",
                                          "email,bad@x.com,a,,,,,"])  # fmt: skip
    eng = engine_for(tmp_path, [feed])
    batch = events(
        dns__answers__data=[["10.1.2.3", "::ffff:10.1.2.3"], ["1.2.3.4"]],
        email__to__address=[["BAD@x.com", "bad@x.com"], []],
    )
    assert hits(eng, batch) == [  # one per (event, field, indicator)
        (0, "ioc:cidr:10.0.0.0/8", "dns.answers.data"),
        (0, "ioc:email:bad@x.com", "email.to.address"),
        (0, "ioc:ip:10.1.2.3", "dns.answers.data"),
    ]


def test_internationalised_names_match_in_either_spelling(tmp_path: Path) -> None:
    feed = write_csv(tmp_path / "f.csv", ["domain,bücher.de,a,,,,,",
                                          "domain,xn--mnchen-3ya.de,a,,,,,",
                                          "url,http://bücher.de/idn,a,,,,,"])  # fmt: skip
    eng = engine_for(tmp_path, [feed])
    batch = events(
        dns__question__name=["www.BÜCHER.de", "münchen.de.", None, "notbücher.de"],
        url__full=[None, None, "http://xn--bcher-kva.de/idn", "HTTP://Bücher.de:80/idn"],
    )
    assert hits(eng, batch) == [  # the feeds hold punycode; events may log either
        (0, "ioc:domain:xn--bcher-kva.de", "dns.question.name"),
        (1, "ioc:domain:xn--mnchen-3ya.de", "dns.question.name"),
        (2, "ioc:url:http://xn--bcher-kva.de/idn", "url.full"),
        (3, "ioc:url:http://xn--bcher-kva.de/idn", "url.full"),
    ]


def test_validity_is_checked_at_event_time_and_retro_hunt_ignores_valid_from(
        tmp_path: Path) -> None:
    feed = write_csv(tmp_path / "f.csv", [
        "ip,192.0.2.1,a,,,,2024-06-01T00:00:00Z,2024-06-30T00:00:00Z"])
    before = datetime(2024, 5, 1, tzinfo=UTC)
    after = datetime(2024, 7, 1, tzinfo=UTC)
    batch = events(**{"@timestamp": [before, T0, after]}, source__ip=["192.0.2.1"] * 3)
    assert [h[0] for h in hits(engine_for(tmp_path, [feed]), batch)] == [1]
    retro = engine_for(tmp_path, [feed], retro_hunt=True)
    assert [h[0] for h in hits(retro, batch)] == [0, 1]  # valid_until still holds


def test_two_feeds_validity_intervals_leave_their_gap_invalid(tmp_path: Path) -> None:
    a = write_csv(tmp_path / "a.csv", ["ip,5.5.5.5,a,,,,2024-01-01T00:00:00Z,2024-01-02T00:00:00Z"])
    b = write_csv(tmp_path / "b.csv", ["ip,5.5.5.5,b,,,,2024-03-01T00:00:00Z,2024-03-02T00:00:00Z"])
    times = [datetime(2024, 1, 1, 12, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC),
             datetime(2024, 3, 1, 12, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)]
    batch = events(**{"@timestamp": times}, source__ip=["5.5.5.5"] * 4)
    # February: no feed calls it valid (the outer bounds alone would say it is)
    assert [h[0] for h in hits(engine_for(tmp_path, [a, b]), batch)] == [0, 2, 3]
    retro = engine_for(tmp_path, [a, b], retro_hunt=True)  # no valid_from, so no gap
    assert [h[0] for h in hits(retro, batch)] == [0, 1, 2, 3]


def test_ip_port_indicators_need_the_port_on_the_same_side(tmp_path: Path) -> None:
    feed = tmp_path / "c2.csv"
    feed.write_text("type,value,port,source\nip,198.51.100.9,4444,feodo\n")
    eng = engine_for(tmp_path, [feed])
    batch = events(destination__ip=["198.51.100.9", "198.51.100.9"],
                   destination__port=[4444, 443])
    assert hits(eng, batch) == [(0, "ioc:ip:198.51.100.9:4444", "destination.ip")]


def test_feeds_merge_and_rule_metadata(tmp_path: Path) -> None:
    a = write_csv(tmp_path / "a.csv", ["domain,evil.com,feed-a,40,low,x,,"])
    b = write_csv(tmp_path / "b.csv", ["domain,EVIL.com.,feed-b,95,high,T1071;y,,"])
    eng = engine_for(tmp_path, [a, b])
    assert eng.index.indicators.num_rows == 1
    eng.match(events(dns__question__name=["evil.com"]))
    info = eng.rule("ioc:domain:evil.com")
    assert info.severity == "critical"  # high, raised by confidence 95
    assert info.attack == ("T1071",)
    assert set(info.author.split(", ")) == {"feed-a", "feed-b"}


def test_index_is_cached_and_rebuilt_when_a_feed_changes(tmp_path: Path) -> None:
    feed = write_csv(tmp_path / "f.csv", ["ip,192.0.2.1,a,,,,,"])
    settings = load_settings(environ={}, flags={"indicators": (str(feed),),
                                                "cache_dir": tmp_path / "cache"})
    first = load_index(settings)
    again = load_index(settings)
    assert (first.from_cache, again.from_cache) == (False, True)
    assert again.index_hash == first.index_hash
    batch = events(source__ip=["192.0.2.1"])
    assert hits(IndicatorEngine(again), batch) == hits(IndicatorEngine(first), batch)
    write_csv(feed, ["ip,192.0.2.2,a,,,,,"])
    changed = load_index(settings)
    assert not changed.from_cache
    assert changed.index_hash != first.index_hash


def test_suppressed_indicators_are_listed_and_explained(tmp_path: Path) -> None:
    feed = write_csv(tmp_path / "f.csv", ["cidr,10.0.0.0/8,block,,,,,", "ip,8.8.8.8,block,,,,,",
                                          "domain,evil.com,block,,,,,"])
    allow = tmp_path / "allow.txt"
    allow.write_text("10.0.0.0/8\n8.8.8.8\n")
    settings = load_settings(environ={}, flags={"indicators": (str(feed),),
                                                "allowlists": (str(allow),),
                                                "cache_dir": tmp_path / "cache"})
    index = load_index(settings)
    assert sorted(index.suppressed.column("value").to_pylist()) == ["10.0.0.0/8", "8.8.8.8"]
    assert set(index.suppressed.column("list_name").to_pylist()) == {"allow"}
    ex = explain_value("8.8.8.8", settings)
    assert ex.suppressed and ex.suppressed[0]["list_name"] == "allow"
    assert ex.event_hits == []
    ex = explain_value("a.evil.com", settings)
    assert ex.carried == []
    assert ex.event_hits == ["ioc:domain:evil.com"]


def test_run_records_the_indicator_set_and_its_suppressions(tmp_path: Path) -> None:
    import duckdb

    feed = write_csv(tmp_path / "f.csv", ["ip,192.0.2.1,a,,high,,,", "ip,8.8.8.8,a,,,,,"])
    allow = tmp_path / "allow.txt"
    allow.write_text("8.8.8.8\n")
    logs = tmp_path / "e.ndjson"
    logs.write_text('{"@timestamp":"2024-06-01T00:00:00Z","source.ip":"10.0.0.1",'
                    '"destination.ip":"192.0.2.1"}\n')
    db = tmp_path / "a.duckdb"
    summary = detect.run([logs], db=db, indicators=(str(feed),), allowlists=(str(allow),),
                         cache_dir=tmp_path / "cache")
    assert summary.alerts_new == 1
    con = duckdb.connect(str(db), read_only=True)
    (index_hash,) = con.execute("SELECT index_hash FROM runs").fetchone()
    sets = con.execute("SELECT indicators, suppressed FROM indicator_sets WHERE index_hash = ?",
                       [index_hash]).fetchall()
    removed = con.execute("SELECT value, list_name FROM indicator_suppressions").fetchall()
    alert = con.execute("SELECT rule_id, rule_kind, severity, entity FROM alerts").fetchone()
    con.close()
    assert sets == [(1, 1)]
    assert removed == [("8.8.8.8", "allow")]
    assert alert == ("ioc:ip:192.0.2.1", "indicator", "high", "10.0.0.1")


# -- the known expected hits of ../shared/datasets/README.md -----------------------------------


def _distinct_hit_values(engine: IndicatorEngine, inputs: list[Path], column: str) -> set:
    found: set = set()
    for batch in detect.read([str(p) for p in inputs]):
        table = engine.match(batch)
        sel = table.filter(pc.equal(table.column("field"), column))
        found |= set(batch.column(column).take(sel.column("event_index")).to_pylist())
    return found


@pytest.mark.slow
def test_rita_conn_sources_against_ipsum_threatfox_and_firehol(shared_datasets: Path,
                                                               tmp_path: Path) -> None:
    conn = sorted((shared_datasets / "zeek" / "rita-missing-host").rglob("conn.*"))
    iocs = shared_datasets / "iocs"
    expected = {iocs / "ipsum" / "ipsum.txt.gz": 2579,
                iocs / "abusech" / "threatfox_ips.txt": 5,
                iocs / "firehol" / "firehol_level1.netset": 91}
    for feed, count in expected.items():
        eng = engine_for(tmp_path, [feed], retro_hunt=True)
        assert len(_distinct_hit_values(eng, conn, "source.ip")) == count, feed.name


@pytest.mark.slow
def test_eve_large_against_ipsum_and_firehol_with_rfc1918_suppression(
        shared_datasets: Path, tmp_path: Path) -> None:
    eve = shared_datasets / "suricata" / "suricatalog-josevnz" / "eve_large.json.gz"
    iocs = shared_datasets / "iocs"
    ipsum = engine_for(tmp_path, [iocs / "ipsum" / "ipsum.txt.gz"])
    assert len(_distinct_hit_values(ipsum, [eve], "source.ip")) == 59
    # firehol_level1 holds 10.0.0.0/8 and 192.168.0.0/16: compare with a naive reference
    # over the event types the EVE reader maps (the README's 41 also counts ssh/dhcp events)
    firehol = iocs / "firehol" / "firehol_level1.netset"
    nets = [ipaddress.ip_network(x.strip(), strict=False) for x in firehol.read_text().split("\n")
            if x.strip() and not x.startswith("#")]
    mapped = {"flow", "netflow", "dns", "http", "tls", "fileinfo", "alert"}
    with gzip.open(eve, "rt") as f:
        objects = [json.loads(line) for line in f]
    sources = {o.get("src_ip") for o in objects if o.get("event_type") in mapped}
    naive = {ip for ip in sources if ip and any(ipaddress.ip_address(ip) in n for n in nets
                                                 if n.version == ipaddress.ip_address(ip).version)}
    eng = engine_for(tmp_path, [firehol])
    assert _distinct_hit_values(eng, [eve], "source.ip") == naive
    rfc1918 = shared_datasets / "warninglists" / "lists" / "rfc1918"
    fixed = engine_for(tmp_path, [firehol], allowlists=(str(rfc1918),))
    private = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
    left = _distinct_hit_values(fixed, [eve], "source.ip")
    assert left == {ip for ip in naive if not any(ipaddress.ip_address(ip) in n for n in private)}
    assert set(fixed.index.suppressed.column("list_name").to_pylist()) == {"rfc1918"}


@pytest.mark.slow
def test_eve_http_requests_hit_two_emotet_urls(shared_datasets: Path, tmp_path: Path) -> None:
    import tarfile

    trails = shared_datasets / "iocs" / "maltrail" / "trails-static.tar.gz"
    emotet = tmp_path / "emotet.txt"
    with tarfile.open(trails) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("malware/emotet.txt"))
        emotet.write_bytes(tar.extractfile(member).read())
    eng = engine_for(tmp_path, [emotet], retro_hunt=True)
    eve = shared_datasets / "suricata" / "suricatalog-josevnz" / "eve-2.json.gz"
    found = _distinct_hit_values(eng, [eve], "url.full")
    assert len(found) == 2


@pytest.mark.slow
def test_wrccdc_dns_queries_hit_maltrail_suspicious_lists(shared_datasets: Path,
                                                          tmp_path: Path) -> None:
    trails = shared_datasets / "iocs" / "maltrail" / "trails-static.tar.gz"
    dns = sorted((shared_datasets / "zeek" / "wrccdc2018-brimdata" / "tsv").glob("dns*"))
    eng = engine_for(tmp_path, [trails], retro_hunt=True)
    table_hits = []
    for batch in detect.read([str(p) for p in dns]):
        t = eng.match(batch)
        table_hits.extend(t.filter(pc.equal(t.column("field"), "dns.question.name"))
                          .column("rule_id").to_pylist())
    names = {r.split(":", 2)[2] for r in table_hits}
    assert "weebly.com" in names and "whatismyipaddress.com" in names
    severities = {eng.rule(r).severity for r in set(table_hits)}
    assert severities <= {"low", "informational"}  # suspicious lists, not malware


def test_threads_give_identical_hits(tmp_path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(1)
    feed = write_csv(tmp_path / "f.csv", [f"cidr,10.{i}.0.0/16,a,,,,," for i in range(0, 200, 3)]
                     + [f"domain,evil{i}.example,a,,,,," for i in range(50)])
    n = 300_000
    ips = [f"10.{a}.{b}.1" for a, b in rng.integers(0, 256, (n, 2)).tolist()]
    names = [f"x.evil{i}.example" if i < 50 else f"ok{i}.example"
             for i in rng.integers(0, 400, n).tolist()]
    batch = events(source__ip=ips, dns__question__name=names)
    one = engine_for(tmp_path, [feed]).match(batch)
    settings = load_settings(environ={}, flags={"indicators": (str(feed),),
                                                "cache_dir": tmp_path / "cache"})
    four = IndicatorEngine(load_index(settings), threads=4).match(batch)
    assert one.num_rows > 1000
    assert one.equals(four)


def test_index_cache_key_follows_the_kernel_layout(tmp_path: Path) -> None:
    from detect.indicators.index import index_key
    from detect.indicators.model import FeedOptions

    feed = write_csv(tmp_path / "f.csv", ["ip,192.0.2.1,a,,,,,"])
    a = index_key([str(feed)], [], FeedOptions(), "layout-1")
    b = index_key([str(feed)], [], FeedOptions(), "layout-2")
    assert a != b
