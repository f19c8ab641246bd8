"""Sigma taxonomy field names -> canonical columns (``detect.sigma.pipelines``)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from sigma.collection import SigmaCollection
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaLogSource, SigmaRule

from detect.enrich import enrich
from detect.readers import read_file, suricata_eve, zeek_fields
from detect.schema import COLUMNS
from detect.sigma import SigmaEngine, parse_rules
from detect.sigma.engine import LoadedRule
from detect.sigma.logsource import SURICATA_EVENT_DATASETS, datasets
from detect.sigma.pipelines import (
    MAPPINGS,
    NOT_MAPPED,
    FieldMap,
    Source,
    apply_pipeline,
    markdown,
    network_pipeline,
    pipeline_for,
)

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "sigma-field-mapping.md"
PACK = ROOT / "rules" / "sigma"


def rule_of(source: Source, detection: str) -> SigmaRule:
    logsource = "\n".join(
        f"  {k}: {v}"
        for k, v in (
            ("category", source.category),
            ("product", source.product),
            ("service", source.service),
        )
        if v
    )
    text = f"title: t\nlogsource:\n{logsource}\ndetection:\n{detection}\n  condition: sel\n"
    return SigmaRule.from_yaml(text)


def items(rule: SigmaRule) -> Iterator[SigmaDetectionItem]:
    def walk(node: SigmaDetection) -> Iterator[SigmaDetectionItem]:
        for item in node.detection_items:
            if isinstance(item, SigmaDetection):
                yield from walk(item)
            else:
                yield item

    for detection in rule.detection.detections.values():
        yield from walk(detection)


def fields(rule: SigmaRule) -> set[str]:
    return {i.field for i in items(rule) if i.field is not None}


def _key(m: FieldMap) -> str:
    return f"{m.source.label}:{m.field}"


# ------------------------------------------------------------------------- the table itself


@pytest.mark.parametrize("m", MAPPINGS, ids=_key)
def test_field_maps_to_its_column(m: FieldMap) -> None:
    detection = f"  sel:\n    '{m.field}|contains': 'x'\n"
    rule = rule_of(m.source, detection)
    mapped = apply_pipeline(rule)
    assert fields(mapped) == {m.column}
    assert fields(rule) == {m.field}, "the rule passed in is not modified"
    per_source = pipeline_for(m.source.logsource)
    assert per_source is not None
    assert fields(per_source.apply(rule_of(m.source, detection))) == {m.column}


@pytest.mark.parametrize("m", [m for m in MAPPINGS if m.match == "unanchored"], ids=_key)
def test_path_and_query_fields_map_only_unanchored_values(m: FieldMap) -> None:
    for detection, expected in [
        (f"    '{m.field}|endswith': '.exe'\n", m.column),
        (f"    '{m.field}|contains|all': ['/a', 'b=']\n", m.column),
        (f"    '{m.field}': '/exact'\n", m.field),
        (f"    '{m.field}|startswith': '/a'\n", m.field),
        (f"    '{m.field}|re': 'a.b'\n", m.field),
        (f"    '{m.field}|contains': 'x'\n    '{m.field}': '/y'\n", f"{m.column} {m.field}"),
    ]:
        rule = apply_pipeline(rule_of(m.source, "  sel:\n" + detection))
        assert fields(rule) == set(expected.split()), detection


def test_mixed_values_in_one_item_stay_unmapped() -> None:
    rule = rule_of(Source(product="zeek", service="http"), "  sel:\n    uri: ['*.exe', '/a']\n")
    assert fields(apply_pipeline(rule)) == {"uri"}


def test_every_target_is_a_canonical_column() -> None:
    assert {m.column for m in MAPPINGS} <= set(COLUMNS)


def test_no_taxonomy_field_is_a_canonical_column() -> None:
    """Canonical rules pass through untouched: no mapped name is already canonical."""
    assert not {m.field for m in MAPPINGS} & set(COLUMNS)


def test_rows_are_unique_and_agree_where_sources_overlap() -> None:
    keys = Counter((m.source, m.field) for m in MAPPINGS)
    assert [k for k, n in keys.items() if n > 1] == []
    # a rule can match several sources (product: zeek and product: zeek, service: http;
    # category: dns and product: zeek): a field must mean the same column in all of them
    for a in MAPPINGS:
        for b in MAPPINGS:
            if a.field != b.field or a.source == b.source:
                continue
            union = SigmaLogSource(
                a.source.category or b.source.category,
                a.source.product or b.source.product,
                a.source.service or b.source.service,
            )
            if a.source.matches(union) and b.source.matches(union):
                assert a.column == b.column, (a, b)


def test_not_mapped_fields_are_not_mapped() -> None:
    mapped = {(m.source, m.field) for m in MAPPINGS}
    for n in NOT_MAPPED:
        for field in (f.strip() for f in n.field.split(",")):
            assert (n.source, field) not in mapped
            rule = rule_of(n.source, f"  sel:\n    '{field}': 'x'\n")
            assert fields(apply_pipeline(rule)) == {field}


def test_pipeline_for_other_logsources_is_none() -> None:
    assert pipeline_for(SigmaLogSource("process_creation", "windows", None)) is None
    assert pipeline_for(None) is None
    rule = rule_of(Source("process_creation", "windows"), "  sel:\n    query: x\n")
    assert fields(apply_pipeline(rule)) == {"query"}


def test_one_combined_pipeline() -> None:
    pipeline = network_pipeline()
    assert len(pipeline.items) == len({(m.source, m.match) for m in MAPPINGS})
    rule = rule_of(Source(category="dns"), "  sel:\n    query|endswith: '.ru'\n")
    assert fields(pipeline.apply(rule)) == {"dns.question.name"}


def test_correlation_rules_pass_through() -> None:
    collection = SigmaCollection.from_yaml(
        """title: base
