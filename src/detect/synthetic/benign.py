"""Benign traffic, one chunk of consecutive events at a time, fully vectorised.

A chunk draws *sessions*: a browser visit over HTTPS or HTTP (optionally with a
DNS lookup first, and a file download), a DNS-only lookup, an internal service
connection, or an outbound UDP flow (NTP, QUIC). A session expands into rows of
several datasets that share what real sensors share: the DNS answer is the
address the connection then goes to, and conn/http/tls/files rows of one
connection carry the same ``event.id`` (Zeek uid). The chunk is cut at exactly
the requested number of events; the last session may lose its trailing rows,
like a log rotated mid-visit.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detect.synthetic.records import (
    CONN_STATES,
    HTTP_VERSIONS,
    PROTOCOLS,
    QTYPES,
    RCODES,
    TLS_CIPHERS,
    TLS_VERSIONS,
    TRANSPORTS,
    dataset_batch,
    dict_column,
    random_tokens,
    take,
    vocab,
)
from detect.synthetic.world import World

HTTPS, HTTP, DNS_ONLY, INTERNAL, EXT_UDP = range(5)
KIND_P = np.array([0.40, 0.08, 0.17, 0.25, 0.10])
DNS_BEFORE_CONNECT = 0.45  # share of web sessions that miss the resolver cache
FILE_SHARE = 0.3  # share of HTTP sessions that transfer a file Zeek logs

_V = {name: vocab(values) for name, values in (
    ("transport", TRANSPORTS), ("protocol", PROTOCOLS), ("state", CONN_STATES),
    ("qtype", QTYPES), ("rcode", RCODES), ("tls_version", TLS_VERSIONS),
    ("cipher", TLS_CIPHERS), ("http_version", HTTP_VERSIONS), ("qclass", ("IN",)),
)}
_V["method"] = vocab(("GET", "POST", "HEAD", "PUT", "OPTIONS"))
_TCP_STATES = np.array([CONN_STATES.index(s) for s in
                        ("SF", "S0", "RSTO", "RSTR", "SH", "S1", "REJ")])
_TCP_STATE_P = np.array([0.90, 0.03, 0.02, 0.02, 0.01, 0.01, 0.01])
_STATUS = np.array([200, 304, 301, 302, 404, 403, 500], dtype=np.uint16)
_STATUS_P = np.array([0.78, 0.08, 0.03, 0.04, 0.05, 0.01, 0.01])
SF, S0, REJ = CONN_STATES.index("SF"), CONN_STATES.index("S0"), CONN_STATES.index("REJ")
P_DNS, P_HTTP, P_TLS = PROTOCOLS.index("dns"), PROTOCOLS.index("http"), PROTOCOLS.index("tls")
P_NTP, P_QUIC = PROTOCOLS.index("ntp"), PROTOCOLS.index("quic")
TCP, UDP = TRANSPORTS.index("tcp"), TRANSPORTS.index("udp")


def _pick(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)


def _cat(rng: np.random.Generator, p: np.ndarray, n: int) -> np.ndarray:
    """Categorical draws from a short probability vector (cheaper than ``rng.choice``)."""
    return _pick(np.cumsum(p) / np.sum(p), rng.random(n))


def sorted_uniform(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` sorted U(0,1) draws via normalised exponential spacings (no sort needed)."""
    gaps = rng.standard_exponential(n + 1)
    c = np.cumsum(gaps)
    return c[:-1] / c[-1]


def ephemeral_ports(rng: np.random.Generator, n: int) -> np.ndarray:
    """Client source ports in the range modern Windows and Linux hand out."""
    return rng.integers(32768, 65536, size=n).astype(np.uint16)


