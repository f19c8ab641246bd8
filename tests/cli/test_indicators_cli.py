"""``detect indicators stats|explain|validate`` and the indicator flags of ``detect run``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detect.cli import main


@pytest.fixture
def feeds(tmp_path: Path) -> Path:
    folder = tmp_path / "feeds"
    folder.mkdir()
    (folder / "block.csv").write_text(
        "type,value,source,confidence,severity\n"
        "ip,203.0.113.5,blocklist,80,high\n"
        "cidr,10.0.0.0/8,blocklist,,\n"
        "domain,evil.example,blocklist,,\n"
    )
    (folder / "broken.csv").write_text("type,value\nip,999.1.1.1\ndomain,ok.example\n")
    (tmp_path / "allow.txt").write_text("10.0.0.0/8\n")
    return folder


def run(*args: str) -> int:
    return main(list(args))


def test_stats_json(feeds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run("indicators", "stats", "--indicators", str(feeds), "--allowlist",
               str(tmp_path / "allow.txt"), "-f", "json", "--config", str(tmp_path / "none.toml"))
    assert code == 2  # the config file does not exist: a clear usage error
    assert "config file not found" in capsys.readouterr().err
    code = run("indicators", "stats", "--indicators", str(feeds), "--allowlist",
               str(tmp_path / "allow.txt"), "-f", "json")
    stats = json.loads(capsys.readouterr().out)
    assert code == 0
    assert stats["indicators"] == 3  # 203.0.113.5, evil.example, ok.example
    assert stats["suppressed"] == 1
    assert stats["problems"] == 1
    assert stats["by_type"] == {"ip": 1, "domain": 2}


def test_explain(feeds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("indicators", "explain", "www.evil.example", "--indicators", str(feeds)) == 0
    out = capsys.readouterr().out
    assert "in no loaded feed" in out
    assert "ioc:domain:evil.example" in out
    assert run("indicators", "explain", "10.0.0.0/8", "--indicators", str(feeds),
               "--allowlist", str(tmp_path / "allow.txt")) == 0
    out = capsys.readouterr().out
    assert "suppressed: list allow" in out
    assert run("indicators", "explain", "not a value!", "--indicators", str(feeds)) == 2
    assert "two labels" in capsys.readouterr().out


def test_validate_lists_problems_with_file_and_line(feeds: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert run("indicators", "validate", "--indicators", str(feeds)) == 2
    err = capsys.readouterr().err
    assert "broken.csv:2" in err
    assert "999.1.1.1" in err


def test_run_with_indicators_and_allowlist(feeds: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    logs = tmp_path / "e.ndjson"
    logs.write_text(
        '{"@timestamp":"2024-01-01T00:00:00Z","source.ip":"10.1.1.1","destination.ip":"203.0.113.5"}\n'
        '{"@timestamp":"2024-01-01T00:00:01Z","source.ip":"10.1.1.2","destination.ip":"8.8.8.8"}\n'
    )
    db = tmp_path / "a.duckdb"
    code = run("run", str(logs), "--db", str(db), "--indicators", str(feeds), "--allowlist",
               str(tmp_path / "allow.txt"), "--fail-on", "high",
               "--log-format", "json")
    assert code == 1  # a high alert with --fail-on high
    assert run("alerts", "--db", str(db), "-f", "json") == 0
    alerts = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(a["rule_id"], a["entity"]) for a in alerts] == [("ioc:ip:203.0.113.5", "10.1.1.1")]


def test_a_missing_or_unknown_feed_is_a_configuration_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs = tmp_path / "e.ndjson"
    logs.write_text('{"@timestamp":"2024-01-01T00:00:00Z","source.ip":"10.1.1.1"}\n')
    db = tmp_path / "a.duckdb"
    assert run("run", str(logs), "--db", str(db), "--indicators", str(tmp_path / "nope.csv")) == 2
    assert "no such feed file" in capsys.readouterr().err
    (tmp_path / "bad.bin").write_bytes(b"\x00\x01garbage")
    assert run("run", str(logs), "--db", str(db), "--indicators", str(tmp_path / "bad.bin")) == 2
    assert "not an indicator feed" in capsys.readouterr().err
    assert not db.exists()  # nothing ran, nothing was written


def test_a_missing_allowlist_is_a_configuration_error(
        feeds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs = tmp_path / "e.ndjson"
    logs.write_text('{"@timestamp":"2024-01-01T00:00:00Z","source.ip":"10.1.1.1"}\n')
    db = tmp_path / "a.duckdb"
    missing = str(tmp_path / "alow.txt")  # a typo of allow.txt
    # first without it: the index cached then must not stand in for the one with the list
    assert run("indicators", "stats", "--indicators", str(feeds)) == 0
    capsys.readouterr()
    for args in (["run", str(logs), "--db", str(db)],
                 ["match", str(logs), "-o", str(tmp_path / "h.parquet")],
                 ["indicators", "explain", "10.1.2.3"], ["indicators", "stats"],
                 ["indicators", "validate"], ["validate"]):
        assert run(*args, "--indicators", str(feeds), "--allowlist", missing) == 2, args
        err = capsys.readouterr().err
        assert f"{missing}: no such allowlist file or folder" in err, args
        assert "Traceback" not in err
    assert not db.exists() and not (tmp_path / "h.parquet").exists()


@pytest.mark.parametrize("command", [["stats"], ["validate"], ["explain", "203.0.113.5"]])
def test_a_feed_that_cannot_be_read_exits_2_in_every_command(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\nnot an indicator !!\n")
    assert run("indicators", *command, "--indicators", str(junk)) == 2  # as `detect run`
    err = capsys.readouterr().err
    assert str(junk) in err and "not an indicator feed" in err
    assert "Traceback" not in err


def test_the_run_warning_counts_the_unusable_entries_it_does_not_show(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feed = tmp_path / "f.csv"
    feed.write_text("type,value\nip,203.0.113.5\nip,999.1.1.1\nip,nope\nip,1.2.3.999\n")
    logs = tmp_path / "e.ndjson"
    logs.write_text('{"@timestamp": "2024-01-01T00:00:00Z", "source.ip": "203.0.113.5"}\n')
    (tmp_path / "no_rules").mkdir()
    code = run("run", str(logs), "--db", str(tmp_path / "a.duckdb"), "--indicators", str(feed),
               "--rules", str(tmp_path / "no_rules"))  # fmt: skip
    assert code == 0
    err = capsys.readouterr().err
    assert "3 feed entries could not be used" in err
    assert "(and 2 more)" in err  # one shown, two more: 1 + 2 = 3
