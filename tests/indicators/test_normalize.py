"""Normal forms per indicator type, and the vectorised URL column against the per-value form."""

from __future__ import annotations

import ipaddress

import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from detect.indicators.normalize import (
    NormalizeError,
    infer,
    infer_column,
    normalize,
    normalize_cidr,
    normalize_column,
    normalize_domain,
    normalize_ip,
    normalize_url,
    normalize_url_column,
    refang,
)


@pytest.mark.parametrize(("text", "want"), [
    ("1.2.3.4", "1.2.3.4"),
    (" 1.2.3.4\n", "1.2.3.4"),
    ("2001:DB8:0:0::1", "2001:db8::1"),
    ("::ffff:1.2.3.4", "1.2.3.4"),
    ("0.0.0.0", "0.0.0.0"),
    ("fe80::1%eth0", "fe80::1"),  # a zone names the sensor's interface, not the address
    ("FE80::2%3", "fe80::2"),
])
def test_ip(text: str, want: str) -> None:
    assert normalize_ip(text) == want


@pytest.mark.parametrize("text", ["01.2.3.4", "256.1.1.1", "1.2.3", "evil.com", "", "1.2.3.4/8"])
def test_ip_rejects(text: str) -> None:
    with pytest.raises(NormalizeError):
        normalize_ip(text)


@given(st.integers(0, 2**32 - 1))
def test_ipv4_fast_path_matches_ipaddress(n: int) -> None:
    text = str(ipaddress.IPv4Address(n))
    assert normalize_ip(text) == text


@given(st.lists(st.integers(0, 999), min_size=4, max_size=4), st.booleans())
def test_ip_text_agrees_with_ipaddress(octets: list[int], zero_pad: bool) -> None:
    text = ".".join(f"0{o}" if zero_pad and o < 10 else str(o) for o in octets)
    try:
        want: str | None = str(ipaddress.ip_address(text))
    except ValueError:
        want = None
    try:
        got: str | None = normalize_ip(text)
    except NormalizeError:
        got = None
    assert got == want


@given(st.ip_addresses(v=6))
def test_ipv6_round_trip(ip: ipaddress.IPv6Address) -> None:
    want = str(ip.ipv4_mapped) if ip.ipv4_mapped else str(ip)
    assert normalize_ip(ip.exploded.upper()) == want


def test_cidr() -> None:
    assert normalize_cidr("10.0.0.1/8") == ("cidr", "10.0.0.0/8")
    assert normalize_cidr("1.2.3.4/32") == ("ip", "1.2.3.4")
    assert normalize_cidr("2001:db8::1/128") == ("ip", "2001:db8::1")
    assert normalize_cidr("::ffff:10.0.0.0/104") == ("cidr", "10.0.0.0/8")
    assert normalize_cidr("::ffff:0.0.0.0/90") == ("cidr", "::ffc0:0:0/90")  # not mapped
    with pytest.raises(NormalizeError):
        normalize_cidr("1.2.3.4/33")


@pytest.mark.parametrize(("text", "want"), [
    ("Evil.COM.", "evil.com"),
    ("*.evil.com", "evil.com"),
    ("bücher.de", "xn--bcher-kva.de"),
    ("_dmarc.evil.com", "_dmarc.evil.com"),
    ("a.b1", "a.b1"),
])
def test_domain(text: str, want: str) -> None:
    assert normalize_domain(text) == want


@pytest.mark.parametrize("text", ["com", "evil..com", "-a.com", "a-.com", "a b.com",
                                  "01.2.3.4", "x.123", "a" * 64 + ".com"])
def test_domain_rejects(text: str) -> None:
    with pytest.raises(NormalizeError):
        normalize_domain(text)


@pytest.mark.parametrize(("text", "want"), [
    ("HTTP://Evil.COM:80/A?b=C#frag", "http://evil.com/A?b=C"),
    ("https://evil.com:443", "https://evil.com/"),
    ("https://evil.com:8443/x", "https://evil.com:8443/x"),
    ("ftp://Files.Example:21/a", "ftp://files.example/a"),
    ("evil.com/path", "http://evil.com/path"),
    ("http://User:Pw@Evil.com/", "http://User:Pw@evil.com/"),
    ("http://[2001:DB8::1]:8080/x", "http://[2001:db8::1]:8080/x"),
    ("http://evil.com?q=1", "http://evil.com/?q=1"),
])
def test_url(text: str, want: str) -> None:
    assert normalize_url(text) == want


@pytest.mark.parametrize("text", ["http://", "http://evil.com:99999/", "http:///path"])
def test_url_rejects(text: str) -> None:
    with pytest.raises(NormalizeError):
        normalize_url(text)


def test_refang() -> None:
    assert refang("hxxps://evil[.]com[:]8080/x") == "https://evil.com:8080/x"
    assert refang("evil(.)com") == "evil.com"


