"""Building blocks for planted activity: lookups, connections and their app-layer rows.

A ``Recorder`` collects the rows one activity adds to each dataset and counts
them, so the ground truth states exactly how many events an activity put in
the data. The helpers are vectorised over the activity's events (a beacon's
thousand check-ins are one call), and write through ``records.dataset_batch``
like the benign generator does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from detect.synthetic.records import dataset_batch, random_tokens

StrLike = str | Sequence[str | None] | pa.Array | None


def _strings(value: StrLike, n: int) -> pa.Array | None:
    if value is None:
        return None
    if isinstance(value, str):
        return pa.array([value] * n, type=pa.string())
    if isinstance(value, pa.Array):
        return value
    return pa.array(list(value), type=pa.string())


def _dict(value: StrLike, n: int) -> pa.Array | None:
    arr = _strings(value, n)
    return None if arr is None else arr.dictionary_encode()


def _num(value: Any, n: int, dtype: type) -> np.ndarray | None:
    if value is None:
        return None
    return np.broadcast_to(np.asarray(value), (n,)).astype(dtype)


@dataclass
class Host:
    """The internal machine an activity runs on."""

    ip: str
    org: str
    observer: str


@dataclass
class Recorder:
    """Rows of one activity, by dataset, plus the (dataset, uid, ts) labels."""

    activity_id: str
    rng: np.random.Generator
    batches: dict[str, list[pa.RecordBatch]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    first_us: int | None = None
    last_us: int | None = None

    def emit(self, dataset: str, ts: np.ndarray, columns: dict[str, Any]) -> None:
        """Add ``len(ts)`` rows to ``dataset``; strings/dictionaries given as text."""
        ts = np.asarray(ts, dtype=np.int64)
        n = len(ts)
        if n == 0:
            return
        cols: dict[str, Any] = {"@timestamp": ts}
        for name, value in columns.items():
            if name in _DICT_COLS:
                cols[name] = _dict(value, n)
            elif name in _NUM_COLS:
                cols[name] = _num(value, n, _NUM_COLS[name])
            elif name in ("dns.answers.data", "dns.answers.ttl"):
                cols[name] = value
            else:
                cols[name] = _strings(value, n)
        self.batches.setdefault(dataset, []).append(dataset_batch(dataset, n, cols))
        self.counts[dataset] = self.counts.get(dataset, 0) + n
        lo, hi = int(ts.min()), int(ts.max())
        self.first_us = lo if self.first_us is None else min(self.first_us, lo)
        self.last_us = hi if self.last_us is None else max(self.last_us, hi)

    @property
    def events(self) -> int:
        """Rows this activity contributed over all datasets."""
        return sum(self.counts.values())

    def uids(self, n: int) -> pa.Array:
        """Fresh Zeek-style connection uids."""
        return random_tokens(self.rng, n, 17, prefix=b"C")

    def ports(self, n: int) -> np.ndarray:
        """Ephemeral client ports."""
        return self.rng.integers(32768, 65536, size=n).astype(np.uint16)

    # ---- flows ---------------------------------------------------------------------------

    def conn(
        self, ts: np.ndarray, host: Host, *, src_ip: StrLike = None, dst_ip: StrLike,
        dst_port: Any, transport: str = "tcp", protocol: StrLike = None, state: StrLike = "SF",
        src_bytes: Any = 0, dst_bytes: Any = 0, duration_ns: Any = 0, uid: pa.Array | None = None,
        src_port: Any = None,
    ) -> pa.Array:
        """Connection rows; returns their uids for the app-layer rows that follow."""
        n = len(ts)
        uid = self.uids(n) if uid is None else uid
        sb = np.broadcast_to(np.asarray(src_bytes, dtype=np.uint64), (n,))
        db = np.broadcast_to(np.asarray(dst_bytes, dtype=np.uint64), (n,))
        self.emit("conn", ts, {
            "event.id": uid, "observer.name": host.observer, "organization.name": host.org,
            "source.ip": src_ip if src_ip is not None else host.ip,
            "source.port": self.ports(n) if src_port is None else src_port,
            "destination.ip": dst_ip, "destination.port": dst_port,
            "network.transport": transport, "network.protocol": protocol,
            "network.connection.state": state, "event.duration": duration_ns,
            "source.bytes": sb, "destination.bytes": db,
            "source.packets": sb // 1200 + (3 if transport == "tcp" else 1),
            "destination.packets": np.where(db > 0, db // 1400 + 2, 0),
        })
        return uid

    def lookup(
        self, ts: np.ndarray, host: Host, resolver: str, *, names: StrLike, qtype: StrLike = "A",
        answers: Sequence[Sequence[str] | None] | None = None, rcode: StrLike = "NOERROR",
        ttl: float = 300.0,
    ) -> None:
        """DNS query rows and the UDP conn rows that carried them (shared uid)."""
        n = len(ts)
        uid = self.uids(n)
        rtt = self.rng.integers(3_000, 40_000, size=n) * 1000
        ans = [None] * n if answers is None else list(answers)
        names_arr = _strings(names, n)
        assert names_arr is not None
        self.emit("dns", ts, {
            "event.id": uid, "observer.name": host.observer, "organization.name": host.org,
            "source.ip": host.ip, "source.port": self.ports(n), "destination.ip": resolver,
            "destination.port": 53, "network.transport": "udp", "network.protocol": "dns",
            "event.duration": rtt, "dns.id": self.rng.integers(0, 65536, size=n),
            "dns.question.name": names_arr, "dns.question.type": qtype,
            "dns.question.class": "IN", "dns.response_code": rcode,
            "dns.answers.data": pa.array(ans, type=pa.list_(pa.string())),
            "dns.answers.ttl": pa.array(
                [None if a is None else [ttl] * len(a) for a in ans],
                type=pa.list_(pa.float64())),
        })
        qlen = np.array([len(s) for s in names_arr.to_pylist()], dtype=np.uint64)
        alen = np.array([sum(len(x) for x in a) if a else 0 for a in ans], dtype=np.uint64)
        self.conn(ts, host, dst_ip=resolver, dst_port=53, transport="udp", protocol="dns",
                  src_bytes=qlen + 18, dst_bytes=qlen + 30 + alen, duration_ns=rtt, uid=uid)

    def tls(
        self, ts: np.ndarray, uid: pa.Array, host: Host, *, dst_ip: StrLike, dst_port: Any,
        sni: StrLike, ja3: str, ja3s: str, version: str = "TLSv12",
        cipher: str = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", subject: str | None = None,
        issuer: str | None = None, sha1: str | None = None,
    ) -> None:
        """TLS handshake rows for connections ``uid``."""
        n = len(ts)
        self.emit("tls", np.asarray(ts) + 15_000, {
            "event.id": uid, "observer.name": host.observer, "organization.name": host.org,
            "source.ip": host.ip, "source.port": self.ports(n), "destination.ip": dst_ip,
            "destination.port": dst_port, "network.transport": "tcp", "network.protocol": "tls",
            "tls.version": version, "tls.cipher": cipher, "tls.established": np.ones(n, bool),
            "tls.server.name": sni, "tls.client.ja3": ja3, "tls.server.ja3s": ja3s,
            "tls.server.subject": subject, "tls.server.issuer": issuer,
            "tls.server.hash.sha1": sha1,
        })

    def http(
        self, ts: np.ndarray, uid: pa.Array, host: Host, *, dst_ip: StrLike, domain: str,
        path: StrLike, user_agent: str, method: str = "GET", status: int = 200,
        resp_bytes: Any = 0, req_bytes: Any = 0, mime: str | None = None,
    ) -> None:
        """HTTP transaction rows for connections ``uid``; ``url.full`` is built from parts."""
        n = len(ts)
        paths = _strings(path, n)
        assert paths is not None
        texts = paths.to_pylist()
        full = [f"http://{domain}{p}" for p in texts]
        paths = pa.array([p.split("?", 1)[0] for p in texts], type=pa.string())
        queries = pa.array([p.split("?", 1)[1] if "?" in p else None for p in texts],
                           type=pa.string())
        self.emit("http", np.asarray(ts) + 10_000, {
            "event.id": uid, "observer.name": host.observer, "organization.name": host.org,
            "source.ip": host.ip, "source.port": self.ports(n), "destination.ip": dst_ip,
            "destination.port": 80, "network.transport": "tcp", "network.protocol": "http",
            "url.full": full, "url.domain": domain, "url.path": paths, "url.query": queries,
            "url.port": 80,
            "http.request.method": method, "http.response.status_code": status,
            "http.request.body.bytes": req_bytes, "http.response.body.bytes": resp_bytes,
            "http.response.mime_type": mime, "http.version": "1.1",
            "user_agent.original": user_agent,
        })


_DICT_COLS = frozenset({
    "observer.name", "organization.name", "network.transport", "network.protocol",
    "network.connection.state", "dns.question.type", "dns.question.class",
    "dns.response_code", "http.request.method", "http.version", "tls.version", "tls.cipher",
})
_NUM_COLS: dict[str, type] = {
    "source.port": np.uint16, "destination.port": np.uint16, "url.port": np.uint16,
    "event.duration": np.int64, "source.bytes": np.uint64, "destination.bytes": np.uint64,
    "source.packets": np.uint64, "destination.packets": np.uint64, "dns.id": np.uint16,
    "http.response.status_code": np.uint16, "http.request.body.bytes": np.uint64,
    "http.response.body.bytes": np.uint64, "file.size": np.uint64, "tls.established": np.bool_,
}
