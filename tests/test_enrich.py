"""enrich(): parse-once columns on canonical batches, compared with the naive references."""

from __future__ import annotations

import ipaddress

import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from detect import enrich as enrich_mod
from detect.enrich import community_id, enrich, registered_domain, transport_number
from detect.schema import CANONICAL_SCHEMA, conform
from tests import naive

_LABELS = ["www", "a", "mail", "example", "evil", "xn--bcher-kva", "Bücher", "MiXeD", "1"]
_SUFFIXES = [
    "com",
    "co.uk",
    "uk",
    "github.io",
    "blogspot.com",
    "s3.amazonaws.com",
    "local",
    "ck",
    "www.ck",
    "jp",
    "kyoto.jp",
    "",
    "com.",
]


@st.composite
def _host(draw: st.DrawFn) -> str:
    labels = draw(st.lists(st.sampled_from(_LABELS), max_size=3))
    suffix = draw(st.sampled_from(_SUFFIXES))
    return ".".join([*labels, suffix]) if suffix else ".".join(labels)


_hosts = st.lists(
    st.one_of(
        st.none(),
        _host(),
        st.sampled_from(
            [
                "10.0.0.1",
                "::1",
                "[::1]",
                "localhost",
                "COM",
                ".",
                "..",
                "a..b.com",
                ".example.com",
                "example.com..",
                "",
                " Example.ORG ",
            ]
        ),
        st.text(max_size=12),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(values=_hosts, dictionary=st.booleans(), start=st.integers(0, 5))
@example(values=[], dictionary=False, start=0)
@example(values=[None, None], dictionary=True, start=0)
def test_registered_domain_matches_naive(values, dictionary, start) -> None:
    arr = pa.array(values, pa.string())
    if dictionary:
        arr = arr.dictionary_encode()
    k = min(start, len(values))
    got = registered_domain(arr.slice(k)).to_pylist()
    assert got == [naive.registered_domain(v) for v in values[k:]]


def test_registered_domain_choices() -> None:
    got = registered_domain(
        pa.chunked_array(
            [["WWW.Example.co.uk.", "a.b.github.io"], ["10.0.0.1", "localhost", "x.corp.local"]]
        )
    ).to_pylist()
    # private suffixes count (github.io), unknown TLDs are one-label suffixes
    assert got == ["example.co.uk", "b.github.io", None, None, "corp.local"]


def test_transport_number() -> None:
    assert [
        transport_number(t)
        for t in ["TCP", "udp", "icmp", "ipv6-icmp", "sctp", "47", "x", None, "300"]
    ] == [6, 17, 1, 58, 132, 47, -1, -1, -1]


def _batch(rows: list[dict]) -> pa.RecordBatch:
    cols = {
        name: pa.array(
            [r.get(name) for r in rows],
            CANONICAL_SCHEMA.field(name).type.value_type
            if pa.types.is_dictionary(CANONICAL_SCHEMA.field(name).type)
            else CANONICAL_SCHEMA.field(name).type,
        )
        for name in {k for r in rows for k in r}
    }
    return conform(cols, len(rows))


def test_enrich_fills_derived_columns_and_keeps_schema() -> None:
    b = _batch(
        [
            {
                "source.ip": "10.0.0.1",
                "destination.ip": "2001:db8::1",
                "dns.question.name": "a.example.com",
                "url.domain": "x.github.io",
                "tls.server.name": "WWW.BBC.CO.UK.",
            },
            {"source.ip": "bogus", "destination.ip": None},
        ]
    )
    out = enrich(b)
    assert out.schema == CANONICAL_SCHEMA
    assert out.column("source.ip_bin").to_pylist() == [naive.ip_to_bytes("10.0.0.1"), None]
    assert out.column("destination.ip_bin").to_pylist() == [naive.ip_to_bytes("2001:db8::1"), None]
    assert out.column("dns.question.registered_domain").to_pylist() == ["example.com", None]
    assert out.column("url.registered_domain").to_pylist() == ["x.github.io", None]
    assert out.column("tls.server.registered_domain").to_pylist() == ["bbc.co.uk", None]
    assert out.column("source.ip").to_pylist() == ["10.0.0.1", "bogus"]  # text kept for evidence


def test_enrich_keeps_existing_values_and_is_idempotent() -> None:
    pre = naive.ip_to_bytes("192.0.2.9")
    b = _batch(
        [
            {
                "source.ip": "10.0.0.1",
                "source.ip_bin": pre,
                "dns.question.registered_domain": "kept.org",
                "dns.question.name": "www.example.com",
            },
            {"source.ip": "10.0.0.2", "dns.question.name": "www.example.com"},
        ]
    )
    out = enrich(b)
    assert out.column("source.ip_bin").to_pylist() == [pre, naive.ip_to_bytes("10.0.0.2")]
    assert out.column("dns.question.registered_domain").to_pylist() == ["kept.org", "example.com"]
    assert enrich(out).equals(out)


def test_enrich_rejects_other_schemas() -> None:
    with pytest.raises(ValueError, match="CANONICAL_SCHEMA"):
        enrich(pa.record_batch({"x": [1]}))


def test_enrich_empty_batch() -> None:
    from detect.schema import empty_batch

    assert enrich(empty_batch()).schema == CANONICAL_SCHEMA


_ips = st.sampled_from(
    [
        "10.0.0.1",
        "10.0.0.2",
        "192.168.1.52",
        "8.8.8.8",
        "fe80::1",
        "fe80::2",
        "2001:db8::1",
        "::ffff:10.0.0.9",
        "bad",
        "",
        None,
    ]
)
_transports = st.sampled_from(["tcp", "udp", "icmp", "sctp", "ipv6-icmp", "47", "gre?", None])
_ports = st.one_of(st.none(), st.integers(0, 65535), st.sampled_from([0, 8, 128, 135, 20]))


def _expected_cid(row: dict) -> str | None:
    if row.get("network.community_id") is not None:
        return row["network.community_id"]
    src, dst = naive.ip_to_bytes(row["source.ip"]), naive.ip_to_bytes(row["destination.ip"])
    proto = transport_number(row["network.transport"])
    v4 = b"\x00" * 10 + b"\xff\xff"
    if proto == 1 and src and dst and not src.startswith(v4) and not dst.startswith(v4):
        proto = 58  # icmp between IPv6 endpoints is ICMPv6
    return naive.community_id(src, dst, row["source.port"], row["destination.port"], proto)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {
                "source.ip": _ips,
                "destination.ip": _ips,
                "source.port": _ports,
                "destination.port": _ports,
                "network.transport": _transports,
                "network.community_id": st.sampled_from([None, None, None, "1:given"]),
            }
        ),
        max_size=25,
    )
)
def test_community_id_matches_package(rows: list[dict]) -> None:
    b = _batch(rows) if rows else conform({}, 0)
    assert community_id(b).to_pylist() == [_expected_cid(r) for r in rows]
    assert community_id(enrich(b)).to_pylist() == [_expected_cid(r) for r in rows]