name: base
logsource: {category: dns}
detection: {sel: {query: x}, condition: sel}
---
title: corr
correlation: {type: event_count, rules: [base], group-by: [query], timespan: 1m,
              condition: {gte: 2}}
"""
    )
    corr = collection.rules[1]
    assert apply_pipeline(corr) is corr


def test_bundled_pack_is_unchanged() -> None:
    """Our own rules use canonical names already; the pipeline must not touch them."""
    loaded, errors = parse_rules([PACK])
    assert not errors
    rules = [lr.rule for lr in loaded if isinstance(lr.rule, SigmaRule)]
    assert rules
    for rule in rules:
        assert fields(apply_pipeline(rule)) == fields(rule), rule.title


# ------------------------------------------------------------------------- kept in sync


def test_docs_table_equals_the_code() -> None:
    text = DOC.read_text(encoding="utf-8")
    begin, end = "<!-- mapping:begin -->\n", "<!-- mapping:end -->"
    assert begin in text and end in text
    table = text.split(begin, 1)[1].split(end, 1)[0]
    assert table == markdown(), (
        "docs/sigma-field-mapping.md is stale: regenerate with "
        "`PYTHONPATH=src python -m detect.sigma.pipelines`"
    )


# Zeek fields the reader maps by code rather than by a ``Take`` row.
# x509.log has no ``uid`` (its event.id is the file id), so a rule cannot use it there.
_ZEEK_DERIVED = {
    ("http", "host", "url.domain"),
    ("http", "uri", "url.full"),
    ("x509", "uid", "event.id"),
    ("dns", "TTLs", "dns.answers.ttl"),  # rounded to 1 µs, still seconds
}
_ZEEK_PATHS = ("conn", "dns", "http", "ssl", "files", "x509", "smtp", "notice", "weird", "rdp")


def test_zeek_rows_follow_the_reader() -> None:
    """A Zeek field maps to the column the Zeek reader fills from it for that log path."""
    w3c = {m.field for m in MAPPINGS if m.source == Source(category="webserver")}
    checked = 0
    for m in MAPPINGS:
        if m.source.product != "zeek" or m.field in w3c:
            continue
        paths = [m.source.service] if m.source.service else list(_ZEEK_PATHS)
        for path in paths:
            takes = zeek_fields._rules(path)
            by_reader = any(t.column == m.column and m.field in t.fields for t in takes)
            assert by_reader or (path, m.field, m.column) in _ZEEK_DERIVED, (path, m)
            checked += 1
    assert checked > 40


def test_logsource_datasets_follow_the_readers() -> None:
    assert dict(suricata_eve.DATASETS) == SURICATA_EVENT_DATASETS
    for m in MAPPINGS:
        selected = datasets(m.source.logsource)
        if m.source.product == "zeek" and m.source.service:
            assert selected == {zeek_fields.dataset_of(m.source.service)}
    assert datasets(SigmaLogSource("proxy")) == {"http"}
    assert datasets(SigmaLogSource("webserver")) == {"http"}
    assert datasets(SigmaLogSource("firewall")) == {"conn", "flow"}
    assert datasets(SigmaLogSource("dns", "zeek")) == {"dns"}
    assert datasets(SigmaLogSource(None, "zeek", "ssl")) == {"tls"}
    assert datasets(SigmaLogSource(None, "suricata", "fileinfo")) == {"files"}
    assert datasets(SigmaLogSource(None, "suricata", "netflow")) == {"flow"}
    assert datasets(SigmaLogSource(None, "suricata", "stats")) is None
    assert datasets(SigmaLogSource(None, "suricata")) is None


# ------------------------------------------------------------------------- end to end


def _hits(rules: list[SigmaRule], batch: pa.RecordBatch) -> set[str]:
    engine = SigmaEngine([apply_pipeline(r) for r in rules])
    assert engine.unsupported == []
    table = engine.match(batch)
    return set(table.column("rule_id").to_pylist())


def _read(path: Path, fmt: str) -> pa.RecordBatch:
    return enrich(pa.concat_batches(list(read_file(path, fmt=fmt))))


def test_zeek_rules_match_reader_rows(tmp_path: Path) -> None:
    log = tmp_path / "http.log"
    rows = [
        {
            "ts": 1.0,
            "uid": "C1",
            "id.orig_h": "10.0.0.1",
            "id.orig_p": 5000,
            "id.resp_h": "203.0.113.9",
            "id.resp_p": 8080,
            "method": "GET",
            "host": "evil.ru:8080",
            "uri": "/dl/a.exe?x=1",
            "user_agent": "curl/8",
            "status_code": 200,
            "resp_mime_types": ["application/x-dosexec"],
        },
        {
            "ts": 2.0,
            "uid": "C2",
            "id.orig_h": "10.0.0.2",
            "id.orig_p": 5001,
            "id.resp_h": "198.51.100.1",
            "id.resp_p": 80,
            "method": "GET",
            "host": "ok.example",
            "uri": "/index.html",
            "user_agent": "Mozilla",
            "status_code": 404,
        },
    ]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    batch = _read(log, "zeek-json")
    rules = SigmaCollection.from_yaml(
        """title: exe from .ru
