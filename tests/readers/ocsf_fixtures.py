"""Small, faithful OCSF 1.1 sample events for the OCSF reader tests.

There is no public OCSF network dataset in ``../shared``; these records are written
by hand after the OCSF 1.1.0 schema (https://schema.ocsf.io/1.1.0: classes
``network_activity`` 4001, ``http_activity`` 4002, ``dns_activity`` 4003 and
``authentication`` 3002; objects ``metadata``, ``product``, ``cloud``, ``account``,
``network_endpoint``, ``network_connection_info``, ``network_traffic``, ``tls``,
``fingerprint``, ``certificate``, ``http_request``, ``http_response``, ``url``,
``dns_query``, ``dns_answer``). Values are made up but typed as the schema says:
``time`` epoch milliseconds, ``duration`` milliseconds, ids as integers with their
captions beside them. Amazon Security Lake keeps one class per Parquet object, so
``write_parquet`` writes one file per class.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z in epoch ms

_METADATA = {
    "version": "1.1.0",
    "product": {"name": "vpc-sensor", "vendor_name": "ExampleCorp", "version": "2.3"},
    "tenant_uid": "tenant-7",
}
_CLOUD = {"provider": "AWS", "region": "eu-west-1", "account": {"uid": "123456789012"}}


def network_activity() -> list[dict]:
    """Two Network Activity (4001) records: a TLS connection and a UDP flow."""
    return [
        {
            "class_uid": 4001,
            "class_name": "Network Activity",
            "category_uid": 4,
            "category_name": "Network Activity",
            "activity_id": 6,
            "activity_name": "Traffic",
            "type_uid": 400106,
            "severity_id": 1,
            "severity": "Informational",
            "time": T0,
            "start_time": T0 - 2500,
            "end_time": T0,
            "duration": 2500,
            "action_id": 1,
            "action": "Allowed",
            "metadata": {**_METADATA, "uid": "na-1"},
            "cloud": _CLOUD,
            "src_endpoint": {"ip": "10.0.0.5", "port": 51514, "mac": "02:00:00:00:00:05"},
            "dst_endpoint": {"ip": "93.184.216.34", "port": 443},
            "connection_info": {
                "protocol_name": "TCP",
                "protocol_num": 6,
                "direction_id": 2,
                "direction": "Outbound",
                "community_uid": "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
            },
            "traffic": {
                "bytes_in": 5120,
                "bytes_out": 734,
                "bytes": 5854,
                "packets_in": 9,
                "packets_out": 7,
                "packets": 16,
            },
            "tls": {
                "version": "1.3",
                "sni": "example.com",
                "ja3_hash": {
                    "algorithm_id": 1,
                    "algorithm": "MD5",
                    "value": "e7d705a3286e19ea42f587b344ee6865",
                },
                "ja3s_hash": {
                    "algorithm_id": 1,
                    "algorithm": "MD5",
                    "value": "f4febc55ea12b31ae17cfb7e614afda8",
                },
                "certificate": {
                    "subject": "CN=example.com",
                    "issuer": "C=US, O=DigiCert Inc, CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1",
                    "serial_number": "0fbe08b0854d05738ab0cce1c9afeec9",
                    "version": "3",
                    "created_time": T0 - 86_400_000,
                    "expiration_time": T0 + 86_400_000,
                    "fingerprints": [
                        {
                            "algorithm_id": 3,
                            "algorithm": "SHA-256",
                            "value": (
                                "EF:BA:26:D8:C1:CE:37:79:AC:77:63:0A:90:F8:21:63"
                                ":A3:D6:89:2E:D6:AF:EE:40:86:E8:E5:39:39:CD:29:3A"
                            ),
                        },
                        {
                            "algorithm_id": 2,
                            "algorithm": "SHA-1",
                            "value": "31:0D:B7:AF:4B:2B:C9:04:0C:83:44:70:1A:CA:08:D0:C6:93:81:E3",
                        },
                    ],
                },
            },
        },
        {
            "class_uid": 4001,
            "category_uid": 4,
            "activity_id": 6,
            "activity_name": "Traffic",
            "type_uid": 400106,
            "severity_id": 1,
            "time": T0 + 1000,
            "start_time": T0,
            "end_time": T0 + 1000,
            "metadata": {**_METADATA, "uid": "na-2"},
            "cloud": _CLOUD,
            "src_endpoint": {"ip": "fe80::1", "port": 5353},
            "dst_endpoint": {"ip": "ff02::fb", "port": 5353},
            "connection_info": {"protocol_num": 17},
            "traffic": {"bytes_out": 120, "packets_out": 1},
        },
    ]


def http_activity() -> list[dict]:
    """One HTTP Activity (4002) GET with a query string and a non-default port."""
    return [
        {
            "class_uid": 4002,
            "class_name": "HTTP Activity",
            "category_uid": 4,
            "activity_id": 3,
            "activity_name": "Get",
            "type_uid": 400203,
            "severity_id": 1,
            "time": T0 + 2000,
            "metadata": {**_METADATA, "uid": "http-1"},
            "cloud": _CLOUD,
            "src_endpoint": {"ip": "10.0.0.5", "port": 51600},
            "dst_endpoint": {"ip": "203.0.113.7", "port": 8080, "hostname": "updates.example.net"},
            "connection_info": {"protocol_name": "tcp", "protocol_num": 6},
            "http_request": {
                "http_method": "GET",
                "user_agent": "curl/8.4.0",
                "referrer": "http://portal.example.net/",
                "version": "1.1",
                "url": {
                    "scheme": "http",
                    "hostname": "updates.example.net",
                    "port": 8080,
                    "path": "/pkg/agent.bin",
                    "query_string": "v=2&arch=x64",
                    "url_string": "http://updates.example.net:8080/pkg/agent.bin?v=2&arch=x64",
                },
            },
            "http_response": {
                "code": 200,
                "status": "OK",
                "content_type": "application/octet-stream",
                "length": 48213,
            },
            "traffic": {"bytes_out": 312, "bytes_in": 48900},
        }
    ]


def dns_activity() -> list[dict]:
    """Two DNS Activity (4003) responses: one with answers, one NXDOMAIN."""
    return [
        {
            "class_uid": 4003,
            "class_name": "DNS Activity",
            "category_uid": 4,
            "activity_id": 2,
            "activity_name": "Response",
            "type_uid": 400302,
            "severity_id": 1,
            "time": T0 + 3000,
            "metadata": {**_METADATA, "uid": "dns-1"},
            "cloud": _CLOUD,
            "src_endpoint": {"ip": "10.0.0.5", "port": 40000},
            "dst_endpoint": {"ip": "10.0.0.2", "port": 53},
            "connection_info": {"protocol_name": "udp", "protocol_num": 17},
            "query": {
                "hostname": "www.example.org",
                "type": "A",
                "class": "IN",
                "packet_uid": 4242,
            },
            "answers": [
                {
                    "rdata": "example.org",
                    "type": "CNAME",
                    "class": "IN",
                    "ttl": 300,
                    "packet_uid": 4242,
                },
                {
                    "rdata": "93.184.215.14",
                    "type": "A",
                    "class": "IN",
                    "ttl": 60,
                    "packet_uid": 4242,
                },
            ],
            "rcode_id": 0,
            "rcode": "NoError",
        },
        {
            "class_uid": 4003,
            "category_uid": 4,
            "activity_id": 2,
            "activity_name": "Response",
            "type_uid": 400302,
            "severity_id": 1,
            "time": T0 + 4000,
            "metadata": {**_METADATA, "uid": "dns-2"},
            "src_endpoint": {"ip": "10.0.0.5", "port": 40001},
            "dst_endpoint": {"ip": "10.0.0.2", "port": 53},
            "connection_info": {"protocol_name": "udp"},
            "query": {
                "hostname": "nonexistent.example.org",
                "type": "AAAA",
                "class": "IN",
                "packet_uid": 4243,
            },
            "rcode_id": 3,
            "rcode": "NXDomain",
        },
    ]


def authentication() -> list[dict]:
    """An Authentication (3002) record: valid OCSF, but not a class the reader maps."""
    return [
        {
            "class_uid": 3002,
            "category_uid": 3,
            "activity_id": 1,
            "type_uid": 300201,
            "severity_id": 1,
            "time": T0 + 5000,
            "metadata": {**_METADATA, "uid": "auth-1"},
            "user": {"name": "alice"},
        }
    ]


def all_classes() -> dict[int, list[dict]]:
    return {
        4001: network_activity(),
        4002: http_activity(),
        4003: dns_activity(),
        3002: authentication(),
    }


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def write_parquet(path: Path, records: list[dict], *, time_as_timestamp: bool = False) -> Path:
    """Nested Parquet as Security Lake stores OCSF (structs and lists, not JSON text).

    ``time_as_timestamp`` drops ``time`` and writes ``time_dt`` as a Parquet
    timestamp instead (the OCSF datetime profile), to test that path.
    """
    table = pa.Table.from_pylist(records)
    if time_as_timestamp:
        time_dt = table["time"].cast(pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
        table = table.drop_columns(["time"]).append_column("time_dt", time_dt)
    pq.write_table(table, path)
    return path
