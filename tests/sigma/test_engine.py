"""The Sigma engine: the bundled pack's own test events, and focused semantics checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from sigma.collection import SigmaCollection

from detect.enrich import enrich
from detect.hits import HITS_SCHEMA
from detect.schema import CANONICAL_SCHEMA, conform
from detect.sigma import SigmaEngine, load_sigma
from detect.sigma.logsource import datasets

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "rules" / "sigma"
RULE_FILES = sorted(PACK.glob("*.yml"))

# Rules of the bundled pack the engine cannot run, with the reason it must give.
EXPECTED_UNSUPPORTED: dict[str, str] = {}


def batch_of(events: list[dict[str, Any]]) -> pa.RecordBatch:
    """Canonical, enriched batch from flat event mappings (canonical column names)."""
    names = [n for n in CANONICAL_SCHEMA.names if any(n in e for e in events)]
    columns = {n: pa.array([e.get(n) for e in events]) for n in names}
    return enrich(conform(columns, len(events)))


def engine_of(text: str) -> SigmaEngine:
    return SigmaEngine(SigmaCollection.from_yaml(text).rules)


def rule_yaml(detection: str, logsource: str = "category: dns") -> str:
    body = "\n".join("    " + line for line in detection.strip().splitlines())
    return f"""
title: probe
id: 6f1b1d7e-4c1e-4a8f-9d0e-2f3a4b5c6d7e
status: test
logsource:
    {logsource}
detection:
{body}
level: high
tags:
    - attack.command-and-control
    - attack.t1071.004
"""


def hits_rows(engine: SigmaEngine, events: list[dict[str, Any]]) -> set[int]:
    table = engine.match(batch_of(events))
    assert table.schema == HITS_SCHEMA
    return set(table.column("event_index").to_pylist())


# ---------------------------------------------------------------------------------------
# The bundled pack


@pytest.fixture(scope="module")
def pack() -> SigmaEngine:
    return load_sigma([PACK])


def test_pack_loads_without_errors_and_reports_unsupported(pack: SigmaEngine) -> None:
    assert not pack.errors
    unsupported = {Path(u.file).stem: u.reason for u in pack.unsupported if u.file}
    assert set(unsupported) == set(EXPECTED_UNSUPPORTED)
    for stem, word in EXPECTED_UNSUPPORTED.items():
        assert word in unsupported[stem]
    assert len(pack.plans) == len(RULE_FILES) - len(EXPECTED_UNSUPPORTED)
    print(f"\nbundled Sigma rules supported: {len(pack.plans)} of {len(RULE_FILES)}")


@pytest.mark.parametrize("path", RULE_FILES, ids=[p.stem for p in RULE_FILES])
def test_pack_rule_events(path: Path) -> None:
    if path.stem in EXPECTED_UNSUPPORTED:
        pytest.skip(f"unsupported: {EXPECTED_UNSUPPORTED[path.stem]}")
    engine = load_sigma([path])
    assert len(engine.plans) == 1, engine.unsupported
    data = yaml.safe_load((PACK / "tests" / path.name).read_text(encoding="utf-8"))
    positives, negatives = data["positive"], data["negative"]
    rows = hits_rows(engine, positives + negatives)
    missed = [positives[i] for i in range(len(positives)) if i not in rows]
    false_hits = [negatives[i - len(positives)] for i in sorted(rows) if i >= len(positives)]
    assert not missed, f"positives not hit: {missed}"
    assert not false_hits, f"negatives hit: {false_hits}"


def test_rule_info(pack: SigmaEngine) -> None:
    rid = pack.rule_ids[0]
    info = pack.rule(rid)
    assert info.kind == "sigma" and info.rule_id == rid
    assert info.severity in {"informational", "low", "medium", "high", "critical"}
    assert info.attack and all(a.startswith("T") for a in info.attack)
    assert info.author == "detect project" and info.references
    assert info.entity == "source.ip"


# ---------------------------------------------------------------------------------------
# Focused semantics


def test_equality_is_case_insensitive_whole_value_with_unicode() -> None:
    engine = engine_of(
        rule_yaml("sel:\n    dns.question.name: 'ÄRGER.Example.ORG'\ncondition: sel")
    )
    events = [
        {"event.dataset": "dns", "dns.question.name": "ärger.example.org"},
        {"event.dataset": "dns", "dns.question.name": "ÄRGER.EXAMPLE.ORG"},
        {"event.dataset": "dns", "dns.question.name": "www.ärger.example.org"},  # not whole
        {"event.dataset": "http", "dns.question.name": "ärger.example.org"},  # logsource
        {"event.dataset": "dns"},
    ]
    assert hits_rows(engine, events) == {0, 1}


def test_full_unicode_case_folding_not_just_lower() -> None:
    """``ß`` folds to ``ss``, final sigma to sigma: lower-casing alone misses these."""
    engine = engine_of(rule_yaml("sel:\n    dns.question.name|contains: 'STRASSE'\ncondition: sel"))
    sigma = engine_of(rule_yaml("sel:\n    dns.question.name: 'ΟΔΟΣ.example'\ncondition: sel"))
    events = [
        {"event.dataset": "dns", "dns.question.name": "straße.example"},
        {"event.dataset": "dns", "dns.question.name": "STRAẞE.example"},
        {"event.dataset": "dns", "dns.question.name": "strase.example"},
        {"event.dataset": "dns", "dns.question.name": "οδος.example"},
        {"event.dataset": "dns", "dns.question.name": "οδοσ.example"},
    ]
    assert hits_rows(engine, events) == {0, 1}
    assert hits_rows(sigma, events) == {3, 4}


def test_cased() -> None:
    engine = engine_of(rule_yaml("sel:\n    dns.question.name|cased: 'Evil.org'\ncondition: sel"))
    events = [{"event.dataset": "dns", "dns.question.name": n} for n in ("Evil.org", "evil.org")]
    assert hits_rows(engine, events) == {0}


def test_wildcards_and_escapes() -> None:
    detection = r"""
