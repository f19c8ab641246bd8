"""Loading warninglists and allowlists: real MISP lists, bad input as problems, never crashes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from detect.errors import InputError
from detect.indicators.warninglists import MISP_TYPES, load_warninglists


def _write(path: Path, doc: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def test_real_lists_load(shared_datasets: Path) -> None:
    lists = load_warninglists([shared_datasets / "warninglists" / "lists"])
    assert len(lists.lists) == 136
    assert {"rfc1918", "public-dns-v4", "google", "tranco10k"} <= set(lists.names())
    assert sum(w.entries for w in lists.lists) == 528_972
    # a few dozen odd entries (one-label names, "a,b" hosts), each named, none fatal
    assert 0 < len(lists.problems) < 100
    assert all("list '" in p.reason for p in lists.problems)
    rfc = next(w for w in lists.lists if w.name == "rfc1918")
    assert rfc.kind == "cidr" and rfc.applies_to == {"ip", "cidr"}
    assert rfc.title == "List of RFC 1918 CIDR blocks"


def test_file_glob_and_gz(tmp_path: Path) -> None:
    doc = {"name": "Test", "type": "string", "list": ["EXAMPLE.com."], "version": 1}
    _write(tmp_path / "lists" / "a" / "list.json", doc)
    (tmp_path / "lists" / "b").mkdir()
    (tmp_path / "lists" / "b" / "list.json.gz").write_bytes(gzip.compress(json.dumps(doc).encode()))
    for spec in ([tmp_path / "lists"], [str(tmp_path / "lists" / "*" / "list.json*")]):
        lists = load_warninglists(spec)
        assert lists.names() == ["a", "b"] and lists.problems == []
        assert lists.strings is not None
        assert lists.strings["value"].to_pylist() == ["example.com", "example.com"]


def test_allowlist_detected_by_content(tmp_path: Path) -> None:
    path = tmp_path / "ours.txt"
    path.write_text(
        "# benign\n10.0.0.0/8  # lab\nExample.ORG\nd41d8cd98f00b204e9800998ecf8427e\nnot a value!\n"
    )
    lists = load_warninglists([path])
    assert lists.names() == ["ours"] and lists.lists[0].kind == "allowlist"
    assert lists.hostnames is not None and lists.hostnames["value"].to_pylist() == ["example.org"]
    assert lists.strings is not None and lists.strings["entry"].to_pylist() == [
        "d41d8cd98f00b204e9800998ecf8427e"
    ]
    assert [(p.line, p.raw) for p in lists.problems] == [(5, "not a value!")]


def test_bad_json_unknown_type_bad_regex_are_problems(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "list.json").write_text('{"name": "x", "list": [')
    _write(tmp_path / "weird" / "list.json", {"name": "w", "type": "fuzzy", "list": ["a"]})
    _write(
        tmp_path / "rx" / "list.json",
        {"name": "r", "type": "regex", "list": ["/(a/", "/^ok$/i", "/(?<=x)y/", "/a/x"]},
    )
    _write(tmp_path / "nolist" / "list.json", {"name": "n", "type": "string"})
    _write(tmp_path / "ent" / "list.json", {"name": "e", "type": "string", "list": [3, ""]})
    lists = load_warninglists([tmp_path, str(tmp_path / "*.nope")])
    reasons = " | ".join(str(p) for p in lists.problems)
    assert "not valid JSON" in reasons
    assert "unknown type 'fuzzy'" in reasons
    assert "list 'rx': regex RE2 cannot compile" in reasons and "'/(a/'" in reasons
    assert "'/(?<=x)y/'" in reasons  # lookbehind: PCRE only
    assert "flag 'x'" in reasons
    assert "needs a 'list' array" in reasons
    assert "no file matches" in reasons  # a glob may match nothing; a path must exist
    assert "entry is not a non-empty string" in reasons
    assert lists.names() == ["ent", "rx"]
    assert [p for _, p in lists.regexes[1]] == ["(?i)^ok$"]


def test_a_missing_list_path_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "rfc1918").write_text("10.0.0.0/8\n")
    with pytest.raises(InputError, match="no such allowlist file or folder") as e:
        load_warninglists([tmp_path / "rfc1918", tmp_path / "rfc1981"])
    assert e.value.location is not None and e.value.location.path == str(tmp_path / "rfc1981")


def test_hostname_entries(tmp_path: Path) -> None:
    _write(
        tmp_path / "h" / "list.json",
        {
            "name": "h",
            "type": "hostname",
            "list": [".Example.COM.", "corona", "8.8.4.4", "bad..name.com"],
        },
    )
    lists = load_warninglists([tmp_path])
    assert lists.hostnames is not None
    assert lists.hostnames["value"].to_pylist() == ["example.com"]
    assert lists.v4 is not None and lists.v4.entry == ["8.8.4.4"]  # an IP: exact IP
    assert len(lists.problems) == 2


def test_matching_attributes_map() -> None:
    assert MISP_TYPES["ip-dst|port"] == {"ip", "cidr"}
    assert MISP_TYPES["domain|ip"] == {"ip", "cidr"}
    assert MISP_TYPES["hostname"] == {"domain"}
    assert MISP_TYPES["filename|sha256"] == {"sha256"}
    assert "phone-number" not in MISP_TYPES
