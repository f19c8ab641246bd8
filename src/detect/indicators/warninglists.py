"""Load MISP warninglists and plain allowlists into one compiled ``SuppressionSet``.

A suppression list names values that are known to be benign (public DNS resolvers,
top sites, RFC 1918 ranges, hashes of empty files) so that indicators equal to them
are dropped before they flood the alerts with false positives. ``suppress.py``
applies the set; this module only reads, normalises and indexes the entries, once.

Semantics per list type (MISP's ``Warninglist.php`` is the reference; deviations are
marked as ours):

- ``cidr``: entries are IPv4/IPv6 networks or bare addresses (host bits cleared, as
  MISP does). An indicator IP inside one, or an indicator CIDR that is a subnet of
  one (or equal), is suppressed. An indicator CIDR that merely *contains* a listed
  network is not: ``10.0.0.0/8`` does not vanish because ``10.1.2.3`` is benign.
- ``hostname``: an entry suppresses that domain and every subdomain on label
  boundaries (``google.com`` suppresses ``a.google.com``, never ``notgoogle.com``).
  Leading and trailing dots are stripped and names lower-cased, as MISP does. A
  *parent* of a listed name is not suppressed (``www.google.com`` listed does not
  suppress ``google.com``). Entries of one label (``corona``, ``.barclays``) would
  suppress a whole TLD and are skipped as problems; an IP entry is an exact IP.
- ``string``: exact match of the normal forms (entries go through
  ``normalize.infer``, so ``EXAMPLE.com.`` equals the indicator ``example.com``;
  entries that are no indicator, such as Azure app ids, are kept as written).
  Ours: an entry with a leading dot (``.google.com`` in the ``google`` list, which
  also carries ``google.com``) is read as "this domain and its subdomains", i.e.
  hostname semantics; MISP compares it literally and so never matches it.
- ``substring``: the indicator value contains the entry (case-sensitive, as MISP).
- ``regex``: PCRE-style ``/pattern/flags`` entries translated to RE2 (``i``, ``m``,
  ``s`` flags kept, ``g``/``u`` meaningless for a match test); a pattern RE2 cannot
  compile is a problem naming the list and the entry, never a crash.

``matching_attributes`` (MISP attribute types) restrict the indicator types a list
applies to (``MISP_TYPES``); without it a list applies to every type. URL
indicators: hostname lists that apply to ``url`` test the URL's host; cidr lists
that apply to IPs test a URL whose host is an IP literal (MISP has no URL-with-IP
attribute type, so a cidr list never names ``url``). Hostname lists that omit
``url`` (``dynamic-dns``) leave URLs alone on purpose: a payload URL on a dynamic
DNS host is exactly what should alert.

Allowlists are plain files, one value a line, ``#`` comments, type inferred by
``normalize.infer``: IPs and CIDRs get cidr semantics, domains hostname semantics,
anything else (URLs, hashes, emails) exact string semantics; they apply to every
indicator type. They are named by their file stem.
"""

from __future__ import annotations

import glob
import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detect.errors import InputError, Location
from detect.indicators import normalize as nz
from detect.indicators.model import INDICATOR_TYPES, FeedProblem

__all__ = [
    "MATCH_TYPES",
    "MISP_TYPES",
    "CidrIndex",
    "SuppressionSet",
    "Warninglist",
    "ip_ranges",
    "load_warninglists",
    "require_paths",
]

MATCH_TYPES: tuple[str, ...] = ("string", "hostname", "cidr", "substring", "regex")
LIST_TYPES: tuple[str, ...] = ("string", "substring", "hostname", "cidr", "regex")

_IP = frozenset({"ip", "cidr"})
_HASHES = {"md5": "md5", "sha1": "sha1", "sha256": "sha256"}