sel:
    url.path:
        - '/a?c/*.php'
        - 'lit\*star'
        - 'dot.dot'
condition: sel
"""
    engine = engine_of(rule_yaml(detection, "category: proxy"))
    paths = ["/abc/x.php", "/ABC/.PHP", "/abbc/x.php", "lit*star", "litXstar", "dotXdot", "dot.dot"]
    events = [{"event.dataset": "http", "url.path": p} for p in paths]
    assert hits_rows(engine, events) == {0, 1, 3, 6}


def test_contains_startswith_endswith_all() -> None:
    detection = """
sel:
    url.full|contains|all:
        - 'cmd='
        - 'EXEC'
    url.domain|startswith: 'api.'
    url.path|endswith: '.PHP'
condition: sel
"""
    engine = engine_of(rule_yaml(detection, "category: proxy"))
    base = {"event.dataset": "http", "url.domain": "API.x.org", "url.path": "/s.php"}
    events = [
        {**base, "url.full": "http://x/?cmd=exec"},
        {**base, "url.full": "http://x/?cmd=ls"},
        {**base, "url.full": "http://x/?cmd=exec", "url.domain": "www.api.x.org"},
    ]
    assert hits_rows(engine, events) == {0}


def test_one_of_selection_and_not() -> None:
    detection = """
selection_a:
    dns.question.name|endswith: '.onion.ly'
selection_b:
    dns.question.type: TXT
filter_x:
    dns.question.name|startswith: 'ok.'
_selection_ignored:
    dns.question.name: 'never'
condition: 1 of selection_* and not filter_x
"""
    engine = engine_of(rule_yaml(detection))
    events = [
        {"event.dataset": "dns", "dns.question.name": "a.onion.ly", "dns.question.type": "A"},
        {"event.dataset": "dns", "dns.question.name": "b.org", "dns.question.type": "txt"},
        {"event.dataset": "dns", "dns.question.name": "ok.onion.ly", "dns.question.type": "A"},
        {"event.dataset": "dns", "dns.question.name": "b.org", "dns.question.type": "A"},
    ]
    assert hits_rows(engine, events) == {0, 1}


def test_not_matches_rows_whose_field_is_null() -> None:
    engine = engine_of(rule_yaml("sel:\n    dns.question.type: A\ncondition: not sel"))
    events = [{"event.dataset": "dns", "dns.question.type": "A"}, {"event.dataset": "dns"}]
    assert hits_rows(engine, events) == {1}


def test_keyword_search_over_string_columns() -> None:
    detection = "keywords:\n    - '*() { :;};*'\n    - 'EXACT-TOKEN'\ncondition: keywords"
    engine = engine_of(rule_yaml(detection, "category: webserver"))
    events = [
        {"event.dataset": "http", "user_agent.original": "x () { :;}; /bin/sh"},
        {"event.dataset": "http", "http.request.referrer": "() { :;};"},
        {"event.dataset": "http", "url.path": "exact-token"},
        {"event.dataset": "http", "url.path": "an exact-token inside"},
        {"event.dataset": "http", "user_agent.original": "Mozilla"},
    ]
    # a keyword is a full-text search: anywhere in any string value (spec: Keywords search)
    assert hits_rows(engine, events) == {0, 1, 2, 3}


def test_cidr_v4_and_v6_on_binary_form() -> None:
    detection = """
