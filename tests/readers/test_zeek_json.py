"""Zeek JSON reader: ISO and epoch ts, dotted and underscore keys, omitted fields, path from
``_path``/``@stream``/file name, rejects; and TSV == JSON on the same real events."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pytest

from detect.readers import zeek_json, zeek_tsv
from detect.readers.base import ReadContext, Reject
from detect.readers.source import read_head
from detect.readers.zeek_fields import path_from_filename
from detect.schema import CANONICAL_SCHEMA

UTC = dt.UTC


def write(
    tmp_path: Path, name: str, lines: list[dict[str, object] | str], *, gz: bool = False
) -> Path:
    text = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines).encode()
    p = tmp_path / name
    p.write_bytes(gzip.compress(text) if gz else text)
    return p


def read(
    path: Path, batch_size: int = 65_536, *, tsv: bool = False
) -> tuple[pa.Table, list[Reject]]:
    rejects: list[Reject] = []
    ctx = ReadContext(path, batch_size=batch_size, reject=rejects.append)
    reader = zeek_tsv if tsv else zeek_json
    batches = list(reader.read_batches(ctx))
    for b in batches:
        assert b.schema == CANONICAL_SCHEMA
        assert b.num_rows <= batch_size
    return pa.Table.from_batches(batches, schema=CANONICAL_SCHEMA), rejects


DNS = {
    "_path": "dns",
    "ts": "2018-03-24T17:15:20.865716Z",
    "uid": "CqKst53mF3det3eDV9",
    "id.orig_h": "10.47.1.100",
    "id.orig_p": 41772,
    "id.resp_h": "10.0.0.100",
    "id.resp_p": 53,
    "proto": "udp",
    "trans_id": 36329,
    "query": "ise.wrccdc.org",
    "qtype_name": "A",
    "rcode_name": "NOERROR",
    "answers": ["ise.wrccdc.cpp.edu", "134.71.3.16"],
    "TTLs": [2230.0, 41830.0],
}


# --------------------------------------------------------------------------- inline files


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("conn.00:00:00-01:00:00.log.gz", "conn"),
        ("conn.2024-04-19-10-00-00.log", "conn"),
        ("dns_20200101.json", "dns"),
        ("conn.log.1", "conn"),
        ("http.json.gz", "http"),
        ("NASHUA_smb_files.log.gz", "smb_files"),
        ("UTICA-ONE-DRIVE_x509.log.gz", "x509"),
        ("ssl.log", "ssl"),
        ("my_custom.log", "my_custom"),
    ],
)
def test_path_from_filename(name: str, expected: str) -> None:
    assert path_from_filename(name) == expected


def test_iso_and_epoch_ts_agree(tmp_path: Path) -> None:
    iso, _ = read(write(tmp_path, "a.json", [DNS]))
    epoch_row = {**DNS, "ts": 1521911720.865716}
    epoch, _ = read(write(tmp_path, "b.json", [epoch_row]))
    assert iso["@timestamp"].to_pylist() == [
        dt.datetime(2018, 3, 24, 17, 15, 20, 865716, tzinfo=UTC)
    ]
    assert epoch["@timestamp"].equals(iso["@timestamp"])


def test_underscore_keys_and_stream(tmp_path: Path) -> None:
    row = {k.replace(".", "_"): v for k, v in DNS.items() if k != "_path"}
    row |= {"@stream": "dns", "@system": "sensor-1", "@proc": "zeek", "ts": 1521911720.865716}
    t, rejects = read(write(tmp_path, "whatever.log", [row]))
    dotted, _ = read(write(tmp_path, "dotted.json", [DNS]))
    assert rejects == []
    assert t["observer.name"].to_pylist() == ["sensor-1"]
    assert t.drop_columns(["observer.name", "log.file.path"]).equals(
        dotted.drop_columns(["observer.name", "log.file.path"])
    )


def test_omitted_fields_are_null(tmp_path: Path) -> None:
    row = {k: v for k, v in DNS.items() if k not in ("answers", "TTLs", "rcode_name")}
    t, _ = read(write(tmp_path, "dns.json", [row]))
    r = t.to_pylist()[0]
    assert r["dns.answers.data"] is None
    assert r["dns.response_code"] is None
    assert r["dns.question.name"] == "ise.wrccdc.org"
    assert r["dns.answers.ttl"] is None


def test_path_from_file_name_when_no_key(tmp_path: Path) -> None:
    row = {k: v for k, v in DNS.items() if k != "_path"}
    p = write(tmp_path, "dns.2024-04-19-10-00-00.log", [row])
    assert zeek_json.sniff(read_head(p), p)
    t, _ = read(p)
    assert t["event.dataset"].to_pylist() == ["dns"]


def test_invalid_line_rejected_comment_skipped(tmp_path: Path) -> None:
    lines: list[dict[str, object] | str] = [
        "### banner",
        DNS,
        '{"ts": XXXX, "uid": "C1"}',
        {**DNS, "query": "b.org"},
    ]
    t, rejects = read(write(tmp_path, "dns.log", lines))
    assert t["dns.question.name"].to_pylist() == ["ise.wrccdc.org", "b.org"]
    assert [r.line for r in rejects] == [3]
    assert rejects[0].raw == '{"ts": XXXX, "uid": "C1"}'


def test_bad_values_rejected_with_line(tmp_path: Path) -> None:
    lines: list[dict[str, object] | str] = [
        DNS,
        {**DNS, "ts": "yesterday"},
        {**DNS, "id.orig_p": 70000},
    ]
    t, rejects = read(write(tmp_path, "dns.json", lines))
    assert t.num_rows == 1
    assert [(r.line, r.column) for r in rejects] == [(2, "ts"), (3, "source.port")]
    assert rejects[0].raw is not None and "yesterday" in rejects[0].raw


def test_mixed_paths_keep_file_order(tmp_path: Path) -> None:
    conn = {
        "_path": "conn",
        "ts": 1.0,
        "uid": "C9",
        "id.orig_h": "1.1.1.1",
        "id.orig_p": 1,
        "id.resp_h": "2.2.2.2",
        "id.resp_p": 2,
        "proto": "tcp",
        "duration": 0.5,
        "orig_bytes": 7,
    }
    ssh = {"_path": "ssh", "ts": 2.0, "uid": "C8", "id.orig_h": "3.3.3.3", "version": 2}
    http = {
        "_path": "http",
        "ts": 3.0,
        "uid": "C7",
        "method": "GET",
        "host": "a.com",
        "uri": "/",
        "version": "1.1",
    }
    t, rejects = read(write(tmp_path, "combined.log", [DNS, conn, ssh, http, DNS]))
    assert rejects == []
    assert t["event.dataset"].to_pylist() == ["dns", "conn", "ssh", "http", "dns"]
    assert t["event.duration"].to_pylist()[1] == 500_000_000
    assert t["source.bytes"].to_pylist()[1] == 7
    assert t["http.version"].to_pylist()[3] == "1.1"
    assert t["url.full"].to_pylist()[3] == "http://a.com/"


def test_gzip_and_batches(tmp_path: Path) -> None:
    rows = [{**DNS, "query": f"q{i}.org"} for i in range(3000)]
    t, _ = read(write(tmp_path, "dns.json.gz", rows, gz=True), batch_size=500)
    assert t.num_rows == 3000
    assert t["dns.question.name"].to_pylist()[-1] == "q2999.org"


def test_sniff_inline(tmp_path: Path) -> None:
    eve = {
        "timestamp": "2023-09-03T00:00:00+0000",
        "flow_id": 1,
        "event_type": "dns",
        "src_ip": "1.1.1.1",
        "ts": 1,
    }
    cases = {
        "zeek.json": ([DNS], True),
        "otrf.log": ([{"@stream": "conn", "ts": 1.0}], True),
        "plain.log": ([{"ts": 1.0, "uid": "C1", "id_orig_h": "1.1.1.1"}], True),
        "x509.log": ([{"ts": 1.0, "fingerprint": "ab"}], True),
        "eve.json": ([eve], False),
        "other.json": ([{"ts": 1.0, "user": "x"}], False),
    }
    for name, (lines, expected) in cases.items():
        p = write(tmp_path, name, lines)
        assert zeek_json.sniff(read_head(p), p) is expected, name
    tsv = tmp_path / "t.log"
    tsv.write_text("#separator \\x09\n#fields\tts\n")
    assert not zeek_json.sniff(read_head(tsv), tsv)


# --------------------------------------------------------------------------- real logs

WRCCDC_LOGS = [
    "dns",
    "ssl",
    "x509",
    "weird",
    "notice",
    "smtp",
    "rdp",
    "kerberos",
    "ntlm",
    "smb_mapping",
    "smb_files",
    "dce_rpc",
    "ssh",
    "ftp",
    "snmp",
    "software",
    "known_services",
]


@pytest.mark.shared
@pytest.mark.parametrize("log", WRCCDC_LOGS)
def test_wrccdc_tsv_and_json_identical(shared_datasets: Path, log: str) -> None:
    root = shared_datasets / "zeek" / "wrccdc2018-brimdata"
    tsv_file, json_file = root / "tsv" / f"{log}.log.gz", root / "json" / f"{log}.json.gz"
    assert zeek_tsv.sniff(read_head(tsv_file), tsv_file)
    assert zeek_json.sniff(read_head(json_file), json_file)
    from_tsv, r1 = read(tsv_file, tsv=True)
    from_json, r2 = read(json_file)
    assert r1 == r2 == []
    assert from_tsv.num_rows > 0
    a = from_tsv.drop_columns(["log.file.path"]).combine_chunks()
    b = from_json.drop_columns(["log.file.path"]).combine_chunks()
    diff = [c for c in a.column_names if not a[c].equals(b[c])]
    assert diff == []


@pytest.mark.shared
def test_wrccdc_dns_content(shared_datasets: Path) -> None:
    t, _ = read(shared_datasets / "zeek" / "wrccdc2018-brimdata" / "json" / "dns.json.gz")
    assert t.num_rows == 53615
    first = t.to_pylist()[0]
    assert first["dns.answers.data"] == ["ise.wrccdc.cpp.edu", "134.71.3.16"]
    assert first["dns.answers.ttl"] == [2230.0, 41830.0]
    assert first["dns.question.class"] == "C_INTERNET"


@pytest.mark.shared
def test_otrf_apt29_all_files(shared_datasets: Path) -> None:
    root = shared_datasets / "zeek" / "otrf-apt29"
    total = 0
    for f in sorted(root.glob("day*/*.log.gz")):
        assert zeek_json.sniff(read_head(f), f), f
        assert not zeek_tsv.sniff(read_head(f), f), f
        t, rejects = read(f)
        assert rejects == [], (f, rejects[:1])
        with gzip.open(f, "rb") as fh:
            assert t.num_rows == sum(1 for line in fh if line.strip()), f
        stream = f.name.split("_", 1)[1].removesuffix(".log.gz")
        expected = "tls" if stream == "ssl" else stream
        assert set(t["event.dataset"].to_pylist()) == {expected}, f
        total += t.num_rows
    assert total == 7804


@pytest.mark.shared
def test_otrf_apt29_mapping(shared_datasets: Path) -> None:
    day1 = shared_datasets / "zeek" / "otrf-apt29" / "day1"
    conn = read(day1 / "NASHUA_conn.log.gz")[0].to_pylist()[0]
    assert conn["@timestamp"] == dt.datetime(2020, 4, 30, 0, 6, 39, 824370, tzinfo=UTC)
    assert (conn["source.ip"], conn["source.port"], conn["destination.port"]) == (
        "10.0.1.6",
        54243,
        53,
    )
    assert conn["observer.name"] == "bobs.bigwheel.local"
    assert conn["event.duration"] == 1_528_000
    assert conn["source.mac"] == "00:0d:3a:13:e3:69"
    ssl = read(day1 / "NASHUA_ssl.log.gz")[0].to_pylist()[0]
    assert ssl["tls.client.ja3"] == "e0fe397a5edfba9a6facc7c7b341f4eb"
    assert ssl["tls.server.subject"].startswith("emailAddress=synthesize@")
    x509 = read(day1 / "NASHUA_x509.log.gz")[0].to_pylist()[0]
    assert x509["event.id"] == "F1v6sJmRC73GU6WT3"
    assert x509["file.x509.serial_number"] == "7EFDE1CFECCCDB44"
    assert x509["file.x509.not_before"] == dt.datetime(2016, 8, 6, 5, 45, 31, tzinfo=UTC)
    files = read(day1 / "NASHUA_files.log.gz")[0].to_pylist()[0]
    assert (files["event.id"], files["source.ip"], files["destination.ip"]) == (
        "CF37FuG0Jho600cAa",
        "10.0.0.4",
        "10.0.1.6",
    )
    assert (files["file.size"], files["file.mime_type"]) == (22, "text/ini")
    http = read(day1 / "SCRANTON_http.log.gz")[0].to_pylist()[1]
    assert http["url.full"] == "http://192.168.0.4/webdav"
    assert http["user_agent.original"].startswith("Microsoft-WebDAV-MiniRedir")


@pytest.mark.shared
def test_btest_invalid_json_is_one_reject(shared_datasets: Path) -> None:
    f = (
        shared_datasets
        / "zeek"
        / "zeek-btest-baselines"
        / "javascript.http-uri-sha256"
        / "http.log"
    )
    assert zeek_json.sniff(read_head(f), f)
    assert not zeek_tsv.sniff(read_head(f), f)
    t, rejects = read(f)
    assert t.num_rows == 0
    assert len(rejects) == 1
    assert rejects[0].line == 2
    assert rejects[0].reason.startswith("invalid JSON")
