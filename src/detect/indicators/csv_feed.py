"""CSV feeds: ``type,value,...`` files, and abuse.ch-style exports whose header is a comment.

Two shapes share this loader:

- *typed* CSV: a header with ``type`` and ``value`` and optionally ``source``,
  ``confidence`` (0..100), ``severity``, ``tags`` (``;``, ``|`` or ``,``
  separated), ``valid_from``/``valid_until`` (ISO 8601), ``port``, ``description``;
- *export* CSV (abuse.ch Feodo Tracker, SSLBL, URLhaus, ThreatFox): ``#`` banner
  lines, the header either a plain line or the last comment line
  (``# Listingdate,SHA1,Listingreason``). The value column is
  ``FeedOptions.column`` or the first known one (``ioc_value``, ``dst_ip``,
  ``url``, ``sha1``, ``ja3_md5`` ...); its type comes from ThreatFox's
  ``ioc_type``, else from the column's name (``sha1`` -> sha1, ``dst_ip`` -> ip),
  else is inferred per value.

Observation dates of exports (``first_seen_utc``, ``dateadded``) are *not* taken
as ``valid_from``: they say when abuse.ch saw the value, not from when it is bad, and
would hide older events from a normal hunt. Malware family columns become tags,
SSLBL's listing reason the description.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

from detect.indicators.feeds import FeedRows, parse_time
from detect.indicators.model import INDICATOR_TYPES, SEVERITIES, FeedOptions, LoadResult
from detect.readers.source import text_lines

# indicator types as feeds spell them -> ours ("ip:port" splits off a port)
TYPE_ALIASES: dict[str, str] = {
    **{t: t for t in INDICATOR_TYPES},
    "ipv4": "ip", "ipv6": "ip", "ip-src": "ip", "ip-dst": "ip", "ip_address": "ip",
    "ipaddress": "ip", "addr": "ip", "address": "ip",
    "subnet": "cidr", "network": "cidr", "netblock": "cidr",
    "hostname": "domain", "host": "domain", "fqdn": "domain", "domain-name": "domain",
    "uri": "url", "link": "url",
    "md5_hash": "md5", "sha1_hash": "sha1", "sha256_hash": "sha256",
    "ja3_md5": "ja3", "ja3-fingerprint-md5": "ja3", "ja3s_md5": "ja3s",
    "email-src": "email", "email-addr": "email", "mail": "email",
    "user_agent": "user-agent", "useragent": "user-agent", "ua": "user-agent",
    "ip:port": "ip:port", "ip_port": "ip:port",
}

# value columns of known exports, best first, each with the type its name implies
# (None: typed by a type column, else inferred per value)
VALUE_COLUMNS: dict[str, str | None] = {
    "value": None, "ioc_value": None, "indicator": None, "ioc": None,
    "dst_ip": "ip", "ip_address": "ip", "ip": "ip", "ipaddress": "ip",
    "cidr": "cidr", "network": "cidr",
    "url": "url", "domain": "domain", "hostname": "domain",
    "sha256": "sha256", "sha256_hash": "sha256", "sha1": "sha1", "sha1_hash": "sha1",
    "md5": "md5", "md5_hash": "md5", "ja3_md5": "ja3", "ja3": "ja3", "ja3s": "ja3s",
    "email": "email", "user_agent": "user-agent", "user-agent": "user-agent",
}
TYPE_COLUMNS = ("type", "ioc_type", "indicator_type")
PORT_COLUMNS = ("port", "dst_port")
CONFIDENCE_COLUMNS = ("confidence", "confidence_level")
TAG_COLUMNS = ("tags", "tag", "malware", "malware_printable", "threat", "threat_type")
DESCRIPTION_COLUMNS = ("description", "desc", "listingreason", "comment")
SEVERITY_ALIASES = {**{s: s for s in SEVERITIES}, "info": "informational", "med": "medium",
                    "moderate": "medium", "crit": "critical"}

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_ .:-]*$")
_TAG_SPLIT = re.compile(r"[;|,]")
_EMPTY = frozenset({"", "-", "none", "null", "n/a"})
_SNIFF_ROWS = 20


def _key(name: str) -> str:
    return name.strip().strip('"').strip().lower()


def _parse(line: str) -> list[str]:
    return next(csv.reader([line], skipinitialspace=True), [])


def _is_header(fields: list[str], column: str | None) -> bool:
    """Names only, and a value column among them (or the one ``column`` names)."""
    keys = [_key(f) for f in fields]
    if not keys or not all(_NAME.match(k) for k in keys):
        return False
    if column is not None:
        return column.lower() in keys
    return any(k in VALUE_COLUMNS for k in keys)


def find_header(lines: list[str], column: str | None = None) -> tuple[list[str], int] | None:
    """The header fields and the index of the first data line, from the file's first lines.

    The header is the first line that is not a comment, or (abuse.ch) the last
    comment line before the data when that first line is already data.
    """
    last_comment: str | None = None
    for i, line in enumerate(lines):
        text = line.strip()
        if not text:
            continue
        if text.startswith("#"):
            last_comment = text.lstrip("#").strip()
            continue
        fields = _parse(text)
        if _is_header(fields, column):
            return fields, i + 1
        if last_comment is not None:
            header = _parse(last_comment)
            if len(header) == len(fields) and _is_header(header, column):
                return header, i
        return None
    return None


def sniff(head: bytes, path: Path) -> bool:
    """A header with a known value column, and comma-separated rows of its width."""
    del path
    lines = head.decode("utf-8", errors="replace").splitlines()[:400]
    found = find_header(lines)
    if found is None:
        return False
    header, start = found
    if len(header) < 2 and not any("," in line for line in lines[start:start + 5]):
        return _key(header[0]) in VALUE_COLUMNS and _key(header[0]) != "value"
    rows = [r for r in lines[start:start + _SNIFF_ROWS] if r.strip() and not r.startswith("#")]
    if len(head) >= 65_536 and len(rows) > 1:
        rows = rows[:-1]
    return all(len(_parse(r)) == len(header) for r in rows)


def _column(keys: list[str], names: tuple[str, ...]) -> int | None:
    for name in names:
        if name in keys:
            return keys.index(name)
    return None


def split_host_port(text: str) -> tuple[str, int | None]:
    """``1.2.3.4:80`` / ``[2001:db8::1]:443`` / ``evil.com:8080`` -> host and port."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if sep and rest.startswith(":") and rest[1:].isdigit():
            return host, int(rest[1:])
        return text, None
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host, int(port)
    return text, None


