"""MISP loader: feed folders, both event wrappers, CSV exports, and the ESET events."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from detect.indicators import misp
from detect.indicators.model import INDICATOR_SCHEMA, FeedOptions, LoadResult
from detect.readers.source import read_head

SHA256 = "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c"
SHA1 = "0123456789abcdef0123456789abcdef01234567"
MD5 = "001dd76872d80801692ff942308c64e6"
UUID1 = "5bbe5baa-a364-4f58-8fd2-01550a016219"
UUID2 = "15ebb496-c51c-4f88-b60b-aba5f806db5f"

_n = 0


def attr(kind: str, value: str, *, to_ids: Any = True, **extra: Any) -> dict[str, Any]:
    global _n  # noqa: PLW0603 - unique uuids per attribute, test-local
    _n += 1
    out = {"type": kind, "value": value, "to_ids": to_ids, "category": "Network activity",
           "uuid": f"00000000-0000-4000-8000-{_n:012d}", "deleted": False, "comment": ""}
    out.update(extra)
    return out


def event(attributes: list[dict[str, Any]], *, objects: list[dict[str, Any]] | None = None,
          **extra: Any) -> dict[str, Any]:
    out = {"uuid": UUID1, "info": "Test event", "threat_level_id": "2",
           "Orgc": {"name": "CIRCL", "uuid": "55f6ea5e-2c60-40e5-964f-47a8950d210f"},
           "Tag": [{"name": "tlp:white"}, {"name": 'misp-galaxy:threat-actor="APT 28"'}],
           "Attribute": attributes, "Object": objects or []}
    out.update(extra)
    return out


def write(tmp_path: Path, doc: Any, name: str = "event.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc, indent=2))
    return path


def load(path: Path, **opts: Any) -> LoadResult:
    result = misp.load(path, options=FeedOptions(**opts))
    assert result.indicators.schema == INDICATOR_SCHEMA
    return result


def rows(result: LoadResult) -> list[tuple[Any, ...]]:
    t = result.indicators
    return list(zip(t["type"].to_pylist(), t["value"].to_pylist(), t["port"].to_pylist(),
                    strict=True))


TYPES = [
    ("ip-src", "192.0.2.1", [("ip", "192.0.2.1", None)]),
    ("ip-dst", "2001:DB8::1", [("ip", "2001:db8::1", None)]),
    ("ip-dst", "198.51.100.0/24", [("cidr", "198.51.100.0/24", None)]),
    ("ip-src|port", "192.0.2.2|4444", [("ip", "192.0.2.2", 4444)]),
    ("ip-dst|port", "192.0.2.3|443", [("ip", "192.0.2.3", 443)]),
    ("domain", "Evil.Example.", [("domain", "evil.example", None)]),
    ("hostname", "c2.evil.example", [("domain", "c2.evil.example", None)]),
    ("domain|ip", "evil.example|192.0.2.4",
     [("domain", "evil.example", None), ("ip", "192.0.2.4", None)]),
    ("url", "hxxp://evil[.]example/gate.php", [("url", "http://evil.example/gate.php", None)]),
    ("md5", MD5.upper(), [("md5", MD5, None)]),
    ("sha1", SHA1, [("sha1", SHA1, None)]),
    ("sha256", SHA256, [("sha256", SHA256, None)]),
    ("filename|md5", f"a.exe|{MD5}", [("md5", MD5, None)]),
    ("filename|sha1", f"b.dll|{SHA1}", [("sha1", SHA1, None)]),
    ("filename|sha256", f"c.bin|{SHA256}", [("sha256", SHA256, None)]),
    ("ja3-fingerprint-md5", MD5, [("ja3", MD5, None)]),
    ("email-src", "Bad@Evil.Example", [("email", "bad@evil.example", None)]),
    ("email-dst", "x@evil.example", [("email", "x@evil.example", None)]),
    ("email", "y@evil.example", [("email", "y@evil.example", None)]),
    ("user-agent", "EvilBot/1.0 ", [("user-agent", "EvilBot/1.0", None)]),
    ("x509-fingerprint-sha1", SHA1.upper(), [("sha1", SHA1, None)]),
    ("x509-fingerprint-sha256", SHA256, [("sha256", SHA256, None)]),
]


@pytest.mark.parametrize(("kind", "value", "expected"), TYPES,
                         ids=[f"{k}:{v}" for k, v, _ in TYPES])
def test_attribute_types(tmp_path: Path, kind: str, value: str,
                         expected: list[tuple[Any, ...]]) -> None:
    result = load(write(tmp_path, {"Event": event([attr(kind, value)])}))
    assert result.problems == [] and result.skipped == {}
    assert rows(result) == expected
    tags = result.indicators["tags"].to_pylist()[0]
    assert ("x509" in tags) is kind.startswith("x509")


@pytest.mark.parametrize("kind", ["link", "AS", "text", "regkey", "uri", "port", "comment"])
def test_other_types_are_counted_not_loaded(tmp_path: Path, kind: str) -> None:
    result = load(write(tmp_path, {"Event": event([attr(kind, "whatever")])}))
    assert result.indicators.num_rows == 0 and result.problems == []
    assert result.skipped == {f"unsupported type: {kind}": 1}


def test_to_ids_and_context(tmp_path: Path) -> None:
    doc = {"Event": event([attr("domain", "a.example"),
                           attr("domain", "b.example", to_ids=False),
                           attr("domain", "c.example", to_ids="0"),
                           attr("domain", "d.example", to_ids="1"),
                           attr("link", "https://blog.example/post", to_ids=False)])}
    path = write(tmp_path, doc)
    detection = load(path)
    assert [v for _, v, _ in rows(detection)] == ["a.example", "d.example"]
    assert detection.skipped == {"context (to_ids off)": 2, "unsupported type: link": 1}
    both = load(path, context=True)
    assert [v for _, v, _ in rows(both)] == ["a.example", "b.example", "c.example", "d.example"]
    assert both.indicators["to_ids"].to_pylist() == [True, False, False, True]
    assert both.skipped == {"unsupported type: link": 1}


def test_event_metadata(tmp_path: Path) -> None:
    doc = {"Event": event([attr("domain", "a.example", comment="C2 server",
                                first_seen="2021-06-01T00:00:00.000000+00:00",
                                last_seen="2021-07-01T12:00:00+02:00",
                                Tag=[{"name": "tlp:amber"}, {"name": "tlp:white"}])],
                          Galaxy=[{"GalaxyCluster": [
                              {"tag_name": 'misp-galaxy:threat-actor="APT 28"'},
                              {"tag_name": 'misp-galaxy:tool="X-Agent"'}]}])}
    row = load(write(tmp_path, doc), confidence=60).indicators.to_pylist()[0]
    assert row["source"] == "CIRCL"
    assert row["severity"] == "medium"
    assert row["confidence"] == 60  # MISP has none: the feed option applies
    assert row["tags"] == ["tlp:white", 'misp-galaxy:threat-actor="APT 28"',
                           'misp-galaxy:tool="X-Agent"', "tlp:amber"]
    assert row["description"] == "Test event — C2 server"
    assert row["valid_from"] == datetime(2021, 6, 1, tzinfo=UTC)
    assert row["valid_until"] == datetime(2021, 7, 1, 10, tzinfo=UTC)
    path, line = row["origin"].rsplit(":", 1)
    assert path == str(tmp_path / "event.json")
    assert '"uuid"' in (tmp_path / "event.json").read_text().splitlines()[int(line) - 1]


def test_decay_score_is_confidence(tmp_path: Path) -> None:
    scored = attr("domain", "a.example", decay_score=[{"score": 41.6, "decayed": False},
                                                       {"score": 72.2, "decayed": False}])
    doc = {"Event": event([scored, attr("domain", "b.example")])}
    got = load(write(tmp_path, doc), confidence=10).indicators["confidence"].to_pylist()
    assert got == [72, 10]


@pytest.mark.parametrize(("level", "severity"),
                         [("1", "high"), ("2", "medium"), ("3", "low"), ("4", None), (3, "low")])
def test_threat_level_to_severity(tmp_path: Path, level: Any, severity: str | None) -> None:
    doc = {"Event": event([attr("domain", "a.example")], threat_level_id=level)}
    assert load(write(tmp_path, doc)).indicators["severity"].to_pylist() == [severity]
    if severity is None:  # undefined: the feed option fills in
        got = load(write(tmp_path, doc), severity="low").indicators["severity"].to_pylist()
        assert got == ["low"]


def test_source_without_orgc(tmp_path: Path) -> None:
    doc = {"Event": event([attr("domain", "a.example")], Orgc=None)}
    path = write(tmp_path, doc, "sednit.misp.json")
    assert load(path).indicators["source"].to_pylist() == ["sednit"]
    assert load(path, source="feed-x").indicators["source"].to_pylist() == ["feed-x"]


def test_object_attributes_deleted_and_problems(tmp_path: Path) -> None:
    objects = [
        {"name": "domain-ip", "first_seen": "2020-01-01T00:00:00Z", "Attribute": [
            attr("domain", "obj.example"), attr("ip-dst", "192.0.2.9")]},
        {"name": "url", "deleted": True, "Attribute": [attr("url", "http://gone.example/")]},
    ]
    doc = {"Event": event([attr("domain", "x.example", deleted=True),
                           attr("ip-dst", "999.1.1.1"),
                           attr("ip-dst|port", "192.0.2.1"),
                           attr("ip-dst|port", "192.0.2.1|99999"),
                           attr("domain", "c.example", first_seen="not a time")],
                          objects=objects)}
    result = load(write(tmp_path, doc))
    assert rows(result) == [("domain", "obj.example", None), ("ip", "192.0.2.9", None)]
    assert result.indicators["valid_from"].to_pylist() == [datetime(2020, 1, 1, tzinfo=UTC)] * 2
    assert result.skipped == {"deleted": 2}
    reasons = [p.reason for p in result.problems]
    assert len(reasons) == 4
    assert "not an IP address" in reasons[0]
    assert "without its '|' separator" in reasons[1]
    assert "port out of range" in reasons[2]
    assert "ISO 8601" in reasons[3]
    assert all(p.line is not None and p.reason.startswith("00000000-") for p in result.problems)


def test_problems_of_attributes_without_uuid_name_their_place(tmp_path: Path) -> None:
    bare = [{"type": "ip-dst", "value": "not-an-ip", "to_ids": True},
            {"type": "domain", "value": "fine.example", "to_ids": True}, "junk"]
    objects = [{"name": "x", "Attribute": [{"type": "md5", "value": "zzzz", "to_ids": True}]}]
    result = load(write(tmp_path, {"Event": event(bare, objects=objects)}))
    assert rows(result) == [("domain", "fine.example", None)]
    assert [p.reason.split(":")[0] for p in result.problems] == [
        f"Attribute[0] of event {UUID1}", f"Attribute[2] of event {UUID1}",
        f"Object[0].Attribute[0] of event {UUID1}"]
    assert str(result.problems[0]).endswith(
        f"event.json: Attribute[0] of event {UUID1}: ip-dst: not an IP address: 'not-an-ip' "
        "('not-an-ip')")
    no_uuid = event(bare[:1])
    del no_uuid["uuid"]
    result = load(write(tmp_path, {"Event": no_uuid}, name="no_uuid.json"))
    assert result.problems[0].reason.startswith("Attribute[0]: ip-dst: not an IP address")


def test_rest_response_wrapper_and_gzip(tmp_path: Path) -> None:
    doc = {"response": [{"Event": event([attr("domain", "a.example")])},
                        {"Event": event([attr("domain", "b.example")], uuid=UUID2)}]}
    path = tmp_path / "events.json.gz"
    path.write_bytes(gzip.compress(json.dumps(doc).encode()))
    assert [v for _, v, _ in rows(load(path))] == ["a.example", "b.example"]


def test_not_an_event_is_a_problem(tmp_path: Path) -> None:
    result = load(write(tmp_path, {"something": "else"}))
    assert result.indicators.num_rows == 0 and "no MISP event" in result.problems[0].reason
    broken = tmp_path / "broken.json"
    broken.write_text('{"Event": {\n "info": \n')
    result = load(broken)
    assert "not valid JSON" in result.problems[0].reason and result.problems[0].line == 3


def _feed_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "circl-osint"
    folder.mkdir()
    one = event([attr("ip-dst", "192.0.2.1"), attr("domain", "ctx.example", to_ids=False)])
    two = event([attr("sha256", SHA256)], uuid=UUID2, Orgc=None, threat_level_id="1")
    missing = "aaaaaaaa-c51c-4f88-b60b-aba5f806db5f"
    manifest = {uuid: {"info": e["info"], "threat_level_id": e["threat_level_id"],
                       "timestamp": "1539269947"}
                for uuid, e in ((UUID1, one), (UUID2, two), (missing, one))}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / f"{UUID1}.json").write_text(json.dumps({"Event": one}))
    (folder / f"{UUID2}.json").write_text(json.dumps({"Event": two}))
    (folder / "hashes.csv").write_text(f"{MD5},{UUID1}\n")
    return folder


def test_feed_folder(tmp_path: Path) -> None:
    folder = _feed_folder(tmp_path)
    assert misp.sniff(b"", folder)
    assert misp.sniff((folder / "manifest.json").read_bytes(), folder / "manifest.json")
    for path in (folder, folder / "manifest.json"):
        result = load(path)
        assert rows(result) == [("ip", "192.0.2.1", None), ("sha256", SHA256, None)]
        assert result.indicators["source"].to_pylist() == ["CIRCL", "circl-osint"]
        assert result.indicators["severity"].to_pylist() == ["medium", "high"]
        assert result.skipped == {"context (to_ids off)": 1}
        assert len(result.problems) == 1
        assert "aaaaaaaa-c51c" in result.problems[0].reason
        assert "missing" in result.problems[0].reason


CSV_HEADER = ("uuid,event_id,category,type,value,comment,to_ids,date,object_relation,"
              "attribute_tag,object_uuid,object_name,object_meta_category")
CSV_EXPORT = "\n".join([
    CSV_HEADER,
    'a1,12,Network activity,ip-dst,192.0.2.10,"C2, primary",1,1545293354,,'
    '"tlp:green,malware",,,',
    "a2,12,Network activity,domain|ip,evil.example|192.0.2.11,,1,1545293354,,,,,",
    "a3,12,Network activity,domain,context.example,,0,1545293354,,,,,",
    "a4,12,Payload delivery,filename,evil.exe,,1,1545293354,,,,,",
    'a5,12,Network activity,url,"http://evil.example/a,b",,True,1545293354,url,,o1,url,network',
    "a6,12,Network activity,ip-dst,not-an-ip,,1,1545293354,,,,,",
    "",
])


def test_csv_export(tmp_path: Path) -> None:
    path = tmp_path / "misp.csv"
    path.write_text(CSV_EXPORT)
    assert misp.sniff(path.read_bytes(), path)
    result = load(path)
    assert rows(result) == [("ip", "192.0.2.10", None), ("domain", "evil.example", None),
                            ("ip", "192.0.2.11", None), ("url", "http://evil.example/a,b", None)]
    assert result.indicators["tags"].to_pylist()[0] == ["tlp:green", "malware"]
    assert result.indicators["description"].to_pylist()[0] == "C2, primary"
    assert set(result.indicators["source"].to_pylist()) == {"misp"}
    assert result.skipped == {"context (to_ids off)": 1, "unsupported type: filename": 1}
    assert [(p.line, "not an IP address" in p.reason) for p in result.problems] == [(7, True)]
    assert result.indicators["origin"].to_pylist()[0] == f"{path}:2"


def test_csv_with_context_columns(tmp_path: Path) -> None:
    path = tmp_path / "ctx.csv"
    path.write_text(
        "uuid,event_id,category,type,value,comment,to_ids,date,object_relation,"
        "event_info,event_source_org,event_threat_level_id,event_tag\n"
        "5c1b5e2a-0001-4f58-8fd2-01550a016219,12,Network activity,domain,a.example,,1,"
        '1545293354,,Phishing wave,CERT-X,3,"tlp:white,phishing"\n')
    row = load(path).indicators.to_pylist()[0]
    assert (row["source"], row["severity"], row["description"], row["tags"]) == (
        "CERT-X", "low", "Phishing wave", ["tlp:white", "phishing"])


@pytest.mark.parametrize(("head", "expected"), [
    (b'{"Event": {"info": "x"}}', True),
    (b'  {\n  "response": [{"Event": {}}]}', True),
    (b'[{"Event": {}}]', True),
    (CSV_EXPORT.encode(), True),
    (b'"uuid","event_id","category","type","value","comment","to_ids","date"\n', True),
    (b"uuid,event_id,foo\n", False),
    (b'{"type": "bundle", "objects": []}', False),
    (b"192.0.2.1\n", False),
    (b"", False),
])
def test_sniff(tmp_path: Path, head: bytes, expected: bool) -> None:
    assert misp.sniff(head, tmp_path / "feed.json") is expected


def test_sniff_folder_without_manifest(tmp_path: Path) -> None:
    assert not misp.sniff(b"", tmp_path)


# -- the ESET events -----------------------------------------------------------------------

# The types the brief asks to load, restated here so the test does not read the mapping
# it checks; domain|ip gives two rows.
LOADABLE = {"ip-src", "ip-dst", "ip-src|port", "ip-dst|port", "domain", "hostname", "domain|ip",
            "url", "md5", "sha1", "sha256", "filename|md5", "filename|sha1", "filename|sha256",
            "ja3-fingerprint-md5", "email-src", "email-dst", "email", "user-agent",
            "x509-fingerprint-sha1", "x509-fingerprint-sha256"}


def _eset_attributes(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        doc = json.load(f)
    events = [x["Event"] for x in doc["response"]] if "response" in doc else [doc["Event"]]
    out = []
    for e in events:
        out.extend(e.get("Attribute", []))
        out.extend(a for o in e.get("Object", []) for a in o.get("Attribute", []))
    return out


@pytest.mark.shared
@pytest.mark.parametrize("context", [False, True], ids=["detection", "context"])
def test_eset_events(shared_datasets: Path, context: bool) -> None:
    folder = shared_datasets / "misp" / "eset-malware-ioc"
    files = sorted(p for p in folder.rglob("*.json*") if p.name != "SOURCE.md")
    if not files:
        pytest.skip("ESET MISP events not present")
    events = 0
    attributes = to_ids = 0
    want_rows = 0
    want_skipped: Counter[str] = Counter()
    got_rows = 0
    got_skipped: Counter[str] = Counter()
    problems = []
    for path in files:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as f:
            doc = json.load(f)
        events += len(doc["response"]) if "response" in doc else 1
        for a in _eset_attributes(path):
            attributes += 1
            to_ids += a["to_ids"] is True
            if a["type"] not in LOADABLE:
                want_skipped[f"unsupported type: {a['type']}"] += 1
            elif a["to_ids"] is not True and not context:
                want_skipped["context (to_ids off)"] += 1
            else:
                want_rows += 2 if a["type"] == "domain|ip" else 1
        assert misp.sniff(read_head(path), path)
        result = misp.load(path, options=FeedOptions(context=context))
        got_rows += result.indicators.num_rows
        got_skipped.update(result.skipped)
        problems.extend(result.problems)
    assert (events, attributes, to_ids) == (57, 4194, 1326)  # as SOURCE.md states
    # every attribute is a row, a counted skip or a problem (these events have no bad values)
    assert problems == []
    assert got_skipped == want_skipped
    assert got_rows == want_rows
    assert want_rows == (1347 if not context else 2872)


@pytest.mark.shared
def test_eset_objects_and_metadata(shared_datasets: Path) -> None:
    path = shared_datasets / "misp" / "eset-malware-ioc" / "mozi" / "mozi.misp-event.json.gz"
    if not path.is_file():
        pytest.skip("ESET mozi event not present")
    result = misp.load(path, options=FeedOptions(context=True))
    table = result.indicators
    assert table.num_rows > 0
    assert "157.119.75.16" in table["value"].to_pylist()  # only inside a domain-ip object
    assert set(table["source"].to_pylist()) == {"ESET"}
    assert set(table["severity"].to_pylist()) == {"high"}
    assert all("ESET" in tags for tags in table["tags"].to_pylist())