sel:
    destination.ip|cidr:
        - '10.0.0.0/8'
        - '2001:db8::/32'
condition: sel
"""
    engine = engine_of(rule_yaml(detection, "category: firewall"))
    ips = ["10.1.2.3", "11.0.0.1", "2001:db8::1", "2001:db9::1", "::ffff:10.0.0.1", None]
    events = [{"event.dataset": "conn", "destination.ip": ip} for ip in ips]
    assert hits_rows(engine, events) == {0, 2, 4}


def test_cidr_on_text_list_column() -> None:
    detection = "sel:\n    dns.answers.data|cidr: '192.168.0.0/16'\ncondition: sel"
    engine = engine_of(rule_yaml(detection))
    events = [
        {"event.dataset": "dns", "dns.answers.data": ["a.example.org", "192.168.1.1"]},
        {"event.dataset": "dns", "dns.answers.data": ["192.169.1.1", "192.168.example"]},
        {"event.dataset": "dns", "dns.answers.data": []},
    ]
    assert hits_rows(engine, events) == {0}


def test_regex_case_sensitive_unless_i() -> None:
    detection = """
sel_cs:
    url.path|re: '^/Admin/'
sel_ci:
    url.query|re|i: 'union\\s+select'
condition: 1 of sel_*
"""
    engine = engine_of(rule_yaml(detection, "category: proxy"))
    events = [
        {"event.dataset": "http", "url.path": "/Admin/x"},
        {"event.dataset": "http", "url.path": "/admin/x"},
        {"event.dataset": "http", "url.query": "id=1 UNION  SELECT"},
    ]
    assert hits_rows(engine, events) == {0, 2}


def test_numeric_compare_exists_null_and_fieldref() -> None:
    detection = """
sel:
    destination.port|gte: 1024
    source.bytes|lt: 100
    dns.question.name|exists: true
    url.full: null
    tls.server.subject|fieldref: tls.server.issuer
