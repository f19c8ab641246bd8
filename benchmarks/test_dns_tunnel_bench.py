"""DNS tunnel detector (select + run) beside the same aggregations in DuckDB SQL and polars.

Run ``python -m pytest benchmarks/test_dns_tunnel_bench.py -q -s -p no:randomly`` for
numbers (``DETECT_BENCH_DNS_ROWS`` rows, default 2,000,000). One thread each: DuckDB
``SET threads = 1``; polars' pool is sized from ``POLARS_MAX_THREADS`` when polars is
first imported, so it is set here before the import (the printed pool size says
whether that worked: another suite may have imported polars first in the session).

Ours is the whole detector: ``select`` (dataset filter, qtype/rcode flags, every
per-name feature of ``detect.kernels.dns_features``: entropies, runs, labels, the
normalised name) plus ``run(..., final=True)`` (exact codes, every window's
aggregates for the four rules, findings). The competitors compute only two of those
aggregations, the ones the issue names: distinct subdomains per registered domain
per hour, and the Shannon entropy of each name's dot-stripped subdomain part
(DuckDB ``list_entropy(string_split(...))``, polars ``list.eval(unique_counts().entropy)``).
The distinct counts >= 100 of DuckDB are checked against our tunnel findings.

Data (seeded, built with numpy/pyarrow): 5 000 registered domains (Zipf-like), 20
ordinary sub-labels, 2 000 sources, one day of sorted timestamps, 3 % NXDOMAIN, 4 %
TXT, and 1 % of queries tunnelling under 3 domains with random 32-character base32
labels. Registered domains are given, as the enrich step would have filled them.

Measured (2M rows, 2 shared and busy cores, so +-30 %): ours 1.25 s (select 0.43 s,
of which the feature kernel ~0.29 s; run ~0.8 s, of which exact interning of names
and registered domains ~0.3 s and 952 findings' evidence ~0.15 s), DuckDB 1.65 s
(x1.3; distinct 0.37 s + ``list_entropy`` 1.28 s), polars 11.0 s (x8.8). The issue's
5x over DuckDB is *not* met: DuckDB computes two of our aggregates, in vectorised C++.
Cold compile 2.9 s, warm cache 0.4 s (``test_compile_time_apart``).
"""

from __future__ import annotations

import json
import os
import time

os.environ.setdefault("POLARS_MAX_THREADS", "1")  # before polars builds its pool

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from _timing import best, compile_cold_and_warm
from detect import arrow_buffers as ab
from detect.anomaly.dns_tunnel import RULE_TUNNEL, DnsTunnelDetector

pytestmark = pytest.mark.benchmark

T0 = 1_709_510_400 * 1_000_000
HOUR = 3_600_000_000
_SUBS = ["www", "mail", "api", "cdn", "static", "login", "m", "img", "news", "shop",
         "a.b", "docs", "update", "s3", "vpn", "auth", "app", "ftp", "smtp", "x1"]  # fmt: skip
_BASE32 = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz234567", dtype=np.uint8)


@pytest.fixture(scope="module")
def dns_rows() -> int:
    return int(os.environ.get("DETECT_BENCH_DNS_ROWS", "2000000"))


