"""Zeek Intel files: every Intel type, the meta columns, and every error."""

from __future__ import annotations

from pathlib import Path

from detect.indicators import zeek_intel
from detect.indicators.model import FeedOptions, LoadResult

HEADER = "#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\tmeta.url\n"


def write(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "intel.dat"
    path.write_text(header + body)
    return path


def load(path: Path, **options: object) -> LoadResult:
    return zeek_intel.load(path, options=FeedOptions(**options))  # type: ignore[arg-type]


def test_every_supported_type(tmp_path: Path) -> None:
    body = "\n".join("\t".join(r) for r in [
        ("1.2.3.4", "Intel::ADDR", "feedA", "c2 server", "http://ref/1"),
        ("10.0.0.0/8", "Intel::SUBNET", "feedA", "-", "-"),
        ("Evil.COM", "Intel::DOMAIN", "-", "-", "-"),
        ("evil.com/Download/x.exe", "Intel::URL", "-", "-", "-"),
        ("bad@evil.com", "Intel::EMAIL", "-", "-", "-"),
        ("D41D8CD98F00B204E9800998ECF8427E", "Intel::FILE_HASH", "-", "-", "-"),
        ("da39a3ee5e6b4b0d3255bfef95601890afd80709", "Intel::FILE_HASH", "-", "-", "-"),
        ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
         "Intel::FILE_HASH", "-", "-", "-"),
        ("DA39A3EE5E6B4B0D3255BFEF95601890AFD80709", "Intel::CERT_HASH", "-", "-", "-"),
        ("Evil Bot/1.0", "Intel::SOFTWARE", "-", "-", "-"),
        ("b386946a5a44d1ddcc843bc75336dfce", "Intel::JA3", "-", "-", "-"),
    ]) + "\n"
    r = load(write(tmp_path, "#separator \\x09\n" + body))
    assert r.problems == []
    t = r.indicators
    assert list(zip(t["type"].to_pylist(), t["value"].to_pylist(), strict=True)) == [
        ("ip", "1.2.3.4"),
        ("cidr", "10.0.0.0/8"),
        ("domain", "evil.com"),
        ("url", "http://evil.com/Download/x.exe"),
        ("email", "bad@evil.com"),
        ("md5", "d41d8cd98f00b204e9800998ecf8427e"),
        ("sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ("sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ("user-agent", "Evil Bot/1.0"),
        ("ja3", "b386946a5a44d1ddcc843bc75336dfce"),
    ]
    assert t["source"].to_pylist()[:3] == ["feedA", "feedA", "intel"]
    assert t["description"][0].as_py() == "c2 server (http://ref/1)"
    assert t["origin"][0].as_py() == "intel.dat:3"
    assert set(load(write(tmp_path, body), source="mine").indicators["source"].to_pylist()) \
        == {"mine"}


def test_unsupported_types_and_errors(tmp_path: Path) -> None:
    body = ("alice\tIntel::USER_NAME\t-\t-\t-\n"
            "a.exe\tIntel::FILE_NAME\t-\t-\t-\n"
            "aa:bb\tIntel::PUBKEY_HASH\t-\t-\t-\n"
            "x\tIntel::BOGUS\t-\t-\t-\n"
            "abc\tIntel::FILE_HASH\t-\t-\t-\n"
            "d41d8cd98f00b204e9800998ecf8427e\tIntel::CERT_HASH\t-\t-\t-\n"
            "-\tIntel::ADDR\t-\t-\t-\n"
            "1.2.3.4\tIntel::ADDR\n"
            "999.1.1.1\tIntel::ADDR\t-\t-\t-\n")
    r = load(write(tmp_path, body))
    assert r.indicators.num_rows == 0
    assert [p.line for p in r.problems] == list(range(2, 11))
    reasons = [p.reason for p in r.problems]
    assert all("unsupported Zeek intel type" in x for x in reasons[:4])
    assert "no md5, sha1 or sha256" in reasons[4] and "no md5" in reasons[5]
    assert "unset" in reasons[6] and "expected 5 tab-separated" in reasons[7]
    assert "not an IP address" in reasons[8]


def test_extension_columns(tmp_path: Path) -> None:
    header = ("#fields\tindicator\tindicator_type\tmeta.source\tmeta.cif_confidence"
              "\tmeta.cif_tags\tmeta.whitelist\n")
    body = ("1.2.3.4\tIntel::ADDR\tcif\t85.0\tscanner,botnet\tF\n"
            "5.6.7.8\tIntel::ADDR\tcif\t7\t-\t-\n"
            "8.8.8.8\tIntel::ADDR\tcif\t-\t-\tT\n"
            "9.9.9.9\tIntel::ADDR\tcif\thigh\t-\t-\n")
    r = load(write(tmp_path, body, header))
    rows = r.indicators.select(["value", "confidence", "tags"]).to_pylist()
    assert rows == [{"value": "1.2.3.4", "confidence": 85, "tags": ["scanner", "botnet"]},
                    {"value": "5.6.7.8", "confidence": 70, "tags": None}]
    assert sum(r.skipped.values()) == 1 and "whitelist" in next(iter(r.skipped))
    assert r.problems[0].line == 5 and "cif_confidence" in r.problems[0].reason


def test_items_without_header(tmp_path: Path) -> None:
    r = load(write(tmp_path, "1.2.3.4\tIntel::ADDR\n", header=""))
    assert r.problems[0].line == 1 and "#fields" in r.problems[0].reason
    r = load(write(tmp_path, "1.2.3.4\n", header="#fields\tindicator\n"))
    assert "lacks indicator_type" in r.problems[0].reason


def test_sniff() -> None:
    assert zeek_intel.sniff(HEADER.encode(), Path("x"))
    assert zeek_intel.sniff(b"#separator \\x09\n" + HEADER.encode(), Path("x"))
    assert not zeek_intel.sniff(b"#fields\tts\tuid\tid.orig_h\n", Path("conn.log"))
    assert not zeek_intel.sniff(b"1.2.3.4\n", Path("x"))
