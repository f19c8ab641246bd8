"""Regenerate ``data/samples/`` deterministically: run it, and the files come out the same.

* ``generated/``: ``detect.synthetic`` with 20 000 events, seed 7 (Parquet, ground truth,
  planted indicators).
* ``indicators/``: the planted indicators as CSV and as a plain one-value-per-line list.
* ``zeek/``: a Zeek TSV ``conn.log`` and ``dns.log`` and the same events as Zeek JSON
  lines (``conn.json``, ``dns.json``, ISO 8601 timestamps).
* ``suricata/eve.json``: Suricata EVE NDJSON (flow, dns v2, http, tls, fileinfo, alert,
  stats).

The hand-written sensor files contact the planted indicators (an IP, a domain, a URL, a
file hash and a JA3), so an IOC run over the samples has something to find.

Usage: ``python scripts/make_samples.py [--out data/samples]``
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from detect.synthetic import generate

ROOT = Path(__file__).resolve().parent.parent
EVENTS, SEED = 20_000, 7
UNSET, EMPTY = "-", "(empty)"


def ts(seconds: float) -> datetime:
    """A sample time: seconds after 2024-03-04 08:00:00 UTC."""
    return datetime.fromtimestamp(1709539200 + seconds, tz=UTC)


def planted_indicators(path: Path) -> dict[str, str]:
    """The first contacted (non-decoy) indicator of each type."""
    out: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if "decoy" not in row["tags"]:
                out.setdefault(row["type"], row["value"])
    return out


# ---- Zeek -----------------------------------------------------------------------------------

CONN_FIELDS = [
    ("ts", "time"), ("uid", "string"), ("id.orig_h", "addr"), ("id.orig_p", "port"),
    ("id.resp_h", "addr"), ("id.resp_p", "port"), ("proto", "enum"), ("service", "string"),
    ("duration", "interval"), ("orig_bytes", "count"), ("resp_bytes", "count"),
    ("conn_state", "string"), ("local_orig", "bool"), ("local_resp", "bool"),
    ("missed_bytes", "count"), ("history", "string"), ("orig_pkts", "count"),
    ("orig_ip_bytes", "count"), ("resp_pkts", "count"), ("resp_ip_bytes", "count"),
    ("tunnel_parents", "set[string]"),
]
DNS_FIELDS = [
    ("ts", "time"), ("uid", "string"), ("id.orig_h", "addr"), ("id.orig_p", "port"),
    ("id.resp_h", "addr"), ("id.resp_p", "port"), ("proto", "enum"), ("trans_id", "count"),
    ("rtt", "interval"), ("query", "string"), ("qclass", "count"), ("qclass_name", "string"),
    ("qtype", "count"), ("qtype_name", "string"), ("rcode", "count"), ("rcode_name", "string"),
    ("AA", "bool"), ("TC", "bool"), ("RD", "bool"), ("RA", "bool"), ("Z", "count"),
    ("answers", "vector[string]"), ("TTLs", "vector[interval]"), ("rejected", "bool"),
]


def conn_events(ioc: dict[str, str]) -> list[dict[str, Any]]:
    """Connections: ordinary web and DNS, an IOC IP contact, a scan probe, IPv6, a tunnel."""

    def c(t: float, uid: str, o: str, op: int, r: str, rp: int, proto: str, service: str | None,
          dur: float | None, ob: int | None, rb: int | None, state: str, hist: str,
          op_: int, rp_: int, parents: list[str] | None = None) -> dict[str, Any]:
        return {
            "ts": ts(t), "uid": uid, "id.orig_h": o, "id.orig_p": op, "id.resp_h": r,
            "id.resp_p": rp, "proto": proto, "service": service, "duration": dur,
            "orig_bytes": ob, "resp_bytes": rb, "conn_state": state, "local_orig": True,
            "local_resp": r.startswith(("10.", "fd12:")), "missed_bytes": 0, "history": hist,
            "orig_pkts": op_, "orig_ip_bytes": (ob or 0) + 40 * op_, "resp_pkts": rp_,
            "resp_ip_bytes": (rb or 0) + 40 * rp_, "tunnel_parents": parents,
        }

    return [
        c(1.103412, "CsmpLe2n8Kq0XwZ3b1", "10.1.20.15", 53122, "10.1.0.10", 53, "udp", "dns",
          0.012113, 34, 66, "SF", "Dd", 1, 1),
        c(1.131002, "CHt7rQ1kFJ2aLs9Wd4", "10.1.20.15", 51514, "142.250.74.110", 443, "tcp",
          "ssl", 12.402117, 2211, 48213, "SF", "ShADadFf", 24, 40, []),
        c(95.552101, "C9vNw3XbT1mUe0Rk7a", "10.1.40.7", 49833, ioc["ip"], 4444, "tcp", None,
          3.51009, 912, 4821, "SF", "ShADadFf", 9, 8),
        c(180.220931, "CaW1e6Zq4Ty8Pn2Hs5", "10.1.33.21", 60112, "203.0.113.77", 443, "tcp",
          "ssl", 1.200311, 1603, 5512, "SF", "ShADadFf", 8, 9),
        c(240.000812, "CdP3oV8nQ2gYh5Jt6c", "10.1.50.9", 41000, "10.1.0.40", 23, "tcp", None,
          None, None, None, "S0", "S", 1, 0),
        c(240.021118, "CmK4tB7yR9wEz1Lq8d", "10.1.50.9", 41001, "10.1.0.40", 25, "tcp", None,
          0.000402, 0, 0, "REJ", "Sr", 1, 1),
        c(300.5, "CqZ2uN6vH3cXf7Bm1e", "fd12:3456:1:3::25", 50022,
          "2a00:1450:4001:82b::200e", 443, "tcp", "ssl", 30.11, 4410, 90211, "SF",
          "ShADadFf", 40, 70),
        c(360.75, "CtR5yM2wJ8dKp4Gv9f", "10.1.21.3", 2152, "10.1.0.30", 443, "udp", None,
          0.5, 1200, 800, "SF", "Dd", 2, 2, ["Cx1GtPq2", "Cy3HuRs4"]),
    ]


def dns_events(ioc: dict[str, str]) -> list[dict[str, Any]]:
    """Lookups: ordinary, the IOC domain, a tunnel-like TXT, NXDOMAIN, an escaped name."""

    def d(t: float, uid: str, o: str, op: int, tid: int, query: str, qtype: int, qn: str,
          rcode: int, rn: str, answers: list[str] | None, ttls: list[float] | None,
          rtt: float | None = 0.011) -> dict[str, Any]:
        return {
            "ts": ts(t), "uid": uid, "id.orig_h": o, "id.orig_p": op, "id.resp_h": "10.1.0.10",
            "id.resp_p": 53, "proto": "udp", "trans_id": tid, "rtt": rtt, "query": query,
            "qclass": 1, "qclass_name": "C_INTERNET", "qtype": qtype, "qtype_name": qn,
            "rcode": rcode, "rcode_name": rn, "AA": False, "TC": False, "RD": True,
            "RA": rcode != 5, "Z": 0, "answers": answers, "TTLs": ttls, "rejected": False,
        }

    return [
        d(1.103412, "CsmpLe2n8Kq0XwZ3b1", "10.1.20.15", 53122, 4411, "www.google.com", 1, "A",
          0, "NOERROR", ["142.250.74.110", "142.250.74.99"], [300.0, 300.0]),
        d(180.201002, "CoF8kW3sA1hQ6mZ2r9", "10.1.33.21", 53411, 18221, ioc["domain"], 1, "A",
          0, "NOERROR", ["203.0.113.77"], [60.0]),
        d(200.000151, "CeU7nT2xD5jL9vP3q1", "10.1.33.40", 61001, 9001,
          "mzxw6ytboi5xi2lpnzqxg5dbojuw4zlsmfzgk3tu.t.tunnel-sample.net", 16, "TXT", 0,
          "NOERROR", ["cmVzcG9uc2UtY2h1bms="], [0.0]),
        d(210.4, "CgY1bR8cE4kS7wN5t2", "10.1.20.15", 55123, 3001, "wpad.corp-sample.com", 1, "A",
          3, "NXDOMAIN", None, None),
        d(215.2, "CjH4vQ9dF2lT8xM6u3", "10.1.20.16", 55200, 3002, "caf\u00e9.fr", 1, "A", 0,
          "NOERROR", [], []),
        d(216.9, "ClK6wP1eG3mU9yN7v4", "10.1.20.16", 55201, 3003, "printer\tlobby.local", 255,
          "*", 5, "REFUSED", None, None, None),
    ]


def zeek_value(value: Any, typ: str) -> str:
    """One field in Zeek's ASCII log form, with Zeek's escaping."""
    if value is None:
        return UNSET
    if typ.startswith(("set[", "vector[")):
        if not value:
            return EMPTY
        inner = typ[typ.index("[") + 1:-1]
        return ",".join(zeek_value(v, inner).replace(",", "\\x2c") for v in value)
    if typ == "time":
        return f"{value.timestamp():.6f}"
    if typ == "interval":
        return f"{value:.6f}"
    if typ == "bool":
        return "T" if value else "F"
    text = str(value)
    if text == "":
        return EMPTY
    out = []
    for byte in text.encode("utf-8"):
        if byte < 0x20 or byte >= 0x7F or byte == 0x5C:
            out.append(f"\\x{byte:02x}")
        else:
            out.append(chr(byte))
    return "".join(out)


def write_zeek_tsv(path: Path, name: str, fields: list[tuple[str, str]],
                   rows: list[dict[str, Any]]) -> None:
    """A Zeek ASCII log with its full header and ``#close`` footer."""
    opened = rows[0]["ts"].strftime("%Y-%m-%d-%H-%M-%S")
    closed = ts(3600).strftime("%Y-%m-%d-%H-%M-%S")
    lines = [
        "#separator \\x09",
        "#set_separator\t,",
        f"#empty_field\t{EMPTY}",
        f"#unset_field\t{UNSET}",
        f"#path\t{name}",
        f"#open\t{opened}",
        "#fields\t" + "\t".join(f for f, _ in fields),
        "#types\t" + "\t".join(t for _, t in fields),
    ]
    lines += ["\t".join(zeek_value(r[f], t) for f, t in fields) for r in rows]
    lines.append(f"#close\t{closed}")
    path.write_text("\n".join(lines) + "\n", encoding="ascii")