def _data_lines(f: Iterator[str], start: int, counter: list[int]) -> Iterator[str]:
    """Lines after the header that are neither blank nor comments; counter[0] = line number."""
    for number, line in enumerate(f, 1):
        if number <= start:
            continue
        counter[0] = number
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        yield line


def load(path: Path, *, options: FeedOptions) -> LoadResult:
    """Every data row an indicator or a problem; comment and blank lines are not entries."""
    rows = FeedRows(path, options)
    with text_lines(path) as f:
        head = [line for _, line in zip(range(400), f, strict=False)]
    found = find_header(head, options.column)
    if found is None:
        what = (f"a column named {options.column!r}" if options.column
                else f"one of the known value columns ({', '.join(VALUE_COLUMNS)})")
        rows.problem(None, f"no CSV header with {what} in the first lines; "
                           "name the value column with FeedOptions.column")
        return rows.result()
    header, start = found
    keys = [_key(h) for h in header]
    width = len(keys)
    if options.column is not None:
        vi = keys.index(options.column.lower())
    else:
        vi = next(i for i, k in enumerate(keys) if k in VALUE_COLUMNS)
    ti = _column(keys, TYPE_COLUMNS)
    column_kind = options.kind or VALUE_COLUMNS.get(keys[vi])
    if options.kind is None and ti is None and column_kind is None:
        column_kind = TYPE_ALIASES.get(keys[vi])
    pi = _column(keys, PORT_COLUMNS)
    si = _column(keys, ("source",))
    ci = _column(keys, CONFIDENCE_COLUMNS)
    sevi = _column(keys, ("severity",))
    tag_cols = [keys.index(k) for k in TAG_COLUMNS if k in keys]
    di = _column(keys, DESCRIPTION_COLUMNS)
    vfi = _column(keys, ("valid_from",))
    vui = _column(keys, ("valid_until",))

    counter = [0]
    with text_lines(path) as f:
        for fields in csv.reader(_data_lines(f, start, counter), skipinitialspace=True):
            number = counter[0]
            if len(fields) != width:
                rows.problem(number, f"expected {width} fields as the header has, got "
                             f"{len(fields)}; quote values that hold commas",
                             ",".join(fields))
                continue
            raw = fields[vi].strip()
            if not raw:
                rows.problem(number, f"empty value in column {header[vi]!r}")
                continue
            kind = column_kind
            if ti is not None and options.kind is None:
                spelled = fields[ti].strip().lower()
                kind = TYPE_ALIASES.get(spelled)
                if kind is None:
                    rows.problem(number, f"unknown indicator type {fields[ti]!r}; use one of "
                                 f"{', '.join(INDICATOR_TYPES)}", raw)
                    continue
            port: int | None = None
            if pi is not None and fields[pi].strip():
                text = fields[pi].strip()
                if not text.isdigit() or int(text) > 65535:
                    rows.problem(number, f"port is not a number 0..65535: {text!r}", raw)
                    continue
                port = int(text)
            if kind in ("ip:port", "ip", "domain", None) and ":" in raw and "/" not in raw:
                host, split_port = split_host_port(raw)
                if split_port is not None:
                    raw, port = host, split_port
                    kind = "ip" if kind == "ip:port" else kind
            if kind == "ip:port":
                kind = "ip"
            extra: dict[str, object] = {}
            if si is not None and fields[si].strip():
                extra["source"] = fields[si].strip()
            if ci is not None and _key(fields[ci]) not in _EMPTY:
                try:
                    confidence = round(float(fields[ci]))
                except ValueError:
                    confidence = -1
                if not 0 <= confidence <= 100:
                    rows.problem(number, f"confidence is not a number 0..100: {fields[ci]!r}",
                                 raw)
                    continue
                extra["confidence"] = confidence
            if sevi is not None and _key(fields[sevi]) not in _EMPTY:
                severity = SEVERITY_ALIASES.get(_key(fields[sevi]))
                if severity is None:
                    rows.problem(number, f"unknown severity {fields[sevi]!r}; use one of "
                                 f"{', '.join(SEVERITIES)}", raw)
                    continue
                extra["severity"] = severity
            if tag_cols:
                tags = [t.strip() for c in tag_cols for t in _TAG_SPLIT.split(fields[c])
                        if t.strip().lower() not in _EMPTY]
                if tags:
                    extra["tags"] = list(dict.fromkeys(tags))
            if di is not None and fields[di].strip():
                extra["description"] = fields[di].strip()
            bad_time = False
            for name, idx in (("valid_from", vfi), ("valid_until", vui)):
                if idx is not None and _key(fields[idx]) not in _EMPTY:
                    try:
                        extra[name] = parse_time(fields[idx])
                    except ValueError:
                        rows.problem(number, f"{name} is not an ISO 8601 time: "
                                     f"{fields[idx]!r}", raw)
                        bad_time = True
                        break
            if bad_time:
                continue
            rows.add_value(kind, raw, number, port=port, **extra)
    return rows.result()