def benign_chunk(
    world: World, rng: np.random.Generator, n_events: int, q_lo: float, q_hi: float
) -> dict[str, pa.RecordBatch]:
    """``n_events`` benign rows spread over rate quantiles [q_lo, q_hi), by dataset."""
    pop, dom = world.population, world.domains
    kinds_all = _cat(rng, KIND_P, n_events)
    web_all = kinds_all <= HTTP
    has_dns_all = np.where(web_all, rng.random(n_events) < DNS_BEFORE_CONNECT,
                           kinds_all == DNS_ONLY)
    has_file_all = (kinds_all == HTTP) & (rng.random(n_events) < FILE_SHARE)
    # web connections that fail (S0, REJ, ...) log no http/tls/files row
    web_state_all = _TCP_STATES[_cat(rng, _TCP_STATE_P, n_events)]
    failed_web_all = web_all & ((web_state_all == S0) | (web_state_all == REJ))
    app_ev = np.where(failed_web_all, 0, 1 + has_file_all)
    n_ev = np.where(kinds_all == DNS_ONLY, 2,
                    np.where(kinds_all >= INTERNAL, 1, 1 + 2 * has_dns_all + app_ev))
    cum = np.cumsum(n_ev)
    S = int(np.searchsorted(cum, n_events)) + 1
    kept_last = n_events - (int(cum[S - 2]) if S > 1 else 0)
    kind, has_dns, has_file = kinds_all[:S], has_dns_all[:S], has_file_all[:S]
    web_state = web_state_all[:S]
    last = np.zeros(S, dtype=bool)
    last[-1] = True

    def keep(slot: np.ndarray | int, present: np.ndarray) -> np.ndarray:
        return np.flatnonzero(present & (~last | (slot < kept_last)))

    # when, who, where to
    t = world.timeline.at(q_lo + sorted_uniform(rng, S) * (q_hi - q_lo))
    h = pop.host_alias.sample(rng, S)
    org = pop.host_org[h]
    d = dom.alias.sample(rng, S)
    label = np.minimum(_pick(dom.fqdn_cdf, rng.random(S)), dom.fqdn_count[d] - 1)
    f = dom.fqdn_start[d] + label
    use6 = pop.host_has_v6[h] & (dom.ip6_count[d] > 0) & (rng.random(S) < 0.5)
    use6 &= kind != INTERNAL
    H, n_orgs, D = pop.hosts, len(pop.org_names), dom.size
    src_ip_idx = np.where(use6, H + h, h)
    uid_dns = random_tokens(rng, S, 17, prefix=b"C")
    uid_app = random_tokens(rng, S, 17, prefix=b"C")
    rtt = rng.lognormal(np.log(8_000), 0.8, size=S).astype(np.int64)  # us

    out: dict[str, pa.RecordBatch] = {}

    # ---- DNS: question, answers, and the UDP flow that carried them
    sub = _cat(rng, np.array([0.72, 0.10, 0.06, 0.12]), S)  # normal, ptr, nx, other
    sub = np.where(kind == DNS_ONLY, sub, 0)
    off_ptr, off_nx, off_reg = world.qname_offsets
    qname_idx = np.select(
        [sub == 0, sub == 1, sub == 2],
        [f, off_ptr + rng.integers(0, H, size=S),
         off_nx + rng.integers(0, len(dom.nx_names), size=S)],
        off_reg + d,
    )
    other_types = np.array([QTYPES.index(q) for q in ("TXT", "MX", "HTTPS")])
    qtype = np.select(
        [sub == 0, sub == 1, sub == 2],
        [np.where(use6, QTYPES.index("AAAA"), QTYPES.index("A")), QTYPES.index("PTR"),
         QTYPES.index("A")],
        other_types[rng.integers(0, 3, size=S)],
    )
    rcode = np.where(sub == 2, RCODES.index("NXDOMAIN"), RCODES.index("NOERROR"))
    rcode = np.where(rng.random(S) < 0.003, RCODES.index("SERVFAIL"), rcode)
    answer_idx = np.where((sub == 0) & (rcode == 0), np.where(use6, D + d, d), 2 * D)
    rows = keep(0, has_dns)
    dns_src = take(world.host_ip, src_ip_idx[rows])
    dns_dst = take(world.resolver_ip, np.where(use6, n_orgs + org, org)[rows])
    dns_sport = ephemeral_ports(rng, S)
    common_dns = {
        "@timestamp": t[rows],
        "event.id": take(uid_dns, rows),
        "observer.name": dict_column(org[rows], pop.observer_names),
        "organization.name": dict_column(org[rows], pop.org_names),
        "source.ip": dns_src,
        "source.port": dns_sport[rows],
        "destination.ip": dns_dst,
        "destination.port": np.full(len(rows), 53, dtype=np.uint16),
        "network.transport": dict_column(np.full(len(rows), UDP), _V["transport"]),
        "network.protocol": dict_column(np.full(len(rows), P_DNS), _V["protocol"]),
        "event.duration": rtt[rows] * 1000,
    }
    qname = take(world.qname_pool, qname_idx[rows])
    answers = take(world.answers_pool, answer_idx[rows])
    dns_batch = dataset_batch("dns", len(rows), {
        **common_dns,
        "dns.id": rng.integers(0, 65536, size=S).astype(np.uint16)[rows],
        "dns.question.name": qname,
        "dns.question.type": dict_column(qtype[rows], _V["qtype"]),
        "dns.question.class": dict_column(np.zeros(len(rows)), _V["qclass"]),
        "dns.response_code": dict_column(rcode[rows], _V["rcode"]),
        "dns.answers.data": answers,
        "dns.answers.ttl": take(world.ttl_pool, answer_idx[rows]),
    })
    out["dns"] = dns_batch
    rows_dc = keep(1, has_dns)
    n_ans = pc.fill_null(pc.list_value_length(take(world.answers_pool, answer_idx[rows_dc])), 0)
    qlen = pc.utf8_length(take(world.qname_pool, qname_idx[rows_dc])).to_numpy()
    q_bytes = (18 + qlen).astype(np.uint64)
    # rows_dc is a prefix-compatible subset of rows (slot 1 > slot 0): re-take by position
    pos = np.searchsorted(rows, rows_dc)
    dns_conn = {
        k: (v[pos] if isinstance(v, np.ndarray) else v.take(pa.array(pos)))
        for k, v in common_dns.items()
    }
    no_reply = rng.random(len(rows_dc)) < 0.01
    dns_conn.update({
        "network.connection.state": dict_column(np.where(no_reply, S0, SF), _V["state"]),
        "source.bytes": q_bytes,
        "destination.bytes": np.where(
            no_reply, 0, q_bytes + 16 * n_ans.to_numpy().astype(np.uint64) + 12
        ).astype(np.uint64),
        "source.packets": np.ones(len(rows_dc), dtype=np.uint64),
        "destination.packets": np.where(no_reply, 0, 1).astype(np.uint64),
    })
    conn_parts = [dataset_batch("conn", len(rows_dc), dns_conn)]

    # ---- the application connection
    has_conn = kind != DNS_ONLY
    conn_slot = 2 * has_dns
    t_conn = t + np.where(has_dns, rtt + rng.integers(200, 5000, size=S), 0)
    svc = _pick(pop.service_cdf, rng.random(S))
    ntp = rng.random(S) < 0.6
    ip_pick = rng.random(S)
    dom_ip = np.where(
        use6,
        len(dom.ip4_pool) + dom.ip6_start[d]
        + (ip_pick * np.maximum(dom.ip6_count[d], 1)).astype(np.int64),
        dom.ip4_start[d] + (ip_pick * dom.ip4_count[d]).astype(np.int64),
    )
    # destination as (pool, index): 0 domain ips, 1 internal services, 2 ntp servers
    n_svc = len(pop.service_port)
    dst_kind = np.select([kind == INTERNAL, (kind == EXT_UDP) & ntp], [1, 2], 0)
    dst_idx = np.select(
        [dst_kind == 1, dst_kind == 2],
        [org * n_svc + svc, rng.integers(0, len(dom.ntp_ip4), size=S)], dom_ip,
    )
    dport = np.select(
        [kind == HTTPS, kind == HTTP, kind == INTERNAL, ntp],
        [443, 80, pop.service_port[svc].astype(np.int64), 123],
        443,
    ).astype(np.uint16)
    transport = np.select([kind <= HTTP, kind == INTERNAL], [TCP, pop.service_transport[svc]], UDP)
    proto = np.select(
        [kind == HTTPS, kind == HTTP, kind == INTERNAL, ntp],
        [P_TLS, P_HTTP, pop.service_protocol[svc], P_NTP], P_QUIC,
    )
    other_state = np.where(transport == TCP, _TCP_STATES[_cat(rng, _TCP_STATE_P, S)],
                           np.where(rng.random(S) < 0.03, S0, SF))
    state = np.where(kind <= HTTP, web_state, other_state)
    failed = (state == S0) | (state == REJ)
    src_bytes = rng.lognormal(np.log(700), 1.3, size=S)
    dst_bytes = rng.lognormal(np.log(6000), 2.0, size=S)
    # HTTP: bodies and file sizes drive the byte counts of the connection
    method = _cat(rng, np.array([0.80, 0.13, 0.03, 0.02, 0.02]), S)
    req_body = np.where(method == 1, rng.lognormal(np.log(2000), 1.5, size=S), 0).astype(np.uint64)
    status = _STATUS[_cat(rng, _STATUS_P, S)]
    status = np.where(has_file, 200, status).astype(np.uint16)
    file_i = dom.file_alias.sample(rng, S)
    resp_body = np.where(has_file, dom.file_size[file_i],
                         np.where(status == 200, dst_bytes, rng.integers(0, 400, size=S)))
    resp_body = resp_body.astype(np.uint64)
    is_http = kind == HTTP
    src_bytes = np.where(is_http, req_body + rng.integers(250, 900, size=S), src_bytes)
    dst_bytes = np.where(is_http, resp_body + rng.integers(150, 600, size=S), dst_bytes)
    src_bytes = np.where(dst_kind == 2, 48, src_bytes)
    dst_bytes = np.where(dst_kind == 2, 48, dst_bytes)
    src_bytes = np.where(failed, 0, src_bytes).astype(np.uint64)
    dst_bytes = np.where(failed | (state == S0), 0, dst_bytes).astype(np.uint64)
    src_pkts = (src_bytes // 1200 + np.where(transport == TCP, 3, 1)).astype(np.uint64)
    dst_pkts = np.where(state == S0, 0, dst_bytes // 1400 + np.where(transport == TCP, 2, 1))
    dur = rng.lognormal(np.log(400e6), 1.8, size=S).astype(np.int64)
    dur = np.where(failed, rng.integers(0, 3_000_000, size=S), dur)
    sport = ephemeral_ports(rng, S)

    rows = keep(conn_slot, has_conn)
    pools = [world.domain_ip, pop.service_ip, dom.ntp_ip4]
    dst_ip = pa.concat_arrays(pools)
    base = np.cumsum([0] + [len(p) for p in pools])[:-1]
    gdst = base[dst_kind] + dst_idx
    src_idx = np.where(use6, H + h, h)
    app_common = {
        "@timestamp": t_conn[rows],
        "event.id": take(uid_app, rows),
        "observer.name": dict_column(org[rows], pop.observer_names),
        "organization.name": dict_column(org[rows], pop.org_names),
        "source.ip": take(world.host_ip, src_idx[rows]),
        "source.port": sport[rows],
        "destination.ip": take(dst_ip, gdst[rows]),
        "destination.port": dport[rows],
        "network.transport": dict_column(transport[rows], _V["transport"]),
        "network.protocol": dict_column(np.where(failed, -1, proto)[rows], _V["protocol"]),
    }
    conn_parts.append(dataset_batch("conn", len(rows), {
        **app_common,
        "event.duration": dur[rows],
        "network.connection.state": dict_column(state[rows], _V["state"]),
        "source.bytes": src_bytes[rows],
        "destination.bytes": dst_bytes[rows],
        "source.packets": src_pkts[rows],
        "destination.packets": dst_pkts[rows].astype(np.uint64),
    }))
    out["conn"] = _concat(conn_parts)

    def app_rows(present: np.ndarray, slot: np.ndarray | int) -> tuple[np.ndarray, dict]:
        r = keep(slot, present)
        pos = np.searchsorted(rows, r)
        sub_common = {
            k: (v[pos] if isinstance(v, np.ndarray) else v.take(pa.array(pos)))
            for k, v in app_common.items()
        }
        return r, sub_common

    # ---- TLS on HTTPS sessions
    r, common = app_rows((kind == HTTPS) & ~failed, conn_slot + 1)
    n = len(r)
    ver = _cat(rng, np.array([0.72, 0.27, 0.01]), S)[r]
    cipher = np.where(ver == 0, rng.integers(0, 3, size=n), rng.integers(3, 6, size=n))
    est = state[r] == SF
    cert = np.where((ver > 0) & est, d[r], -1)
    sni = np.where(rng.random(n) < 0.02, -1, f[r])
    common["@timestamp"] = common["@timestamp"] + rng.integers(2_000, 40_000, size=n)
    out["tls"] = dataset_batch("tls", n, {
        **common,
        "tls.version": dict_column(ver, _V["tls_version"]),
        "tls.cipher": dict_column(cipher, _V["cipher"]),
        "tls.established": est,
        "tls.server.name": take(dom.fqdn, sni),
        "tls.client.ja3": take(pop.client_ja3, pop.host_ja3[h[r]]),
        "tls.server.ja3s": take(dom.ja3s, d[r]),
        "tls.server.subject": take(dom.cert_subject, cert),
        "tls.server.issuer": take(dom.cert_issuer, cert),
        "tls.server.hash.sha1": take(dom.cert_sha1, cert),
        "tls.server.hash.sha256": take(dom.cert_sha256, cert),
    })

    # ---- HTTP on HTTP sessions, and the files they carried
    r, common = app_rows(is_http & ~failed, conn_slot + 1)
    n = len(r)
    path_i = rng.integers(0, len(world.path_pool), size=S)[r]
    path = pc.if_else(pa.array(has_file[r]), take(dom.file_path, file_i[r]),
                      take(world.path_pool, path_i))
    q_i = np.where(rng.random(n) < 0.4, rng.integers(0, len(world.query_pool), size=n), -1)
    query = take(world.query_pool, np.where(has_file[r], -1, q_i))
    host = take(dom.fqdn, f[r])
    qpart = pc.binary_join_element_wise("?", query, "")
    full = pc.binary_join_element_wise(
        "http://", host, path, qpart, "", null_handling="replace", null_replacement=""
    )
    mime_path = take(world.path_mime, path_i).cast(pa.string())
    mime_file = take(dom.file_mime, file_i[r]).cast(pa.string())
    mime = pc.if_else(pa.array(has_file[r]), mime_file, mime_path)
    mime = pc.if_else(pa.array(status[r] == 200), mime, pa.nulls(n, pa.string()))
    referrer = pc.if_else(
        pa.array(rng.random(n) < 0.3),
        pc.binary_join_element_wise("http://", host, "/", ""), pa.nulls(n, pa.string()),
    )
    common["@timestamp"] = common["@timestamp"] + rng.integers(1_000, 30_000, size=n)
    http_ts = common["@timestamp"]
    out["http"] = dataset_batch("http", n, {
        **common,
        "url.full": full,
        "url.domain": host,
        "url.path": path,
        "url.query": query,
        "url.port": np.full(n, 80, dtype=np.uint16),
        "http.request.method": dict_column(method[r], _V["method"]),
        "http.request.referrer": referrer,
        "http.request.body.bytes": req_body[r],
        "http.response.status_code": status[r],
        "http.response.body.bytes": resp_body[r],
        "http.response.mime_type": mime,
        "http.version": dict_column(
            np.where(rng.random(n) < 0.95, 0, 1), _V["http_version"]),
        "user_agent.original": take(pop.user_agents, pop.host_ua[h[r]]).cast(pa.string()),
    })

    fr = keep(conn_slot + 2, has_file & ~failed)
    fpos = np.searchsorted(r, fr)
    fi = file_i[fr]
    out["files"] = dataset_batch("files", len(fr), {
        "@timestamp": http_ts[fpos] + rng.integers(5_000, 200_000, size=len(fr)),
        "event.id": take(uid_app, fr),
        "observer.name": dict_column(org[fr], pop.observer_names),
        "organization.name": dict_column(org[fr], pop.org_names),
        # Zeek files.log: the transmitting host (server) is the source
        "source.ip": take(dst_ip, gdst[fr]),
        "destination.ip": take(world.host_ip, src_idx[fr]),
        "network.protocol": dict_column(np.full(len(fr), P_HTTP), _V["protocol"]),
        "file.name": take(dom.file_name, fi),
        "file.mime_type": take(dom.file_mime, fi).cast(pa.string()),
        "file.size": dom.file_size[fi],
        "file.hash.md5": take(dom.file_md5, fi),
        "file.hash.sha1": take(dom.file_sha1, fi),
        "file.hash.sha256": take(dom.file_sha256, fi),
    })
    return out


def _concat(parts: list[pa.RecordBatch]) -> pa.RecordBatch:
    return pa.Table.from_batches(parts).combine_chunks().to_batches()[0]