def write_zeek_json(path: Path, rows: list[dict[str, Any]]) -> None:
    """Zeek JSON lines (``LogAscii::use_json``, ISO 8601 timestamps, unset fields left out)."""
    with path.open("w", encoding="utf-8") as fh:
        for r in rows:
            obj = {}
            for k, v in r.items():
                if v is None:
                    continue
                obj[k] = v.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if isinstance(v, datetime) else v
            fh.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")


# ---- Suricata EVE -----------------------------------------------------------------------------

def eve_ts(t: float) -> str:
    """Suricata's timestamp form: local offset without colon."""
    return ts(t).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")


def eve_events(ioc: dict[str, str]) -> list[dict[str, Any]]:
    """One of each event type Suricata writes, touching the planted indicators."""
    url_host, _, url_rest = ioc["url"].removeprefix("http://").partition("/")
    path = "/" + url_rest
    base = {"in_iface": "eth0", "community_id": None}
    flow = {
        "timestamp": eve_ts(100.0), "flow_id": 1185749323521123, **base, "event_type": "flow",
        "src_ip": "10.1.40.7", "src_port": 49833, "dest_ip": ioc["ip"], "dest_port": 4444,
        "proto": "TCP",
        "flow": {"pkts_toserver": 9, "pkts_toclient": 8, "bytes_toserver": 1272,
                 "bytes_toclient": 5141, "start": eve_ts(95.552101), "end": eve_ts(99.062191),
                 "age": 4, "state": "closed", "reason": "timeout", "alerted": False},
        "tcp": {"tcp_flags": "1b", "tcp_flags_ts": "1b", "tcp_flags_tc": "1b", "syn": True,
                "fin": True, "psh": True, "ack": True, "state": "closed"},
    }
    dns_q = {
        "timestamp": eve_ts(180.201002), "flow_id": 722198734981012, **base,
        "event_type": "dns", "src_ip": "10.1.33.21", "src_port": 53411, "dest_ip": "10.1.0.10",
        "dest_port": 53, "proto": "UDP",
        "dns": {"type": "query", "id": 18221, "rrname": ioc["domain"], "rrtype": "A",
                "tx_id": 0, "opcode": 0},
    }
    dns_a = {
        **dns_q, "timestamp": eve_ts(180.214331),
        "dns": {"version": 2, "type": "answer", "id": 18221, "flags": "8180", "qr": True,
                "rd": True, "ra": True, "opcode": 0, "rrname": ioc["domain"], "rrtype": "A",
                "rcode": "NOERROR",
                "answers": [{"rrname": ioc["domain"], "rrtype": "A", "ttl": 60,
                             "rdata": "203.0.113.77"}],
                "grouped": {"A": ["203.0.113.77"]}},
    }
    http = {
        "timestamp": eve_ts(400.1), "flow_id": 1988312200417765, **base, "event_type": "http",
        "src_ip": "10.1.20.74", "src_port": 50211, "dest_ip": "198.51.100.23", "dest_port": 80,
        "proto": "TCP", "tx_id": 0,
        "http": {"hostname": url_host, "url": path,
                 "http_user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
                 "http_content_type": "application/x-dosexec", "http_method": "GET",
                 "protocol": "HTTP/1.1", "status": 200, "length": 412211},
    }
    tls = {
        "timestamp": eve_ts(500.3), "flow_id": 310029345120077, **base, "event_type": "tls",
        "src_ip": "10.1.45.231", "src_port": 58812, "dest_ip": "203.0.113.90", "dest_port": 443,
        "proto": "TCP",
        "tls": {"subject": "CN=docs-share.example.org", "issuerdn": "CN=R11, O=Let's Encrypt, C=US",
                "serial": "04:A1:9C:22:7E:55:10:0B", "fingerprint":
                "3a:91:7e:0b:55:c2:19:aa:4d:6e:02:77:f1:c8:90:12:bd:34:5e:61",
                "sni": "docs-share.example.org", "version": "TLS 1.2",
                "notbefore": "2024-02-01T00:00:00", "notafter": "2024-05-01T23:59:59",
                "ja3": {"hash": ioc["ja3"],
                        "string": "771,49195-49199-52393-52392,"
                                  "0-23-65281-10-11-35-16-5-13,29-23-24,0"},
                "ja3s": {"hash": "f4febc55ea12b31ae17cfb7e614afda8",
                         "string": "771,49199,65281-0-11-35-16"}},
    }
    fileinfo = {
        "timestamp": eve_ts(400.6), "flow_id": 1988312200417765, **base,
        "event_type": "fileinfo", "src_ip": "198.51.100.23", "src_port": 80,
        "dest_ip": "10.1.20.74", "dest_port": 50211, "proto": "TCP",
        "http": http["http"],
        "app_proto": "http",
        "fileinfo": {"filename": path, "gaps": False, "state": "CLOSED",
                     "md5": "5d41402abc4b2a76b9719d911017c592",
                     "sha1": "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d",
                     "sha256": ioc["sha256"], "stored": False, "size": 412211, "tx_id": 0},
    }
    alert = {
        "timestamp": eve_ts(180.214331), "flow_id": 722198734981012, **base,
        "event_type": "alert", "src_ip": "10.1.33.21", "src_port": 53411,
        "dest_ip": "10.1.0.10", "dest_port": 53, "proto": "UDP",
        "alert": {"action": "allowed", "gid": 1, "signature_id": 9000001, "rev": 1,
                  "signature": "DETECT SAMPLE lookup of a planted indicator domain",
                  "category": "Potentially Bad Traffic", "severity": 2,
                  "metadata": {"created_at": ["2024_03_04"], "source": ["detect-samples"]}},
        "dns": {"query": [{"type": "query", "id": 18221, "rrname": ioc["domain"],
                           "rrtype": "A", "tx_id": 0}]},
        "app_proto": "dns",
    }
    stats = {
        "timestamp": eve_ts(600.0), "event_type": "stats",
        "stats": {"uptime": 600,
                  "capture": {"kernel_packets": 182211, "kernel_drops": 12,
                              "errors": 0},
                  "decoder": {"pkts": 182199, "bytes": 121893311, "ipv4": 180011, "ipv6": 2188,
                              "tcp": 150221, "udp": 31500, "avg_pkt_size": 669,
                              "max_pkt_size": 1514},
                  "flow": {"memcap": 0, "tcp": 3211, "udp": 4122, "icmpv4": 12,
                           "memuse": 7154304},
                  "detect": {"engines": [{"id": 0, "last_reload": eve_ts(0.0),
                                          "rules_loaded": 1, "rules_failed": 0}],
                             "alert": 1}},
    }
    events = [flow, dns_q, dns_a, alert, http, fileinfo, tls, stats]
    for e in events:
        e.pop("community_id", None)
    return events


