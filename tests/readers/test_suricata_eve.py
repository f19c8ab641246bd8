"""Suricata EVE reader: real files from ../shared (counts, fields, layouts), small inline cases."""

from __future__ import annotations

import collections
import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from detect.errors import InputError
from detect.readers import suricata_eve
from detect.readers.base import ReadContext, Reject
from detect.readers.source import read_head
from detect.schema import CANONICAL_SCHEMA

JOSEVNZ = "suricata/suricatalog-josevnz"
WRCCDC = "suricata/wrccdc-alerts-frankhassanabad/samples"
ALERT_SETS = ("first-org-conf-2015", "honeypot-2018", "wrccdc-2017", "wrccdc-2018")
MAPPED = {
    "flow": "flow",
    "netflow": "flow",
    "dns": "dns",
    "http": "http",
    "tls": "tls",
    "fileinfo": "files",
    "alert": "alert",
}


def read(path: Path, batch_size: int = 65_536) -> tuple[pa.Table, ReadContext, list[Reject]]:
    rejects: list[Reject] = []
    ctx = ReadContext(path=path, batch_size=batch_size, reject=rejects.append)
    batches = list(suricata_eve.read_batches(ctx))
    for b in batches:
        assert b.schema.equals(CANONICAL_SCHEMA)
        assert b.num_rows <= batch_size
    table = pa.Table.from_batches(batches, schema=CANONICAL_SCHEMA)
    return table, ctx, rejects


def json_objects(path: Path) -> list[dict]:
    """The oracle: Python's json over the file (NDJSON or one array)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def column(table: pa.Table, name: str) -> list:
    col = table.column(name)
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    return col.to_pylist()


def utc(text: str) -> datetime:
    if text[-5] in "+-" or text.endswith("Z"):
        return datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(
            UTC
        )
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)


def duckdb_objects(path: Path) -> list[dict]:
    """The oracle for the 124 MB file: DuckDB's JSON reader, only the keys we check."""
    import duckdb

    rel = duckdb.sql(
        "SELECT event_type, src_ip FROM read_json(?, format='newline_delimited', "
        "columns={'event_type': 'VARCHAR', 'src_ip': 'VARCHAR'})",
        params=[str(path)],
    )
    return [{"event_type": t, "src_ip": ip} for t, ip in rel.fetchall()]


@pytest.fixture(scope="module")
def eve_large(shared_datasets: Path) -> tuple[Path, list[dict], pa.Table, ReadContext, list]:
    path = shared_datasets / JOSEVNZ / "eve_large.json.gz"
    return (path, duckdb_objects(path), *read(path))


@pytest.fixture(scope="module")
def eve2(shared_datasets: Path) -> tuple[list[dict], pa.Table]:
    path = shared_datasets / JOSEVNZ / "eve-2.json.gz"
    table, _, rejects = read(path)
    assert rejects == []
    return json_objects(path), table


def real_files() -> list[str]:
    files = [
        f"{JOSEVNZ}/{name}"
        for name in (
            "eve-2.json.gz",
            "eve_payload.json.gz",
            "eve_udp_flow.json",
            "eve_no_events.json",
        )
    ]
    for s in ALERT_SETS:
        files += [f"{WRCCDC}/{s}/alerts-only.json", f"{WRCCDC}/{s}/alerts-only.ndjson"]
    return files


def check_counts(objs: list[dict], table: pa.Table, ctx: ReadContext, rejects: list) -> None:
    by_type = collections.Counter(o["event_type"] for o in objs)
    expected = collections.Counter()
    skipped = collections.Counter()
    for t, c in by_type.items():
        if t in MAPPED:
            expected[MAPPED[t]] += c
        else:
            skipped[f"eve:{t}"] += c
    assert collections.Counter(column(table, "event.dataset")) == expected
    assert ctx.skipped == skipped
    assert rejects == []


# ---------------------------------------------------------------------------------
# real files