def make_batch(n: int, seed: int = 3) -> pa.RecordBatch:
    rng = np.random.default_rng(seed)
    n_dom = 5000
    doms = pa.array([f"dom{i}.{('com', 'net', 'co.uk', 'de')[i % 4]}" for i in range(n_dom)])
    dom_idx = np.minimum(rng.zipf(1.3, n) - 1, n_dom - 1)
    rd = doms.take(pa.array(dom_idx))
    sub = pa.array(_SUBS).take(pa.array(rng.integers(0, len(_SUBS), n)))
    bare = rng.random(n) < 0.2
    name = pc.if_else(pa.array(bare), rd, pc.binary_join_element_wise(sub, rd, "."))
    tunnel = np.flatnonzero(rng.random(n) < 0.01)
    k = len(tunnel)
    labels = ab.string_array(
        np.arange(k + 1, dtype=np.int32) * 32, _BASE32[rng.integers(0, 32, 32 * k)]
    )
    t_rd = pa.array(["tun0.com", "tun1.net", "tun2.de"]).take(pa.array(rng.integers(0, 3, k)))
    mask = np.zeros(n, dtype=np.bool_)
    mask[tunnel] = True
    full_t = pc.binary_join_element_wise(labels, t_rd, ".")
    pos = np.cumsum(mask) - 1
    name = pc.if_else(pa.array(mask), full_t.take(pa.array(np.maximum(pos, 0))), name)
    rd = pc.if_else(pa.array(mask), t_rd.take(pa.array(np.maximum(pos, 0))), rd)
    qtype = np.where(mask, 1, np.where(rng.random(n) < 0.04, 1, 0))
    rcode = (rng.random(n) < 0.03).astype(np.int32)
    ts = T0 + np.sort(rng.integers(0, 24 * HOUR, n))
    src = pa.array([f"10.{i // 256}.{i % 256}.9" for i in range(2000)])
    return pa.RecordBatch.from_pydict(
        {
            "@timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "event.dataset": pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(n, np.int32)), pa.array(["dns"])
            ),
            "source.ip": src.take(pa.array(rng.integers(0, 2000, n))),
            "dns.question.name": name,
            "dns.question.registered_domain": rd,
            "dns.question.type": pa.DictionaryArray.from_arrays(
                pa.array(qtype.astype(np.int32)), pa.array(["A", "TXT"])
            ),
            "dns.response_code": pa.DictionaryArray.from_arrays(
                pa.array(rcode), pa.array(["NOERROR", "NXDOMAIN"])
            ),
        }
    )


DUCK_DISTINCT = """
WITH t AS (
  SELECT epoch_us("@timestamp") // 3600000000 AS w, rd,
         regexp_replace(lower(name), '\\.$', '') AS n
  FROM ev WHERE rd IS NOT NULL)
SELECT w, rd, count(DISTINCT n) FILTER (WHERE n <> rd) AS subs FROM t GROUP BY ALL
"""
DUCK_ENTROPY = """
WITH t AS (SELECT regexp_replace(lower(name), '\\.$', '') AS n, rd FROM ev)
SELECT list_entropy(string_split(replace(
         CASE WHEN rd IS NOT NULL AND length(n) > length(rd) THEN n[1:length(n) - length(rd) - 1]
              ELSE '' END, '.', ''), '')) AS h
FROM t
"""


