"""One normal form per indicator type, shared by every feed loader and by the matchers.

Feeds write the same thing many ways (``EVIL.com.``, ``hxxp://``, ``10.0.0.1/8``,
colon-separated fingerprints); an indicator only matches when feed and event agree
on one spelling. The per-value functions here run once per indicator at load time;
``normalize_url_column`` is the vectorised twin that events' URLs go through.

Normal forms (documented in the README's indicator section):

- ip: ``ipaddress`` text; IPv4-mapped IPv6 (``::ffff:a.b.c.d``) becomes IPv4.
- cidr: the network (host bits cleared, as firehol lists ``10.0.0.1/8``); a /32 or
  /128 becomes an ``ip``.
- domain: lower case, IDNA (punycode) for non-ASCII, one trailing dot and a leading
  ``*.`` removed; at least two labels (a bare TLD would match a whole TLD).
- url: scheme and host lower case, default port (80, 443, 21) dropped, fragment
  dropped, empty path as ``/``; a URL without a scheme is taken as ``http://``
  (Maltrail's ``domain/path`` trails describe HTTP requests).
- md5, sha1, sha256, ja3, ja3s: lower-case hex of the right length (colons removed).
- email: lower case. user-agent: as written (exact match, trailing whitespace removed).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.compute as pc

HASH_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "ja3": 32, "ja3s": 32}
DEFAULT_PORTS = {"http": "80", "https": "443", "ftp": "21"}

_HEX = re.compile(r"^[0-9a-f]+$")
# dotted-quad IPv4 already in ``ipaddress``'s canonical form (no leading zeros): the
# common case of every IP feed, answered without building an ``ipaddress`` object
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_DEFANG = (("hxxps://", "https://"), ("hxxp://", "http://"), ("[.]", "."), ("(.)", "."),
           ("[:]", ":"))


class NormalizeError(ValueError):
    """A value that is not a valid indicator of its type (the message says why)."""


def refang(text: str) -> str:
    """Undo the usual defanging (``hxxp://``, ``[.]``) feeds apply to live indicators."""
    out = text
    for a, b in _DEFANG:
        if a in out:
            out = out.replace(a, b)
    return out


def normalize_ip(text: str) -> str:
    """Canonical IP text; IPv4-mapped IPv6 is written as IPv4."""
    stripped = text.strip()
    if _IPV4.fullmatch(stripped):
        return stripped
    try:
        ip = ipaddress.ip_address(stripped)
    except ValueError:
        msg = f"not an IP address: {text!r}"
        raise NormalizeError(msg) from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def normalize_cidr(text: str) -> tuple[str, str]:
    """``("cidr", network)``, or ``("ip", address)`` for a single-host prefix."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        msg = f"not an IP network: {text!r}"
        raise NormalizeError(msg) from None
    if isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped is not None:
        if net.prefixlen < 96:
            msg = f"IPv4-mapped network shorter than /96: {text!r}"
            raise NormalizeError(msg)
        v4 = ipaddress.ip_network(f"{net.network_address.ipv4_mapped}/{net.prefixlen - 96}")
        net = v4
    if net.prefixlen == net.max_prefixlen:
        return "ip", str(net.network_address)
    return "cidr", str(net)


def normalize_domain(text: str) -> str:
    """Lower-case (IDNA) domain without trailing dot or leading ``*.``; two labels or more."""
    name = text.strip().lower()
    if name.startswith("*."):
        name = name[2:]
    if name.endswith("."):
        name = name[:-1]
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            msg = f"not a valid internationalised domain name: {text!r}"
            raise NormalizeError(msg) from None
    labels = name.split(".")
    if len(labels) < 2:
        msg = f"a domain needs two labels or more (a bare TLD matches every name): {text!r}"
        raise NormalizeError(msg)
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        msg = f"not a domain name: {text!r}"
        raise NormalizeError(msg)
    if labels[-1].isdigit():  # no top-level domain is numeric: a malformed IP (01.2.3.4)
        msg = f"not a domain name nor an IP address (numeric last label): {text!r}"
        raise NormalizeError(msg)
    return name


def normalize_url(text: str) -> str:
    """Scheme and host lower case, default port and fragment dropped, empty path as ``/``."""
    raw = text.strip()
    if not _SCHEME.match(raw):
        raw = "http://" + raw
    try:
        parts = urlsplit(raw)
        port = parts.port  # validates the port
    except ValueError:
        msg = f"not a URL: {text!r}"
        raise NormalizeError(msg) from None
    scheme = parts.scheme.lower()
    netloc = parts.netloc
    userinfo, _, hostport = netloc.rpartition("@")
    host = parts.hostname or ""
    if not host:
        msg = f"URL without a host: {text!r}"
        raise NormalizeError(msg)
    host_text = f"[{host}]" if hostport.startswith("[") else host.lower()
    if port is not None and str(port) != DEFAULT_PORTS.get(scheme):
        host_text = f"{host_text}:{port}"
    netloc = f"{userinfo}@{host_text}" if userinfo else host_text
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, parts.query, ""))


def normalize_hash(text: str, kind: str) -> str:
    """Lower-case hex of the length ``kind`` (md5, sha1, sha256, ja3, ja3s) has."""
    value = text.strip().lower().replace(":", "")
    want = HASH_LENGTHS[kind]
    if len(value) != want or not _HEX.match(value):
        msg = f"not a {kind} ({want} hex digits): {text!r}"
        raise NormalizeError(msg)
    return value


def normalize_email(text: str) -> str:
    """Lower-case address with one ``@`` and a domain part."""
    value = text.strip().lower()
    local, at, domain = value.rpartition("@")
    if not at or not local or "." not in domain:
        msg = f"not an email address: {text!r}"
        raise NormalizeError(msg)
    return value


def normalize(kind: str, value: str) -> tuple[str, str]:
    """``(type, normalised value)`` for an indicator of ``kind``; raises ``NormalizeError``.

    The type may change: a /32 ``cidr`` is an ``ip``; an ``ip`` written as a
    network (``1.2.3.0/24``) is a ``cidr``.
    """
    value = refang(value)
    if kind in ("ip", "cidr"):
        return normalize_cidr(value) if "/" in value else ("ip", normalize_ip(value))
    if kind == "domain":
        return "domain", normalize_domain(value)
    if kind == "url":
        return "url", normalize_url(value)
    if kind in HASH_LENGTHS:
        return kind, normalize_hash(value, kind)
    if kind == "email":
        return "email", normalize_email(value)
    if kind == "user-agent":
        ua = value.rstrip()
        if not ua:
            msg = "empty user agent"
            raise NormalizeError(msg)
        return "user-agent", ua
    msg = f"unknown indicator type {kind!r}"
    raise NormalizeError(msg)


def infer(value: str) -> tuple[str, str]:
    """Type and normal form of a bare value from a plain list; raises ``NormalizeError``."""
    text = refang(value.strip())
    if not text:
        msg = "empty value"
        raise NormalizeError(msg)
    if "://" in text:
        return "url", normalize_url(text)
    if "/" in text:
        try:
            return normalize_cidr(text)
        except NormalizeError:
            head, _, tail = text.partition("/")
            if tail.isdigit() and (_IPV4.fullmatch(head) or head.count(":") >= 2):
                raise  # 1.2.3.4/33 is a broken network, not a URL
        # host[:port]/path: the host is a domain or an IP (46.28.202.77/x.php, [::1]:8080/)
        try:
            url = normalize_url(text)
            host = urlsplit(url).hostname or ""
            if _IPV4.fullmatch(host) or ":" in host:
                normalize_ip(host)
            else:
                normalize_domain(host)
        except NormalizeError:
            msg = f"neither a network nor a host/path: {value!r}"
            raise NormalizeError(msg) from None
        return "url", url
    if ":" in text or _IPV4.fullmatch(text):  # no other text can be an IP address
        try:
            return "ip", normalize_ip(text)
        except NormalizeError:
            pass
    lowered = text.lower()
    if _HEX.match(lowered):
        for kind, n in (("md5", 32), ("sha1", 40), ("sha256", 64)):
            if len(lowered) == n:
                return kind, lowered
    if "@" in text:
        return "email", normalize_email(text)
    return "domain", normalize_domain(text)


_URL_PARTS = r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<auth>[^/?#]*)(?P<rest>[^#]*)"


def normalize_url_column(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Events' URLs in the normal form of ``normalize_url``, vectorised (no per-row Python).

    Text that is not ``scheme://authority...`` is returned unchanged (it cannot equal
    a normalised indicator URL anyway, so no match is lost or invented).
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        dictionary = normalize_url_column(arr.dictionary)
        return pa.DictionaryArray.from_arrays(arr.indices, dictionary).dictionary_decode()
    text = arr.cast(pa.string())
    parts = pc.extract_regex(text, _URL_PARTS)
    ok = pc.is_valid(parts)
    scheme = pc.utf8_lower(pc.struct_field(parts, "scheme"))
    auth = pc.struct_field(parts, "auth")
    rest = pc.struct_field(parts, "rest")
    # userinfo keeps its case; host (and port) are lower-cased
    has_user = pc.match_substring(auth, "@")
    user = pc.if_else(has_user, pc.replace_substring_regex(auth, r"@[^@]*$", "@"), "")
    hostport = pc.utf8_lower(pc.replace_substring_regex(auth, r"^.*@", ""))
    drop80 = pc.and_(pc.equal(scheme, "http"), pc.match_substring_regex(hostport, r":80$"))
    drop443 = pc.and_(pc.equal(scheme, "https"), pc.match_substring_regex(hostport, r":443$"))
    drop21 = pc.and_(pc.equal(scheme, "ftp"), pc.match_substring_regex(hostport, r":21$"))
    drop = pc.or_(pc.or_(drop80, drop443), drop21)
    hostport = pc.if_else(drop, pc.replace_substring_regex(hostport, r":\d+$", ""), hostport)
    # an empty query is no query (urlsplit/urlunsplit drop a bare trailing "?")
    rest = pc.replace_substring_regex(rest, r"^([^?]*)\?$", r"\1")
    rest = pc.if_else(pc.equal(rest, ""), "/", rest)
    rest = pc.if_else(pc.starts_with(rest, "?"), pc.binary_join_element_wise("/", rest, ""),
                      rest)
    rebuilt = pc.binary_join_element_wise(scheme, "://", user, hostport, rest, "")
    return pc.if_else(ok, rebuilt, text)
