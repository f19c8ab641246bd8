"""Zeek Intelligence Framework files (``#fields indicator indicator_type meta.source ...``).

Tab-separated, ``-`` for unset, one ``#fields`` header naming the columns (CIF and
other extensions add ``meta.cif_confidence``, ``meta.cif_tags``, ...). Type mapping:

==================  =================================================================
``Intel::ADDR``     ip
``Intel::SUBNET``   cidr
``Intel::DOMAIN``   domain (we also match subdomains; Zeek matches the name exactly)
``Intel::URL``      url; Zeek writes URLs without a scheme, normalised as ``http://``
``Intel::EMAIL``    email
``Intel::FILE_HASH``  md5, sha1 or sha256, by length
``Intel::CERT_HASH``  sha1 (Zeek hashes certificates with SHA-1); 64 digits: sha256
``Intel::SOFTWARE``   user-agent: Zeek's HTTP seen-script reports User-Agent headers
                      as SOFTWARE, so that is what such items are matched against
``Intel::JA3``/``JA3S``  ja3/ja3s (the salesforce ja3 package's intel types)
==================  =================================================================

``USER_NAME``, ``FILE_NAME`` and ``PUBKEY_HASH`` have no indicator type here and are
listed as problems. ``meta.source`` names the row's source unless
``FeedOptions.source`` is set; ``meta.desc`` (and ``meta.url``) the description;
``meta.cif_confidence`` the confidence (0..100; CIF v3's 0..10 scale is multiplied
by 10); ``meta.cif_tags`` the tags. Items with
``meta.whitelist=T`` are allowlist entries, not indicators: skipped and counted.
"""

from __future__ import annotations

import re
from pathlib import Path

from detect.indicators.feeds import FeedRows
from detect.indicators.model import FeedOptions, LoadResult
from detect.readers.source import text_lines

INTEL_TYPES: dict[str, str | None] = {
    "ADDR": "ip",
    "SUBNET": "cidr",
    "DOMAIN": "domain",
    "URL": "url",
    "EMAIL": "email",
    "FILE_HASH": None,  # by length
    "CERT_HASH": None,  # by length, sha1 normally
    "SOFTWARE": "user-agent",
    "JA3": "ja3",
    "JA3S": "ja3s",
}
UNSUPPORTED = frozenset({"USER_NAME", "FILE_NAME", "PUBKEY_HASH"})
_HASH_BY_LENGTH = {32: "md5", 40: "sha1", 64: "sha256"}
_FIELDS = re.compile(rb"^#fields\t", re.MULTILINE)
UNSET = "-"


def sniff(head: bytes, path: Path) -> bool:
    """A ``#fields`` header line that names ``indicator`` and ``indicator_type``."""
    del path
    match = _FIELDS.search(head)
    if match is None:
        return False
    line = head[match.end():].split(b"\n", 1)[0].rstrip(b"\r").split(b"\t")
    return b"indicator" in line and b"indicator_type" in line


def _hash_kind(value: str, intel_type: str) -> str | None:
    """FILE_HASH by length; CERT_HASH is sha1 (or sha256), never md5."""
    digits = len(value.strip().replace(":", ""))
    kind = _HASH_BY_LENGTH.get(digits)
    return None if intel_type == "CERT_HASH" and kind == "md5" else kind


def load(path: Path, *, options: FeedOptions) -> LoadResult:
    """Every item line an indicator, an allowlist skip, or a problem."""
    rows = FeedRows(path, options)
    fields: list[str] | None = None
    with text_lines(path) as f:
        for number, line in enumerate(f, 1):
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            if text.startswith("#"):
                if text.startswith("#fields\t"):
                    fields = text.split("\t")[1:]
                    missing = {"indicator", "indicator_type"} - set(fields)
                    if missing:
                        rows.problem(number, "the #fields header lacks "
                                     f"{', '.join(sorted(missing))}; Zeek needs both", text)
                        fields = None
                continue
            if fields is None:
                rows.problem(number, "an item before any '#fields indicator indicator_type' "
                             "header; add the header line", text)
                continue
            parts = text.split("\t")
            if len(parts) != len(fields):
                rows.problem(number, f"expected {len(fields)} tab-separated fields as "
                             f"#fields names, got {len(parts)}", text)
                continue
            item = {k: v for k, v in zip(fields, parts, strict=True) if v not in (UNSET, "")}
            _add_item(rows, item, number, text, options)
    return rows.result()


def _add_item(rows: FeedRows, item: dict[str, str], number: int, text: str,
              options: FeedOptions) -> None:
    value = item.get("indicator")
    spelled = item.get("indicator_type", "")
    if value is None:
        rows.problem(number, "the indicator field is unset ('-')", text)
        return
    intel_type = spelled.removeprefix("Intel::")
    if item.get("meta.whitelist", "").upper() in ("T", "TRUE"):
        rows.skip("zeek meta.whitelist=T (an allowlist entry, not an indicator)")
        return
    if intel_type not in INTEL_TYPES:
        why = "has no indicator type here" if intel_type in UNSUPPORTED else "is unknown"
        rows.problem(number, f"unsupported Zeek intel type {spelled!r} ({why}); supported: "
                     f"{', '.join('Intel::' + t for t in INTEL_TYPES)}", text)
        return
    kind = INTEL_TYPES[intel_type]
    if kind is None:
        kind = _hash_kind(value, intel_type)
        if kind is None:
            rows.problem(number, f"{spelled} of {len(value)} characters is no md5, sha1 or "
                         f"sha256: {value!r}", text)
            return
    extra: dict[str, object] = {}
    if options.source is None and "meta.source" in item:
        extra["source"] = item["meta.source"]
    desc = item.get("meta.desc")
    url = item.get("meta.url")
    if desc or url:
        extra["description"] = f"{desc} ({url})" if desc and url else desc or url
    if "meta.cif_confidence" in item:
        try:
            confidence = float(item["meta.cif_confidence"])
        except ValueError:
            rows.problem(number, "meta.cif_confidence is not a number: "
                         f"{item['meta.cif_confidence']!r}", text)
            return
        # CIF v1 used 0..100; v3 uses 0..10
        scaled = confidence * 10 if confidence <= 10 else confidence
        extra["confidence"] = max(0, min(100, round(scaled)))
    if "meta.cif_tags" in item:
        extra["tags"] = [t.strip() for t in item["meta.cif_tags"].split(",") if t.strip()]
    rows.add_value(kind, value, number, **extra)