def test_normalize_dispatch() -> None:
    assert normalize("ip", "10.0.0.0/8") == ("cidr", "10.0.0.0/8")
    assert normalize("cidr", "1.2.3.4/32") == ("ip", "1.2.3.4")
    assert normalize("sha1", "DA:39:A3:EE:5E:6B:4B:0D:32:55:BF:EF:95:60:18:90:AF:D8:07:09") == (
        "sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709")
    assert normalize("ja3s", "B386946A5A44D1DDCC843BC75336DFCE")[1] == (
        "b386946a5a44d1ddcc843bc75336dfce")
    assert normalize("email", "Bad@Evil.COM") == ("email", "bad@evil.com")
    assert normalize("user-agent", "Bot/1.0  ") == ("user-agent", "Bot/1.0")
    for kind, value in [("md5", "abc"), ("email", "nobody"), ("user-agent", "  "),
                        ("weird", "x"), ("domain", "hxxp://x")]:
        with pytest.raises(NormalizeError):
            normalize(kind, value)


@pytest.mark.parametrize(("text", "want"), [
    ("1.2.3.4", ("ip", "1.2.3.4")),
    ("10.0.0.0/8", ("cidr", "10.0.0.0/8")),
    ("2001:db8::/32", ("cidr", "2001:db8::/32")),
    ("evil.com", ("domain", "evil.com")),
    ("evil[.]com", ("domain", "evil.com")),
    ("evil.com/x", ("url", "http://evil.com/x")),
    ("46.28.202.77/teamx/settings.php", ("url", "http://46.28.202.77/teamx/settings.php")),
    ("178.32.48.50:8443/node.js", ("url", "http://178.32.48.50:8443/node.js")),
    ("evil.com/2024", ("url", "http://evil.com/2024")),
    ("hxxp://evil.com", ("url", "http://evil.com/")),
    ("d41d8cd98f00b204e9800998ecf8427e", ("md5", "d41d8cd98f00b204e9800998ecf8427e")),
    ("a@b.com", ("email", "a@b.com")),
])
def test_infer(text: str, want: tuple[str, str]) -> None:
    assert infer(text) == want


@pytest.mark.parametrize("text", ["", "foo", "1.2.3.4/33", "foo/bar", "01.2.3.4", "1.2.3"])
def test_infer_rejects(text: str) -> None:
    with pytest.raises(NormalizeError):
        infer(text)


@given(st.ip_addresses())
def test_infer_ip_agrees_with_ipaddress(ip: ipaddress.IPv4Address | ipaddress.IPv6Address
                                        ) -> None:
    kind, value = infer(str(ip))
    assert kind == "ip"
    assert ipaddress.ip_address(value) == (getattr(ip, "ipv4_mapped", None) or ip)


# -- normalize_url_column == normalize_url on random URLs ------------------------------------

_label = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,10}[A-Za-z0-9])?", fullmatch=True)
_host = st.one_of(
    st.lists(_label, min_size=2, max_size=4).map(".".join),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda ip: f"[{ip}]"),
)
_path = st.lists(st.from_regex(r"[A-Za-z0-9._~%!$&'()*+,;=:@-]{0,8}", fullmatch=True),
                 max_size=3).map(lambda parts: "".join("/" + p for p in parts))
_query = st.one_of(st.just(""), st.from_regex(r"\?[A-Za-z0-9=&%/?:@-]{0,10}", fullmatch=True))
_fragment = st.one_of(st.just(""), st.from_regex(r"#[A-Za-z0-9/?=-]{0,8}", fullmatch=True))


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "HTTP", "Https", "https", "ftp", "FTP", "hTTp"]))
    user = draw(st.one_of(st.just(""), st.from_regex(r"[A-Za-z0-9]{1,5}(:[A-Za-z0-9]{1,5})?@",
                                                     fullmatch=True)))
    host = draw(_host)
    port = draw(st.one_of(st.just(""), st.sampled_from([":80", ":443", ":21", ":8080", ":1"]),
                          st.integers(0, 65535).map(lambda p: f":{p}")))
    return f"{scheme}://{user}{host}{port}{draw(_path)}{draw(_query)}{draw(_fragment)}"


@settings(max_examples=100, deadline=None)
@given(st.lists(urls(), min_size=1, max_size=8))
@example(["HTTP://Evil.COM:80/A?b#c", "https://x.example:443", "http://[::1]:80/",
          "FTP://U:P@Host.Example:21/x", "http://a.b?x=1"])
def test_url_column_equals_normalize_url(values: list[str]) -> None:
    want = [normalize_url(v) for v in values]
    assert normalize_url_column(pa.array(values)).to_pylist() == want
    large = pa.array(values, type=pa.large_string())
    assert normalize_url_column(large).cast(pa.string()).to_pylist() == want
    chunked = pa.chunked_array([values[:1], values[1:]])
    assert normalize_url_column(chunked).to_pylist() == want
    dictionary = pa.array(values).dictionary_encode()
    assert normalize_url_column(dictionary).to_pylist() == want