id: 00000000-0000-0000-0000-000000000001
logsource: {product: zeek, service: http}
detection:
  tld: {host|endswith: '.ru'}
  ext: {uri|contains: '.exe'}
  mime: {resp_mime_types: application/x-dosexec}
  conn: {id.resp_p: 8080, status_code: 200, c-useragent|startswith: 'curl/'}
  condition: tld and ext and mime and conn
---
title: w3c proxy names
id: 00000000-0000-0000-0000-000000000002
logsource: {category: proxy}
detection:
  sel: {cs-host: ok.example, c-uri|endswith: '/index.html', sc-status: 404, cs-method: GET}
  condition: sel
"""
    ).rules
    assert _hits(rules, batch) == {
        "00000000-0000-0000-0000-000000000001",
        "00000000-0000-0000-0000-000000000002",
    }


def test_suricata_rules_match_reader_rows(tmp_path: Path) -> None:
    eve = tmp_path / "eve.json"
    events = [
        {
            "timestamp": "2024-01-01T00:00:00.000000+0000",
            "flow_id": 1,
            "event_type": "tls",
            "src_ip": "10.0.0.1",
            "src_port": 5000,
            "dest_ip": "203.0.113.9",
            "dest_port": 443,
            "proto": "TCP",
            "tls": {"sni": "c2.example.net", "ja3": {"hash": "abc"}},
        },
        {
            "timestamp": "2024-01-01T00:00:01.000000+0000",
            "flow_id": 2,
            "event_type": "http",
            "src_ip": "10.0.0.1",
            "src_port": 5001,
            "dest_ip": "203.0.113.9",
            "dest_port": 80,
            "proto": "TCP",
            "http": {
                "hostname": "h.example",
                "url": "/a/b.php?cmd=id",
                "http_method": "POST",
                "status": 200,
            },
        },
    ]
    eve.write_text("".join(json.dumps(e) + "\n" for e in events))
    batch = _read(eve, "suricata-eve")
    rules = SigmaCollection.from_yaml(
        """title: sni