condition: sel
"""
    engine = engine_of(rule_yaml(detection, "product: zeek\n    service: ssl"))
    base = {
        "event.dataset": "tls",
        "destination.port": 4444,
        "source.bytes": 10,
        "dns.question.name": "x",
        "tls.server.subject": "CN=a",
        "tls.server.issuer": "cn=A",
    }
    events = [
        base,
        {**base, "destination.port": 443},
        {**base, "source.bytes": 100},
        {**base, "dns.question.name": None},
        {**base, "url.full": "http://x"},
        {**base, "tls.server.issuer": "CN=b"},
        {**base, "event.dataset": "conn"},
    ]
    assert hits_rows(engine, events) == {0}


def test_numeric_equality_on_integer_column() -> None:
    engine = engine_of(
        rule_yaml("sel:\n    destination.port:\n        - 53\n        - '5353'\ncondition: sel")
    )
    events = [{"event.dataset": "dns", "destination.port": p} for p in (53, 5353, 54)]
    assert hits_rows(engine, events) == {0, 1}


@pytest.mark.parametrize(
    ("detection", "reason"),
    [
        ("sel:\n    no.such.field: 'x'\ncondition: sel", "no.such.field"),
        ("sel:\n    url.domain|expand: '%Servers%'\ncondition: sel", "Servers"),
        ("sel:\n    file.x509.not_after|contains: '2050'\ncondition: sel", "timestamp"),
    ],
)
def test_unsupported_is_reported_not_crashing(detection: str, reason: str) -> None:
    engine = engine_of(rule_yaml(detection, "category: proxy"))
    assert not engine.plans
    assert len(engine.unsupported) == 1 and reason in engine.unsupported[0].reason
    assert engine.match(batch_of([{"event.dataset": "http"}])).num_rows == 0


def test_broken_rule_is_reported_others_load(tmp_path: Path) -> None:
    good = rule_yaml("sel:\n    dns.question.type: A\ncondition: sel")
    bad = rule_yaml("sel:\n    dns.question.type|nosuchmod: A\ncondition: sel").replace(
        "6f1b1d7e-4c1e-4a8f-9d0e-2f3a4b5c6d7e", "0c4a6f1e-1b2c-4d3e-8f90-a1b2c3d4e5f6"
    )
    (tmp_path / "good.yml").write_text(good)
    (tmp_path / "bad.yml").write_text(bad)
    engine = load_sigma([tmp_path])
    assert len(engine.plans) == 1
    assert engine.errors and engine.errors[0].file.endswith("bad.yml")
    assert "nosuchmod" in engine.errors[0].message


def test_logsource_table() -> None:
    rules = SigmaCollection.from_yaml(
        "\n---\n".join(
            rule_yaml("sel:\n    url.path: x\ncondition: sel", ls).replace(
                "6f1b1d7e-4c1e-4a8f-9d0e-2f3a4b5c6d7e", f"6f1b1d7e-4c1e-4a8f-9d0e-2f3a4b5c6d{i:02x}"
            )
            for i, ls in enumerate(
                [
                    "category: dns",
                    "category: proxy",
                    "category: webserver",
                    "category: firewall",
                    "product: zeek\n    service: ssl",
                    "product: zeek\n    service: x509",
                    "product: suricata",
                    "category: process_creation",
                ]
            )
        )
    ).rules
    assert [datasets(r.logsource) for r in rules] == [
        {"dns"},
        {"http"},
        {"http"},
        {"conn", "flow"},
        {"tls"},
        {"x509"},
        None,
        None,
    ]


# ---------------------------------------------------------------------------------------
# Value transformations, placeholders, time parts


def test_base64offset_contains_finds_every_alignment() -> None:
    import base64

    detection = "sel:\n    url.query|base64offset|contains: 'whoami'\ncondition: sel"
    engine = engine_of(rule_yaml(detection, "category: proxy"))
    events = [
        {"event.dataset": "http", "url.query": "x=" + base64.b64encode(pad + b"whoami").decode()}
        for pad in (b"", b"a", b"ab")
    ] + [{"event.dataset": "http", "url.query": "x=" + base64.b64encode(b"whoareyou").decode()}]
    assert hits_rows(engine, events) == {0, 1, 2}


def test_windash_and_wide() -> None:
    engine = engine_of(
        rule_yaml("sel:\n    url.query|windash|contains: '-enc'\ncondition: sel", "category: proxy")
    )
    events = [
        {"event.dataset": "http", "url.query": q}
        for q in ("a -enc b", "a /enc b", "a \u2013enc b", "a enc")
    ]
    assert hits_rows(engine, events) == {0, 1, 2}
    wide = engine_of(
        rule_yaml("sel:\n    url.query|wide|contains: 'ab'\ncondition: sel", "category: proxy")
    )
    assert hits_rows(
        wide,
        [
            {"event.dataset": "http", "url.query": "xa\x00b\x00y"},
            {"event.dataset": "http", "url.query": "ab"},
        ],
    ) == {0}


def test_expand_placeholders_from_settings() -> None:
    text = rule_yaml("sel:\n    url.domain|expand: '%Servers%'\ncondition: sel", "category: proxy")
    engine = SigmaEngine(
        SigmaCollection.from_yaml(text).rules, placeholders={"Servers": ["a.example", "B.example"]}
    )
    events = [
        {"event.dataset": "http", "url.domain": d} for d in ("a.example", "b.EXAMPLE", "c.example")
    ]
    assert hits_rows(engine, events) == {0, 1}


def test_timestamp_part_modifiers() -> None:
    from datetime import UTC, datetime

    detection = (
        "sel:\n    file.x509.not_after|year|gte: 2050\n    '@timestamp|hour': 3\ncondition: sel"
    )
    engine = engine_of(rule_yaml(detection, "product: zeek\n    service: x509"))
    t = datetime(2024, 1, 1, 3, 30, tzinfo=UTC)
    events = [
        {
            "event.dataset": "x509",
            "@timestamp": t,
            "file.x509.not_after": datetime(y, 1, 1, tzinfo=UTC),
        }
        for y in (2049, 2050, 2099)
    ] + [
        {
            "event.dataset": "x509",
            "@timestamp": t.replace(hour=4),
            "file.x509.not_after": datetime(2060, 1, 1, tzinfo=UTC),
        }
    ]
    assert hits_rows(engine, events) == {1, 2}


def test_wildcard_on_numeric_column_matches_its_text() -> None:
    engine = engine_of(
        rule_yaml("sel:\n    http.response.status_code: '4*'\ncondition: sel", "category: proxy")
    )
    events = [{"event.dataset": "http", "http.response.status_code": c} for c in (404, 200, 418)]
    assert hits_rows(engine, events) == {0, 2}


def test_hit_field_is_the_column_that_matched() -> None:
    detection = (
        "a:\n    url.domain: evil.example\nb:\n    url.path|contains: /shell\ncondition: a or b"
    )
    engine = engine_of(rule_yaml(detection, "category: proxy"))
    batch = batch_of(
        [
            {"event.dataset": "http", "url.domain": "evil.example", "url.path": "/"},
            {"event.dataset": "http", "url.domain": "ok.example", "url.path": "/shell"},
        ]
    )
    hits = engine.match(batch).to_pylist()
    assert {(h["event_index"], h["field"]) for h in hits} == {(0, "url.domain"), (1, "url.path")}


def test_hit_field_is_null_when_the_match_spans_several_columns() -> None:
    detection = (
        "a:\n    url.domain: evil.example\nb:\n    url.path|contains: /shell\n"
        "c:\n    url.path|contains: /cmd\ncondition: a and (b or c)"
    )
    engine = engine_of(rule_yaml(detection, "category: proxy"))
    batch = batch_of([{"event.dataset": "http", "url.domain": "evil.example",
                       "url.path": "/shell/cmd"}])  # fmt: skip
    (hit,) = engine.match(batch).to_pylist()
    assert hit["field"] is None  # DESIGN.md: null where a rule spans several
    one_column = engine_of(rule_yaml("b:\n    url.path|contains: /shell\nc:\n"
                                     "    url.path|contains: /cmd\ncondition: b and c",
                                     "category: proxy"))  # fmt: skip
    (hit,) = one_column.match(batch).to_pylist()
    assert hit["field"] == "url.path"  # two leaves, one column


def test_parse_errors_name_file_and_line(tmp_path: Path) -> None:
    good = rule_yaml("sel:\n    dns.question.type: A\ncondition: sel")
    bad = rule_yaml("sel:\n    dns.question.type|nosuchmod: A\ncondition: sel").replace(
        "6f1b1d7e-4c1e-4a8f-9d0e-2f3a4b5c6d7e", "0c4a6f1e-1b2c-4d3e-8f90-a1b2c3d4e5f6"
    )
    (tmp_path / "multi.yml").write_text(good + "\n---\n" + bad)
    (tmp_path / "broken.yml").write_text("title: x\ndetection: [\n")
    engine = load_sigma([tmp_path])
    assert len(engine.plans) == 1
    by_file = {Path(e.file).name: e for e in engine.errors}
    text = (tmp_path / "multi.yml").read_text().splitlines()
    assert "nosuchmod" in text[by_file["multi.yml"].line - 1]
    assert by_file["broken.yml"].line == 3
    assert str(by_file["multi.yml"]).startswith(
        f"{tmp_path / 'multi.yml'}:{by_file['multi.yml'].line}:"
    )


def test_sigma_filter_rules_apply_to_the_rules_they_name(tmp_path: Path) -> None:
    rule = rule_yaml("sel:\n    dns.question.name|endswith: '.example'\ncondition: sel")
    other = rule.replace(
        "6f1b1d7e-4c1e-4a8f-9d0e-2f3a4b5c6d7e", "1b9d7c7e-0a51-4f0b-9a55-3a7c5f1f0e11"
    ).replace("title: probe", "title: other")
    sigma_filter = """
