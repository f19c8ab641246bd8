"""``detect rules list`` and ``detect rules test``."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from detect.cli import cli, main

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "rules" / "sigma"
DOWNLOAD_ID = "8a3cf890-9184-4c7e-8a17-1bdcc9ef23b1"

GOOD = """
title: Suspicious Download
id: 11111111-2222-4333-8444-555555555555
status: test
level: high
logsource: {category: proxy}
detection:
    selection:
        url.path|endswith: ['.exe', '.dll']
        http.response.status_code: 200
    filter:
        url.domain|endswith: '.microsoft.com'
    condition: selection and not filter
"""
UNSUPPORTED = """
title: Windows Process
id: 22222222-2222-4333-8444-555555555555
status: experimental
level: medium
logsource: {category: process_creation, product: windows}
detection:
    selection: {Image|endswith: '\\\\cmd.exe'}
    condition: selection
"""
BROKEN = "title: Broken\nlogsource: {category: dns}\ndetection: {condition: selection}\n"


def run(*args: str) -> int:
    return main(list(args))


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "good.yml").write_text(GOOD)
    (folder / "windows.yml").write_text(UNSUPPORTED)
    (folder / "broken.yml").write_text(BROKEN)
    return folder


@pytest.fixture
def events(tmp_path: Path) -> Path:
    rows = [
        {
            "@timestamp": "2026-01-02T03:04:05Z",
            "event.dataset": "http",
            "source.ip": "10.0.0.1",
            "destination.ip": "198.51.100.7",
            "url.domain": "dl.example",
            "url.path": "/x/Setup.EXE",
            "http.response.status_code": 200,
        },
        {
            "@timestamp": "2026-01-02T03:04:06Z",
            "event.dataset": "http",
            "url.domain": "a.microsoft.com",
            "url.path": "/x/setup.exe",
            "http.response.status_code": 200,
        },
        {
            "@timestamp": "2026-01-02T03:04:07Z",
            "event.dataset": "http",
            "url.domain": "dl.example",
            "url.path": "/lib.dll",
            "http.response.status_code": 200,
        },
        {
            "@timestamp": "2026-01-02T03:04:08Z",
            "event.dataset": "http",
            "url.domain": "dl.example",
            "url.path": "/index.html",
            "http.response.status_code": 200,
        },
    ]
    path = tmp_path / "proxy.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ---------------------------------------------------------------------------------------
# rules list


def test_list_bundled_pack_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("rules", "list", "--rules", str(PACK), "-f", "json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == len(list(PACK.glob("*.yml")))
    assert {r["supported"] for r in rows} == {"yes"}
    assert len({r["id"] for r in rows}) == len(rows)
    download = next(r for r in rows if r["id"] == DOWNLOAD_ID)
    assert download == {
        "id": DOWNLOAD_ID,
        "title": "Executable or Script File Downloaded Over HTTP",
        "level": "low",
        "logsource": "category:proxy",
        "status": "experimental",
        "file": str(PACK / "proxy_executable_download.yml"),
        "supported": "yes",
        "why": "",
    }
    assert not any("/tests/" in r["file"] for r in rows)


def test_list_default_is_the_bundled_pack(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("rules", "list", "-f", "csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert DOWNLOAD_ID in {r["id"] for r in rows}


def test_list_reports_unsupported_and_broken(
    rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("rules", "list", "--rules", str(rules), "-f", "json") == 2  # a parse error
    rows = {Path(r["file"]).stem: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"good", "windows", "broken"}
    assert rows["good"]["supported"] == "yes"
    assert rows["good"]["level"] == "high"
    assert rows["windows"]["supported"] == "no"
    assert rows["windows"]["why"] == "field 'Image' is not a canonical column"
    assert rows["windows"]["logsource"] == "category:process_creation product:windows"
    assert rows["broken"]["supported"] == "no"
    assert rows["broken"]["why"].startswith("parse error: ")
    assert "SigmaDetectionError" in rows["broken"]["why"]


def test_list_correlation_and_filter_rules_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "corr.yml").write_text(
        GOOD
        + """name: download
