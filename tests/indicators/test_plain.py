"""Plain lists: every syntax and error on small files; the real IPsum, ThreatFox, FireHOL lists."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from detect.indicators import plain
from detect.indicators.model import INDICATOR_SCHEMA, FeedOptions


def write(tmp_path: Path, text: str, name: str = "feed.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load(path: Path, **options: object) -> plain.LoadResult:
    return plain.load(path, options=FeedOptions(**options))  # type: ignore[arg-type]


def data_lines(path: Path) -> int:
    """Independent count: lines that are neither blank nor comments."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:  # type: ignore[operator]
        return sum(1 for line in f if line.strip() and line.lstrip()[0] not in "#;")


def test_every_syntax(tmp_path: Path) -> None:
    path = write(tmp_path, "\n".join([
        "# header comment",
        "; another comment",
        "",
        "1.2.3.4",
        "10.0.0.1/8          # firehol lists host bits",
        "2001:DB8::1",
        "2001:db8::/32",
        "Evil.COM.",
        "hxxp://bad[.]example/Path#frag",
        "evil.org/dl/x.exe",
        "D41D8CD98F00B204E9800998ECF8427E",
        "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "5.6.7.8/32",
        "user@Example.com",
    ]) + "\n")
    r = load(path)
    assert r.problems == []
    got = list(zip(r.indicators["type"].to_pylist(), r.indicators["value"].to_pylist(),
                   strict=True))
    assert got == [
        ("ip", "1.2.3.4"),
        ("cidr", "10.0.0.0/8"),
        ("ip", "2001:db8::1"),
        ("cidr", "2001:db8::/32"),
        ("domain", "evil.com"),
        ("url", "http://bad.example/Path"),
        ("url", "http://evil.org/dl/x.exe"),
        ("md5", "d41d8cd98f00b204e9800998ecf8427e"),
        ("sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ("sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("ip", "5.6.7.8"),
        ("email", "user@example.com"),
    ]
    assert r.indicators.schema == INDICATOR_SCHEMA
    assert set(r.indicators["source"].to_pylist()) == {"feed"}
    assert r.indicators["origin"][0].as_py() == "feed.txt:4"


def test_ipsum_score_is_confidence(tmp_path: Path) -> None:
    path = write(tmp_path, "# IP\tnumber of (black)lists\n1.1.1.1\t1\n2.2.2.2\t3\n3.3.3.3\t10\n")
    r = load(path)
    assert r.indicators["confidence"].to_pylist() == [25, 75, 100]


def test_hosts_file_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "127.0.0.1 localhost\n0.0.0.0 Ads.Example.com\n::1 ip6-localhost\n")
    r = load(path)
    assert r.indicators["value"].to_pylist() == ["ads.example.com"]
    assert r.skipped == {"hosts-file entry for the local host": 2}


def test_problems_carry_line_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, "1.2.3.4\nnot a value here\n300.1.1.1\nfoo\n1.2.3.4/33\n")
    r = load(path)
    assert r.indicators.num_rows == 1
    assert [(p.line, p.raw) for p in r.problems] == [
        (2, "not a value here"), (3, "300.1.1.1"), (4, "foo"), (5, "1.2.3.4/33")]
    assert all(p.path == "feed.txt" and p.reason[0].islower() for p in r.problems)
    assert "4 fields" in r.problems[0].reason


def test_forced_kind_and_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "evil.com\nd41d8cd98f00b204e9800998ecf8427e\n")
    r = load(path, kind="domain", source="mine", severity="low", confidence=40)
    assert r.indicators["type"].to_pylist() == ["domain"]
    assert len(r.problems) == 1  # a hash is no domain
    row = r.indicators.to_pylist()[0]
    assert (row["source"], row["severity"], row["confidence"]) == ("mine", "low", 40)


def test_gzip_is_transparent(tmp_path: Path) -> None:
    path = tmp_path / "list.txt.gz"
    path.write_bytes(gzip.compress(b"1.2.3.4\n"))
    r = load(path)
    assert r.indicators["value"].to_pylist() == ["1.2.3.4"]
    assert r.indicators["source"].to_pylist() == ["list"]


def test_sniff() -> None:
    assert plain.sniff(b"# c\n1.2.3.4\nevil.com\n", Path("x"))
    assert plain.sniff(b"1.2.3.4\t5\n", Path("x"))
    assert not plain.sniff(b"# only comments\n", Path("x"))
    assert not plain.sniff(b"hello world, this is prose\nand more prose\n", Path("x"))
    assert not plain.sniff(b'{"a": 1}\n', Path("x"))


@pytest.mark.shared
def test_ipsum(shared_datasets: Path) -> None:
    path = shared_datasets / "iocs/ipsum/ipsum.txt.gz"
    r = load(path)
    assert r.problems == [] and r.skipped == {}
    assert r.indicators.num_rows == 120_430 == data_lines(path)
    assert set(r.indicators["type"].to_pylist()) == {"ip"}
    conf = r.indicators["confidence"].value_counts().to_pylist()
    assert {c["values"]: c["counts"] for c in conf}[25] == 89_657  # one list each


@pytest.mark.shared
def test_threatfox_ips(shared_datasets: Path) -> None:
    path = shared_datasets / "iocs/abusech/threatfox_ips.txt"
    r = load(path)
    # SOURCE.md says 19,862 (wc -l); the last line has no newline: 19,863 distinct IPs
    assert r.problems == []
    assert r.indicators.num_rows == 19_863 == data_lines(path)
    assert len(set(r.indicators["value"].to_pylist())) == 19_863


@pytest.mark.shared
def test_firehol(shared_datasets: Path) -> None:
    for path in sorted((shared_datasets / "iocs/firehol").glob("*set")):
        r = load(path)
        assert r.problems == [], path.name
        assert r.indicators.num_rows == data_lines(path), path.name
    level1 = load(shared_datasets / "iocs/firehol/firehol_level1.netset").indicators
    assert level1.num_rows == 2_744
    values = set(level1["value"].to_pylist())
    assert {"10.0.0.0/8", "192.168.0.0/16", "0.0.0.0/8"} <= values
