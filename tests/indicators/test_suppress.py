"""Suppression: the real MISP lists on known values, and a property test against a naive oracle."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from detect.indicators.model import indicator_table
from detect.indicators.suppress import explain, suppress
from detect.indicators.warninglists import SuppressionSet, load_warninglists


def _table(pairs: list[tuple[str, str]]) -> pa.Table:
    return indicator_table(
        {
            "type": [t for t, _ in pairs],
            "value": [v for _, v in pairs],
            "source": ["test"] * len(pairs),
        }
    )


@pytest.fixture(scope="module")
def real(shared_datasets: Path) -> SuppressionSet:
    return load_warninglists([shared_datasets / "warninglists" / "lists"])


def test_known_values(real: SuppressionSet) -> None:
    pairs = [
        ("ip", "8.8.8.8"),
        ("domain", "google.com"),
        ("domain", "www.google.com"),
        ("cidr", "10.0.0.0/8"),
        ("cidr", "192.168.1.0/24"),
        ("domain", "not-listed-anywhere-4711.example"),
        ("ip", "203.0.113.77"),  # TEST-NET-3 is rfc5735: removed, named
        ("url", "http://8.8.8.8/dns-query"),
        ("url", "https://mail.google.com/x"),
        ("url", "http://evil.duckdns.org/payload.exe"),  # lots-project names duckdns for URLs
    ]
    kept, removed = suppress(_table(pairs), real)
    assert kept["value"].to_pylist() == ["not-listed-anywhere-4711.example"]
    by_value = {r["value"]: r for r in removed.to_pylist()}
    assert by_value["8.8.8.8"]["list_name"] == "public-dns-v4"
    assert by_value["8.8.8.8"]["match"] == "cidr"
    assert by_value["10.0.0.0/8"]["list_name"] in {"rfc1918", "rfc5735"}
    assert by_value["192.168.1.0/24"]["list_entry"] == "192.168.0.0/16"
    assert by_value["http://8.8.8.8/dns-query"]["list_name"] == "public-dns-v4"
    assert by_value["https://mail.google.com/x"]["match"] == "hostname"
    assert all(r["list_name"] and r["list_entry"] and r["match"] for r in by_value.values())
    assert kept.num_rows + removed.num_rows == len(pairs)
    assert removed.schema.names[-3:] == ["list_name", "list_entry", "match"]


def test_explain_names_every_list(real: SuppressionSet) -> None:
    assert "public-dns-v4" in {s.list_name for s in explain("8.8.8.8", None, real)}
    google = {s.list_name for s in explain("google.com", "domain", real)}
    assert {"google", "cisco_top1000", "tranco10k"} <= google
    www = {(s.list_name, s.match) for s in explain("WWW.Google.com.", None, real)}
    assert ("google", "string") in www and ("tranco10k", "hostname") in www
    rfc = {s.list_name for s in explain("10.0.0.0/8", None, real)}
    assert "rfc1918" in rfc
    assert "rfc1918" in {s.list_name for s in explain("192.168.1.0/24", "cidr", real)}
    assert explain("not-listed-anywhere-4711.example", None, real) == []
    assert explain("8.0.0.0/8", None, real) == []  # a parent of listed networks stays


def test_parent_of_listed_host_is_kept(tmp_path: Path) -> None:
    (tmp_path / "allow.txt").write_text("www.example.com\n10.1.0.0/16\n")
    lists = load_warninglists([tmp_path / "allow.txt"])
    kept, removed = suppress(
        _table(
            [
                ("domain", "example.com"),
                ("domain", "a.www.example.com"),
                ("domain", "xwww.example.com"),
                ("cidr", "10.0.0.0/8"),
                ("cidr", "10.1.2.0/24"),
                ("ip", "10.1.255.255"),
            ]
        ),
        lists,
    )
    assert kept["value"].to_pylist() == ["example.com", "xwww.example.com", "10.0.0.0/8"]
    assert removed["list_name"].to_pylist() == ["allow"] * 3


def test_matching_attributes_and_patterns(tmp_path: Path) -> None:
    def write(name: str, doc: dict) -> None:
        (tmp_path / name).mkdir()
        (tmp_path / name / "list.json").write_text(json.dumps(doc))

    write(
        "hashes",
        {
            "name": "h",
            "type": "string",
            "matching_attributes": ["md5"],
            "list": ["D41D8CD98F00B204E9800998ECF8427E"],
        },
    )
    write(
        "sub",
        {
            "name": "s",
            "type": "substring",
            "matching_attributes": ["email-src"],
            "list": ["mailinator.com"],
        },
    )
    write("rx", {"name": "r", "type": "regex", "list": ["/^abuse@/i"]})
    lists = load_warninglists([tmp_path])
    kept, removed = suppress(
        _table(
            [
                ("md5", "d41d8cd98f00b204e9800998ecf8427e"),
                ("email", "x@mailinator.com"),
                ("domain", "mailinator.com"),  # substring list is for emails only
                ("email", "abuse@corp.example"),
            ]
        ),
        lists,
    )
    assert kept["value"].to_pylist() == ["mailinator.com"]
    assert removed["match"].to_pylist() == ["string", "substring", "regex"]


def test_empty_inputs() -> None:
    kept, removed = suppress(_table([]), SuppressionSet())
    assert kept.num_rows == removed.num_rows == 0
    assert removed.schema.names[-1] == "match"


# ------------------------------------------------------------------ property test

_v4 = st.integers(0, 2**32 - 1).map(lambda i: str(ipaddress.IPv4Address(i)))
_v6 = st.integers(0, 2**128 - 1).map(lambda i: str(ipaddress.IPv6Address(i)))


@st.composite
def _net(draw: st.DrawFn) -> str:
    six = draw(st.booleans())
    base = (
        draw(st.sampled_from(["10.0.0.0", "10.1.0.0", "192.168.7.0", "0.0.0.0"]))
        if not six
        else draw(st.sampled_from(["2001:db8::", "2001:db8:1::", "::"]))
    )
    bits = draw(st.integers(0, 32 if not six else 128))
    return str(ipaddress.ip_network(f"{base}/{bits}", strict=False))


@st.composite
def _addr(draw: st.DrawFn) -> str:
    pick = draw(st.integers(0, 3))
    if pick == 0:
        return draw(_v4)
    if pick == 1:
        return draw(_v6)
    net = ipaddress.ip_network(draw(_net()))
    return str(net.network_address + draw(st.integers(0, net.num_addresses - 1)))


_labels = st.sampled_from(["a", "b", "ex", "www", "x-y", "com", "org"])
_domain = st.lists(_labels, min_size=2, max_size=5).map(".".join)


def _naive(kind: str, value: str, nets: list[str], hosts: list[str]) -> bool:
    if kind in ("ip", "cidr"):
        mine = ipaddress.ip_network(value, strict=False)
        return any(
            mine.version == n.version and mine.subnet_of(n) for n in map(ipaddress.ip_network, nets)
        )
    return any(value == h or value.endswith("." + h) for h in hosts)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    nets=st.lists(_net(), max_size=6),
    hosts=st.lists(_domain, max_size=6),
    ips=st.lists(_addr(), max_size=12),
    cidrs=st.lists(_net(), max_size=6),
    domains=st.lists(_domain, max_size=12),
)
@example(
    nets=["10.0.0.0/8", "10.1.0.0/16"],
    hosts=["ex.com"],
    ips=["10.1.2.3", "11.0.0.1"],
    cidrs=["10.0.0.0/8", "10.1.0.0/24", "0.0.0.0/0"],
    domains=["ex.com", "a.ex.com", "xex.com"],
)
def test_cidr_and_hostname_against_naive(
    tmp_path_factory: pytest.TempPathFactory,
    nets: list[str],
    hosts: list[str],
    ips: list[str],
    cidrs: list[str],
    domains: list[str],
) -> None:
    path = tmp_path_factory.mktemp("wl")
    (path / "c").mkdir()
    (path / "c" / "list.json").write_text(json.dumps({"name": "c", "type": "cidr", "list": nets}))
    (path / "h").mkdir()
    (path / "h" / "list.json").write_text(
        json.dumps({"name": "h", "type": "hostname", "list": hosts})
    )
    lists = load_warninglists([path])
    pairs = [("ip", i) for i in ips] + [("domain", d) for d in domains]
    for c in cidrs:
        net = ipaddress.ip_network(c)
        pairs.append(
            ("ip", str(net.network_address)) if net.prefixlen == net.max_prefixlen else ("cidr", c)
        )
    kept, removed = suppress(_table(pairs), lists)
    want = [_naive(k, v, nets, hosts) for k, v in pairs]
    got = {r["value"] for r in removed.to_pylist()}
    assert [v in got for _, v in pairs] == want
    assert kept.num_rows == want.count(False)
