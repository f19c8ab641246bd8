"""Planted, labelled attacks: what the detectors are supposed to find.

Sizes grow with ``log10(events / 1000)`` so every kind is present (and above
the published detection thresholds where that is possible) at 1 000 events,
yet all planted rows together stay well under 1 % at 10 M events and above:

============== ================================================ ===================
kind           shape                                            thresholds it meets
============== ================================================ ===================
ioc_contact    host contacts an IP / domain / URL / file hash /  exact match in
               JA3 listed in ``indicators.csv``                  ``indicators.csv``
beacon         fixed period (60-3600 s) with jitter, constant    RITA: >= 4 unique ts,
               small bytes, over the whole span, TLS/HTTP/raw    >= 11 hours seen
dns_tunnel     TXT/NULL/CNAME queries, long base32 labels under  Maltrail: label > 24,
               one registered domain, bursts up to 20 qps        H > 3.5; RITA >= 100
vertical_scan  one src -> one dst, 20-1000 ports, REJ/S0          Maltrail: > 10 ports
                                                                 in 30 s
horizontal_scan one src -> 34-1024 dsts on one port, S0/REJ       Maltrail: > 32 dsts
                                                                 in 30 s
exfiltration   4-40 TLS uploads of 50-500 MB in under an hour    far above the host's
                                                                 ~1 KB median upload
============== ================================================ ===================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from detect.synthetic.domains import public_ipv4
from detect.synthetic.flows import Host, Recorder
from detect.synthetic.population import SERVICES, org_ip4
from detect.synthetic.records import DATASET_SCHEMAS, DATASETS, hex_strings, ipv4_strings
from detect.synthetic.timeline import US_PER_S
from detect.synthetic.world import World

ATTACK_TECHNIQUES: dict[str, list[str]] = {
    "ioc_contact": ["T1071"],
    "beacon": ["T1071.001", "T1573"],
    "dns_tunnel": ["T1071.004", "T1048"],
    "vertical_scan": ["T1046"],
    "horizontal_scan": ["T1046", "T1021"],
    "exfiltration": ["T1041", "T1567"],
}
BAD_TLDS: tuple[str, ...] = ("top", "xyz", "ru", "online", "site", "biz", "info", "net")
BAD_WORDS: tuple[str, ...] = (
    "secure", "update", "cdn", "login", "verify", "account", "sync", "cloud", "office", "mail",
    "auth", "portal", "static", "track", "api", "files", "share", "drive", "invoice", "docs",
)
MALWARE_UA = "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.1; Trident/4.0)"
_BASE32 = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz234567", dtype=np.uint8)


def iso(ts_us: int) -> str:
    """ISO 8601 UTC with microseconds, as used throughout the ground truth."""
    return datetime.fromtimestamp(ts_us / US_PER_S, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Activity:
    """One planted activity as written to ``ground_truth.json``."""

    id: str
    kind: str
    host: Host
    destination_ips: list[str]
    destination_domain: str | None
    destination_ports: list[int]
    parameters: dict[str, Any]
    indicators: list[dict[str, str]] = field(default_factory=list)
    recorder: Recorder | None = None

    def to_json(self) -> dict[str, Any]:
        """The ground-truth record."""
        rec = self.recorder
        assert rec is not None
        assert rec.first_us is not None
        assert rec.last_us is not None
        return {
            "id": self.id,
            "kind": self.kind,
            "organization": self.host.org,
            "observer": self.host.observer,
            "source_ip": self.host.ip,
            "destination_ips": self.destination_ips,
            "destination_domain": self.destination_domain,
            "destination_ports": self.destination_ports,
            "start": iso(rec.first_us),
            "end": iso(rec.last_us),
            "parameters": self.parameters,
            "indicators": self.indicators,
            "attack": ATTACK_TECHNIQUES[self.kind],
            "events": rec.events,
            "events_by_dataset": {ds: rec.counts.get(ds, 0) for ds in DATASETS},
        }


@dataclass
class Planted:
    """Every planted row (per dataset, time-sorted) with its labels and indicators."""

    activities: list[Activity]
    indicators: list[dict[str, Any]]
    decoys: list[dict[str, str]]
    rows: dict[str, pa.Table]
    labels: pa.Table  # dataset, event_id, timestamp, activity_id

    @property
    def events(self) -> int:
        """Planted rows over all datasets."""
        return sum(t.num_rows for t in self.rows.values())


@dataclass(frozen=True)
class Scale:
    """How big each kind of attack is for a run of ``events`` events."""

    events: int

    @property
    def level(self) -> float:
        """0 at 1 000 events, 5 at 100 M."""
        return max(0.0, math.log10(max(self.events, 1) / 1000))

    def clip(self, share: float, lo: int, hi: int) -> int:
        """``share`` of the events, but within [lo, hi]."""
        return int(np.clip(share * self.events, lo, hi))


class _Names:
    """Fresh public addresses and domains that benign traffic never uses."""

    def __init__(self, world: World, rng: np.random.Generator) -> None:
        self.rng = rng
        self.avoid = np.sort(world.domains.all_ip4())  # sorted: public_ipv4 bisects it
        self.taken = set(world.domains.registered.to_pylist())

    def ip(self) -> str:
        a = public_ipv4(self.rng, 1, avoid=self.avoid)
        self.avoid = np.insert(self.avoid, np.searchsorted(self.avoid, a), a)
        return str(ipv4_strings(a)[0])

    def domain(self, *, tld: str | None = None) -> str:
        while True:
            w1, w2 = self.rng.choice(len(BAD_WORDS), size=2, replace=False)
            t = tld or BAD_TLDS[int(self.rng.integers(0, len(BAD_TLDS)))]
            name = f"{BAD_WORDS[w1]}-{BAD_WORDS[w2]}{int(self.rng.integers(1, 99))}.{t}"
            if name not in self.taken:
                self.taken.add(name)
                return name

    def hexes(self, nbytes: int) -> str:
        return str(hex_strings(self.rng, 1, nbytes)[0])


class _Planter:
    def __init__(self, world: World, rng: np.random.Generator, events: int) -> None:
        self.world = world
        self.rng = rng
        self.scale = Scale(events)
        self.names = _Names(world, rng)
        self.activities: list[Activity] = []
        self.indicators: list[dict[str, Any]] = []
        pop = world.population
        # every attacker is a different host, spread over the organisations
        self.host_order = rng.permutation(pop.hosts)
        self.next_host = 0
        tl = world.timeline
        self.t0, self.t1 = tl.start_us, tl.end_us
        self.span = tl.span_us

    # ---- helpers ----------------------------------------------------------------------------

    def host(self, idx: int | None = None) -> tuple[Host, int, str]:
        pop = self.world.population
        if idx is None:
            idx = int(self.host_order[self.next_host % pop.hosts])
            self.next_host += 1
        org = int(pop.host_org[idx])
        resolver = str(pop.resolver_ip4[org])
        h = Host(str(pop.host_ip4[idx]), str(pop.org_names[org]), str(pop.observer_names[org]))
        return h, org, resolver

    def window(self, duration_us: int) -> int:
        """A start time such that [start, start + duration) fits in the span, in daytime."""
        duration_us = min(duration_us, self.span // 2)
        for _ in range(50):
            s = int(self.rng.integers(self.t0, self.t1 - duration_us))
            if 8 <= self.world.timeline.local_hour(np.array([s]))[0] <= 17:
                return s
        return s

    def new(self, kind: str, host: Host, **kw: Any) -> Activity:
        aid = f"gt-{len(self.activities) + 1:04d}-{kind}"
        act = Activity(id=aid, kind=kind, host=host, **kw)
        act.recorder = Recorder(aid, self.rng)
        self.activities.append(act)
        return act

    def indicator(self, act: Activity, typ: str, value: str, tags: str, *,
                  severity: str = "high") -> None:
        act.indicators.append({"type": typ, "value": value})
        self.indicators.append({
            "type": typ, "value": value, "source": "detect-generate",
            "confidence": int(self.rng.integers(70, 100)), "severity": severity,
            "tags": f"planted;{act.id};{tags}",
        })

    def clip_ts(self, ts: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(ts, dtype=np.int64), self.t0, self.t1 - 1)

    # ---- ioc contacts -------------------------------------------------------------------------

    def ioc_contacts(self) -> None:
        per_type = 1 + int(self.scale.level // 2)
        pop, rng = self.world.population, self.rng
        for typ in ("ip", "domain", "url", "sha256", "ja3"):
            for _ in range(per_type):
                h, _org, resolver = self.host()
                contacts = int(rng.integers(1, 4))
                start = self.window(2 * 3600 * US_PER_S)
                ts = self.clip_ts(np.sort(start + rng.integers(0, 2 * 3600 * US_PER_S,
                                                                size=contacts)))
                ip = self.names.ip()
                dom = self.names.domain()
                host_ja3 = str(pop.client_ja3[int(pop.host_ja3[0])])
                if typ == "ip":
                    port = int(rng.choice([443, 8443, 4444, 8080]))
                    act = self.new("ioc_contact", h, destination_ips=[ip], destination_domain=None,
                                   destination_ports=[port], parameters={"indicator_type": "ip",
                                                                         "contacts": contacts})
                    act.recorder.conn(ts, h, dst_ip=ip, dst_port=port, state="SF",
                                      src_bytes=rng.integers(200, 2000, contacts),
                                      dst_bytes=rng.integers(200, 9000, contacts),
                                      duration_ns=rng.integers(50, 3000, contacts) * 10**6)
                    self.indicator(act, "ip", ip, "c2")
                    continue
                act = self.new("ioc_contact", h, destination_ips=[ip], destination_domain=dom,
                               destination_ports=[443 if typ in ("domain", "ja3") else 80],
                               parameters={"indicator_type": typ, "contacts": contacts})
                rec = act.recorder
                assert rec is not None
                rec.lookup(ts, h, resolver, names=dom, answers=[[ip]] * contacts)
                tc = ts + 30_000
                if typ in ("domain", "ja3"):
                    uid = rec.conn(tc, h, dst_ip=ip, dst_port=443, protocol="tls",
                                   src_bytes=rng.integers(500, 3000, contacts),
                                   dst_bytes=rng.integers(2000, 60000, contacts),
                                   duration_ns=rng.integers(100, 5000, contacts) * 10**6)
                    ja3 = self.names.hexes(16) if typ == "ja3" else host_ja3
                    rec.tls(tc, uid, h, dst_ip=ip, dst_port=443, sni=dom, ja3=ja3,
                            ja3s=self.names.hexes(16), subject=f"CN={dom}",
                            issuer="CN=R11,O=Let's Encrypt,C=US", sha1=self.names.hexes(20))
                    if typ == "domain":
                        self.indicator(act, "domain", dom, "c2;phishing")
                    else:
                        self.indicator(act, "ja3", ja3, "malware-tls-client", severity="medium")
                    continue
                fname = f"invoice_{int(rng.integers(1000, 9999))}.exe"
                path = f"/wp-content/uploads/{fname}" if typ == "sha256" else "/gate.php?id=" + \
                    self.names.hexes(4)
                size = int(rng.integers(150_000, 900_000))
                uid = rec.conn(tc, h, dst_ip=ip, dst_port=80, protocol="http",
                               src_bytes=rng.integers(300, 800, contacts), dst_bytes=size + 400,
                               duration_ns=rng.integers(200, 4000, contacts) * 10**6)
                ua = str(pop.user_agents[int(pop.host_ua[0])])
                rec.http(tc, uid, h, dst_ip=ip, domain=dom, path=path, user_agent=ua,
                         resp_bytes=size, mime="application/x-dosexec")
                if typ == "url":
                    self.indicator(act, "url", f"http://{dom}{path}", "malware-download")
                    continue
                sha256 = self.names.hexes(32)
                rec.emit("files", tc + 120_000, {
                    "event.id": uid, "observer.name": h.observer, "organization.name": h.org,
                    "source.ip": ip, "destination.ip": h.ip, "network.protocol": "http",
                    "file.name": fname, "file.mime_type": "application/x-dosexec",
                    "file.size": size, "file.hash.md5": self.names.hexes(16),
                    "file.hash.sha1": self.names.hexes(20), "file.hash.sha256": sha256,
                })
                self.indicator(act, "sha256", sha256, "malware;loader", severity="critical")

    # ---- beacons --------------------------------------------------------------------------------

    def beacons(self) -> None:
        rng = self.rng
        n = 1 + int(self.scale.level)
        span_s = self.span / US_PER_S
        periods = np.array([60, 120, 300, 600, 900, 1800, 3600])
        max_checkins = max(24.0, min(20000.0, 0.03 * self.scale.events / n))
        for i in range(n):
            style = ("https", "http", "raw")[i % 3]
            ok = periods[periods >= span_s / max_checkins]
            period = int(rng.choice(ok)) if len(ok) else math.ceil(span_s / max_checkins)
            jitter = float((0.1, 0.0, 0.2, 0.05, 0.3)[i % 5])
            h, _org, resolver = self.host()
            ip = self.names.ip()
            dom = None if style == "raw" else self.names.domain()
            port = {"https": 443, "http": 80, "raw": int(rng.choice([8443, 4444, 2222]))}[style]
            sb = int(rng.integers(180, 900))
            db = int(rng.integers(120, 600))
            first = self.t0 + int(rng.integers(0, period * US_PER_S))
            k = np.arange(int((self.t1 - first) // (period * US_PER_S)) + 1)
            ts = first + k * period * US_PER_S
            ts = ts + (rng.uniform(-jitter, jitter, len(k)) * period * US_PER_S).astype(np.int64)
            ts = np.sort(ts[(ts >= self.t0) & (ts < self.t1)])
            m = len(ts)
            act = self.new("beacon", h, destination_ips=[ip], destination_domain=dom,
                           destination_ports=[port], parameters={
                               "period_s": period, "jitter": jitter, "style": style,
                               "checkins": m, "src_bytes_mean": sb, "dst_bytes_mean": db,
                               "bytes_spread": 16})
            rec = act.recorder
            assert rec is not None
            if dom is not None:
                hours = (ts - self.t0) // (3600 * US_PER_S)
                first_in_hour = np.flatnonzero(np.diff(np.concatenate([[-1], hours])) != 0)
                lk = ts[first_in_hour] - 25_000
                rec.lookup(self.clip_ts(lk), h, resolver, names=dom,
                           answers=[[ip]] * len(lk), ttl=3600.0)
            uid = rec.conn(ts, h, dst_ip=ip, dst_port=port,
                           protocol={"https": "tls", "http": "http", "raw": None}[style],
                           src_bytes=sb + rng.integers(-8, 9, m),
                           dst_bytes=db + rng.integers(-8, 9, m),
                           duration_ns=rng.integers(80, 400, m) * 10**6)
            if style == "https":
                rec.tls(ts, uid, h, dst_ip=ip, dst_port=443, sni=dom, ja3=self.names.hexes(16),
                        ja3s=self.names.hexes(16))
            elif style == "http":
                rec.http(ts, uid, h, dst_ip=ip, domain=str(dom),
                         path=f"/api/{self.names.hexes(4)}/status", user_agent=MALWARE_UA,
                         method="POST", req_bytes=max(sb - 300, 16), resp_bytes=max(db - 200, 0),
                         mime="application/octet-stream")

    # ---- dns tunnel -----------------------------------------------------------------------------

    def dns_tunnels(self) -> None:
        rng = self.rng
        lvl = self.scale.level
        n = 1 + int(lvl >= 3) + int(lvl >= 5)
        for i in range(n):
            q = self.scale.clip(0.01, 40, 20000)
            rate = 20.0 if i == 0 else 2.0
            h, _org, resolver = self.host()
            dom = self.names.domain(tld=("com", "net", "de")[i % 3])
            start = self.window(int(q / rate * US_PER_S))
            gaps = rng.exponential(1.0 / rate, q)
            ts = self.clip_ts(start + (np.cumsum(gaps) * US_PER_S).astype(np.int64))
            # base32 payload: a 25-63 character label (Maltrail flags > 24), sometimes a second
            l1 = rng.integers(25, 64, size=q)
            l2 = np.where(rng.random(q) < 0.5, rng.integers(20, 50, size=q), 0)
            chars = _BASE32[rng.integers(0, 32, size=int(l1.sum() + l2.sum()))]
            text = chars.tobytes().decode()
            names, pos = [], 0
            for a, b in zip(l1.tolist(), l2.tolist(), strict=True):
                parts = [text[pos:pos + a]]
                pos += a
                if b:
                    parts.append(text[pos:pos + b])
                    pos += b
                names.append(".".join([*parts, dom]))
            qtype = np.array(["TXT", "NULL", "CNAME"])[
                np.searchsorted([0.8, 0.9], rng.random(q), side="right")]
            span = max(len(text) - 40, 1)  # slice 40 characters, never a copy of the rest
            answers = [[text[p % span:p % span + 40]] if t == "TXT" else None
                       for p, t in zip(rng.integers(0, len(text), q).tolist(), qtype.tolist(),
                                       strict=True)]
            act = self.new("dns_tunnel", h, destination_ips=[resolver], destination_domain=dom,
                           destination_ports=[53], parameters={
                               "queries": q, "rate_qps": rate, "qtypes": ["TXT", "NULL", "CNAME"],
                               "unique_subdomains": len(set(names))})
            assert act.recorder is not None
            act.recorder.lookup(ts, h, resolver, names=names, qtype=list(qtype), answers=answers,
                                ttl=0.0)

    # ---- scans ----------------------------------------------------------------------------------

    def scans(self) -> None:
        rng = self.rng
        n = 1 + int(self.scale.level >= 4)
        pop = self.world.population
        for i in range(n):
            # vertical: one source, one target, many ports
            ports_n = self.scale.clip(0.001, 20, 1000)
            h, org, _ = self.host()
            if i == 1:  # from the internet at the organisation's web server
                h = Host(self.names.ip(), h.org, h.observer)
            target_octet = SERVICES[5][0] if i == 1 else SERVICES[8][0]
            dst = str(ipv4_strings(np.array([org_ip4(org + 1, 0, target_octet)]))[0])
            open_ports = {s[1] for s in SERVICES if s[0] == target_octet}
            candidates = np.unique(np.concatenate([
                np.arange(1, 1025), [1433, 1521, 2049, 3306, 3389, 5432, 5900, 6379, 8080, 8443,
                                     9200, 27017]]))
            ports = np.sort(rng.choice(candidates, size=min(ports_n, len(candidates)),
                                       replace=False))
            ports = rng.permutation(ports)
            m = len(ports)
            start = self.window(int(m * 0.02 * US_PER_S) + US_PER_S)
            ts = self.clip_ts(start + np.sort(rng.integers(0, m * 20_000 + 1, size=m)))
            is_open = np.isin(ports, list(open_ports))
            state = np.where(is_open, "SF", np.where(rng.random(m) < 0.7, "REJ", "S0"))
            act = self.new("vertical_scan", h, destination_ips=[dst], destination_domain=None,
                           destination_ports=sorted(int(p) for p in ports),
                           parameters={"ports": m, "rate_pps": 50, "open_ports": sorted(
                               int(p) for p in ports[is_open])})
            assert act.recorder is not None
            act.recorder.conn(ts, h, dst_ip=dst, dst_port=ports, state=list(state),
                              src_bytes=np.where(is_open, 0, 0), dst_bytes=0,
                              duration_ns=np.where(is_open, 2_000_000, 0))

            # horizontal: one source, many targets, one port
            targets = self.scale.clip(0.0005, 40, 1024)
            h, org, _ = self.host()
            port = int((445, 3389, 22, 6379)[i % 4])
            vlan = int(rng.integers(1, 200 - targets // 254 - 1))
            offs = np.arange(targets)
            third = vlan + offs // 254
            fourth = 1 + offs % 254
            addrs = np.array([org_ip4(org + 1, 0, 0)], dtype=np.int64) + (third << 8) + fourth
            dsts = ipv4_strings(addrs.astype(np.uint32))
            live = np.isin(addrs.astype(np.uint32), pop.host_ip4_int)
            st = np.where(live & (rng.random(targets) < 0.4), "REJ",
                          np.where(rng.random(targets) < 0.05, "SF", "S0"))
            start = self.window(int(targets / 20 * US_PER_S) + US_PER_S)
            ts = self.clip_ts(start + np.sort(rng.integers(0, targets * 50_000 + 1, size=targets)))
            act = self.new("horizontal_scan", h, destination_ips=dsts.to_pylist(),
                           destination_domain=None, destination_ports=[port],
                           parameters={"targets": targets, "port": port, "rate_hosts_per_s": 20})
            assert act.recorder is not None
            act.recorder.conn(ts, h, dst_ip=dsts, dst_port=port, state=list(st),
                              duration_ns=np.where(st == "SF", 1_000_000, 0))

    # ---- exfiltration ---------------------------------------------------------------------------

    def exfiltration(self) -> None:
        rng = self.rng
        n = 1 + int(self.scale.level >= 4)
        pop = self.world.population
        for _ in range(n):
            x = self.scale.clip(0.00005, 4, 40)
            h, _org, resolver = self.host()
            dom = self.names.domain(tld="com")
            ip = self.names.ip()
            window_s = int(rng.integers(15, 60)) * 60
            start = self.window(window_s * US_PER_S)
            ts = self.clip_ts(start + np.sort(rng.integers(0, window_s * US_PER_S, size=x)))
            up = rng.integers(50, 500, size=x) * 1_000_000
            act = self.new("exfiltration", h, destination_ips=[ip], destination_domain=dom,
                           destination_ports=[443], parameters={
                               "sessions": x, "window_s": window_s,
                               "total_src_bytes": int(up.sum()),
                               "src_bytes_per_session": [int(b) for b in up]})
            rec = act.recorder
            assert rec is not None
            rec.lookup(self.clip_ts(ts[:1] - 40_000), h, resolver, names=dom, answers=[[ip]])
            uid = rec.conn(ts, h, dst_ip=ip, dst_port=443, protocol="tls", src_bytes=up,
                           dst_bytes=rng.integers(4000, 40000, x),
                           duration_ns=(up / 20e6 * 1e9).astype(np.int64))
            ja3 = str(pop.client_ja3[int(pop.host_ja3[0])])
            rec.tls(ts, uid, h, dst_ip=ip, dst_port=443, sni=dom, ja3=ja3,
                    ja3s=self.names.hexes(16), version="TLSv13", cipher="TLS_AES_256_GCM_SHA384")

    # ---- result ---------------------------------------------------------------------------------

    def decoys(self) -> list[dict[str, str]]:
        out = []
        for typ in ("ip", "domain", "url", "sha256", "ja3"):
            for _ in range(2):
                value = {
                    "ip": self.names.ip, "domain": self.names.domain,
                    "url": lambda: f"http://{self.names.domain()}/admin/login.php",
                    "sha256": lambda: self.names.hexes(32), "ja3": lambda: self.names.hexes(16),
                }[typ]()
                out.append({"type": typ, "value": value})
                self.indicators.append({
                    "type": typ, "value": value, "source": "detect-generate",
                    "confidence": 50, "severity": "low", "tags": "decoy;never-contacted",
                })
        return out


def plant_attacks(world: World, rng: np.random.Generator, *, events: int) -> Planted:
    """Plan and build every planted activity for a run of ``events`` events."""
    p = _Planter(world, rng, events)
    p.ioc_contacts()
    p.beacons()
    p.dns_tunnels()
    p.scans()
    p.exfiltration()
    decoys = p.decoys()
    rows: dict[str, pa.Table] = {}
    label_parts: list[pa.Table] = []
    for ds in DATASETS:
        batches, ids = [], []
        for act in p.activities:
            assert act.recorder is not None
            for b in act.recorder.batches.get(ds, []):
                batches.append(b)
                ids.append((act.id, b.num_rows))
        table = pa.Table.from_batches(batches, schema=DATASET_SCHEMAS[ds]).combine_chunks()
        table = table.unify_dictionaries() if table.num_rows else table
        order = np.argsort(table.column("@timestamp").cast(pa.int64()).to_numpy(), kind="stable")
        table = table.take(pa.array(order))
        rows[ds] = table
        act_ids = np.repeat(np.array([a for a, _ in ids], dtype=object),
                            [c for _, c in ids]).astype(str) if ids else np.array([], dtype=str)
        label_parts.append(pa.table({
            "dataset": pa.array([ds] * table.num_rows, type=pa.string()),
            "event_id": table.column("event.id"),
            "timestamp": table.column("@timestamp"),
            "activity_id": pa.array(act_ids[order] if len(act_ids) else [], type=pa.string()),
        }))
    labels = pa.concat_tables(label_parts)
    return Planted(p.activities, p.indicators, decoys, rows, labels)


def check_budget(planted: Planted, events: int) -> None:
    """Planted rows must leave room for benign traffic (at least half the events)."""
    from detect.errors import ConfigError

    if planted.events > events // 2:
        msg = (f"--events {events} is too small for the planted attacks "
               f"({planted.events} events); use at least 1000 events")
        raise ConfigError(msg)

