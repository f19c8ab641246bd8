"""STIX 2.1 loader: every supported pattern shape, every rejected one, and the OASIS bundles."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from detect.indicators import stix
from detect.indicators.model import INDICATOR_SCHEMA, FeedOptions, LoadResult

IND_ID = "indicator--11111111-2222-4333-8444-555555555555"
SHA256 = "EF537F25C895BFA782526529A9B63D97AA631564D5D789C2B765448C8635FB6C"
SHA1 = "0123456789ABCDEF0123456789ABCDEF01234567"
MD5 = "001DD76872D80801692FF942308C64E6"


def indicator(pattern: str, **extra: Any) -> dict[str, Any]:
    obj = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": IND_ID,
        "created": "2020-01-01T00:00:00.000Z",
        "modified": "2020-01-01T00:00:00.000Z",
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": "2020-01-01T00:00:00Z",
    }
    obj.update(extra)
    return obj


def bundle(*objects: dict[str, Any]) -> dict[str, Any]:
    return {"type": "bundle", "id": "bundle--aaaaaaaa-2222-4333-8444-555555555555",
            "objects": list(objects)}


def load_doc(tmp_path: Path, doc: Any, name: str = "feed.json", **opts: Any) -> LoadResult:
    path = tmp_path / name
    path.write_text(json.dumps(doc, indent=2))
    result = stix.load(path, options=FeedOptions(**opts))
    assert result.indicators.schema == INDICATOR_SCHEMA
    return result


def rows(result: LoadResult) -> list[tuple[Any, ...]]:
    t = result.indicators
    return list(zip(t["type"].to_pylist(), t["value"].to_pylist(), t["port"].to_pylist(),
                    strict=True))


SUPPORTED = [
    ("[ipv4-addr:value = '198.51.100.7']", [("ip", "198.51.100.7", None)]),
    ("[ipv4-addr:value = '198.51.100.0/24']", [("cidr", "198.51.100.0/24", None)]),
    ("[ipv4-addr:value = '198.51.100.9/24']", [("cidr", "198.51.100.0/24", None)]),
    ("[ipv4-addr:value = '198.51.100.7/32']", [("ip", "198.51.100.7", None)]),
    ("[ipv6-addr:value = '2001:DB8::1']", [("ip", "2001:db8::1", None)]),
    ("[ipv6-addr:value = '2001:db8::/32']", [("cidr", "2001:db8::/32", None)]),
    ("[domain-name:value = 'Evil.Example.']", [("domain", "evil.example", None)]),
    ("[url:value = 'HTTP://Evil.Example:80/a?b=1#frag']",
     [("url", "http://evil.example/a?b=1", None)]),
    (f"[file:hashes.'SHA-256' = '{SHA256}']", [("sha256", SHA256.lower(), None)]),
    (f"[file:hashes.MD5 = '{MD5}']", [("md5", MD5.lower(), None)]),
    (f"[file:hashes.'MD5' = '{MD5}']", [("md5", MD5.lower(), None)]),
    (f"[file:hashes.'SHA-1' = '{SHA1}']", [("sha1", SHA1.lower(), None)]),
    ("[email-addr:value = 'Bad@Evil.Example']", [("email", "bad@evil.example", None)]),
    (f"[x509-certificate:hashes.'SHA-1' = '{SHA1}']", [("sha1", SHA1.lower(), None)]),
    (f"[x509-certificate:hashes.'SHA-256' = '{SHA256}']",
     [("sha256", SHA256.lower(), None)]),
    ("[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = 'EvilBot/1']",
     [("user-agent", "EvilBot/1", None)]),
    # OR inside one observation and across observations: one row per operand
    ("[domain-name:value = 'a.example' OR ipv4-addr:value = '192.0.2.1']",
     [("domain", "a.example", None), ("ip", "192.0.2.1", None)]),
    ("[domain-name:value = 'a.example'] OR [ipv4-addr:value = '192.0.2.1']",
     [("domain", "a.example", None), ("ip", "192.0.2.1", None)]),
    ("([domain-name:value = 'a.example'] OR ([url:value = 'http://b.example/x']))",
     [("domain", "a.example", None), ("url", "http://b.example/x", None)]),
    ("[(ipv4-addr:value = '192.0.2.1' OR ipv4-addr:value = '192.0.2.2')]",
     [("ip", "192.0.2.1", None), ("ip", "192.0.2.2", None)]),
    # IN is an OR of equalities
    ("[ipv4-addr:value IN ('192.0.2.1', '192.0.2.0/28')]",
     [("ip", "192.0.2.1", None), ("cidr", "192.0.2.0/28", None)]),
    # hashes of one file ANDed: each identifies the file
    (f"[file:hashes.MD5 = '{MD5}' AND file:hashes.'SHA-256' = '{SHA256}']",
     [("md5", MD5.lower(), None), ("sha256", SHA256.lower(), None)]),
    # network traffic to an address (and port)
    ("[network-traffic:dst_ref.type = 'ipv4-addr' AND "
     "network-traffic:dst_ref.value = '203.0.113.5' AND network-traffic:dst_port = 8443]",
     [("ip", "203.0.113.5", 8443)]),
    ("[network-traffic:src_ref.value = '203.0.113.6']", [("ip", "203.0.113.6", None)]),
]


@pytest.mark.parametrize(("pattern", "expected"), SUPPORTED, ids=[p for p, _ in SUPPORTED])
def test_supported_shapes(tmp_path: Path, pattern: str, expected: list[tuple[Any, ...]]) -> None:
    result = load_doc(tmp_path, bundle(indicator(pattern)))
    assert result.problems == []
    assert rows(result) == expected


def test_x509_hashes_are_tagged(tmp_path: Path) -> None:
    pattern = f"[x509-certificate:hashes.'SHA-1' = '{SHA1}' OR file:hashes.'SHA-1' = '{SHA1}']"
    result = load_doc(tmp_path, bundle(indicator(pattern, labels=["c2"])))
    assert result.indicators["tags"].to_pylist() == [["c2", "x509"], ["c2"]]


UNSUPPORTED = [
    ("[ipv4-addr:value = '192.0.2.1'] AND [domain-name:value = 'a.example']",
     "AND across observations"),
    ("[ipv4-addr:value = '192.0.2.1' AND domain-name:value = 'a.example']",
     "different objects"),
    ("[ipv4-addr:value = '192.0.2.1'] FOLLOWEDBY [domain-name:value = 'a.example']",
     "FOLLOWEDBY"),
    ("[domain-name:value MATCHES '^evil']", "MATCHES"),
    ("[domain-name:value LIKE 'evil%']", "LIKE"),
    ("[ipv4-addr:value ISSUBSET '192.0.2.0/24']", "ISSUBSET"),
    ("[ipv4-addr:value ISSUPERSET '192.0.2.0/24']", "ISSUPERSET"),
    ("[network-traffic:dst_port > 1024]", "operator >"),
    ("[domain-name:value != 'a.example']", "negated"),
    ("[domain-name:value NOT = 'a.example']", "negated"),
    ("[ipv4-addr:value NOT IN ('192.0.2.1')]", "NOT IN"),
    ("[file:name = 'a.exe'] WITHIN 300 SECONDS", "WITHIN"),
    ("[file:name = 'a.exe'] REPEATS 5 TIMES", "REPEATS"),
    ("[ipv4-addr:value = '192.0.2.1'] START t'2020-01-01T00:00:00Z' "
     "STOP t'2020-02-01T00:00:00Z'", "START/STOP"),
    ("[process:name = 'evil.exe']", "process:name is not supported"),
    ("[file:name = 'CBricksDoc']", "file:name is not supported"),
    ("[file:hashes.'SHA-512' = 'abcd']", "SHA-512"),
    ("[x509-certificate:serial_number = '4c:0b']", "serial_number is not supported"),
    ("[x509-certificate:issuer = 'CN=X' AND x509-certificate:serial_number = '4c:0b']",
     "other than hashes"),
    ("[domain-name:value = 'a.example' AND domain-name:value = 'b.example']",
     "AND of conditions on one domain-name"),
    ("[ipv4-addr:value = true]", "literals"),
]


@pytest.mark.parametrize(("pattern", "reason"), UNSUPPORTED, ids=[r for _, r in UNSUPPORTED])
def test_unsupported_shapes_are_problems(tmp_path: Path, pattern: str, reason: str) -> None:
    result = load_doc(tmp_path, bundle(indicator(pattern)))
    assert result.indicators.num_rows == 0
    assert len(result.problems) == 1
    problem = result.problems[0]
    assert IND_ID in problem.reason and reason in problem.reason
    assert problem.path == str(tmp_path / "feed.json")
    assert problem.line is not None  # the line of the indicator's "id"
    assert '"id": "indicator--' in (tmp_path / "feed.json").read_text().splitlines()[
        problem.line - 1]


def test_or_keeps_the_operands_it_can_express(tmp_path: Path) -> None:
    pattern = ("[domain-name:value = 'a.example' OR domain-name:value MATCHES '^b'] "
               "OR ([ipv4-addr:value = '192.0.2.1'] FOLLOWEDBY [ipv4-addr:value = '192.0.2.2'])"
               " OR [ipv4-addr:value = 'not-an-ip']")
    result = load_doc(tmp_path, bundle(indicator(pattern)))
    assert rows(result) == [("domain", "a.example", None)]
    reasons = sorted(p.reason for p in result.problems)
    assert len(reasons) == 3
    assert any("MATCHES" in r for r in reasons)
    assert any("FOLLOWEDBY" in r for r in reasons)
    assert any("not an IP address" in r for r in reasons)
    assert {p.raw for p in result.problems} >= {"domain-name:value MATCHES '^b'"}


def test_syntax_error_is_a_problem(tmp_path: Path) -> None:
    result = load_doc(tmp_path, bundle(indicator("[ipv4-addr:value = '1.2.3.4'"),
                                       indicator("ipv4-addr:value = '1.2.3.4'",
                                                 id="indicator--22222222-2222-4333-8444-5")))
    assert result.indicators.num_rows == 0
    assert len(result.problems) == 2
    assert all("not a valid STIX pattern" in p.reason for p in result.problems)


def test_lifecycle_metadata_and_tags(tmp_path: Path) -> None:
    obj = indicator("[domain-name:value = 'a.example']", name="C2 domain",
                    description="seen in campaign X", confidence=85,
                    valid_from="2021-03-04T05:06:07.123456789Z",
                    valid_until="2022-01-01T00:00:00+02:00",
                    indicator_types=["malicious-activity"], labels=["c2", "malicious-activity"],
                    object_marking_refs=[
                        "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"])
    row = load_doc(tmp_path, bundle(obj), severity="high").indicators.to_pylist()[0]
    assert row["confidence"] == 85
    assert row["severity"] == "high"  # STIX has none: the feed option applies
    assert row["valid_from"] == datetime(2021, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
    assert row["valid_until"] == datetime(2021, 12, 31, 22, 0, tzinfo=UTC)
    assert row["tags"] == ["malicious-activity", "c2", "tlp:green"]
    assert row["description"] == "C2 domain — seen in campaign X"
    assert row["to_ids"] is True
    assert row["origin"].startswith(f"{tmp_path / 'feed.json'}:")


def test_bad_confidence_and_timestamp_are_problems(tmp_path: Path) -> None:
    result = load_doc(tmp_path, bundle(
        indicator("[domain-name:value = 'a.example']", confidence=150),
        indicator("[domain-name:value = 'b.example']", valid_until="yesterday",
                  id="indicator--33333333-2222-4333-8444-555555555555")))
    assert result.indicators.num_rows == 0
    assert [("confidence" in p.reason, "timestamp" in p.reason) for p in result.problems] == [
        (True, False), (False, True)]


def test_skips_are_counted_by_reason(tmp_path: Path) -> None:
    doc = bundle(
        indicator("[domain-name:value = 'revoked.example']", revoked=True),
        indicator("title: x", pattern_type="sigma",
                  id="indicator--44444444-2222-4333-8444-555555555555"),
        indicator("alert tcp any any -> any any (sid:1;)", pattern_type="snort",
                  id="indicator--55555555-2222-4333-8444-555555555555"),
        {"type": "malware", "id": "malware--66666666-2222-4333-8444-555555555555"},
        {"type": "relationship", "id": "relationship--77777777-2222-4333-8444-555555555555"},
        {"type": "relationship", "id": "relationship--88888888-2222-4333-8444-555555555555"},
    )
    result = load_doc(tmp_path, doc)
    assert result.indicators.num_rows == 0
    assert result.problems == []
    assert result.skipped == {"revoked": 1, "pattern_type sigma": 1, "pattern_type snort": 1,
                              "not an indicator: malware": 1,
                              "not an indicator: relationship": 2}


def test_newest_version_wins(tmp_path: Path) -> None:
    old = indicator("[domain-name:value = 'old.example']")
    new = indicator("[domain-name:value = 'new.example']", modified="2021-01-01T00:00:00Z")
    result = load_doc(tmp_path, bundle(new, old))
    assert rows(result) == [("domain", "new.example", None)]
    assert result.skipped == {"older version": 1}


IDENTITY = {"type": "identity", "id": "identity--99999999-2222-4333-8444-555555555555",
            "name": "Example CERT", "identity_class": "organization"}


def test_source_is_the_creator_identity(tmp_path: Path) -> None:
    other = {**IDENTITY, "id": "identity--aaaaaaaa-2222-4333-8444-555555555555",
             "name": "Other Org"}
    doc = bundle(IDENTITY, other,
                 indicator("[domain-name:value = 'a.example']", created_by_ref=other["id"]),
                 {"type": "report", "id": "report--bbbbbbbb-2222-4333-8444-555555555555",
                  "created_by_ref": IDENTITY["id"]},
                 indicator("[domain-name:value = 'b.example']",
                           id="indicator--cccccccc-2222-4333-8444-555555555555"))
    sources = load_doc(tmp_path, doc, source="configured").indicators["source"].to_pylist()
    # the indicator's own creator, else the report's (the bundle's producer)
    assert sources == ["Other Org", "Example CERT"]


def test_source_falls_back_to_option_then_file_name(tmp_path: Path) -> None:
    doc = bundle(indicator("[domain-name:value = 'a.example']",
                           created_by_ref="identity--not-in-this-bundle"))
    assert load_doc(tmp_path, doc, "apt9.json.gz").indicators["source"].to_pylist() == ["apt9"]
    assert load_doc(tmp_path, doc, source="cti").indicators["source"].to_pylist() == ["cti"]


def test_single_object_and_list(tmp_path: Path) -> None:
    one = load_doc(tmp_path, indicator("[domain-name:value = 'a.example']"))
    assert rows(one) == [("domain", "a.example", None)]
    many = load_doc(tmp_path, [indicator("[domain-name:value = 'a.example']"), IDENTITY])
    assert rows(many) == [("domain", "a.example", None)]
    assert many.skipped == {"not an indicator: identity": 1}


def test_invalid_json_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"type": "bundle",\n "objects": [\n')
    result = stix.load(path, options=FeedOptions())
    assert result.indicators.num_rows == 0
    assert len(result.problems) == 1 and "not valid JSON" in result.problems[0].reason


def test_gzip_bundle(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "feed.json.gz"
    path.write_bytes(gzip.compress(json.dumps(bundle(indicator(
        "[domain-name:value = 'a.example']"))).encode()))
    assert rows(stix.load(path, options=FeedOptions())) == [("domain", "a.example", None)]


@pytest.mark.parametrize(("head", "expected"), [
    (json.dumps(bundle(indicator("[domain-name:value = 'a.example']"))).encode(), True),
    (json.dumps(indicator("[domain-name:value = 'a.example']")).encode(), True),
    (b'\xef\xbb\xbf  {"type": "bundle", "id": "bundle--x", "objects": []}', True),
    (b'{"Event": {"info": "x", "Attribute": []}}', False),
    (b'{"response": [{"Event": {}}]}', False),
    (b"1.2.3.4\nevil.example\n", False),
    (b"", False),
])
def test_sniff(head: bytes, expected: bool) -> None:
    assert stix.sniff(head, Path("x.json")) is expected


# -- the OASIS examples: APT1 and Poison Ivy report bundles, spec examples --------------------

def _operands(pattern: str) -> int:
    """OR operands counted with plain string splitting (independent of the parser)."""
    return pattern.count(" OR ") + 1


@pytest.mark.shared
def test_oasis_report_bundles(shared_datasets: Path) -> None:
    folder = shared_datasets / "stix" / "oasis-cti-stix2-json-schemas" / "examples"
    reports = [folder / "threat-reports" / name for name in ("apt1.json", "poisonivy.json")]
    if not all(p.is_file() for p in reports):
        pytest.skip("OASIS threat-report bundles not present")
    total_indicators = 0
    for path in reports:
        doc = json.loads(path.read_text())
        indicators = [o for o in doc["objects"] if o["type"] == "indicator"]
        others = len(doc["objects"]) - len(indicators)
        total_indicators += len(indicators)
        operands = sum(_operands(o["pattern"]) for o in indicators)
        result = stix.load(path, options=FeedOptions())
        # every OR operand is a row or a problem; nothing vanishes
        assert result.indicators.num_rows + len(result.problems) == operands
        assert sum(result.skipped.values()) == others
        problem_ids = {p.reason.split(":", 1)[0] for p in result.problems}
        assert problem_ids <= {o["id"] for o in indicators}
    assert total_indicators == 37

    apt1 = stix.load(reports[0], options=FeedOptions())
    assert apt1.indicators.num_rows == 10  # 4 CIDRs, 3 domains, 3 MD5s
    assert ("cidr", "223.166.0.0/15", None) in rows(apt1)
    assert ("md5", "001dd76872d80801692ff942308c64e6", None) in rows(apt1)
    assert len(apt1.problems) == 2  # x509 issuer AND serial_number
    assert all("x509-certificate" in p.reason for p in apt1.problems)
    assert set(apt1.indicators["source"].to_pylist()) == {"apt1"}

    ivy = stix.load(reports[1], options=FeedOptions())
    assert set(ivy.indicators["source"].to_pylist()) == {"FireEye, Inc."}  # the report's author
    assert ("domain", "www.webserver.dynssl.com", None) in rows(ivy)
    file_name = ("property file:name is not supported (see detect.indicators.stix for the "
                 "supported shapes)")
    reasons = sorted(p.reason.split(": ", 1)[1] for p in ivy.problems)
    assert reasons == ["not a domain name: 'domain autuo.xicp.net'", file_name, file_name]


@pytest.mark.shared
def test_oasis_spec_examples(shared_datasets: Path) -> None:
    folder = shared_datasets / "stix" / "oasis-cti-stix2-json-schemas" / "examples"
    email = stix.load(folder / "malicious-email-indicator-with-attachment.json",
                      options=FeedOptions())
    assert email.indicators.num_rows == 0
    assert len(email.problems) == 2 and all("MATCHES" in p.reason for p in email.problems)
    coa = stix.load(folder / "indicators-for-C2-with-COA.json", options=FeedOptions())
    assert sorted(rows(coa)) == [
        ("ip", "10.0.0.0", None),
        ("sha256", "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c", None)]
    assert set(coa.indicators["source"].to_pylist()) == {
        "The MITRE Corporation - DHS Support Team"}
    # SCOs without created/modified/spec_version are counted, not problems
    infra = stix.load(folder / "infrastructure.json", options=FeedOptions())
    assert infra.problems == [] and infra.skipped["not an indicator: ipv4-addr"] == 1


def test_valid_until_not_after_valid_from_is_a_problem(tmp_path: Path) -> None:
    backwards = indicator("[ipv4-addr:value = '198.51.100.7']",
                          valid_from="2024-01-02T00:00:00Z", valid_until="2024-01-01T00:00:00Z")
    fine = indicator("[ipv4-addr:value = '198.51.100.8']",
                     id="indicator--33333333-2222-4333-8444-555555555555",
                     valid_from="2024-01-01T00:00:00Z", valid_until="2024-01-02T00:00:00Z")
    result = load_doc(tmp_path, bundle(backwards, fine))
    assert rows(result) == [("ip", "198.51.100.8", None)]  # never valid: not loaded
    (problem,) = result.problems
    assert backwards["id"] in problem.reason and "not after valid_from" in problem.reason
