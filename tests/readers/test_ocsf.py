"""OCSF reader: the same hand-written OCSF 1.1 events as JSON lines and as nested Parquet."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import ocsf_fixtures as fx  # tests/readers is on sys.path (rootdir import mode)
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from detect.readers import ocsf
from detect.readers.base import ReadContext, Reject
from detect.readers.source import read_head
from detect.schema import CANONICAL_SCHEMA


def read(path: Path, batch_size: int = 65_536) -> tuple[list[dict], ReadContext, list[Reject]]:
    rejects: list[Reject] = []
    ctx = ReadContext(path=path, batch_size=batch_size, reject=rejects.append)
    rows = []
    for b in ocsf.read_batches(ctx):
        assert b.schema.equals(CANONICAL_SCHEMA)
        assert b.num_rows <= batch_size
        rows += b.to_pylist()
    for r in rows:
        r.pop("log.file.path")
    return rows, ctx, rejects


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


EXPECTED: dict[int, list[dict]] = {
    4001: [
        {
            "@timestamp": at(fx.T0),
            "event.dataset": "flow",
            "event.id": "na-1",
            "event.duration": 2_500_000_000,
            "event.action": "allowed",
            "observer.name": "vpc-sensor",
            "organization.name": "123456789012",
            "source.ip": "10.0.0.5",
            "source.port": 51514,
            "source.mac": "02:00:00:00:00:05",
            "destination.ip": "93.184.216.34",
            "destination.port": 443,
            "network.transport": "tcp",
            "network.community_id": "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
            "source.bytes": 734,
            "destination.bytes": 5120,
            "source.packets": 7,
            "destination.packets": 9,
            "tls.server.name": "example.com",
            "tls.version": "1.3",
            "tls.client.ja3": "e7d705a3286e19ea42f587b344ee6865",
            "tls.server.ja3s": "f4febc55ea12b31ae17cfb7e614afda8",
            "tls.server.subject": "CN=example.com",
            "tls.server.hash.sha1": "310db7af4b2bc9040c8344701aca08d0c69381e3",
            "tls.server.hash.sha256": (
                "efba26d8c1ce3779ac77630a90f82163a3d6892ed6afee4086e8e53939cd293a"
            ),
        },
        {
            "@timestamp": at(fx.T0 + 1000),
            "event.duration": 1_000_000_000,  # from end_time - start_time
            "source.ip": "fe80::1",
            "destination.ip": "ff02::fb",
            "network.transport": "udp",  # from protocol_num 17
            "source.bytes": 120,
            "destination.bytes": None,
        },
    ],
    4002: [
        {
            "@timestamp": at(fx.T0 + 2000),
            "event.dataset": "http",
            "network.protocol": "http",
            "url.full": "http://updates.example.net:8080/pkg/agent.bin?v=2&arch=x64",
            "url.domain": "updates.example.net",
            "url.path": "/pkg/agent.bin",
            "url.query": "v=2&arch=x64",
            "url.port": 8080,
            "http.request.method": "GET",
            "http.request.referrer": "http://portal.example.net/",
            "http.version": "1.1",
            "user_agent.original": "curl/8.4.0",
            "http.response.status_code": 200,
            "http.response.mime_type": "application/octet-stream",
            "http.response.body.bytes": 48213,
        }
    ],
    4003: [
        {
            "@timestamp": at(fx.T0 + 3000),
            "event.dataset": "dns",
            "network.protocol": "dns",
            "dns.id": 4242,
            "dns.question.name": "www.example.org",
            "dns.question.type": "A",
            "dns.question.class": "IN",
            "dns.response_code": "NOERROR",
            "dns.answers.data": ["example.org", "93.184.215.14"],
            "dns.answers.ttl": [300.0, 60.0],
        },
        {
            "dns.question.name": "nonexistent.example.org",
            "dns.response_code": "NXDOMAIN",
            "dns.answers.data": None,
            "organization.name": "tenant-7",  # no cloud.account: metadata.tenant_uid
        },
    ],
}


def check(rows: list[dict], expected: list[dict]) -> None:
    assert len(rows) == len(expected)
    for row, exp in zip(rows, expected, strict=True):
        assert {k: row[k] for k in exp} == exp


@pytest.mark.parametrize("cls", [4001, 4002, 4003])
def test_json_and_parquet_give_the_same_rows(tmp_path: Path, cls: int) -> None:
    records = fx.all_classes()[cls]
    from_json, _, rej_j = read(fx.write_jsonl(tmp_path / "e.jsonl", records))
    from_parquet, _, rej_p = read(fx.write_parquet(tmp_path / "e.parquet", records))
    assert rej_j == rej_p == []
    check(from_json, EXPECTED[cls])
    assert from_json == from_parquet


def test_time_dt_timestamp_when_time_is_absent(tmp_path: Path) -> None:
    records = fx.dns_activity()
    path = fx.write_parquet(tmp_path / "e.parquet", records, time_as_timestamp=True)
    assert "time" not in pq.read_schema(path).names
    rows, _, _ = read(path)
    assert [r["@timestamp"] for r in rows] == [at(r["time"]) for r in records]
    # and as OCSF datetime text in JSON
    for r in records:
        r["time_dt"] = at(r.pop("time")).isoformat().replace("+00:00", "Z")
    rows_json, _, _ = read(fx.write_jsonl(tmp_path / "e.jsonl", records))
    assert rows_json == rows


def test_mixed_classes_skip_the_unsupported(tmp_path: Path) -> None:
    records = [r for rs in fx.all_classes().values() for r in rs]
    rows, ctx, rejects = read(fx.write_jsonl(tmp_path / "mixed.jsonl", records))
    assert [r["event.dataset"] for r in rows] == ["flow", "flow", "http", "dns", "dns"]
    assert ctx.skipped == {"ocsf:class_uid:3002": 1}
    assert rejects == []
    # one class per Parquet object, as Security Lake writes them
    auth, ctx, _ = read(fx.write_parquet(tmp_path / "auth.parquet", fx.authentication()))
    assert auth == []
    assert ctx.skipped == {"ocsf:class_uid:3002": 1}


def test_bad_records_rejected_with_line(tmp_path: Path) -> None:
    good = fx.dns_activity()[0]
    no_class = {k: v for k, v in good.items() if k != "class_uid"}
    no_time = {k: v for k, v in good.items() if k != "time"}
    port_text = {**good, "src_endpoint": {"ip": "10.0.0.5", "port": "40000"}}
    bad_port = {**good, "dst_endpoint": {"ip": "10.0.0.2", "port": 99999}}
    path = tmp_path / "e.jsonl"
    path.write_text(
        "\n".join(json.dumps(r) for r in [good, no_class, no_time, port_text, bad_port])
        + "\n{not json\n"
    )
    rows, _, rejects = read(path)
    assert len(rows) == 2
    assert rows[1]["source.port"] == 40000  # a port written as text is coerced
    assert {r.line: r.column for r in rejects} == {
        2: "class_uid",
        3: "time",
        5: "destination.port",
        6: None,
    }


def test_batches_bounded(tmp_path: Path) -> None:
    records = fx.network_activity() * 7
    rows, _, _ = read(fx.write_parquet(tmp_path / "e.parquet", records), batch_size=3)
    assert len(rows) == 14
    rows_json, _, _ = read(fx.write_jsonl(tmp_path / "e.jsonl", records), batch_size=3)
    assert rows_json == rows


def test_sniff(tmp_path: Path) -> None:
    def sniff(path: Path) -> bool:
        return ocsf.sniff(read_head(path), path)

    assert sniff(fx.write_jsonl(tmp_path / "a.jsonl", fx.http_activity()))
    assert not sniff(fx.write_jsonl(tmp_path / "b.jsonl", fx.authentication()))
    assert sniff(fx.write_parquet(tmp_path / "c.parquet", fx.dns_activity()))
    plain = tmp_path / "d.parquet"
    pq.write_table(pa.table({"x": [1]}), plain)
    assert not sniff(plain)
    eve = tmp_path / "eve.json"
    eve.write_text('{"timestamp":"2024-01-01T00:00:00+0000","event_type":"flow"}\n')
    assert not sniff(eve)