def test_enrich_computes_community_id_when_switched_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(enrich_mod, "COMMUNITY_ID_AT_INGEST", True)
    b = _batch(
        [
            {
                "source.ip": "128.232.110.120",
                "destination.ip": "66.35.250.204",
                "source.port": 34855,
                "destination.port": 80,
                "network.transport": "tcp",
            }
        ]
    )
    out = enrich(b)
    assert out.schema == CANONICAL_SCHEMA
    assert out.column("network.community_id").to_pylist() == ["1:LQU9qZlK+B5F3KDmev6m5PMibrg="]


def test_ipv6_text_is_written_one_way_whatever_the_sensor_wrote() -> None:
    from detect.enrich import enrich
    from detect.schema import conform

    text = ["ff02:0000:0000:0000:0000:0000:0000:0016", "ff02::16", "10.0.0.1", None,
            "::FFFF:1.2.3.4", "2001:DB8:0:0::1", "not:an:ip"]  # fmt: skip
    b = enrich(conform({"source.ip": pa.array(text), "destination.ip": pa.array(text)}, 7))
    want = ["ff02::16", "ff02::16", "10.0.0.1", None, "1.2.3.4", "2001:db8::1", "not:an:ip"]
    assert b.column("source.ip").to_pylist() == want  # Suricata's and Zeek's spellings agree
    assert b.column("destination.ip").to_pylist() == want
    assert [str(ipaddress.ip_address(v)) for v in want[:3]] == want[:3]  # as ipaddress writes
