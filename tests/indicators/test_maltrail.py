"""Maltrail trails: every syntax, categories from paths, archives, the real 1.85 M trails."""

from __future__ import annotations

import io
import re
import tarfile
from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detect.indicators import maltrail
from detect.indicators.model import FeedOptions, LoadResult
from detect.indicators.normalize import NormalizeError, normalize_domain

BANNER = "# Copyright (c) 2014-2026 Maltrail developers (https://github.com/stamparm/maltrail/)\n"
TRAILS = BANNER + """\

# Reference: https://example.org/report

Evil.COM
.wild.example.org
*.star.example.net
66.210.228.178:443
[2001:db8::1]:8080
1.2.3.4
45.83.64.0/24 # scanner range
evil.org/eln-images/Bowl/
178.32.48.50:8443/node.js
46.28.202.77/teamx/settings.php
http://101.132.33.79
HTTPS://Evil.com:443/a?b#c
ftp://ftp.fasttradeco.com
bad.example:8080
128.9.63.138 # pinger-e1.ant.isi.edu
   # indented comment
/wp-includes/evil.php
q(l|r)[0-9]{5,6}\\.pw
1.2.3.4:70000
singlelabel
"""

EXPECTED = [
    ("domain", "evil.com", None),
    ("domain", "wild.example.org", None),
    ("domain", "star.example.net", None),
    ("ip", "66.210.228.178", 443),
    ("ip", "2001:db8::1", 8080),
    ("ip", "1.2.3.4", None),
    ("cidr", "45.83.64.0/24", None),
    ("url", "http://evil.org/eln-images/Bowl/", None),
    ("url", "http://178.32.48.50:8443/node.js", None),
    ("url", "http://46.28.202.77/teamx/settings.php", None),
    ("url", "http://101.132.33.79/", None),
    ("url", "https://evil.com/a?b", None),
    ("url", "ftp://ftp.fasttradeco.com/", None),
    ("domain", "bad.example", 8080),
    ("ip", "128.9.63.138", None),
]


def rows(r: LoadResult) -> list[tuple[str, str, int | None]]:
    t = r.indicators
    return list(zip(t["type"].to_pylist(), t["value"].to_pylist(), t["port"].to_pylist(),
                    strict=True))


def test_every_trail_syntax(tmp_path: Path) -> None:
    folder = tmp_path / "trails" / "static" / "malware"
    folder.mkdir(parents=True)
    path = folder / "emotet.txt"
    path.write_text(TRAILS)
    r = maltrail.load(path, options=FeedOptions())
    assert rows(r) == EXPECTED
    assert r.skipped == {maltrail.PATH_ONLY: 1}
    reasons = [(p.line, p.reason.split(":")[0]) for p in r.problems]
    assert reasons == [(22, "regular-expression trail is not supported"),
                       (23, "port out of range 0..65535"),
                       (24, "a domain needs two labels or more (a bare TLD matches every name)")]
    first = r.indicators.to_pylist()[0]
    assert first["tags"] == ["malware", "emotet"] and first["severity"] == "high"
    assert first["description"] == "malware/emotet"
    assert first["origin"] == "emotet.txt:5" and first["source"] == "emotet"


def make_tar(tmp_path: Path) -> Path:
    members = {
        "trails/static/malware/emotet.txt": BANNER + "evil.com\n1.2.3.4:80\n",
        "trails/static/suspicious/onion.txt": BANNER + "onion.ws\n",
        "trails/static/malicious/phish.txt": BANNER + "phish.example\n",
        "trails/static/mass_scanner.txt": BANNER + "5.6.7.8 # scanner\n",
        "trails/static/__init__.py": "# not a trail\n",
    }
    path = tmp_path / "trails-static.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_archive_categories_and_severity(tmp_path: Path) -> None:
    path = make_tar(tmp_path)
    head = path.read_bytes()
    import gzip

    assert maltrail.sniff(gzip.decompress(head)[:65536], path)
    r = maltrail.load(path, options=FeedOptions())
    got = r.indicators.select(["value", "severity", "tags", "origin"]).to_pylist()
    assert got == [
        {"value": "evil.com", "severity": "high", "tags": ["malware", "emotet"],
         "origin": "trails-static.tar.gz:trails/static/malware/emotet.txt:2"},
        {"value": "1.2.3.4", "severity": "high", "tags": ["malware", "emotet"],
         "origin": "trails-static.tar.gz:trails/static/malware/emotet.txt:3"},
        {"value": "onion.ws", "severity": "low", "tags": ["suspicious", "onion"],
         "origin": "trails-static.tar.gz:trails/static/suspicious/onion.txt:2"},
        {"value": "phish.example", "severity": "high", "tags": ["malicious", "phish"],
         "origin": "trails-static.tar.gz:trails/static/malicious/phish.txt:2"},
        {"value": "5.6.7.8", "severity": "informational", "tags": ["mass_scanner"],
         "origin": "trails-static.tar.gz:trails/static/mass_scanner.txt:2"},
    ]
    assert set(r.indicators["source"].to_pylist()) == {"trails-static"}