@given(st.lists(st.one_of(st.text(max_size=20), st.none()), max_size=20))
@example(["not a url", "", "evil.com/path", "mailto:x@y", None])
def test_url_column_leaves_non_urls_unchanged(values: list[str | None]) -> None:
    got = normalize_url_column(pa.array(values, type=pa.string())).to_pylist()
    for before, after in zip(values, got, strict=True):
        if before is None or "://" not in before:
            assert after == before


# -- normalize_column / infer_column == normalize / infer, row for row ----------------------

_dlabel = st.from_regex(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,8}[A-Za-z0-9_])?", fullmatch=True)
_bad_label = st.sampled_from(["-a", "a-", "", "a b", "ü", "bücher", "x" * 64, "123", "a%b"])
_domain = st.builds(
    lambda labels, star, dot: ("*." if star else "") + ".".join(labels) + ("." if dot else ""),
    st.lists(st.one_of(_dlabel, _dlabel, _dlabel, _bad_label), min_size=1, max_size=4),
    st.booleans(), st.booleans())
_ip = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda ip: ip.exploded.upper()),
    st.ip_addresses(v=4).map(lambda ip: f"::ffff:{ip}"),
    st.ip_addresses(v=4).map(lambda ip: f"::{ip}"),
    st.ip_addresses(v=6).map(lambda ip: f"{ip}%eth0"),
    st.lists(st.integers(0, 300), min_size=3, max_size=5).map(
        lambda o: ".".join(f"0{x}" if x % 7 == 0 else str(x) for x in o)),
)
_cidr = st.builds(lambda ip, n: f"{ip}/{n}", _ip,
                  st.one_of(st.integers(0, 130).map(str), st.sampled_from(["32", "128", "08",
                                                                           "", "x"])))


def _colons(h: str) -> str:
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


_hash = st.builds(lambda n, up, colon: (_colons if colon else str)(
    ("ab" * 40)[:n].upper() if up else ("0f" * 40)[:n]),
    st.sampled_from([31, 32, 40, 64, 65]), st.booleans(), st.booleans())
_email = st.builds(lambda u, d: f"{u}@{d}", st.from_regex(r"[A-Za-z0-9.@]{0,6}", fullmatch=True),
                   _domain)
_garbage = st.one_of(st.text(max_size=12), st.sampled_from(
    ["", " ", "  1.2.3.4 ", "evil[.]com", "hxxp://x.com", "http://", "http:///x", "a b",
     "1.2.3.4/33", "foo/bar", "http://x.com:99999/", "http://[::1]:80/", "x.com:80/y",
     "user-agent  ", "\t", "a\nb.com", "HTTP://X.COM:0080/"]))
_mixed = st.one_of(_ip, _cidr, _domain, urls(), _domain.map(lambda d: d + "/p?q=1"), _hash,
                   _email, _garbage)


def _one(fn: object, *args: str) -> tuple[str | None, str | None, bool]:
    try:
        typ, value = fn(*args)  # type: ignore[operator]
    except NormalizeError:
        return None, None, False
    return typ, value, True


def _column(out: tuple[pa.Array, pa.Array, pa.Array]) -> list[tuple[str | None, str | None,
                                                                     bool]]:
    types, values, errors = (a.to_pylist() for a in out)
    assert all((e is None) == (t is not None) == (v is not None)
               for t, v, e in zip(types, values, errors, strict=True))
    return [(t, v, e is None) for t, v, e in zip(types, values, errors, strict=True)]


def _messages(fn: object, values: list[str], *kind: str) -> list[str | None]:
    out: list[str | None] = []
    for v in values:
        try:
            fn(*kind, v)  # type: ignore[operator]
            out.append(None)
        except NormalizeError as e:
            out.append(str(e))
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(_mixed, max_size=30))
def test_infer_column_equals_infer(values: list[str]) -> None:
    got = infer_column(pa.array(values, type=pa.string()))
    assert _column(got) == [_one(infer, v) for v in values]
    assert got[2].to_pylist() == _messages(infer, values)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["ip", "cidr", "domain", "url", "md5", "sha1", "sha256", "ja3", "ja3s",
                        "email", "user-agent", "weird"]),
       st.lists(_mixed, max_size=30))
def test_normalize_column_equals_normalize(kind: str, values: list[str]) -> None:
    got = normalize_column(kind, pa.array(values, type=pa.string()))
    assert _column(got) == [_one(normalize, kind, v) for v in values]
    assert got[2].to_pylist() == _messages(normalize, values, kind)


def test_column_null_and_chunked() -> None:
    types, _values, errors = infer_column(pa.chunked_array([["1.2.3.4"], [None, "evil.com"]]))
    assert types.to_pylist() == ["ip", None, "domain"]
    assert errors.to_pylist() == [None, "missing value", None]
    assert normalize_column("ip", pa.array([], type=pa.string()))[0].to_pylist() == []
