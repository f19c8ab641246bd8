"""Suricata IP reputation: lines, score mapping, the categories file, and every error."""

from __future__ import annotations

from pathlib import Path

from detect.indicators import suricata_iprep
from detect.indicators.model import FeedOptions, LoadResult

REP = """\
# reputation list
1.2.3.4,1,127
10.0.0.0/8,2,64
2001:db8::/32,1,1
5.6.7.8/32,9,100
9.9.9.9,1,0
bad,1,1
1.1.1.1,1,128
1.1.1.1,x,1
1.1.1.1,1
"""


def load(path: Path) -> LoadResult:
    return suricata_iprep.load(path, options=FeedOptions())


def test_lines_scores_and_categories(tmp_path: Path) -> None:
    (tmp_path / "categories.txt").write_text("1,BadHosts,Known bad hosts\n2,Scanners,Scanning\n")
    path = tmp_path / "reputation.list"
    path.write_text(REP)
    r = load(path)
    got = r.indicators.select(["type", "value", "confidence", "tags", "description"]).to_pylist()
    assert got == [
        {"type": "ip", "value": "1.2.3.4", "confidence": 100, "tags": ["BadHosts"],
         "description": "Known bad hosts"},
        {"type": "cidr", "value": "10.0.0.0/8", "confidence": 50, "tags": ["Scanners"],
         "description": "Scanning"},
        {"type": "cidr", "value": "2001:db8::/32", "confidence": 1, "tags": ["BadHosts"],
         "description": "Known bad hosts"},
        {"type": "ip", "value": "5.6.7.8", "confidence": 79, "tags": ["9"], "description": None},
    ]
    assert r.skipped == {"suricata iprep score 0 (no reputation data)": 1}
    assert [p.line for p in r.problems] == [7, 8, 9, 10]
    assert "not an IP address" in r.problems[0].reason
    assert "above 127" in r.problems[1].reason
    assert "ip_or_cidr,category,score" in r.problems[2].reason


def test_without_categories_file(tmp_path: Path) -> None:
    path = tmp_path / "rep.csv"
    path.write_text("1.2.3.4,3,10\n")
    r = load(path)
    assert r.indicators["tags"].to_pylist() == [["3"]]
    assert r.indicators["confidence"].to_pylist() == [8]


def test_score_mapping() -> None:
    assert [suricata_iprep.score_confidence(s) for s in (1, 64, 100, 127)] == [1, 50, 79, 100]


def test_sniff_and_categories_file(tmp_path: Path) -> None:
    assert suricata_iprep.sniff(b"1.2.3.4,1,100\n10.0.0.0/8,2,3\n", Path("x"))
    assert suricata_iprep.sniff(b"# c\n2001:db8::/32,1,1\n", Path("x"))
    assert not suricata_iprep.sniff(b"1,BadHosts,Known bad hosts\n", Path("x"))
    assert not suricata_iprep.sniff(b"type,value\nip,1.2.3.4\n", Path("x"))
    assert not suricata_iprep.sniff(b"1.2.3.4\n", Path("x"))
    cats = tmp_path / "categories.txt"
    cats.write_text("1,BadHosts,Known bad hosts\n")
    assert suricata_iprep.is_categories_file(cats)