# MISP attribute type -> our indicator types. Types we have no indicator for
# (phone-number, sha512, azure-application-id, ...) map to nothing.
MISP_TYPES: dict[str, frozenset[str]] = {
    **dict.fromkeys(("ip-src", "ip-dst", "ip-src|port", "ip-dst|port", "ip"), _IP),
    # domain|ip counts for its IP only: every list meant for domains also names
    # domain/hostname, while disposable-email names domain|ip (with email types)
    # and would otherwise suppress "viva2299.com" as containing "99.com".
    "domain|ip": _IP,
    **{t: frozenset({"domain"}) for t in ("domain", "hostname", "hostname|port")},
    **{t: frozenset({"url"}) for t in ("url", "uri", "link")},
    **{t: frozenset({h}) for t, h in _HASHES.items()},
    **{f"filename|{t}": frozenset({h}) for t, h in _HASHES.items()},
    **{f"x509-fingerprint-{t}": frozenset({h}) for t, h in _HASHES.items()},
    "ja3-fingerprint-md5": frozenset({"ja3"}),
    **{
        t: frozenset({"email"})
        for t in (
            "email",
            "email-src",
            "email-dst",
            "target-email",
            "email-reply-to",
            "whois-registrant-email",
            "dns-soa-email",
        )
    },
    "user-agent": frozenset({"user-agent"}),
}
_URL_ATTRIBUTES = frozenset({"url", "uri", "link"})
ALL_TYPES = frozenset(INDICATOR_TYPES) | {"other"}  # "other": a type we do not know
_MAX_PROBLEMS_PER_LIST = 20


@dataclass(frozen=True)
class Warninglist:
    """One loaded list: what it is called, where it came from, what it applies to."""

    name: str  # slug: the folder of a ``list.json``, or the file stem
    title: str  # MISP ``name`` (descriptive), or the slug for allowlists
    kind: str  # a MISP list type, or "allowlist"
    path: str
    version: str | None
    applies_to: frozenset[str]  # our indicator types ("other" for unknown ones)
    url_hosts: frozenset[str]  # match types ("hostname", "cidr") that test a URL's host
    entries: int  # entries read (before problems were dropped)


@dataclass
class CidrIndex:
    """Networks of every list as sorted integer intervals, per address family.

    IPv4 uses uint32 keys, IPv6 16-byte big-endian keys (``S16`` sorts like the
    number). Rows are grouped by list (``offsets[i]:offsets[i+1]``) and sorted by
    start; ``reach``/``witness`` are the running maximum end within the list and
    the entry that reaches it, so "some entry with start <= a reaches b" is one
    ``searchsorted`` per query (nested and overlapping entries included).
    """

    start: np.ndarray
    reach: np.ndarray
    witness: np.ndarray  # int64 row into ``entry``/``prefix``
    offsets: np.ndarray  # int64, len(lists) + 1
    entry: list[str]
    prefix: np.ndarray  # prefix length of each entry (0..32 or 0..128)