title: Known resolver noise
logsource:
    category: dns
filter:
    rules:
        - 6f1b1d7e-4c1e-4a8f-9d0e-2f3a4b5c6d7e
    selection:
        source.ip: 10.0.0.53
    condition: not selection
"""
    events = [
        {"event.dataset": "dns", "dns.question.name": "a.example", "source.ip": "10.0.0.53"},
        {"event.dataset": "dns", "dns.question.name": "a.example", "source.ip": "10.0.0.9"},
    ]
    (tmp_path / "rules.yml").write_text(rule + "\n---\n" + other)
    (tmp_path / "filters").mkdir()
    (tmp_path / "filters" / "noise.yml").write_text(sigma_filter)
    engine = load_sigma([tmp_path])
    assert len(engine.filters) == 1 and not engine.unsupported and not engine.errors
    table = engine.match(batch_of(events))
    by_rule: dict[str, set[int]] = {}
    for hit in table.to_pylist():
        by_rule.setdefault(hit["rule_id"], set()).add(hit["event_index"])
    assert by_rule == {
        "6f1b1d7e-4c1e-4a8f-9d0e-2f3a4b5c6d7e": {1},
        "1b9d7c7e-0a51-4f0b-9a55-3a7c5f1f0e11": {0, 1},
    }
    (tmp_path / "filters" / "noise.yml").unlink()
    (tmp_path / "rules.yml").write_text(rule + "\n---\n" + sigma_filter)  # same file
    assert hits_rows(load_sigma([tmp_path]), events) == {1}


def test_a_rule_on_community_id_sees_it_though_ingest_does_not_compute_it() -> None:
    import communityid

    flow = communityid.FlowTuple.make_tcp("10.0.0.1", "203.0.113.9", 51000, 443)
    expected = communityid.CommunityID().calc(flow)  # the reference implementation
    engine = engine_of(rule_yaml(f"sel:\n    network.community_id: '{expected}'\ncondition: sel",
                                 logsource="category: firewall"))  # fmt: skip
    conn = {"event.dataset": "conn", "network.transport": "tcp", "source.ip": "10.0.0.1",
            "destination.ip": "203.0.113.9", "source.port": 51000}  # fmt: skip
    events = [
        {**conn, "destination.port": 443},
        {**conn, "destination.port": 444},  # another flow
        {**conn, "destination.port": 80, "network.community_id": expected},  # the sensor's own
    ]
    assert batch_of(events).column("network.community_id").null_count == 2  # not at ingest
    assert hits_rows(engine, events) == {0, 2}
    masks = engine.masks(batch_of(events))  # what correlations use
    assert masks[engine.rule_ids[0]].tolist() == [True, False, True]


@pytest.mark.parametrize(
    ("value", "rows"),
    [("443", {0}), ("0443", {0}), ("+443", {0}), ("443.0", {0}), ("4e2", {1}),
     ("4_43", set()), ("٤٤٣", set()), (" 443 ", set()), ("inf", set())],
)  # fmt: skip
def test_a_string_value_on_a_numeric_column_is_a_decimal_number_or_nothing(
    value: str, rows: set[int]
) -> None:
    engine = engine_of(rule_yaml(f"sel:\n    destination.port: '{value}'\ncondition: sel",
                                 "category: firewall"))  # fmt: skip
    events = [{"event.dataset": "conn", "destination.port": p} for p in (443, 400)]
    assert hits_rows(engine, events) == rows  # Python's int() took 4_43, Arabic digits, spaces


def test_an_ipv6_cidr_holds_no_ipv4_address_unless_it_names_the_mapped_block() -> None:
    events = [{"event.dataset": "conn", "source.ip": ip}
              for ip in ("::1", "10.0.0.1", "::1:0:0:5", "2001:db8::1")]  # fmt: skip
    for cidr, rows in (("::/64", {0, 2}), ("::/0", {0, 2, 3}), ("::ffff:0:0/96", {1}),
                       ("10.0.0.0/8", {1})):  # fmt: skip
        engine = engine_of(rule_yaml(f"sel:\n    source.ip|cidr: '{cidr}'\ncondition: sel",
                                     "category: firewall"))  # fmt: skip
        assert hits_rows(engine, events) == rows, cidr  # as ipaddress: 10.0.0.1 not in ::/64
