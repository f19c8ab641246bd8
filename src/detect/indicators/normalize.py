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
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detect import arrow_buffers as ab
from detect.kernels.url_normal import normalize_url_buffers

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
    """Canonical IP text; IPv4-mapped IPv6 is written as IPv4; an IPv6 zone (``%eth0``)
    is dropped: it names an interface of the sensor that logged it, and events are
    matched on the 16-byte address, which has none."""
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
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
        return str(ipaddress.IPv6Address(int(ip)))
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
    """Scheme and host lower case (a non-ASCII host in IDNA), default port and fragment
    dropped, empty path as ``/``."""
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
    if not host_text.isascii():  # as a Host header and a sensor's log spell it: punycode
        try:
            host_text = host_text.encode("idna").decode("ascii")
        except UnicodeError:
            msg = f"not a valid internationalised host name: {text!r}"
            raise NormalizeError(msg) from None
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
    if text.null_count == len(text):
        return text
    buf = ab.string_buffers(text)
    valid = ab.validity_or_ones(buf.validity, len(text))
    offsets, data, fallback = normalize_url_buffers(buf.offsets, buf.data, valid)
    out = ab.string_array(offsets, data, buf.validity)
    if fallback.any():  # non-ASCII authorities (rare): per row, IDNA host as the feeds'
        mask = pa.array(fallback)
        slow = text.filter(mask)
        computed = _normalize_url_compute(slow).to_pylist()
        idna = [_url_or(v, c) for v, c in zip(slow.to_pylist(), computed, strict=True)]
        out = pc.replace_with_mask(out, mask, pa.array(idna, out.type))
    return out


def _url_or(text: str | None, otherwise: str | None) -> str | None:
    """``normalize_url(text)`` when its authority is not ASCII (the host in IDNA, as
    indicator URLs have it); ``otherwise`` (the compute path's form) for the rest, and
    when urllib does not take it."""
    if text is None or "://" not in text:
        return otherwise
    authority = re.split(r"[/?#]", text.split("://", 1)[1], maxsplit=1)[0]
    if authority.isascii():
        return otherwise
    try:
        return normalize_url(text)
    except NormalizeError:
        return otherwise


def _normalize_url_compute(text: pa.Array) -> pa.Array:
    """:func:`normalize_url_column` by Arrow compute (regex and string kernels): the
    path of rows whose authority is not plain ASCII."""
    parts = pc.extract_regex(text, _URL_PARTS)
    ok = pc.is_valid(parts)
    scheme = pc.utf8_lower(pc.struct_field(parts, "scheme"))
    auth = pc.struct_field(parts, "auth")
    rest = pc.struct_field(parts, "rest")
    # userinfo keeps its case; host (and port) are lower-cased
    has_user = pc.match_substring(auth, "@")
    user = pc.if_else(has_user, pc.replace_substring_regex(auth, r"@[^@]*$", "@"), "")
    user = pc.if_else(pc.equal(user, "@"), "", user)  # an empty userinfo is no userinfo
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


# -- column at a time: normalize_column / infer_column ----------------------------------------
#
# The fast paths below decide the common clean spellings with pyarrow compute (and the
# numba IP parser); every row they cannot decide exactly (non-ASCII, whitespace, defanged,
# zone ids, IPv4-mapped networks, bracketed URL hosts, anything invalid) goes through the
# per-value functions above, so types, values and error messages are those of
# ``normalize`` / ``infer``, row for row.

