"""``detect rules list`` and ``detect rules test``."""

from __future__ import annotations

import csv
import io
import json
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
    assert rows["Many Downloads"]["supported"] == "no"
    assert "not supported yet" in rows["Many Downloads"]["why"]
    assert rows["Not From The Mirror"]["supported"] == "no"
    assert "filter" in rows["Not From The Mirror"]["why"]


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
