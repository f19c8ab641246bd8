"""Zeek TSV reader: header handling, unset/empty/sets/escapes, rejects with true line numbers,
several header blocks, header-less zeek-cut output, and the real logs in ../shared."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import detect
from detect.readers import zeek_json, zeek_tsv
from detect.readers.base import ReadContext, Reject
from detect.readers.source import read_head
from detect.schema import CANONICAL_SCHEMA

UTC = dt.UTC

HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n"
    "#path\t{path}\n#open\t2024-04-19-00-00-01\n#fields\t{fields}\n#types\t{types}\n"
)
DNS_FIELDS = (
    "ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto trans_id query qtype_name rcode_name "
    "answers TTLs"
)
DNS_TYPES = (
    "time string addr port addr port enum count string string string vector[string] "
    "vector[interval]"
)
CONN_FIELDS = (
    "_node_name ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto service duration "
    "orig_bytes resp_bytes conn_state orig_pkts resp_pkts"
)
CONN_TYPES = (
    "string time string addr port addr port enum string interval count count string count count"
)
HTTP_FIELDS = (
    "ts uid id.orig_h id.orig_p id.resp_h id.resp_p method host uri user_agent status_code "
    "resp_mime_types"
)
HTTP_TYPES = "time string addr port addr port string string string string count vector[string]"


def header(path: str, fields: str, types: str) -> str:
    return HEADER.format(
        path=path, fields="\t".join(fields.split()), types="\t".join(types.split())
    )


def row(*values: str) -> str:
    return "\t".join(values) + "\n"


def write(tmp_path: Path, name: str, text: str | bytes, *, gz: bool = False) -> Path:
    data = text.encode() if isinstance(text, str) else text
    p = tmp_path / name
    p.write_bytes(gzip.compress(data) if gz else data)
    return p


def read(path: Path, batch_size: int = 65_536) -> tuple[pa.Table, list[Reject]]:
    rejects: list[Reject] = []
    ctx = ReadContext(path, batch_size=batch_size, reject=rejects.append)
    batches = list(zeek_tsv.read_batches(ctx))
    for b in batches:
        assert b.schema == CANONICAL_SCHEMA
        assert b.num_rows <= batch_size
    table = pa.Table.from_batches(batches, schema=CANONICAL_SCHEMA)
    return table, rejects


def dns_row(
    ts: str = "1521911720.865716",
    query: str = "example.com",
    answers: str = "1.2.3.4,a.b",
    ttls: str = "60.000000,3600.000000",
    port: str = "41772",
) -> str:
    return row(
        ts,
        "CqKst53mF3det3eDV9",
        "10.47.1.100",
        port,
        "10.0.0.100",
        "53",
        "udp",
        "36329",
        query,
        "A",
        "NOERROR",
        answers,
        ttls,
    )


# --------------------------------------------------------------------------- inline files


def test_header_unset_empty_sets(tmp_path: Path) -> None:
    text = (
        header("dns", DNS_FIELDS, DNS_TYPES)
        + dns_row()
        + dns_row(query="-", answers="(empty)", ttls="(empty)")
        + dns_row(answers="-", ttls="-")
        + "#close\t2024-04-19-01-00-00\n"
    )
    t, rejects = read(write(tmp_path, "x.log", text))
    assert rejects == []
    rows = t.to_pylist()
    assert [r["dns.question.name"] for r in rows] == ["example.com", None, "example.com"]
    assert [r["dns.answers.data"] for r in rows] == [["1.2.3.4", "a.b"], [], None]
    assert [r["dns.answers.ttl"] for r in rows] == [[60.0, 3600.0], [], None]
    first = rows[0]
    assert first["@timestamp"] == dt.datetime(2018, 3, 24, 17, 15, 20, 865716, tzinfo=UTC)
    assert first["event.dataset"] == "dns"
    assert first["network.protocol"] == "dns"
    assert first["event.id"] == "CqKst53mF3det3eDV9"
    assert (first["source.ip"], first["source.port"]) == ("10.47.1.100", 41772)
    assert (first["destination.ip"], first["destination.port"]) == ("10.0.0.100", 53)
    assert first["dns.id"] == 36329
    assert first["log.file.path"] == str(tmp_path / "x.log")


def test_empty_string_is_not_null(tmp_path: Path) -> None:
    text = header("dns", DNS_FIELDS, DNS_TYPES) + dns_row(query="(empty)")
    t, _ = read(write(tmp_path, "x.log", text))
    assert t["dns.question.name"].to_pylist() == [""]


def test_escapes_decoded(tmp_path: Path) -> None:
    text = (
        header("dns", DNS_FIELDS, DNS_TYPES)
        + dns_row(query="a\\x09b")  # tab inside a value
        + dns_row(query="back\\\\slash", answers="x\\x2cy,z")  # \\ and an escaped set separator
        + dns_row(query="caf\\xc3\\xa9")  # UTF-8 bytes escaped
        + dns_row(query="bad\\xfcbyte")  # not UTF-8: stays written as \xfc, as in Zeek JSON
        + dns_row(query="\\x2d")  # a literal "-" is not unset
    )
    t, rejects = read(write(tmp_path, "x.log", text))
    assert rejects == []
    assert t["dns.question.name"].to_pylist() == [
        "a\tb",
        "back\\slash",
        "café",
        "bad\\xfcbyte",
        "-",
    ]
    assert t["dns.answers.data"].to_pylist()[1] == ["x,y", "z"]


def test_wrong_field_count_rejected_with_line_and_text(tmp_path: Path) -> None:
    text = (
        header("dns", DNS_FIELDS, DNS_TYPES)
        + dns_row()
        + "only\tthree\tfields\n"
        + dns_row(port="abc")
        + dns_row(query="last")
    )
    t, rejects = read(write(tmp_path, "x.log", text))
    assert t["dns.question.name"].to_pylist() == ["example.com", "last"]
    assert [(r.line, r.column) for r in rejects] == [(10, None), (11, "source.port")]
    assert rejects[0].raw == "only\tthree\tfields"
    assert "expected 13 fields" in rejects[0].reason
    assert "abc" in rejects[1].reason
    assert rejects[1].raw is not None and rejects[1].raw.startswith("1521911720.865716\t")


def test_bad_port_rejected_by_conform(tmp_path: Path) -> None:
    text = (
        header("dns", DNS_FIELDS, DNS_TYPES)
        + dns_row(port="abc")
        + dns_row(port="70000")
        + dns_row()
    )
    t, rejects = read(write(tmp_path, "x.log", text))
    assert t.num_rows == 1
    assert [(r.line, r.column) for r in rejects] == [(9, "source.port"), (10, "source.port")]


def test_blank_lines_keep_line_numbers(tmp_path: Path) -> None:
    text = header("dns", DNS_FIELDS, DNS_TYPES) + dns_row() + "\n\n" + dns_row(port="abc")
    t, rejects = read(write(tmp_path, "x.log", text))
    assert t.num_rows == 1
    assert [r.line for r in rejects] == [12]


def test_bad_time_rejected(tmp_path: Path) -> None:
    text = header("dns", DNS_FIELDS, DNS_TYPES) + dns_row(ts="XXXXXXXXXX.XXXXXX") + dns_row()
    t, rejects = read(write(tmp_path, "x.log", text))
    assert t.num_rows == 1
    assert [(r.line, r.column) for r in rejects] == [(9, "ts")]


def test_gzip_by_content(tmp_path: Path) -> None:
    text = header("dns", DNS_FIELDS, DNS_TYPES) + dns_row() + dns_row(query="b")
    plain, _ = read(write(tmp_path, "dns.log", text))
    packed, _ = read(write(tmp_path, "dns.log.data", text, gz=True))  # no .gz suffix
    assert plain.drop_columns(["log.file.path"]).equals(packed.drop_columns(["log.file.path"]))


def test_conn_node_name_duration_counts(tmp_path: Path) -> None:
    text = header("conn", CONN_FIELDS, CONN_TYPES) + row(
        "worker-eth0-1",
        "1713484795.943239",
        "CYl7H53iN6mY9NyXJ8",
        "167.94.138.145",
        "25320",
        "64.225.56.201",
        "6008",
        "tcp",
        "ssh",
        "1.000064",
        "10",
        "20",
        "SF",
        "3",
        "4",
    )
    t, _ = read(write(tmp_path, "conn.log", text))
    r = t.to_pylist()[0]
    assert r["observer.name"] == "worker-eth0-1"
    assert r["event.duration"] == 1_000_064_000
    assert (
        r["source.bytes"],
        r["destination.bytes"],
        r["source.packets"],
        r["destination.packets"],
    ) == (10, 20, 3, 4)
    assert (r["network.transport"], r["network.protocol"], r["network.connection.state"]) == (
        "tcp",
        "ssh",
        "SF",
    )


def test_conn_bytes_are_ip_level_when_the_log_has_them(tmp_path: Path) -> None:
    # ECS source.bytes is what went over the wire: Zeek's orig_ip_bytes (as Elastic's Zeek
    # pipeline maps it, and Suricata's bytes_toserver); orig_bytes (payload) only without it
    fields = CONN_FIELDS + " orig_ip_bytes resp_ip_bytes"
    types = CONN_TYPES + " count count"
    text = header("conn", fields, types) + row(
        "w", "1713484795.943239", "C1", "10.0.0.1", "25320", "10.0.0.2", "80", "tcp", "-",
        "1.0", "0", "0", "REJ", "1", "1", "60", "40",
    )  # fmt: skip
    r = read(write(tmp_path, "conn.log", text))[0].to_pylist()[0]
    assert (r["source.bytes"], r["destination.bytes"]) == (60, 40)  # a SYN: no payload


def test_several_header_blocks(tmp_path: Path) -> None:
    conn = (
        header("conn", CONN_FIELDS, CONN_TYPES)
        + row(
            "w",
            "1.5",
            "C1",
            "1.1.1.1",
            "1",
            "2.2.2.2",
            "2",
            "udp",
            "-",
            "-",
            "-",
            "-",
            "S0",
            "-",
            "-",
        )
        + "#close\t2024-04-19-01-00-00\n"
    )
    dns = header("dns", DNS_FIELDS, DNS_TYPES) + dns_row(port="abc") + dns_row()
    t, rejects = read(write(tmp_path, "both.log", conn + dns))
    assert t["event.dataset"].to_pylist() == ["conn", "dns"]
    assert t["@timestamp"].to_pylist()[0] == dt.datetime(1970, 1, 1, 0, 0, 1, 500000, tzinfo=UTC)
    assert [r.line for r in rejects] == [19]  # 9 lines conn block + #close + 8 header lines + 1


def test_headerless_zeek_cut_output(tmp_path: Path) -> None:
    text = (
        "### BTest baseline banner\nuid\tid.orig_h\tid.resp_p\tquery\n"
        "C1\t10.0.0.1\t53\tx.org\nC2\t10.0.0.2\tabc\ty.org\n"
    )
    p = write(tmp_path, "dns.log", text)
    assert zeek_tsv.sniff(read_head(p), p)
    t, rejects = read(p)
    assert t["event.dataset"].to_pylist() == ["dns"]
    assert t["dns.question.name"].to_pylist() == ["x.org"]
    assert t["@timestamp"].null_count == 1
    assert [(r.line, r.column) for r in rejects] == [(4, "destination.port")]


def test_data_without_header_is_an_input_error(tmp_path: Path) -> None:
    from detect.errors import InputError

    p = write(tmp_path, "x.log", "#separator \\x09\n1\t2\t3\n")
    with pytest.raises(InputError, match="line 2"):
        read(p)


def test_batches_bounded(tmp_path: Path) -> None:
    text = header("dns", DNS_FIELDS, DNS_TYPES) + "".join(
        dns_row(query=f"q{i}.org") for i in range(5000)
    )
    t, _ = read(write(tmp_path, "dns.log", text), batch_size=700)
    assert t.num_rows == 5000
    assert t["dns.question.name"].to_pylist()[4999] == "q4999.org"


@pytest.mark.parametrize(
    ("method", "host", "uri", "full", "domain", "path", "query", "port"),
    [
        ("GET", "a.com", "/x/y?q=1&r", "http://a.com/x/y?q=1&r", "a.com", "/x/y", "q=1&r", None),
        ("GET", "a.com:8080", "/", "http://a.com:8080/", "a.com", "/", None, 8080),
        ("CONNECT", "b.com", "b.com:443", "b.com:443", "b.com", None, None, 443),
        ("GET", "c.com", "http://c.com/p?z", "http://c.com/p?z", "c.com", "/p", "z", None),
        ("GET", "-", "/beacon", "http://64.225.56.201/beacon", None, "/beacon", None, None),
        ("GET", "(empty)", "/", "http://64.225.56.201/", None, "/", None, None),
    ],
)
def test_http_url_columns(
    tmp_path: Path,
    method: str,
    host: str,
    uri: str,
    full: str,
    domain: str | None,
    path: str | None,
    query: str | None,
    port: int | None,
) -> None:
    text = header("http", HTTP_FIELDS, HTTP_TYPES) + row(
        "1.0",
        "C1",
        "73.54.23.243",
        "5555",
        "64.225.56.201",
        "80",
        method,
        host,
        uri,
        "UA/1",
        "200",
        "text/html,text/plain",
    )
    t, rejects = read(write(tmp_path, "http.log", text))
    assert rejects == []
    r = t.to_pylist()[0]
    assert (r["url.full"], r["url.domain"], r["url.path"], r["url.query"], r["url.port"]) == (
        full,
        domain,
        path,
        query,
        port,
    )
    assert r["http.response.mime_type"] == "text/html"
    assert r["http.response.status_code"] == 200
    assert r["user_agent.original"] == "UA/1"


def test_http_without_host_on_ipv6_and_odd_port(tmp_path: Path) -> None:
    text = header("http", HTTP_FIELDS, HTTP_TYPES) + row(
        "1.0", "C1", "::1", "5555", "2001:db8::1", "8080", "GET", "-", "/", "-", "-", "-"
    )
    t, _ = read(write(tmp_path, "http.log", text))
    assert t["url.full"].to_pylist() == ["http://[2001:db8::1]:8080/"]


def test_sniff_inline(tmp_path: Path) -> None:
    tsv = write(tmp_path, "a.log", header("dns", DNS_FIELDS, DNS_TYPES) + dns_row())
    js = write(tmp_path, "b.log", '{"_path":"dns","ts":1.0,"uid":"C1"}\n')
    text = write(tmp_path, "c.log", "\n>== Total === 2024-04-19\n   - Connections 1.9k\n")
    assert zeek_tsv.sniff(read_head(tsv), tsv)
    assert not zeek_tsv.sniff(read_head(js), js)
    assert not zeek_tsv.sniff(read_head(text), text)


# --------------------------------------------------------------------------- real logs


def _data_lines(path: Path) -> int:
    with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as f:
        return sum(1 for line in f if line.strip() and not line.startswith(b"#"))


@pytest.mark.shared
@pytest.mark.parametrize("log", ["conn", "http", "files", "dns"])
def test_rita_rotated_counts(shared_datasets: Path, log: str) -> None:
    root = shared_datasets / "zeek" / "rita-missing-host"
    files = sorted(root.glob(f"2024-04-*/{log}.*.log.gz"))
    assert len(files) == 72
    total = expected = 0
    for f in files:
        assert zeek_tsv.sniff(read_head(f), f)
        t, rejects = read(f)
        assert rejects == []
        assert set(t["event.dataset"].to_pylist()) == {log}
        total += t.num_rows
        expected += _data_lines(f)
    assert total == expected


@pytest.mark.shared
def test_rita_conn_node_name_and_beacon(shared_datasets: Path) -> None:
    root = shared_datasets / "zeek" / "rita-missing-host"
    conn, _ = read(next(iter(sorted(root.glob("2024-04-19/conn.*.log.gz")))))
    assert set(conn["observer.name"].to_pylist()) == {"worker-eth0-1"}
    http = pa.concat_tables(read(f)[0] for f in sorted(root.glob("2024-04-19/http.*.log.gz")))
    beacon = http.filter(pc.equal(http["source.ip"], "73.54.23.243"))
    assert beacon.num_rows > 10
    assert set(beacon["user_agent.original"].to_pylist()) == {"Modzilla/0.0001 (Atari 7800)"}
    assert beacon["url.full"].to_pylist()[0].startswith("http://64.225.56.201/")


@pytest.mark.shared
def test_conn_summary_is_not_zeek(shared_datasets: Path) -> None:
    files = sorted(
        (shared_datasets / "zeek" / "rita-missing-host").glob("2024-04-19/conn-summary.*")
    )
    assert files
    for f in files:
        head = read_head(f)
        assert not zeek_tsv.sniff(head, f)
        assert not zeek_json.sniff(head, f)


@pytest.mark.shared
def test_rita_proxy_connect(shared_datasets: Path) -> None:
    t, rejects = read(shared_datasets / "zeek" / "rita-proxy" / "http.log.gz")
    assert rejects == []
    assert t.num_rows == 407
    first = t.to_pylist()[0]
    assert first["http.request.method"] == "CONNECT"
    assert first["url.full"] == "www.google.com:443"
    assert first["url.port"] == 443
    assert first["url.path"] is None


@pytest.mark.shared
def test_wrccdc_ssl_x509_join(shared_datasets: Path) -> None:
    root = shared_datasets / "zeek" / "wrccdc2018-brimdata" / "tsv"
    ssl, _ = read(root / "ssl.log.gz")
    x509, _ = read(root / "x509.log.gz")
    fps = ssl["tls.server.hash.sha256"]
    assert ssl["event.dataset"].to_pylist()[0] == "tls"
    assert pc.sum(pc.is_valid(fps)).as_py() == 9975
    assert pc.sum(pc.is_in(fps, x509["file.hash.sha256"])).as_py() == 9974


@pytest.mark.shared
def test_btest_baselines_do_not_crash(shared_datasets: Path) -> None:
    """Every TSV baseline reads; masked ts become rejects; header-less files give rows."""
    root = shared_datasets / "zeek" / "zeek-btest-baselines"
    read_files = rows = ts_rejects = 0
    for f in sorted(root.glob("*/*.log")):
        if not zeek_tsv.sniff(read_head(f), f):
            continue
        t, rejects = read(f)
        read_files += 1
        rows += t.num_rows
        ts_rejects += sum(r.column == "ts" for r in rejects)
        assert all(r.column == "ts" for r in rejects), (f, rejects[:1])
    assert read_files > 440
    assert ts_rejects > 1000
    assert rows > 100  # header-less zeek-cut files and unmasked ones


@pytest.mark.shared
def test_btest_escaped_url(shared_datasets: Path) -> None:
    f = (
        shared_datasets
        / "zeek"
        / "zeek-btest-baselines"
        / "scripts.base.frameworks.logging.ascii-escape-odd-url"
        / "http.log"
    )
    _, rejects = read(f)
    assert [r.line for r in rejects] == [10]  # masked ts; the banner line counts
    assert rejects[0].raw is not None and "\\xfchma" in rejects[0].raw


@pytest.mark.shared
def test_btest_scope_sep_underscore_fields(shared_datasets: Path, tmp_path: Path) -> None:
    """``id_orig_h`` (Zeek's scope_sep) maps like ``id.orig_h``; ts unmasked for the test."""
    f = (
        shared_datasets
        / "zeek"
        / "zeek-btest-baselines"
        / "scripts.base.frameworks.logging.scope_sep"
        / "conn.log"
    )
    text = f.read_text().replace("XXXXXXXXXX.XXXXXX", "1.000000")
    t, rejects = read(write(tmp_path, "conn.log", text))
    assert rejects == []
    assert t.num_rows > 0
    assert t["source.ip"].null_count == 0
    assert t["destination.port"].null_count == 0


@pytest.mark.shared
def test_zeek_tls_versions_are_ecs_values_as_eve_gives(shared_datasets: Path) -> None:
    import collections

    log = shared_datasets / "zeek" / "wrccdc2018-brimdata" / "tsv" / "ssl.log.gz"
    if not log.exists():
        pytest.skip(f"{log} absent")
    seen = collections.Counter()
    for batch in detect.read([log], enrich=False):
        seen.update(v for v in batch.column("tls.version").to_pylist() if v is not None)
    assert seen["1.2"] > 10_000 and seen["1.0"] > 1_000  # logged as TLSv12 / TLSv10
    assert set(seen) <= {"1.0", "1.1", "1.2", "1.3", "2.0", "3.0"}