@dataclass
class SuppressionSet:
    """Every loaded list with its entries compiled for vectorised matching.

    ``strings``/``hostnames`` are Arrow tables (``value``, ``list``, ``entry``);
    ``v4``/``v6`` interval indexes; ``substrings``/``regexes`` map a list index to
    its (entry, pattern) pairs. ``problems`` names unreadable lists and bad entries.
    """

    lists: list[Warninglist] = field(default_factory=list)
    problems: list[FeedProblem] = field(default_factory=list)
    strings: pa.Table | None = None
    hostnames: pa.Table | None = None
    v4: CidrIndex | None = None
    v6: CidrIndex | None = None
    substrings: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    regexes: dict[int, list[tuple[str, str]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.lists)

    def names(self) -> list[str]:
        """The list names, in load order (the order ``suppress`` breaks ties in)."""
        return [w.name for w in self.lists]


# ---------------------------------------------------------------------------- IPs


def ip_ranges(text: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(lo, hi, prefix, ok)`` of IP or CIDR text, vectorised.

    ``lo``/``hi`` are ``(n, 16)`` uint8 IPv4-mapped addresses (host bits of ``lo``
    cleared, set in ``hi``); ``prefix`` is the prefix length over 128 bits; ``ok``
    marks rows that parsed. Bare addresses are /32 or /128.
    """
    from detect import arrow_buffers as ab
    from detect.enrich import ip_to_bin  # numba import, only when IPs are matched

    text = text.cast(pa.string()) if text.type != pa.string() else text
    n = len(text)
    parts = pc.extract_regex(text, r"^(?P<addr>[^/]*)(?:/(?P<len>.*))?$")
    addr = pc.struct_field(parts, "addr")
    has_len = np.asarray(
        pc.fill_null(pc.match_substring(text, "/"), False).to_numpy(zero_copy_only=False),
        dtype=bool,
    )
    length_text = pc.struct_field(parts, "len")
    digits = np.asarray(
        pc.fill_null(pc.match_substring_regex(length_text, r"^[0-9]{1,3}$"), False).to_numpy(
            zero_copy_only=False
        ),
        dtype=bool,
    )
    plen = np.asarray(
        pc.cast(pc.if_else(pa.array(digits), length_text, "0"), pa.int64()).to_numpy(
            zero_copy_only=False
        )
    )
    buf = ab.fixed_binary_buffers(ip_to_bin(addr))
    ok = ab.validity_or_ones(buf.validity, n).copy()
    lo = np.array(buf.values, dtype=np.uint8, copy=True)
    v4 = (lo[:, :10] == 0).all(axis=1) & (lo[:, 10] == 0xFF) & (lo[:, 11] == 0xFF)
    v6_text = np.asarray(
        pc.fill_null(pc.match_substring(addr, ":"), False).to_numpy(zero_copy_only=False),
        dtype=bool,
    )
    short = v4 & ~v6_text  # dotted IPv4: the prefix counts 32 bits, not 128
    ok &= ~has_len | (digits & (plen <= np.where(short, 32, 128)))
    prefix = np.where(ok & has_len, plen + np.where(short, 96, 0), 128)
    bits = np.clip(prefix[:, None] - 8 * np.arange(16)[None, :], 0, 8)
    netmask = ((0xFF00 >> bits) & 0xFF).astype(np.uint8)
    lo &= netmask
    hi = lo | ~netmask
    return lo, hi, prefix, ok


def _v4_key(rows: np.ndarray) -> np.ndarray:
    """uint32 of the last four bytes of IPv4-mapped addresses."""
    return np.ascontiguousarray(rows[:, 12:]).view(">u4").ravel().astype(np.uint32)


def _v6_key(rows: np.ndarray) -> np.ndarray:
    """16-byte big-endian keys; numpy ``S16`` compares them like the 128-bit numbers."""
    return np.ascontiguousarray(rows).view("S16").ravel()


def _build_cidr(
    starts: np.ndarray,
    ends: np.ndarray,
    lists: np.ndarray,
    entries: list[str],
    prefix: np.ndarray,
    n_lists: int,
) -> CidrIndex:
    """Sort by (list, start) and compute the running maximum end per list."""
    m = len(starts)
    if m == 0:
        return CidrIndex(
            starts, ends, np.zeros(0, np.int64), np.zeros(n_lists + 1, np.int64), [], prefix
        )
    order = np.lexsort((starts, lists))
    starts, ends, lists, prefix = starts[order], ends[order], lists[order], prefix[order]
    entries = [entries[i] for i in order]
    _, end_rank = np.unique(ends, return_inverse=True)
    end_rank = end_rank.astype(np.int64).ravel()
    offsets = np.searchsorted(lists, np.arange(n_lists + 1)).astype(np.int64)
    witness = np.empty(m, np.int64)
    idx = np.arange(m, dtype=np.int64)
    for i in range(n_lists):
        a, b = offsets[i], offsets[i + 1]
        if a == b:
            continue
        key = end_rank[a:b] * m + idx[a:b]  # max rank, ties to the later row
        witness[a:b] = np.maximum.accumulate(key) % m
    return CidrIndex(starts, ends[witness], witness, offsets, entries, prefix)


# ------------------------------------------------------------------------- loading


@dataclass
class _Builder:
    """Entries collected list by list, compiled into a ``SuppressionSet`` at the end."""

    out: SuppressionSet = field(default_factory=SuppressionSet)
    str_value: list[str] = field(default_factory=list)
    str_list: list[int] = field(default_factory=list)
    str_entry: list[str] = field(default_factory=list)
    host_value: list[str] = field(default_factory=list)
    host_list: list[int] = field(default_factory=list)
    host_entry: list[str] = field(default_factory=list)
    cidr_text: list[str] = field(default_factory=list)
    cidr_list: list[int] = field(default_factory=list)
    cidr_entry: list[str] = field(default_factory=list)

    def problem(
        self, path: str, reason: str, raw: str | None = None, line: int | None = None
    ) -> None:
        self.out.problems.append(FeedProblem(path, line, reason, raw))

    def add_string(self, idx: int, value: str, entry: str) -> None:
        self.str_value.append(value)
        self.str_list.append(idx)
        self.str_entry.append(entry)

    def add_host(self, idx: int, value: str, entry: str) -> None:
        self.host_value.append(value)
        self.host_list.append(idx)
        self.host_entry.append(entry)

    def add_cidr(self, idx: int, value: str, entry: str) -> None:
        self.cidr_text.append(value)
        self.cidr_list.append(idx)
        self.cidr_entry.append(entry)

    def finish(self) -> SuppressionSet:
        out = self.out
        n_lists = len(out.lists)
        out.strings = _entry_table(self.str_value, self.str_list, self.str_entry)
        out.hostnames = _entry_table(self.host_value, self.host_list, self.host_entry)
        lo, hi, prefix, ok = ip_ranges(pa.array(self.cidr_text, pa.string()))
        lists = np.asarray(self.cidr_list, dtype=np.int64)
        for i in np.flatnonzero(~ok):
            w = out.lists[int(lists[i])]
            self.problem(
                w.path, f"list {w.name!r}: not an IP network, entry skipped", self.cidr_entry[i]
            )
        v4 = ok & (lo[:, :10] == 0).all(axis=1) & (lo[:, 10] == 0xFF) & (lo[:, 11] == 0xFF)
        v6 = ok & ~v4
        for mask, key, bits, attr in ((v4, _v4_key, 96, "v4"), (v6, _v6_key, 0, "v6")):
            rows = np.flatnonzero(mask)
            index = _build_cidr(
                key(lo[rows]),
                key(hi[rows]),
                lists[rows],
                [self.cidr_entry[i] for i in rows],
                prefix[rows] - bits,
                n_lists,
            )
            setattr(out, attr, index)
        return out


def _entry_table(values: list[str], lists: list[int], entries: list[str]) -> pa.Table:
    return pa.table(
        {
            "value": pa.array(values, pa.string()),
            "list": pa.array(lists, pa.int32()),
            "entry": pa.array(entries, pa.string()),
        }
    )


def _read_text(path: Path) -> str:
    """File text, gunzipped when it starts with the gzip magic (whatever its name)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8")


_GLOB_CHARS = frozenset("*?[")


def require_paths(specs: list[str | Path] | tuple[str, ...]) -> None:
    """``InputError`` for a spec that is no glob and names no file or folder.

    A glob that matches nothing stays a problem (a folder of optional lists), but a
    mistyped path would silently suppress nothing.
    """
    for spec in specs:
        text = str(spec)
        if not _GLOB_CHARS & set(text) and not Path(text).exists():
            msg = "no such allowlist file or folder"
            raise InputError(msg, location=Location(text))


def _expand(specs: list[str | Path], b: _Builder) -> list[Path]:
    """Files named by specs: files as given, folders searched, globs expanded."""
    files: list[Path] = []
    for spec in specs:
        text = str(spec)
        if _GLOB_CHARS & set(text):
            found = sorted(Path(p) for p in glob.glob(text, recursive=True))  # noqa: PTH207 (absolute patterns)
            if not found:
                b.problem(text, "no file matches this pattern")
            for p in found:
                files.extend(_folder(p) if p.is_dir() else [p])
            continue
        p = Path(text)
        if p.is_dir():
            inside = _folder(p)
            if not inside:
                b.problem(text, "folder holds no warninglist or allowlist")
            files.extend(inside)
        elif p.is_file():
            files.append(p)
        else:  # a mistyped path would silently suppress nothing: stop, as for a feed
            msg = "no such allowlist file or folder"
            raise InputError(msg, location=Location(text))
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def _folder(p: Path) -> list[Path]:
    """``list.json[.gz]`` anywhere below, else the plain files directly inside."""
    lists = sorted(q for q in p.rglob("list.json*") if q.name in ("list.json", "list.json.gz"))
    if lists:
        return lists
    return sorted(
        q for q in p.iterdir() if q.is_file() and not q.name.startswith(".") and q.suffix != ".md"
    )


def _slug(path: Path) -> str:
    """``lists/<slug>/list.json`` -> slug; otherwise the file name without suffixes."""
    if path.name in ("list.json", "list.json.gz"):
        return path.parent.name
    name = path.name.removesuffix(".gz")
    return Path(name).stem


def load_warninglists(specs: list[str | Path]) -> SuppressionSet:
    """Load MISP warninglists and allowlists (files, folders, globs) into one set.

    A file is a warninglist when its content is a JSON object, an allowlist
    otherwise. Unreadable lists and bad entries land in ``problems``; the rest loads.
    A path (not a glob) that names nothing raises ``InputError``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "ours.txt").write_text("# benign\\n10.0.0.0/8\\nexample.org\\n")
    >>> s = load_warninglists([d / "ours.txt"])
    >>> s.names(), s.problems
    (['ours'], [])
    """
    b = _Builder()
    for path in _expand(specs, b):
        try:
            text = _read_text(path)
        except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as e:
            b.problem(str(path), f"cannot read list: {e}")
            continue
        if text.lstrip().startswith("{"):
            _load_json(path, text, b)
        else:
            _load_allowlist(path, text, b)
    return b.finish()


def _applies(attributes: object) -> tuple[frozenset[str], bool, bool]:
    """(our types, applies to URLs, applies to IPs) of a ``matching_attributes`` value."""
    if not attributes:
        return ALL_TYPES, True, True
    kinds: set[str] = set()
    for a in attributes if isinstance(attributes, list) else []:
        kinds |= MISP_TYPES.get(str(a), frozenset())
    url = (
        any(str(a) in _URL_ATTRIBUTES for a in attributes)
        if isinstance(attributes, list)
        else False
    )
    return frozenset(kinds), url, "ip" in kinds


def _load_json(path: Path, text: str, b: _Builder) -> None:
    where = str(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        b.problem(
            where, f"not valid JSON (line {e.lineno}, column {e.colno}): {e.msg}", line=e.lineno
        )
        return
    slug = _slug(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("list"), list):
        b.problem(where, f"list {slug!r}: a warninglist needs a 'list' array")
        return
    kind = doc.get("type")
    if kind not in LIST_TYPES:
        b.problem(
            where,
            f"list {slug!r}: unknown type {kind!r}, expected one of "
            f"{', '.join(LIST_TYPES)}; list skipped",
        )
        return
    applies, url, ip = _applies(doc.get("matching_attributes"))
    hosts = frozenset(k for k, on in (("hostname", url), ("cidr", ip)) if on)
    idx = len(b.out.lists)
    version = doc.get("version")
    b.out.lists.append(
        Warninglist(
            name=slug,
            title=str(doc.get("name") or slug),
            kind=kind,
            path=where,
            version=None if version is None else str(version),
            applies_to=applies,
            url_hosts=hosts,
            entries=len(doc["list"]),
        )
    )
    bad = 0
    for raw in doc["list"]:
        if not isinstance(raw, str) or not raw.strip():
            bad += 1
            if bad <= _MAX_PROBLEMS_PER_LIST:
                b.problem(
                    where, f"list {slug!r}: entry is not a non-empty string, skipped", repr(raw)
                )
            continue
        reason = _add_entry(kind, idx, raw, b)
        if reason is not None:
            bad += 1
            if bad <= _MAX_PROBLEMS_PER_LIST:
                b.problem(where, f"list {slug!r}: {reason}", raw)
    if bad > _MAX_PROBLEMS_PER_LIST:
        b.problem(
            where, f"list {slug!r}: {bad - _MAX_PROBLEMS_PER_LIST} more bad entries not listed"
        )


def _add_entry(kind: str, idx: int, raw: str, b: _Builder) -> str | None:
    """File one entry of a list of ``kind``; the reason it was skipped, if it was."""
    entry = raw.strip()
    if kind == "cidr":
        b.add_cidr(idx, entry, raw)  # validated vectorised in finish()
        return None
    if kind == "hostname" or (kind == "string" and entry.startswith(".")):
        return _add_host(idx, entry, raw, b)
    if kind == "string":
        try:
            _, value = nz.infer(entry)
        except nz.NormalizeError:
            value = entry  # not an indicator (an app id, a TLD): compared as written
        b.add_string(idx, value, raw)
        return None
    if kind == "substring":
        b.out.substrings.setdefault(idx, []).append((raw, entry))
        return None
    pattern, reason = _re2_pattern(entry)
    if pattern is None:
        return reason
    b.out.regexes.setdefault(idx, []).append((raw, pattern))
    return None


def _add_host(idx: int, entry: str, raw: str, b: _Builder) -> str | None:
    name = entry.strip(".").lower()
    if "/" not in name:
        try:
            b.add_cidr(idx, nz.normalize_ip(name), raw)  # an IP in a hostname list
        except nz.NormalizeError:
            pass
        else:
            return None
    if "." not in name:
        return "a one-label hostname would suppress a whole top-level domain; skipped"
    try:
        b.add_host(idx, nz.normalize_domain(name), raw)
    except nz.NormalizeError as e:
        return f"{e}; skipped"
    return None


_FLAGS = {"i": "i", "m": "m", "s": "s", "g": "", "u": "", "U": "U"}


def _re2_pattern(entry: str) -> tuple[str | None, str]:
    """RE2 pattern of a ``/pattern/flags`` (or bare) regex entry, or None and why."""
    body, flags = entry, ""
    if entry.startswith("/") and entry.rfind("/") > 0:
        cut = entry.rfind("/")
        body, flags = entry[1:cut], entry[cut + 1 :]
    inline = ""
    for f in flags:
        if f not in _FLAGS:
            return None, f"regex flag {f!r} has no RE2 equivalent; entry skipped"
        inline += _FLAGS[f]
    pattern = f"(?{inline}){body}" if inline else body
    try:
        pc.match_substring_regex(pa.array([""], pa.string()), pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        return None, f"regex RE2 cannot compile ({e}); entry skipped"
    return pattern, ""


def _load_allowlist(path: Path, text: str, b: _Builder) -> None:
    where = str(path)
    slug = _slug(path)
    idx = len(b.out.lists)
    count = 0
    start = len(b.out.problems)
    for line_no, line in enumerate(text.splitlines(), 1):
        value = line.split("#", 1)[0].strip()
        if not value:
            continue
        count += 1
        try:
            kind, norm = nz.infer(value)
        except nz.NormalizeError as e:
            b.problem(where, f"allowlist {slug!r}: {e}; skipped", value, line=line_no)
            continue
        if kind in _IP:
            b.add_cidr(idx, norm, value)
        elif kind == "domain":
            b.add_host(idx, norm, value)
        else:
            b.add_string(idx, norm, value)
    if count and len(b.out.problems) - start == count:
        b.problem(where, f"allowlist {slug!r}: no line is a value (is it a list at all?)")
    b.out.lists.append(
        Warninglist(
            name=slug,
            title=slug,
            kind="allowlist",
            path=where,
            version=None,
            applies_to=ALL_TYPES,
            url_hosts=frozenset({"hostname", "cidr"}),
            entries=count,
        )
    )