id: 00000000-0000-0000-0000-000000000003
logsource: {product: suricata, service: tls}
detection:
  sel: {tls.sni|endswith: '.example.net', tls.ja3.hash: abc, dest_port: 443}
  condition: sel
---
title: webshell
id: 00000000-0000-0000-0000-000000000004
logsource: {product: suricata, service: http}
detection:
  sel: {http.url|contains|all: ['.php', 'cmd='], http.http_method: POST, http.status: 200}
  condition: sel
"""
    ).rules
    assert _hits(rules, batch) == {
        "00000000-0000-0000-0000-000000000003",
        "00000000-0000-0000-0000-000000000004",
    }


# ------------------------------------------------------------------------- SigmaHQ rules

# Measured on the SigmaHQ snapshot in ../shared/datasets (rules, rules-emerging-threats,
# rules-threat-hunting): rules of each log source whose fields are all canonical after the
# pipeline. Without the pipeline: 4 of 178 (webserver keyword-only rules).
FLOORS = {
    "dns": (11, 11),
    "proxy": (52, 56),  # the rest use c-uri-extension or cs-cookie
    "webserver": (79, 85),  # cs-username, cs-content-type, exact/startswith cs-uri-query
    "firewall": (1, 2),  # action / blocked
    "zeek": (9, 24),  # dce_rpc, kerberos, smb_files fields have no columns
}


def _family(rule: SigmaRule) -> str | None:
    ls = rule.logsource
    if ls.category in ("dns", "proxy", "webserver", "firewall"):
        return ls.category
    if ls.product in ("zeek", "suricata"):
        return ls.product
    return None


@pytest.mark.shared
@pytest.mark.slow
def test_sigmahq_network_rules_map(shared_datasets: Path) -> None:
    base = shared_datasets / "sigma" / "sigmahq"
    if not base.is_dir():
        pytest.skip(f"SigmaHQ rules not present at {base}")
    dirs = [base / "rules", base / "rules-emerging-threats", base / "rules-threat-hunting"]
    loaded, _ = parse_rules([d for d in dirs if d.is_dir()])
    selected = [
        lr for lr in loaded if isinstance(lr.rule, SigmaRule) and _family(lr.rule) is not None
    ]
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    left: Counter[tuple[str, str]] = Counter()
    mapped: list[LoadedRule] = []
    for lr in selected:
        family = _family(lr.rule)
        assert family is not None
        rule = apply_pipeline(lr.rule)
        mapped.append(LoadedRule(rule, lr.file))
        rest = fields(rule) - set(COLUMNS)
        counts[family][1] += 1
        counts[family][0] += not rest
        left.update((family, f) for f in rest)
    engine = SigmaEngine(mapped)
    print(
        "\nSigmaHQ network/web rules, all fields canonical after the pipeline:",
        {k: f"{a}/{n}" for k, (a, n) in sorted(counts.items())},
        f"\ncompile with the current engine: {len(engine.plans)}/{len(mapped)}",
        "\nfields left:",
        dict(left.most_common()),
    )
    for family, (floor, _) in FLOORS.items():
        assert counts[family][0] >= floor, (family, counts[family], left)
    # every proxy_generic rule maps but those using fields without a column
    proxy_generic = base / "rules" / "web" / "proxy_generic"
    for lr in mapped:
        if Path(lr.file or "").parent == proxy_generic:
            rest = fields(lr.rule) - set(COLUMNS)
            assert rest <= {"c-uri-extension", "cs-cookie"}, (lr.file, rest)
