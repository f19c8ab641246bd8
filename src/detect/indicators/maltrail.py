"""Maltrail trails: one trail file, a ``trails/static`` folder, or ``trails-static.tar.gz``.

The archive is read member by member with ``tarfile`` (nothing extracted). A trail's
file names its threat: ``malware/emotet.txt`` gives tags ``["malware", "emotet"]``
and the description ``malware/emotet`` (``origin`` leads to the ``# Reference:``
comments; copying them into 1.85 M descriptions would cost about 150 MB). Severity by
category (Maltrail itself treats ``suspicious`` and the mass scanners as
informational-to-low):

================  ===============  ===========================================
category          severity         why
================  ===============  ===========================================
``malware/``      high             C2, droppers, payload hosts of a family
``malicious/``    high             phishing kits, C2 frameworks, malicious TDS
``suspicious/``   low              dynamic DNS, free hosting, onion gateways,
                                   crypto mining: often legitimate
``mass_scanner``  informational    Shodan/Censys-style scanners: noise, context
other files       (feed option)    custom trails say nothing
================  ===============  ===========================================

Trail syntaxes: ``domain`` (leading ``.`` or ``*.`` allowed; matches subdomains
too), ``ip``, ``ip:port`` and ``[ipv6]:port`` (an ip with a port), ``domain:port``
(a domain with a port), ``cidr``, ``domain/path`` and ``ip[:port]/path`` (URLs
without a scheme, taken as ``http://``), ``http(s)://...``, ``ftp://...``, inline
`` # comments``. Path-only trails (``/wp-includes/x.php``: Maltrail's PATH type)
have no indicator type here and are skipped and counted; regular-expression trails
are listed as problems.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

from detect.indicators.csv_feed import split_host_port
from detect.indicators.feeds import FeedRows
from detect.indicators.model import FeedOptions, LoadResult
from detect.indicators.normalize import NormalizeError, infer, normalize_domain, normalize_ip
from detect.indicators.plain import strip_comment
from detect.readers.source import open_binary

CATEGORY_SEVERITY: dict[str, str] = {
    "malware": "high",
    "malicious": "high",
    "suspicious": "low",
    "mass_scanner": "informational",
}
CATEGORIES = ("malware", "malicious", "suspicious")
PATH_ONLY = "maltrail path-only trail (no URL-path indicator type)"

# the two forms that are almost all of Maltrail: a domain, and ip[:port]. _NORMAL_DOMAIN
# accepts exactly the domains ``normalize_domain`` returns unchanged (labels of 1..63,
# no hyphen at either end, a last label that is not all digits; length checked apart),
# so those skip the per-label Python checks: the test suite holds the two equal.
_LABEL = r"(?!-)[a-z0-9_-]{1,63}(?<!-)"
_NORMAL_DOMAIN = re.compile(rf"(?:{_LABEL}\.)+(?=[a-z0-9_-]*[a-z_-]){_LABEL}")
_DOMAIN = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)+")
_IPV4_PORT = re.compile(r"(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(?::(\d{1,5}))?")
_REGEX_CHARS = re.compile(r"[\\(){}|^$+]|(?<!^)\*|\*(?!\.)|^\[(?![0-9a-fA-F:.]+\])")


def sniff(head: bytes, path: Path) -> bool:
    """The Maltrail banner in a trail file or in the first member of a tar of trails."""
    if head[257:262] == b"ustar":
        return b"trails/" in head[:100] or b"Maltrail developers" in head
    if b"Maltrail developers" in head or b"github.com/stamparm/maltrail" in head:
        return True
    return path.suffix == ".txt" and path.parent.name in CATEGORIES


def is_trail_folder(path: Path) -> bool:
    """A ``trails``/``static`` folder, or one category folder of trail files."""
    if path.name in CATEGORIES:
        return any(path.glob("*.txt"))
    roots = [path, path / "static"]
    return any((root / c).is_dir() for root in roots for c in CATEGORIES)


def trail_labels(member: str) -> tuple[list[str], str | None, str]:
    """Tags, severity and description for a trail file's path (archive member or file)."""
    parts = Path(member).with_suffix("").parts
    for i, part in enumerate(parts):
        if part in CATEGORIES and i + 1 < len(parts):
            family = "/".join(parts[i + 1:])
            return [part, family], CATEGORY_SEVERITY[part], f"{part}/{family}"
    name = parts[-1] if parts else member
    category = "mass_scanner" if name.startswith("mass_scanner") else None
    if category:
        return [category], CATEGORY_SEVERITY[category], name
    return [name], None, name