---
title: Many Downloads
id: 33333333-2222-4333-8444-555555555555
correlation:
    type: event_count
    rules: [download]
    group-by: [source.ip]
    timespan: 5m
    condition: {gte: 10}
level: high
"""
    )
    (tmp_path / "filter.yml").write_text("""
title: Not From The Mirror
id: 44444444-2222-4333-8444-555555555555
logsource: {category: proxy}
filter:
    rules: [11111111-2222-4333-8444-555555555555]
    selection: {url.domain: mirror.example}
    condition: not selection
""")
    assert run("rules", "list", "--rules", str(tmp_path), "-f", "json") == 0
    rows = {r["title"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["Suspicious Download"]["supported"] == "yes"
    assert rows["Many Downloads"]["supported"] == "yes"  # runs as a correlation detector
    assert rows["Not From The Mirror"]["supported"] == "yes"  # a filter, applied to its rule


def test_list_table(rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("rules", "list", "--rules", str(rules)) == 2
    out = capsys.readouterr().out
    assert "3 rule(s), 1 run, 1 not supported, 1 parse error(s)" in out
    assert "Suspicious Download" in out


# ---------------------------------------------------------------------------------------
# rules test


def test_test_explains_hits_and_counts(
    rules: Path, events: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("rules", "test", "Suspicious Download", str(events), "--rules", str(rules)) == 0
    out = capsys.readouterr().out
    assert "rule 11111111-2222-4333-8444-555555555555: Suspicious Download (high)" in out
    assert "proxy.ndjson event 1 (event_index 0)" in out
    assert "10.0.0.1 -> 198.51.100.7" in out
    assert "selection: url.path = '/x/Setup.EXE'  [endswith '.exe']" in out
    assert "selection: http.response.status_code = 200  [= 200]" in out
    assert "proxy.ndjson event 3 (event_index 2)" in out
    assert "[endswith '.dll']" in out
    assert "event 2 " not in out and "event 4 " not in out  # filtered, and no .exe: misses
    assert "4 event(s) read, 4 in the rule's logsource, 2 matched" in out


def test_test_json_by_file_path(
    rules: Path, events: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("rules", "test", str(rules / "good.yml"), str(events), "-f", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["events"], doc["in_logsource"], doc["matched"]) == (4, 4, 2)
    assert [(h["event"], h["event_index"]) for h in doc["hits"]] == [(1, 0), (3, 2)]
    assert doc["hits"][0]["detections"] == [
        {
            "name": "selection",
            "fields": [
                {"field": "url.path", "value": "/x/Setup.EXE", "test": "endswith '.exe'"},
                {"field": "http.response.status_code", "value": 200, "test": "= 200"},
            ],
        }
    ]
    assert doc["hits"][0]["event_fields"]["source.ip"] == "10.0.0.1"
    assert doc["rule"]["condition"] == ["selection and not filter"]
    assert doc["files"] == [
        {"path": str(events), "format": "ndjson", "events": 4, "rejects": 0, "error": None}
    ]


def test_test_limit_and_csv(rules: Path, events: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        run(
            "rules",
            "test",
            "11111111",
            str(events),
            "--rules",
            str(rules),
            "--limit",
            "1",
            "-f",
            "csv",
        )
        == 0
    )
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert [(r["event"], r["detection"], r["field"], r["value"]) for r in rows] == [
        ("1", "selection", "url.path", "/x/Setup.EXE"),
        ("1", "selection", "http.response.status_code", "200"),
    ]
    assert "4 event(s) read, 2 matched" in captured.err


def test_test_no_hits(rules: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    quiet = tmp_path / "quiet.ndjson"
    quiet.write_text(
        json.dumps(
            {
                "@timestamp": "2026-01-02T03:04:05Z",
                "event.dataset": "dns",
                "dns.question.name": "example.org",
            }
        )
        + "\n"
    )
    assert run("rules", "test", "Suspicious Download", str(quiet), "--rules", str(rules)) == 0
    out = capsys.readouterr().out
    assert "1 event(s) read, 0 in the rule's logsource, 0 matched" in out
    assert "selection" not in out.split("\n", 2)[2]


def test_test_bundled_rule_on_samples(capsys: pytest.CaptureFixture[str]) -> None:
    samples = ROOT / "data" / "samples" / "generated" / "http.parquet"
    assert run("rules", "test", DOWNLOAD_ID[:8], str(samples), "-f", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["matched"] == len(doc["hits"]) > 0
    for hit in doc["hits"]:
        fields = {f["field"]: f for d in hit["detections"] for f in d["fields"]}
        assert fields["url.path"]["value"].lower().endswith(".exe")
        assert fields["http.response.status_code"]["value"] == 200


def test_unknown_rule_lists_near_matches(
    rules: Path, events: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("rules", "test", "Suspicious Downlod", str(events), "--rules", str(rules)) == 2
    err = capsys.readouterr().err
    assert "no rule 'Suspicious Downlod'" in err
    assert "did you mean: 11111111-2222-4333-8444-555555555555 (Suspicious Download)" in err
    assert "1 rule problem(s)" in err
    assert "Traceback" not in err


def test_unsupported_rule_says_why(
    rules: Path, events: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("rules", "test", "Windows Process", str(events), "--rules", str(rules)) == 2
    err = capsys.readouterr().err
    assert "cannot run: field 'Image' is not a canonical column" in err


def test_correlation_rule_points_to_detect_run(
    events: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = Path(__file__).resolve().parents[2]
    rule = root / "rules" / "correlation" / "ssh_brute_force.yml"
    assert (
        run("rules", "test", "SSH Brute Force From One Source", str(events), "--rules", str(rule))
        == 2
    )
    err = capsys.readouterr().err
    assert "is a correlation rule" in err and "detect run" in err and "ssh_session" in err


def test_broken_rule_file(rules: Path, events: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("rules", "test", str(rules / "broken.yml"), str(events)) == 2
    assert "cannot parse the rule" in capsys.readouterr().err


def test_missing_input_exits_3(
    rules: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(
        "rules", "test", "Suspicious Download", str(tmp_path / "nope.ndjson"), "--rules", str(rules)
    )
    assert code == 3
    assert "nope.ndjson" in capsys.readouterr().err


@pytest.mark.parametrize("sub", ["list", "test"])
def test_subcommand_help_has_examples(sub: str) -> None:
    result = CliRunner().invoke(cli, ["rules", sub, "--help"])
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.output
    assert f"detect rules {sub}" in result.output


# ---------------------------------------------------------------------------------------
# docs/sigma-support.md: every claim checked against the engine

DOC = ROOT / "docs" / "sigma-support.md"
D, P = "{category: dns}", "{category: proxy}"
DNS = {"event.dataset": "dns"}
HTTP = {"event.dataset": "http"}
TS = "2026-01-05T03:07:00Z"  # a Monday, ISO week 2


def q(name: str) -> dict[str, object]:
    return {**DNS, "dns.question.name": name}


def http(**fields: object) -> dict[str, object]:
    return {**HTTP, **{k.replace("__", "."): v for k, v in fields.items()}}


# feature (first cell of a row) -> (detection, logsource, event it hits, event it misses)
PROBES: dict[str, tuple[str, str, dict | None, dict | None]] = {
    "`contains`": ("sel: {dns.question.name|contains: EVIL}", D, q("a.evil.b"), q("a.b")),
    "`startswith`": ("sel: {dns.question.name|startswith: evil.}", D, q("Evil.x"), q("x.evil.")),
    "`endswith`": ("sel: {dns.question.name|endswith: .evil}", D, q("a.EVIL"), q("evil.a")),
    "`all`": ("sel: {dns.question.name|contains|all: [a, b]}", D, q("xaxbx"), q("xax")),
    "`cased`": ("sel: {dns.question.name|cased: Evil}", D, q("Evil"), q("evil")),
    "`re`": ("sel: {dns.question.name|re: 'ev.l'}", D, q("xevilx"), q("xEVILx")),
    "`re` with `i` / `m` / `s`": (
        "sel: {dns.question.name|re|i|m|s: '^EV.L$'}",
        D,
        q("evil"),
        q("xevil"),
    ),
    "`re` with lookaround or backreference": (
        "sel: {dns.question.name|re: '(?=a)b'}",
        D,
        None,
        None,
    ),
    "`re` on a timestamp column": ("sel: {'@timestamp|re': '2026'}", D, None, None),
    "`cidr`": (
        "sel: {dns.answers.data|cidr: 203.0.113.0/24}",
        D,
        {**DNS, "dns.answers.data": ["192.0.2.1", "203.0.113.9"]},
        {**DNS, "dns.answers.data": ["192.0.2.1"]},
    ),
    "`cidr` on a numeric column": ("sel: {destination.port|cidr: 10.0.0.0/8}", D, None, None),
    "`base64`": (
        "sel: {url.query|base64|contains: whoami}",
        P,
        http(url__query="c=d2hvYW1p"),
        http(url__query="c=whoami"),
    ),
    "`base64offset`": (
        "sel: {url.query|base64offset|contains: whoami}",
        P,
        http(url__query="x=aWQ7d2hvYW1p"),
        http(url__query="whoami"),
    ),
    "`wide` / `utf16be` / `utf16`": (
        "sel:\n  - {url.query|utf16be|base64: ab}\n  - {url.query|utf16|base64: ab}\n"
        "  - {url.query|wide|base64offset|contains: ab}",
        P,
        http(url__query="YQBiAA"),
        http(url__query="YWI="),
    ),
    "`utf16le`": (
        "sel: {url.query|utf16le|base64: ab}",
        P,
        http(url__query="YQBiAA=="),
        http(url__query="ab"),
    ),
    "`windash`": (
        "sel: {url.query|windash|contains: ' -enc '}",
        P,
        http(url__query="p /enc x"),
        http(url__query="p enc x"),
    ),
    "`exists`": (
        "sel: {user_agent.original|exists: true}",
        P,
        http(user_agent__original="x"),
        http(),
    ),
    "`gt` / `gte` / `lt` / `lte`": (
        "sel: {source.bytes|gt: 10, source.bytes|lte: 20, destination.bytes|gte: 1, "
        "destination.bytes|lt: 2}",
        P,
        http(source__bytes=15, destination__bytes=1),
        http(source__bytes=25, destination__bytes=1),
    ),
    "`neq`": (
        "sel: {destination.port|neq: 53}",
        D,
        {**DNS, "destination.port": 5353},
        {**DNS, "destination.port": 53},
    ),
    "`fieldref`": (
        "sel: {tls.server.name|fieldref: url.domain}",
        P,
        http(tls__server__name="A.example", url__domain="a.example"),
        http(tls__server__name="b.example", url__domain="a.example"),
    ),
    "`fieldref` with `startswith` / `endswith`": (
        "sel: {url.full|fieldref|endswith: url.path}",
        P,
        http(url__full="http://h/p", url__path="/p"),
        http(url__full="http://h/p", url__path="/q"),
    ),
    "`fieldref` on a list column": (
        "sel: {dns.answers.data|fieldref: dns.question.name}",
        D,
        None,
        None,
    ),
    "`expand` with placeholder values": (
        "sel: {dns.question.name|expand: '%internal_domains%'}",
        D,
        q("corp.example"),
        q("other.example"),
    ),
    "`expand` without placeholder values": (
        "sel: {dns.question.name|expand: '%internal_domains%'}",
        D,
        None,
        None,
    ),
    "`minute` / `hour` / `day` / `week` / `month` / `year`": (
        "sel: {'@timestamp|minute': 7, '@timestamp|hour|lt': 4, '@timestamp|day': 5, "
        "'@timestamp|week': 2, '@timestamp|month': 1, '@timestamp|year': 2026}",
        D,
        {**q("x"), "@timestamp": TS},
        {**q("x"), "@timestamp": "2026-01-05T05:07:00Z"},
    ),
    "strings": ("sel: {dns.question.name: Evil.Example}", D, q("evil.example"), q("evil.examples")),
    "lists of values": ("sel: {dns.question.name: [a, b]}", D, q("b"), q("c")),
    "wildcards `*` and `?`": ("sel: {dns.question.name: 'a*b?d'}", D, q("axxbcd"), q("abd")),
    "escaped wildcards `\\*`": ("sel: {dns.question.name: 'a\\*b'}", D, q("a*b"), q("axb")),
    "`null`": ("sel: {user_agent.original: null}", P, http(), http(user_agent__original="x")),
    "numbers": (
        "sel: {destination.port: 53, dns.question.name: 7}",
        D,
        {**q("7"), "destination.port": 53},
        {**q("7"), "destination.port": 54},
    ),
    "booleans": ("sel: {dns.question.name: true}", D, q("TRUE"), q("yes")),
    "wildcard on a numeric column": (
        "sel: {destination.port: '8*'}",
        D,
        {**q("x"), "destination.port": 8080},
        {**q("x"), "destination.port": 443},
    ),
    "string value on a timestamp column": ("sel: {'@timestamp': x}", D, None, None),
    "field that is not a canonical column": ("sel: {Image: x}", D, None, None),
    "keyword strings": ("sel: ['*ZZTOP*']", D, {**q("x"), "url.query": "a=zztop"}, q("zz top")),
    "keywords with `contains`": ("sel: {'|contains': zztop}", D, q("xzztopx"), q("zz")),
    "keywords with `re`": ("sel: {'|re': 'zz.op'}", D, None, None),
    "`and` / `or` / `not`": (
        "a: {dns.question.name|contains: x}\nb: {dns.question.name|contains: y}\n"
        "c: {dns.question.name|contains: z}\ncondition: a and (b or c) and not (b and c)",
        D,
        q("xy"),
        q("xyz"),
    ),
    "parentheses": (
        "a: {dns.question.name: x}\nb: {destination.port: 1}\ncondition: not (a or b)",
        D,
        q("y"),
        q("x"),
    ),
    "`1 of selection_*`": (
        "selection_a: {dns.question.name: a}\nselection_b: "
        "{dns.question.name: b}\ncondition: 1 of selection_*",
        D,
        q("b"),
        q("c"),
    ),
    "`all of selection_*`": (
        "selection_a: {dns.question.name|contains: a}\nselection_b: "
        "{dns.question.name|contains: b}\ncondition: all of selection_*",
        D,
        q("ab"),
        q("a"),
    ),
    "`1 of them`": (
        "a: {dns.question.name: a}\nb: {dns.question.name: b}\ncondition: 1 of them",
        D,
        q("a"),
        q("c"),
    ),
    "`all of them`": (
        "a: {dns.question.name|contains: a}\nb: {dns.question.name|contains: b}\n"
        "condition: all of them",
        D,
        q("ba"),
        q("b"),
    ),
    "`_`-prefixed detections": (
        "a: {dns.question.name: a}\n_aux: {dns.question.name: b}\ncondition: 1 of them",
        D,
        q("a"),
        q("b"),
    ),
    "several conditions (a list)": (
        "a: {dns.question.name: a}\nb: {dns.question.name: b}\ncondition: [a, b]",
        D,
        q("b"),
        q("c"),
    ),
    "pipe aggregations (`\\| count() > 5`, `\\| near`)": (
        "sel: {dns.question.name: a}\ncondition: sel | count() > 5",
        D,
        None,
        None,
    ),
    "`category: dns`": (
        "sel: {destination.port: 53}",
        D,
        {**DNS, "destination.port": 53},
        {"event.dataset": "conn", "destination.port": 53},
    ),
    "`category: proxy` / `webserver`": (
        "sel: {destination.port: 80}",
        "{category: webserver}",
        http(destination__port=80),
        {"event.dataset": "conn", "destination.port": 80},
    ),
    "`category: firewall`": (
        "sel: {destination.port: 22}",
        "{category: firewall}",
        {"event.dataset": "flow", "destination.port": 22},
        {**DNS, "destination.port": 22},
    ),
    "`product: zeek` with `service`": (
        "sel: {destination.port: 443}",
        "{product: zeek, service: ssl}",
        {"event.dataset": "tls", "destination.port": 443},
        {"event.dataset": "conn", "destination.port": 443},
    ),
    "any other logsource": (
        "sel: {destination.port: 443}",
        "{product: windows}",
        {"event.dataset": "conn", "destination.port": 443},
        {"event.dataset": "conn", "destination.port": 80},
    ),
    "detection rules": ("sel: {dns.question.name: a}", D, q("a"), q("b")),
}
CORRELATION = """
title: Many
id: 33333333-2222-4333-8444-555555555555
correlation: {type: event_count, rules: [probe], group-by: [source.ip], timespan: 5m,
              condition: {gte: 10}}