def test_folder(tmp_path: Path) -> None:
    root = tmp_path / "trails"
    (root / "static" / "malware").mkdir(parents=True)
    (root / "static" / "malware" / "x.txt").write_text(BANNER + "evil.com\n")
    (root / "static" / "custom.txt").write_text("custom.example\n")
    assert maltrail.is_trail_folder(root) and maltrail.is_trail_folder(root / "static")
    assert not maltrail.is_trail_folder(tmp_path)
    r = maltrail.load(root, options=FeedOptions(severity="medium"))
    got = r.indicators.select(["value", "severity", "tags"]).to_pylist()
    assert got == [
        {"value": "custom.example", "severity": "medium", "tags": ["custom"]},
        {"value": "evil.com", "severity": "high", "tags": ["malware", "x"]},
    ]


def test_sniff() -> None:
    assert maltrail.sniff(BANNER.encode() + b"evil.com\n", Path("x.txt"))
    assert maltrail.sniff(b"evil.com\n", Path("trails/static/malware/x.txt"))
    assert not maltrail.sniff(b"evil.com\n", Path("list.txt"))


@given(st.from_regex(re.compile(r"[a-z0-9_.*-]{1,80}"), fullmatch=True))
def test_normal_domain_fast_path_equals_normalize_domain(text: str) -> None:
    """The fast path takes exactly the domains normalize_domain leaves unchanged."""
    try:
        unchanged = normalize_domain(text) == text
    except NormalizeError:
        unchanged = False
    fast = bool(maltrail._NORMAL_DOMAIN.fullmatch(text)) and len(text) <= 253
    assert fast == unchanged


@pytest.fixture(scope="module")
def real(shared_datasets: Path) -> tuple[LoadResult, Counter[str]]:
    """The loaded archive, and an independent count of entry lines per member."""
    path = shared_datasets / "iocs/maltrail/trails-static.tar.gz"
    per_member: Counter[str] = Counter()
    with tarfile.open(path) as tar:
        for m in tar:
            f = tar.extractfile(m) if m.isfile() else None
            if f is not None and m.name.endswith(".txt"):
                text = f.read().decode()
                per_member[m.name] = sum(1 for x in text.splitlines()
                                         if x.strip() and not x.lstrip().startswith("#"))
    return maltrail.load(path, options=FeedOptions()), per_member


@pytest.mark.shared
@pytest.mark.slow
def test_real_trails_nothing_lost(real: tuple[LoadResult, Counter[str]]) -> None:
    """All 1.85 M trails: every entry line an indicator, a problem or a counted skip."""
    r, per_member = real
    # SOURCE.md's 1,852,506 also counts 46 indented comment lines ("  # Reference: ...")
    assert sum(per_member.values()) == 1_852_460
    assert len(per_member) == 3_113
    accounted = r.indicators.num_rows + len(r.problems) + sum(r.skipped.values())
    assert accounted == sum(per_member.values())
    assert r.skipped == {maltrail.PATH_ONLY: 93_715}
    assert len(r.problems) < 150
    types = Counter(r.indicators["type"].to_pylist())
    assert types["domain"] > 1_370_000 and types["ip"] > 300_000 and types["url"] > 75_000


@pytest.mark.shared
@pytest.mark.slow
def test_real_trails_known_values(real: tuple[LoadResult, Counter[str]]) -> None:
    r, per_member = real
    t = r.indicators
    emotet = t.filter(pc.equal(t["description"], "malware/emotet"))
    rows_ = emotet.select(["type", "value", "port", "tags", "severity"]).to_pylist()
    assert {"type": "ip", "value": "66.210.228.178", "port": 443, "tags": ["malware", "emotet"],
            "severity": "high"} in rows_
    assert any(x["value"] == "dvr.petcp.com" for x in rows_)
    assert any(x["type"] == "url" for x in rows_)
    scanners = t.filter(pc.equal(t["severity"], "informational"))
    scanner_problems = sum("static/mass_scanner" in p.path for p in r.problems)
    scanner_lines = sum(n for name, n in per_member.items() if "static/mass_scanner" in name)
    assert scanner_lines == 19_220 + 1_106
    # two path-only trails in mass_scanner.txt (/w00tw00t.at.ISC.SANS.DFind:) ...)
    assert scanners.num_rows == scanner_lines - scanner_problems - 2
    assert set(pc.unique(scanners["description"]).to_pylist()) == {
        "mass_scanner", "mass_scanner_cidr"}
    weebly = t.filter(pc.equal(t["value"], "weebly.com"))
    assert weebly.num_rows and set(weebly["severity"].to_pylist()) == {"low"}