def _members(path: Path) -> Iterator[tuple[str, str, bytes]]:
    """``(origin, trail path, content)`` for every trail file in the archive or folder."""
    if path.is_dir():
        for file in sorted(path.rglob("*.txt")):
            rel = file.relative_to(path).as_posix()
            yield f"{path.name}:{rel}", rel, file.read_bytes()
        return
    with open_binary(path) as raw:
        tar_head = raw.read(512)
    if tar_head[257:262] != b"ustar":
        yield path.name, str(path.resolve()), _read_all(path)
        return
    with tarfile.open(path, mode="r:*") as tar:
        for member in tar:
            if not member.isfile() or not member.name.endswith(".txt"):
                continue
            f = tar.extractfile(member)
            if f is None:
                continue
            yield f"{path.name}:{member.name}", member.name, f.read()


def _read_all(path: Path) -> bytes:
    with open_binary(path) as f:
        return f.read()


def load(path: Path, *, options: FeedOptions) -> LoadResult:
    """Every trail an indicator, a counted path-only skip, or a problem."""
    rows = FeedRows(path, options)
    domain_match = _DOMAIN.fullmatch
    normal_domain = _NORMAL_DOMAIN.fullmatch
    ip_match = _IPV4_PORT.fullmatch
    for origin, trail_path, content in _members(path):
        tags, severity, description = trail_labels(trail_path)
        rows.group(origin, tags=tags, severity=severity, description=description)
        add = rows.add
        for number, line in enumerate(
                content.decode("utf-8", errors="surrogateescape").splitlines(), 1):
            if not line or line[0] == "#":
                continue
            if "#" in line or line[0] in " \t" or line[-1] in " \t":
                entry = strip_comment(line)
                if not entry:  # blank, or an indented comment
                    continue
            else:
                entry = line
            if not entry:
                continue
            # fast paths: the text is already in normal form, or only the IP parse is left
            if normal_domain(entry) and len(entry) <= 253:
                add("domain", entry, number)
                continue
            if domain_match(entry) and not entry[-1].isdigit():
                try:
                    add("domain", normalize_domain(entry), number)
                except NormalizeError as e:
                    rows.problem(number, str(e), line)
                continue
            m = ip_match(entry)
            if m:
                try:
                    value = normalize_ip(m.group(1))
                except NormalizeError as e:
                    rows.problem(number, str(e), line)
                    continue
                port = m.group(2)
                if port is not None and int(port) > 65535:
                    rows.problem(number, f"port out of range 0..65535: {entry!r}", line)
                    continue
                add("ip", value, number, port=None if port is None else int(port))
                continue
            _add_other(rows, entry, number, line)
    return rows.result()


def _add_other(rows: FeedRows, entry: str, number: int, line: str) -> None:
    """The rare syntaxes: paths, URLs, CIDRs, host:port, wildcards, regular expressions."""
    if entry.startswith("/"):
        rows.skip(PATH_ONLY)
        return
    if _REGEX_CHARS.search(entry):
        rows.problem(number, f"regular-expression trail is not supported: {entry!r}; "
                     "list the names it matches instead", line)
        return
    if "://" in entry or "/" in entry:
        kind = None if "://" in entry or not _has_port(entry.split("/", 1)[0]) else "url"
        rows.add_value(kind, entry, number)
        return
    host, port = split_host_port(entry)
    if port is not None and port > 65535:
        rows.problem(number, f"port out of range 0..65535: {entry!r}", line)
        return
    host = host.removeprefix(".")
    try:
        kind, value = infer(host)
    except NormalizeError as e:
        rows.problem(number, str(e), line)
        return
    if port is not None and kind not in ("ip", "domain"):
        rows.problem(number, f"a port only goes with an ip or a domain: {entry!r}", line)
        return
    rows.add(kind, value, number, port=port)


def _has_port(host: str) -> bool:
    return split_host_port(host)[1] is not None