def polars_both(df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    n = pl.col("name").str.to_lowercase().str.strip_suffix(".")
    t = df.select(
        w=pl.col("ts") // HOUR,
        rd=pl.col("rd"),
        n=n,
    ).with_columns(
        sub=pl.when(pl.col("rd").is_not_null() & (pl.col("n") != pl.col("rd")))
        .then(pl.col("n").str.head(pl.col("n").str.len_chars() - pl.col("rd").str.len_chars() - 1))
        .otherwise(pl.lit(""))
    )
    distinct = (
        t.filter(pl.col("rd").is_not_null() & (pl.col("sub") != ""))
        .group_by("w", "rd")
        .agg(subs=pl.col("n").n_unique())
    )
    ent = t.select(
        h=pl.col("sub")
        .str.replace_all(".", "", literal=True)
        .str.split("")
        .list.eval(pl.element().unique_counts().entropy(base=2))
        .list.first()
    )
    return distinct, ent


def test_dns_tunnel_vs_duckdb_and_polars(benchmark, con, dns_rows: int) -> None:
    batch = make_batch(dns_rows)
    det = DnsTunnelDetector()
    small = batch.slice(0, 2000)
    det.run(det.select(small), None, final=True)  # JIT warm-up

    def ours() -> object:
        return det.run(det.select(batch), None, final=True)

    t0 = time.perf_counter()
    sel = det.select(batch)
    t_select = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = det.run(sel, None, final=True)
    t_run = time.perf_counter() - t0
    benchmark.pedantic(ours, rounds=1, iterations=1)
    t_ours = best(ours, 2)

    ev = pa.table({"@timestamp": batch.column("@timestamp"),
                   "name": batch.column("dns.question.name"),
                   "rd": batch.column("dns.question.registered_domain")})  # fmt: skip
    con.register("ev", ev)
    t_duck_d = best(lambda: con.sql(DUCK_DISTINCT).to_arrow_table(), 2)
    t_duck_e = best(lambda: con.sql(DUCK_ENTROPY).to_arrow_table(), 1)
    duck = con.sql(DUCK_DISTINCT).to_arrow_table().to_pylist()

    df = pl.from_arrow(
        pa.table(
            {
                "ts": batch.column("@timestamp").cast(pa.int64()),
                "name": batch.column("dns.question.name"),
                "rd": batch.column("dns.question.registered_domain"),
            }
        )
    )
    t_pl = best(lambda: polars_both(df), 1)
    distinct_pl, ent_pl = polars_both(df)

    # the same answers: every (hour, domain) with >= 100 distinct subdomains is a finding
    want = {(r["w"] * HOUR, r["rd"], r["subs"]) for r in duck if r["subs"] >= 100}
    got = set()
    for f in out.findings.to_pylist():
        ev = json.loads(f["evidence"])
        if f["rule_id"] == RULE_TUNNEL and "distinct_subdomains" in ev["reasons"]:
            start = int(f["window_start"].timestamp()) * 1_000_000
            got.add((start, f["entity"], ev["distinct_subdomains"]))
    assert got == want
    assert distinct_pl.filter(pl.col("subs") >= 100).height == len(want)
    # entropy agrees with ours on a sample
    h_duck = con.sql(DUCK_ENTROPY).to_arrow_table().column("h").to_numpy(zero_copy_only=False)
    h_ours = sel.column("sub_entropy").to_numpy()
    sample = np.random.default_rng(0).integers(0, dns_rows, 5000)
    assert np.allclose(np.nan_to_num(h_duck[sample]), h_ours[sample], atol=1e-9)
    assert np.allclose(ent_pl["h"].fill_null(0).fill_nan(0).to_numpy()[sample], h_ours[sample])

    duck_total = t_duck_d + t_duck_e
    print(
        f"\ndns tunnel ({dns_rows} rows, {len(want)} tunnel windows, "
        f"{out.findings.num_rows} findings): ours {t_ours * 1e3:.0f} ms "
        f"(select {t_select * 1e3:.0f} + run {t_run * 1e3:.0f}; "
        f"{dns_rows / t_ours / 1e6:.2f} M rows/s); "
        f"duckdb {duck_total * 1e3:.0f} ms (distinct {t_duck_d * 1e3:.0f} + entropy "
        f"{t_duck_e * 1e3:.0f}) x{duck_total / t_ours:.1f}; "
        f"polars {t_pl * 1e3:.0f} ms x{t_pl / t_ours:.1f} "
        f"(polars pool {pl.thread_pool_size()} thread(s))"
    )


def test_compile_time_apart() -> None:
    """Cold compile of the DNS kernels (empty numba cache) and warm start, fresh processes."""
    code = (
        "import sys, time; sys.path.insert(0, 'benchmarks'); t0 = time.perf_counter();"
        "from detect.anomaly.dns_tunnel import DnsTunnelDetector;"
        "from test_dns_tunnel_bench import make_batch; b = make_batch(3000);"
        "t1 = time.perf_counter(); d = DnsTunnelDetector(); d.run(d.select(b), None, final=True);"
        "print(f'{t1 - t0:.2f} {time.perf_counter() - t1:.2f}')"
    )
    (imp_cold, cold), (imp_warm, warm) = compile_cold_and_warm(code)
    print(
        f"\ndns tunnel compile: cold {cold:.2f} s (import {imp_cold:.2f} s); "
        f"warm cache {warm:.2f} s (import {imp_warm:.2f} s)"
    )
    assert warm < cold