def write_ndjson(path: Path, events: list[dict[str, Any]]) -> None:
    """One JSON object per line, keys in insertion order."""
    with path.open("w", encoding="utf-8") as fh:
        for e in events:
            fh.write(json.dumps(e, separators=(",", ":")) + "\n")


def main() -> None:
    """Rebuild every sample under ``--out``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "samples")
    out: Path = ap.parse_args().out
    gen = out / "generated"
    if gen.exists():
        shutil.rmtree(gen)
    generate(gen, events=EVENTS, seed=SEED)
    ioc = planted_indicators(gen / "indicators.csv")

    ind = out / "indicators"
    ind.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(gen / "indicators.csv", ind / "indicators.csv")
    with (gen / "indicators.csv").open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if "decoy" not in r["tags"]]
    lines = ["# planted indicators of data/samples (one value per line; '#' starts a comment)"]
    lines += [r["value"] for r in rows]
    (ind / "indicators.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")

    zeek = out / "zeek"
    zeek.mkdir(parents=True, exist_ok=True)
    conns, dnss = conn_events(ioc), dns_events(ioc)
    write_zeek_tsv(zeek / "conn.log", "conn", CONN_FIELDS, conns)
    write_zeek_tsv(zeek / "dns.log", "dns", DNS_FIELDS, dnss)
    write_zeek_json(zeek / "conn.json", conns)
    write_zeek_json(zeek / "dns.json", dnss)
    suri = out / "suricata"
    suri.mkdir(parents=True, exist_ok=True)
    write_ndjson(suri / "eve.json", eve_events(ioc))


if __name__ == "__main__":
    main()