@pytest.mark.shared
@pytest.mark.parametrize("rel", real_files())
def test_counts_per_event_type_match_json(shared_datasets: Path, rel: str) -> None:
    path = shared_datasets / rel
    table, ctx, rejects = read(path)
    check_counts(json_objects(path), table, ctx, rejects)


@pytest.mark.shared
def test_eve_large_counts_and_ipv6(eve_large) -> None:
    _path, objs, table, ctx, rejects = eve_large
    check_counts(objs, table, ctx, rejects)
    # expanded IPv6 addresses stay exactly as written
    expanded = {
        o["src_ip"] for o in objs if o["event_type"] in MAPPED and ":" in (o["src_ip"] or "")
    }
    assert any(ip.count(":") == 7 and "0000" in ip for ip in expanded)
    assert expanded <= set(column(table, "source.ip"))
    # one observer: the sensor interface
    assert set(column(table, "observer.name")) == {"ens18"}


@pytest.mark.shared
def test_eve2_fields_match_json(eve2) -> None:
    """Every mapped row against values computed independently from the JSON."""
    objs, table = eve2
    mapped = [o for o in objs if o["event_type"] in MAPPED]
    rows = table.to_pylist()
    assert len(rows) == len(mapped)
    for o, r in zip(mapped, rows, strict=True):
        assert r["@timestamp"] == utc(o["timestamp"])
        assert r["event.id"] == str(o["flow_id"])
        assert r["source.ip"] == o["src_ip"]
        assert r["destination.ip"] == o["dest_ip"]
        assert r["source.port"] == o.get("src_port")
        assert r["network.transport"] == o["proto"].lower()
        assert r["network.community_id"] == o.get("community_id")
        assert r["event.kind"] == ("alert" if o["event_type"] == "alert" else "event")
        et = o["event_type"]
        if et == "flow":
            f = o["flow"]
            assert r["source.bytes"] == f["bytes_toserver"]
            assert r["destination.packets"] == f["pkts_toclient"]
            assert r["network.connection.state"] == f.get("state")
            dur = utc(f["end"]) - utc(f["start"])
            assert r["event.duration"] == (dur // timedelta(microseconds=1)) * 1000
        if et == "dns":
            d = o["dns"]
            assert r["dns.question.name"] == d.get("rrname")
            assert r["dns.question.type"] == d.get("rrtype")
            assert r["dns.id"] == d["id"]
            if d["type"] == "query":
                assert r["dns.response_code"] is None
                assert r["dns.answers.data"] is None
            else:
                assert r["dns.response_code"] == d["rcode"]
                answers = [a["rdata"] for a in d.get("answers", []) if "rdata" in a]
                assert r["dns.answers.data"] == (answers or None)
        if "http" in o:
            h = o["http"]
            assert r["url.domain"] == h.get("hostname")
            path, _, query = h["url"].partition("?")
            assert r["url.path"] == path
            assert r["url.query"] == (query if "?" in h["url"] else None)
            assert r["url.full"] == f"http://{h['hostname']}{h['url']}"
            assert r["http.request.method"] == h.get("http_method")
            assert r["http.response.status_code"] == h.get("status")
            assert r["user_agent.original"] == h.get("http_user_agent")
        if "tls" in o:
            t = o["tls"]
            assert r["tls.server.name"] == t.get("sni")
            if "fingerprint" in t:
                assert r["tls.server.hash.sha1"] == t["fingerprint"].replace(":", "").lower()
                assert len(r["tls.server.hash.sha1"]) == 40
            assert r["tls.client.ja3"] == t.get("ja3", {}).get("hash")
        if et == "fileinfo":
            assert r["file.name"] == o["fileinfo"]["filename"]
            assert r["file.size"] == o["fileinfo"]["size"]
        if et == "alert":
            a = o["alert"]
            assert r["rule.id"] == str(a["signature_id"])
            assert r["rule.name"] == a["signature"]
            assert r["rule.category"] == a["category"]
            assert r["event.severity"] == a["severity"]
            assert r["event.action"] == a["action"]


@pytest.mark.shared
def test_offsets_without_colon_become_utc(eve2) -> None:
    objs, table = eve2
    first = next(o for o in objs if o["event_type"] == "dns")
    assert first["timestamp"].endswith("-0500")
    ts = table.filter(pc.equal(table["event.id"], str(first["flow_id"])))["@timestamp"][0]
    assert ts.as_py() == datetime(2022, 2, 8, 14, 40, 31, 64321, tzinfo=UTC)
    assert table.schema.field("@timestamp").type == pa.timestamp("us", tz="UTC")


@pytest.mark.shared
def test_both_dns_layouts_in_real_file(eve2) -> None:
    _, table = eve2
    dns = table.filter(pc.equal(table["event.dataset"], "dns"))
    queries = dns.filter(pc.is_null(dns["dns.response_code"]))
    answers = dns.filter(pc.is_valid(dns["dns.answers.data"]))
    assert queries.num_rows > 0 and answers.num_rows > 0
    assert pc.all(pc.is_valid(dns["dns.question.name"])).as_py()
    bing = next(r for r in answers.to_pylist() if r["dns.question.name"] == "www.bing.com")
    assert bing["dns.answers.data"][-2:] == ["204.79.197.200", "13.107.21.200"]
    assert bing["dns.answers.ttl"] == [6244.0, 59.0, 19.0, 19.0, 19.0]


@pytest.mark.shared
@pytest.mark.parametrize("name", ALERT_SETS)
def test_json_array_alerts_equal_ndjson(shared_datasets: Path, name: str) -> None:
    base = shared_datasets / WRCCDC / name
    arr, _, rej_a = read(base / "alerts-only.json")
    nd, _, rej_n = read(base / "alerts-only.ndjson")
    assert rej_a == rej_n == []
    assert arr.drop_columns(["log.file.path"]).equals(nd.drop_columns(["log.file.path"]))
    lines = (base / "ids-list.txt").read_text().splitlines()
    ids = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert column(arr, "rule.id") == ids
    assert set(column(arr, "event.kind")) == {"alert"}


@pytest.mark.shared
def test_timestamps_without_offset_taken_as_utc(shared_datasets: Path) -> None:
    path = shared_datasets / WRCCDC / "honeypot-2018" / "alerts-only.ndjson"
    objs = json_objects(path)
    table, _, _ = read(path)
    assert not objs[0]["timestamp"].endswith(("Z", "+0000"))
    assert column(table, "@timestamp") == [utc(o["timestamp"]) for o in objs]
    # old Suricata writes http.status as a string: coerced, not rejected
    statuses = [o["http"]["status"] for o in objs if "http" in o]
    assert any(isinstance(s, str) for s in statuses)
    assert sorted(x for x in column(table, "http.response.status_code") if x) == sorted(
        int(s) for s in statuses
    )


@pytest.mark.shared
def test_batch_size_bounds_batches(shared_datasets: Path) -> None:
    path = shared_datasets / JOSEVNZ / "eve-2.json.gz"
    small, _, _ = read(path, batch_size=100)
    big, _, _ = read(path)
    assert small.num_rows == big.num_rows
    assert small.to_pylist() == big.to_pylist()


# ---------------------------------------------------------------------------------
# inline files

FLOW = {
    "timestamp": "2024-01-02T03:04:05.000001+0000",
    "flow_id": 1,
    "event_type": "flow",
    "src_ip": "10.0.0.1",
    "src_port": 1234,
    "dest_ip": "10.0.0.2",
    "dest_port": 80,
    "proto": "TCP",
    "app_proto": "failed",
    "flow": {
        "pkts_toserver": 3,
        "pkts_toclient": 2,
        "bytes_toserver": 300,
        "bytes_toclient": 200,
        "start": "2024-01-02T03:04:00.000000+0000",
        "end": "2024-01-02T03:04:05.500000+0000",
        "state": "closed",
    },
}


def ev(**kw) -> dict:
    base = {
        "timestamp": "2024-01-02T03:04:05.000000+0100",
        "flow_id": 7,
        "src_ip": "10.0.0.1",
        "src_port": 5353,
        "dest_ip": "10.0.0.2",
        "dest_port": 53,
        "proto": "UDP",
    }
    return {**base, **kw}


def write_lines(path: Path, objs: list, *, raw: dict[int, str] | None = None) -> Path:
    lines = [json.dumps(o) for o in objs]
    for i, text in (raw or {}).items():
        lines.insert(i, text)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bad_line_rejected_with_line_number(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "eve.json", [FLOW, FLOW], raw={1: '{"timestamp": "2024-01-0'})
    table, _, rejects = read(path)
    assert table.num_rows == 2
    assert [r.line for r in rejects] == [2]
    assert rejects[0].raw == '{"timestamp": "2024-01-0'


def test_unknown_event_type_skipped_not_rejected(tmp_path: Path) -> None:
    objs = [FLOW, ev(event_type="quic", quic={"version": "1"}), ev(event_type="stats"), FLOW]
    table, ctx, rejects = read(write_lines(tmp_path / "eve.json", objs))
    assert table.num_rows == 2
    assert ctx.skipped == {"eve:quic": 1, "eve:stats": 1}
    assert rejects == []


def test_missing_type_or_time_and_bad_values_rejected(tmp_path: Path) -> None:
    objs = [
        FLOW,
        {k: v for k, v in FLOW.items() if k != "event_type"},  # line 2
        {**FLOW, "timestamp": "yesterday"},  # line 3
        {**FLOW, "dest_port": "http"},  # line 4: cannot be a port
        {**FLOW, "dest_port": "8080"},  # line 5: a port written as text, fine
        {k: v for k, v in FLOW.items() if k != "timestamp"},  # line 6
        {**FLOW, "src_port": 70000},  # line 7: not a uint16
    ]
    table, _, rejects = read(write_lines(tmp_path / "eve.json", objs))
    assert {r.line: r.column for r in rejects} == {
        2: "event_type",
        3: "timestamp",
        4: "dest_port",
        6: "timestamp",
        7: "source.port",
    }
    assert "dest_port" in next(r.reason for r in rejects if r.line == 4)
    assert column(table, "destination.port") == [80, 8080]


def test_flow_mapping(tmp_path: Path) -> None:
    table, _, _ = read(write_lines(tmp_path / "eve.json", [FLOW]))
    r = table.to_pylist()[0]
    assert r["event.dataset"] == "flow"
    assert r["event.duration"] == 5_500_000_000
    assert r["network.protocol"] is None  # app_proto "failed" is no protocol
    assert (r["source.bytes"], r["destination.bytes"]) == (300, 200)
    assert (r["source.packets"], r["destination.packets"]) == (3, 2)
    assert r["network.connection.state"] == "closed"


def test_netflow_mapping(tmp_path: Path) -> None:
    nf = ev(
        event_type="netflow",
        host="sensor-1",
        in_iface="eth0",
        netflow={
            "pkts": 4,
            "bytes": 400,
            "start": "2024-01-02T03:04:00.000000+0100",
            "end": "2024-01-02T03:04:01.250000+0100",
            "age": 1,
        },
    )
    r = read(write_lines(tmp_path / "eve.json", [nf]))[0].to_pylist()[0]
    assert r["event.dataset"] == "flow"
    assert r["observer.name"] == "sensor-1"  # host wins over the interface
    assert (r["source.bytes"], r["source.packets"], r["destination.bytes"]) == (400, 4, None)
    assert r["event.duration"] == 1_250_000_000


def test_dns_v1_v2_v3_and_alert_layouts(tmp_path: Path) -> None:
    objs = [
        # v1 query and v1 answer (one record per answer, flat rdata)
        ev(
            event_type="dns",
            dns={"type": "query", "id": 1, "rrname": "a.example", "rrtype": "A", "tx_id": 0},
        ),
        ev(
            event_type="dns",
            dns={
                "type": "answer",
                "id": 1,
                "rcode": "NOERROR",
                "rrname": "a.example",
                "rrtype": "A",
                "ttl": 30,
                "rdata": "192.0.2.1",
            },
        ),
        # v2 answer, grouped only
        ev(
            event_type="dns",
            dns={
                "version": 2,
                "type": "answer",
                "id": 2,
                "rrname": "b.example",
                "rrtype": "A",
                "rcode": "NOERROR",
                "grouped": {"CNAME": ["c.example"], "A": ["192.0.2.2", "192.0.2.3"]},
            },
        ),
        # v2 answer without answers (NXDOMAIN with authorities)
        ev(
            event_type="dns",
            dns={
                "version": 2,
                "type": "answer",
                "id": 3,
                "rrname": "nx.example",
                "rrtype": "AAAA",
                "rcode": "NXDOMAIN",
                "authorities": [
                    {"rrname": "example", "rrtype": "SOA", "ttl": 60, "soa": {"mname": "ns"}}
                ],
            },
        ),
        # v3 (Suricata 8): request and response with queries[]
        ev(
            event_type="dns",
            dns={
                "version": 3,
                "type": "request",
                "id": 4,
                "rcode": "NOERROR",
                "queries": [{"rrname": "d.example", "rrtype": "TXT"}],
            },
        ),
        ev(
            event_type="dns",
            dns={
                "version": 3,
                "type": "response",
                "id": 4,
                "rcode": "NOERROR",
                "queries": [{"rrname": "d.example", "rrtype": "TXT"}],
                "answers": [
                    {"rrname": "d.example", "rrtype": "TXT", "ttl": 5, "rdata": "v=spf1 -all"}
                ],
            },
        ),
        # alert with Suricata 7 dns.query[]
        ev(
            event_type="alert",
            alert={
                "signature_id": 1,
                "signature": "s",
                "category": "c",
                "severity": 2,
                "action": "blocked",
            },
            dns={"query": [{"type": "query", "id": 5, "rrname": "e.example", "rrtype": "A"}]},
        ),
        # alert with Suricata 7 dns.answer {...}
        ev(
            event_type="alert",
            alert={"signature_id": 2, "signature": "s", "category": "c", "severity": 1},
            dns={
                "answer": {
                    "version": 2,
                    "type": "answer",
                    "id": 8,
                    "rrname": "f.example",
                    "rrtype": "A",
                    "rcode": "NOERROR",
                    "answers": [
                        {"rrname": "f.example", "rrtype": "A", "ttl": 1, "rdata": "192.0.2.9"}
                    ],
                }
            },
        ),
        # grouped MX as objects (another Suricata version): coerced to JSON text
        ev(
            event_type="dns",
            dns={
                "version": 2,
                "type": "answer",
                "id": 6,
                "rrname": "m.example",
                "rrtype": "MX",
                "rcode": "NOERROR",
                "grouped": {"MX": [{"preference": 10, "exchange": "mx.example"}]},
            },
        ),
    ]
    table, _, rejects = read(write_lines(tmp_path / "eve.json", objs))
    assert rejects == []
    got = [
        (
            r["dns.question.name"],
            r["dns.question.type"],
            r["dns.response_code"],
            r["dns.answers.data"],
        )
        for r in table.to_pylist()
    ]
    assert got == [
        ("a.example", "A", None, None),
        ("a.example", "A", "NOERROR", ["192.0.2.1"]),
        ("b.example", "A", "NOERROR", ["192.0.2.2", "192.0.2.3", "c.example"]),
        ("nx.example", "AAAA", "NXDOMAIN", None),
        ("d.example", "TXT", None, None),
        ("d.example", "TXT", "NOERROR", ["v=spf1 -all"]),
        ("e.example", "A", None, None),
        ("f.example", "A", "NOERROR", ["192.0.2.9"]),
        ("m.example", "MX", "NOERROR", ['{"preference":10,"exchange":"mx.example"}']),
    ]
    assert column(table, "dns.answers.ttl")[1] == [30.0]
    alert = table.to_pylist()[6]
    assert (alert["event.kind"], alert["event.action"], alert["rule.id"]) == (
        "alert",
        "blocked",
        "1",
    )


def test_http_tls_fileinfo_mapping(tmp_path: Path) -> None:
    http = ev(
        event_type="http",
        proto="TCP",
        http={
            "hostname": "h.example",
            "http_port": 8080,
            "url": "/p/a.php?x=1&y=2",
            "http_user_agent": "ua",
            "http_refer": "http://r.example/",
            "http_method": "POST",
            "protocol": "HTTP/1.0",
            "status": 302,
            "length": 12,
            "http_content_type": "text/html",
        },
    )
    proxy = ev(
        event_type="http",
        http={"hostname": "h.example", "url": "http://h.example/x?q", "http_method": "GET"},
    )
    tls = ev(
        event_type="tls",
        tls={
            "sni": "t.example",
            "version": "TLS 1.3",
            "subject": "CN=t.example",
            "issuerdn": "CN=ca",
            "fingerprint": "A8:4B:0A:38:CF:A4:37:F4:EC:17:48:C0:6A:18:82:CE:B5:3B:C9:A9",
            "ja3": {"hash": "j3", "string": "..."},
            "ja3s": {"hash": "j3s"},
        },
    )
    ssl3 = ev(event_type="tls", tls={"version": "SSLv3"})
    undetermined = ev(event_type="tls", tls={"version": "UNDETERMINED"})
    fileinfo = ev(
        event_type="fileinfo",
        app_proto="http",
        fileinfo={
            "filename": "x.exe",
            "magic": "PE32 executable",
            "md5": "m",
            "sha1": "s1",
            "sha256": "s256",
            "size": 99,
        },
    )
    objs = [http, proxy, tls, ssl3, undetermined, fileinfo]
    rows = read(write_lines(tmp_path / "eve.json", objs))[0].to_pylist()
    h = rows[0]
    assert h["url.full"] == "http://h.example:8080/p/a.php?x=1&y=2"
    assert (h["url.path"], h["url.query"], h["url.port"]) == ("/p/a.php", "x=1&y=2", 8080)
    assert (h["http.request.method"], h["http.response.status_code"], h["http.version"]) == (
        "POST",
        302,
        "1.0",
    )
    assert (h["http.request.referrer"], h["http.response.body.bytes"]) == ("http://r.example/", 12)
    assert h["network.protocol"] == "http"
    assert (rows[1]["url.full"], rows[1]["url.path"], rows[1]["url.query"]) == (
        "http://h.example/x?q",
        "/x",
        "q",
    )
    t = rows[2]
    assert t["tls.server.hash.sha1"] == "a84b0a38cfa437f4ec1748c06a1882ceb53bc9a9"
    assert (t["tls.version"], t["tls.client.ja3"], t["tls.server.ja3s"]) == ("1.3", "j3", "j3s")
    assert (t["tls.server.subject"], t["tls.server.issuer"]) == ("CN=t.example", "CN=ca")
    assert (rows[3]["tls.version"], rows[4]["tls.version"]) == ("3.0", None)
    f = rows[5]
    assert (f["event.dataset"], f["file.name"], f["file.mime_type"], f["file.size"]) == (
        "files",
        "x.exe",
        "PE32 executable",
        99,
    )
    assert (f["file.hash.md5"], f["file.hash.sha1"], f["file.hash.sha256"]) == ("m", "s1", "s256")


def test_gzip_same_as_plain(tmp_path: Path) -> None:
    plain = write_lines(tmp_path / "eve.json", [FLOW, ev(event_type="stats"), FLOW])
    gz = tmp_path / "eve.log"  # no .gz suffix: detected by magic
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    a, ctx_a, _ = read(plain)
    b, ctx_b, _ = read(gz)
    assert a.drop_columns(["log.file.path"]).equals(b.drop_columns(["log.file.path"]))
    assert ctx_a.skipped == ctx_b.skipped == {"eve:stats": 1}


def test_json_array_rejects_point_at_real_lines(tmp_path: Path) -> None:
    alert = ev(
        event_type="alert",
        alert={
            "signature_id": 9,
            "signature": "s",
            "category": "c",
            "severity": 1,
            "action": "allowed",
        },
    )
    bad = {**alert, "src_port": "ssh"}
    path = tmp_path / "alerts.json"
    path.write_text(json.dumps([alert, bad, alert], indent=2))
    table, _, rejects = read(path)
    assert table.num_rows == 2
    text = path.read_text().splitlines()
    second_start = [i + 1 for i, line in enumerate(text) if line == "  {"][1]
    assert [r.line for r in rejects] == [second_start]
    assert rejects[0].path == str(path)


def test_json_array_too_large_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "alerts.json"
    path.write_text(json.dumps([FLOW] * 50))
    monkeypatch.setattr(suricata_eve, "MAX_ARRAY_BYTES", 1000)
    with pytest.raises(InputError, match="JSON lines"):
        read(path)


def test_empty_file_and_empty_array(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("")
    (tmp_path / "b.json").write_text("[ ]\n")
    for name in ("a.json", "b.json"):
        table, _, rejects = read(tmp_path / name)
        assert table.num_rows == 0 and rejects == []


def test_sniff(tmp_path: Path) -> None:
    eve = write_lines(tmp_path / "eve.json", [FLOW])
    assert suricata_eve.sniff(read_head(eve), eve)
    arr = tmp_path / "arr.json"
    arr.write_text(json.dumps([FLOW], indent=2))
    assert suricata_eve.sniff(read_head(arr), arr)
    # a first line far longer than the head (a busy sensor's stats record)
    stats = {
        "timestamp": "2024-01-01T00:00:00.000000+0000",
        "event_type": "stats",
        "stats": {f"k{i}": i for i in range(20_000)},
    }
    big = write_lines(tmp_path / "big.json", [stats, FLOW])
    assert len(big.read_bytes().split(b"\n")[0]) > 65_536
    assert suricata_eve.sniff(read_head(big), big)
    zeek = tmp_path / "conn.log"
    zeek.write_text('{"ts":"2018-03-24T17:15:20.6Z","uid":"C1","id.orig_h":"10.0.0.1"}\n')
    assert not suricata_eve.sniff(read_head(zeek), zeek)
    ocsf = tmp_path / "ocsf.json"
    ocsf.write_text('{"class_uid": 4001, "time": 1, "event_type": "x", "timestamp": "y"}\n')
    assert not suricata_eve.sniff(read_head(ocsf), ocsf)
    assert not suricata_eve.sniff(b"", tmp_path / "empty")


def test_an_http_event_without_host_names_the_server_by_its_address(tmp_path: Path) -> None:
    base = {"timestamp": "2018-03-24T12:00:00.000000+0000", "event_type": "http", "proto": "TCP",
            "src_ip": "10.0.0.5", "src_port": 40000}  # fmt: skip
    events = [
        {**base, "dest_ip": "10.47.6.142", "dest_port": 80,
         "http": {"url": "/", "http_method": "GET"}},  # masscan: no Host header
        {**base, "dest_ip": "2001:db8::1", "dest_port": 8080,
         "http": {"url": "/x", "http_method": "GET"}},
        {**base, "dest_ip": "10.47.6.142", "dest_port": 8080,
         "http": {"hostname": "h.example", "http_port": 8080, "url": "/y", "http_method": "GET"}},
    ]  # fmt: skip
    p = tmp_path / "eve.json"
    p.write_text("".join(json.dumps(e) + "\n" for e in events))
    t, _, rejects = read(p)
    assert not rejects
    assert column(t, "url.full") == [  # as the Zeek reader builds it from id.resp_h/p
        "http://10.47.6.142/",
        "http://[2001:db8::1]:8080/x",
        "http://h.example:8080/y",
    ]