"""
FILTER = """
title: A Filter
logsource: {category: dns}
filter: {rules: [probe], selection: {dns.question.name: x}, condition: not selection}
"""
DOCUMENTS = {"correlation rules": CORRELATION, "filter rules": FILTER}
PLACEHOLDERS = {"internal_domains": ["corp.example", "*.corp.example"]}


def doc_rows() -> list[tuple[str, str, str]]:
    """(feature, supported, notes) of every table row of the page, cells as written."""
    rows = []
    for line in DOC.read_text().splitlines():
        if not line.startswith("| ") or line.startswith(("| feature", "| ---")):
            continue
        feature, supported, notes = (c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1])
        rows.append((feature, supported, notes.replace("\\|", "|")))
    return rows


def test_every_probe_is_a_row_of_the_page() -> None:
    features = [r[0] for r in doc_rows()]
    assert len(features) == len(set(features))
    assert set(PROBES) | set(DOCUMENTS) == set(features)


def probe_rule(feature: str) -> str:
    detection, logsource, _, _ = PROBES[feature]
    if "condition:" not in detection:
        detection += "\ncondition: sel"
    body = "\n".join("    " + line for line in detection.splitlines())
    return (
        f"title: probe\nname: probe\nid: 6f1b1d7e-4c1e-4a8f-9d0e-2f3a4b5c6d7e\n"
        f"logsource: {logsource}\ndetection:\n{body}\n"
    )


@pytest.mark.parametrize(
    ("feature", "supported", "notes"), doc_rows(), ids=[r[0] for r in doc_rows()]
)
def test_sigma_support_doc(feature: str, supported: str, notes: str, tmp_path: Path) -> None:
    from detect.cli.rules import catalogue
    from detect.sigma import SigmaEngine, parse_rules
    from tests.sigma.test_engine import batch_of

    assert supported in ("yes", "no")
    text = DOCUMENTS.get(feature) or probe_rule(feature)
    if feature in DOCUMENTS:
        text = probe_rule("detection rules") + "---\n" + text
    path = tmp_path / "probe.yml"
    path.write_text(text)
    placeholders = PLACEHOLDERS if "with placeholder values" in feature else None
    if placeholders:
        loaded, _ = parse_rules([path])
        engine = SigmaEngine(loaded, placeholders=placeholders)
        rows = [
            {
                "title": "probe",
                "supported": "no" if engine.unsupported else "yes",
                "why": engine.unsupported[0].reason if engine.unsupported else "",
            }
        ]
    else:
        rows = [
            r for r in catalogue((str(path),)) if r["title"] != "probe" or feature not in DOCUMENTS
        ]
    [row] = rows
    assert row["supported"] == supported, row["why"]
    if supported == "no":
        quoted = re.findall(r"`([^`]+)`", notes)
        assert quoted, f"{feature}: say the engine's reason in backticks"
        assert any(reason in row["why"] for reason in quoted), (row["why"], quoted)
        return
    _, _, hit, miss = PROBES.get(feature, (None, None, None, None))
    if hit is None:
        return
    loaded, errors = parse_rules([path])
    assert not errors
    engine = SigmaEngine(loaded, placeholders=placeholders)
    base = {"@timestamp": TS}
    batch = batch_of([{**base, **hit}, {**base, **miss}])
    assert engine.match(batch).column("event_index").to_pylist() == [0]


def test_a_regex_re2_rejects_is_one_problem_without_native_log_noise(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "la.yml").write_text(
        "title: lookahead\nid: 11111111-2222-3333-4444-555555555555\n"
        "logsource: {category: dns}\ndetection:\n  sel:\n"
        "    dns.question.name|re: 'evil(?=\\.com)'\n  condition: sel\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "detect", "validate", "--rules", str(tmp_path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "la.yml:6" in out.stderr and "(?=" in out.stderr  # the problem, with its line
    assert "re2.cc" not in out.stderr and "absl" not in out.stderr  # RE2's own log lines