_CLEAN = r"^[!-~]+$"  # printable ASCII, no whitespace
_CLEAN_UA = r"^[ -~]*$"
_DEFANGED = r"hxxps?://|\[\.\]|\(\.\)|\[:\]"
_DNS_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_DOMAIN_FAST = rf"^{_DNS_LABEL}(?:\.{_DNS_LABEL})+$"
_CIDR_FAST = r"^(?P<addr>[0-9A-Fa-f:.]+)/(?P<len>0|[1-9][0-9]?|1[01][0-9]|12[0-8])$"
_HAS_SCHEME = r"^[A-Za-z][A-Za-z0-9+.-]*://"
_URL_FAST = (r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[A-Za-z0-9._~!$&'()*+,;=:%-]*@)?"
             r"[A-Za-z0-9._-]+(?::(?P<port>0|[1-9][0-9]{0,4}))?(?:[/?#][!-~]*)?$")
_EMAIL_FAST = r"^.+@[^@]*\.[^@]*$"
_MISSING = "missing value"


def _text(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if not isinstance(values, pa.Array):
        values = pa.array(values, type=pa.string())
    return values.cast(pa.string())


def _np(mask: pa.Array) -> np.ndarray:
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


class _Rows:
    """Decided rows, part by part (indices into the column), then put back in row order."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.idx: list[np.ndarray] = []
        self.types: list[pa.Array] = []
        self.values: list[pa.Array] = []
        self.errors: list[pa.Array] = []

    def add(self, idx: np.ndarray, types: pa.Array | str, values: pa.Array) -> None:
        if not len(idx):
            return
        if isinstance(types, str):
            types = pa.array(np.full(len(idx), types, dtype=object), type=pa.string())
        self.idx.append(idx)
        self.types.append(types)
        self.values.append(values)
        self.errors.append(pa.nulls(len(idx), pa.string()))

    def slow(self, idx: np.ndarray, text: pa.Array, one: Callable[[str], tuple[str, str]]
             ) -> None:
        """Rows only the per-value function decides."""
        if not len(idx):
            return
        types: list[str | None] = []
        values: list[str | None] = []
        errors: list[str | None] = []
        for raw in text.take(pa.array(idx)).to_pylist():
            if raw is None:
                types.append(None)
                values.append(None)
                errors.append(_MISSING)
                continue
            try:
                typ, value = one(raw)
            except NormalizeError as e:
                types.append(None)
                values.append(None)
                errors.append(str(e))
            else:
                types.append(typ)
                values.append(value)
                errors.append(None)
        self.idx.append(idx)
        self.types.append(pa.array(types, type=pa.string()))
        self.values.append(pa.array(values, type=pa.string()))
        self.errors.append(pa.array(errors, type=pa.string()))

    def finish(self) -> tuple[pa.Array, pa.Array, pa.Array]:
        if not self.idx:
            empty = pa.array([], type=pa.string())
            return empty, empty, empty
        order = np.empty(self.n, dtype=np.int64)
        order[np.concatenate(self.idx)] = np.arange(self.n, dtype=np.int64)
        take = pa.array(order)
        return tuple(  # type: ignore[return-value]
            pa.concat_arrays(parts).take(take)
            for parts in (self.types, self.values, self.errors))


def _ip_bytes(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """16 bytes per row (IPv4 as ::ffff:a.b.c.d) and validity, by the numba parser."""
    from detect.enrich import ip_to_bin

    b = ip_to_bin(text)
    ok = _np(b.is_valid())
    buf = b.buffers()[1]
    raw = np.frombuffer(buf, dtype=np.uint8)[b.offset * 16:(b.offset + len(b)) * 16]
    return raw.reshape(-1, 16), ok


def _bytes_text(raw: np.ndarray) -> pa.Array:
    from detect.enrich import bin_to_ip

    arr = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(16), len(raw), [None, pa.py_buffer(np.ascontiguousarray(raw).tobytes())])
    return bin_to_ip(arr)


_MAPPED_PREFIX = np.array([0] * 10 + [255, 255], dtype=np.uint8)


def _fast_ip(text: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Rows ``normalize_ip`` accepts and writes as the formatter does (no zone ids)."""
    raw, ok = _ip_bytes(text)
    ok &= ~_np(pc.match_substring(text, "%"))
    return ok, _bytes_text(raw)


def _fast_cidr(text: pa.Array) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """``address/len`` rows: ok, type (ip for a full-length prefix, else cidr), network."""
    parts = pc.extract_regex(text, _CIDR_FAST)
    ok = _np(parts.is_valid())
    addr = pc.fill_null(pc.struct_field(parts, "addr"), "")
    plen_text = pc.fill_null(pc.struct_field(parts, "len"), "0")
    plen = plen_text.cast(pa.int64()).to_numpy(zero_copy_only=False)
    raw, valid = _ip_bytes(addr)
    v6 = _np(pc.match_substring(addr, ":"))
    ok &= valid & (plen <= np.where(v6, 128, 32))
    bits = np.where(v6, plen, plen + 96)
    mask = np.packbits(np.arange(128)[None, :] < bits[:, None], axis=1)
    net = raw & mask
    mapped = (net[:, :12] == _MAPPED_PREFIX).all(axis=1)
    ok &= ~(v6 & mapped)  # an IPv4-mapped network: normalize_cidr's own rules
    full = plen == np.where(v6, 128, 32)
    net_text = _bytes_text(net)
    with_len = pc.binary_join_element_wise(net_text, plen_text, "/")
    full_arr = pa.array(full)
    values = pc.if_else(full_arr, net_text, with_len)
    types = pc.if_else(full_arr, "ip", "cidr")
    return ok, types, values


def _fast_domain(text: pa.Array) -> tuple[np.ndarray, pa.Array]:
    name = pc.utf8_lower(text)
    name = pc.replace_substring_regex(name, r"^\*\.", "")
    name = pc.replace_substring_regex(name, r"\.$", "")
    ok = (_np(pc.match_substring_regex(name, _DOMAIN_FAST))
          & (pc.binary_length(name).to_numpy(zero_copy_only=False) <= 253)
          & ~_np(pc.match_substring_regex(name, r"\.[0-9]+$")))
    return ok, name


def _fast_url(text: pa.Array) -> tuple[np.ndarray, pa.Array]:
    has_scheme = pc.match_substring_regex(text, _HAS_SCHEME)
    full = pc.if_else(has_scheme, text, pc.binary_join_element_wise("http://", text, ""))
    parts = pc.extract_regex(full, _URL_FAST)
    ok = _np(parts.is_valid())
    port = pc.struct_field(parts, "port")
    port_n = pc.fill_null(pc.cast(pc.if_else(pc.equal(port, ""), None, port), pa.int64()), 0)
    ok &= port_n.to_numpy(zero_copy_only=False) <= 65535
    return ok, normalize_url_column(full)


def _fast_hash(text: pa.Array, kind: str) -> tuple[np.ndarray, pa.Array]:
    value = pc.replace_substring(pc.utf8_lower(text), ":", "")
    ok = _np(pc.match_substring_regex(value, f"^[0-9a-f]{{{HASH_LENGTHS[kind]}}}$"))
    return ok, value


def _fast_email(text: pa.Array) -> tuple[np.ndarray, pa.Array]:
    value = pc.utf8_lower(text)
    return _np(pc.match_substring_regex(value, _EMAIL_FAST)), value


def _clean(text: pa.Array, pattern: str = _CLEAN) -> np.ndarray:
    return (_np(pc.match_substring_regex(text, pattern))
            & ~_np(pc.match_substring_regex(text, _DEFANGED)))


def _decide(rows: _Rows, idx: np.ndarray, ok: np.ndarray, types: pa.Array | str,
            values: pa.Array) -> np.ndarray:
    """Add the ``ok`` rows of a fast path; the indices of the others."""
    keep = pa.array(ok)
    if not isinstance(types, str):
        types = types.filter(keep)
    rows.add(idx[ok], types, values.filter(keep))
    return idx[~ok]


def normalize_column(kind: str, values: pa.Array | pa.ChunkedArray
                     ) -> tuple[pa.Array, pa.Array, pa.Array]:
    """``normalize(kind, v)`` for every row: (types, values, errors) string arrays.

    Types and values are null where the row is invalid, errors null where it is valid
    (the message ``normalize`` raises; a null input row is invalid, "missing value").
    """
    text = _text(values)
    n = len(text)
    rows = _Rows(n)
    every = np.arange(n, dtype=np.int64)
    pattern = _CLEAN_UA if kind == "user-agent" else _CLEAN
    clean = _clean(text, pattern)
    fast, slow = every[clean], every[~clean]
    sub = text.take(pa.array(fast))
    if kind in ("ip", "cidr"):
        has_net = _np(pc.match_substring(sub, "/"))
        ip_idx, ip_sub = fast[~has_net], sub.filter(pa.array(~has_net))
        ok, vals = _fast_ip(ip_sub)
        rest_ip = _decide(rows, ip_idx, ok, "ip", vals)
        net_idx, net_sub = fast[has_net], sub.filter(pa.array(has_net))
        ok, types, vals = _fast_cidr(net_sub)
        rest_net = _decide(rows, net_idx, ok, types, vals)
        slow = np.concatenate([slow, rest_ip, rest_net])
    elif kind == "domain":
        ok, vals = _fast_domain(sub)
        slow = np.concatenate([slow, _decide(rows, fast, ok, "domain", vals)])
    elif kind == "url":
        ok, vals = _fast_url(sub)
        slow = np.concatenate([slow, _decide(rows, fast, ok, "url", vals)])
    elif kind in HASH_LENGTHS:
        ok, vals = _fast_hash(sub, kind)
        slow = np.concatenate([slow, _decide(rows, fast, ok, kind, vals)])
    elif kind == "email":
        ok, vals = _fast_email(sub)
        slow = np.concatenate([slow, _decide(rows, fast, ok, "email", vals)])
    elif kind == "user-agent":
        vals = pc.utf8_rtrim(sub, characters=" ")
        ok = pc.binary_length(vals).to_numpy(zero_copy_only=False) > 0
        slow = np.concatenate([slow, _decide(rows, fast, ok, "user-agent", vals)])
    else:
        slow = every
    rows.slow(np.sort(slow), text, lambda v: normalize(kind, v))
    return rows.finish()


def infer_column(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array, pa.Array]:
    """``infer(v)`` for every row: (types, values, errors), as ``normalize_column``."""
    text = _text(values)
    n = len(text)
    rows = _Rows(n)
    every = np.arange(n, dtype=np.int64)
    clean = _clean(text)
    fast, slow_parts = every[clean], [every[~clean]]
    sub = text.take(pa.array(fast))

    def part(mask: np.ndarray) -> tuple[np.ndarray, pa.Array]:
        return fast[mask], sub.filter(pa.array(mask))

    is_url = _np(pc.match_substring(sub, "://"))
    has_slash = _np(pc.match_substring(sub, "/")) & ~is_url
    bare = ~is_url & ~has_slash
    idx, s = part(is_url)
    ok, vals = _fast_url(s)
    slow_parts.append(_decide(rows, idx, ok, "url", vals))
    idx, s = part(has_slash)
    ok, types, vals = _fast_cidr(s)
    slow_parts.append(_decide(rows, idx, ok, types, vals))
    idx, s = part(bare)
    ok, vals = _fast_ip(s)
    colon = _np(pc.match_substring(s, ":"))
    zone = _np(pc.match_substring(s, "%"))
    rows.add(idx[ok], "ip", vals.filter(pa.array(ok)))
    slow_parts.append(idx[~ok & (colon | zone)])  # ":" but no IP: the per-value rules
    other = ~ok & ~colon & ~zone
    idx, s = idx[other], s.filter(pa.array(other))
    lowered = pc.utf8_lower(s)
    length = pc.binary_length(lowered).to_numpy(zero_copy_only=False)
    hexed = _np(pc.match_substring_regex(lowered, r"^[0-9a-f]+$"))
    for kind, want in (("md5", 32), ("sha1", 40), ("sha256", 64)):
        m = hexed & (length == want)
        rows.add(idx[m], kind, lowered.filter(pa.array(m)))
    other = ~(hexed & np.isin(length, (32, 40, 64)))
    idx, s = idx[other], s.filter(pa.array(other))
    at = _np(pc.match_substring(s, "@"))
    ok, vals = _fast_email(s.filter(pa.array(at)))
    slow_parts.append(_decide(rows, idx[at], ok, "email", vals))
    ok, vals = _fast_domain(s.filter(pa.array(~at)))
    slow_parts.append(_decide(rows, idx[~at], ok, "domain", vals))
    rows.slow(np.sort(np.concatenate(slow_parts)), text, infer)
    return rows.finish()
