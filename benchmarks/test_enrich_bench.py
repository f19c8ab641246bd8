"""Enrichment throughput beside the obvious polars and DuckDB ways, on 1M synthetic rows.

Run ``python -m pytest benchmarks/test_enrich_bench.py -q -s`` for numbers;
``--benchmark-disable`` runs every body once (a smoke run). Each test prints one
line: our time, the polars and DuckDB times for the same job, and the ratios.
Compile time is measured apart, in fresh processes with an empty and a warm cache.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from _timing import best as _best
from _timing import compile_cold_and_warm
from detect import arrow_buffers as ab
from detect.enrich import community_id, enrich, ip_to_bin, registered_domain
from detect.kernels.community_id import community_id as community_id_kernel
from detect.schema import conform

pytestmark = pytest.mark.benchmark




def _ip_text(rng: np.random.Generator, n: int) -> pa.Array:
    """About 90% IPv4 (private and public), 10% IPv6, a few nulls and bad values."""
    v4 = (
        pl.DataFrame({f"o{i}": rng.integers(0, 256, n) for i in range(4)})
        .select(pl.concat_str([pl.col(f"o{i}").cast(pl.Utf8) for i in range(4)], separator="."))
        .to_series()
        .to_arrow()
    )
    pool = np.array(  # IPv6 from a pool: hex formatting per row would dominate set-up
        [f"2001:db8:{a:x}::{b:x}:{c:x}" for a, b, c in rng.integers(0, 65536, (50_000, 3))],
        dtype=object,
    )
    v6 = pool[rng.integers(0, len(pool), n)]
    kind = rng.random(n)
    out = np.where(
        kind < 0.9, np.asarray(v4.to_pylist(), dtype=object), np.asarray(v6, dtype=object)
    )
    out[kind > 0.998] = None
    out[(kind > 0.997) & (kind <= 0.998)] = "-"
    return pa.array(out, pa.string())


def _domains(rng: np.random.Generator, n: int, vocab: int = 50_000) -> pa.Array:
    """Host names drawn from a Zipf distribution over a fixed vocabulary."""
    suffixes = [
        "com",
        "net",
        "org",
        "co.uk",
        "de",
        "github.io",
        "cloudfront.net",
        "com.au",
        "local",
    ]
    names = np.array(
        [f"h{i % 7}.d{i}.{suffixes[i % len(suffixes)]}" for i in range(vocab)], dtype=object
    )
    ranks = np.minimum(rng.zipf(1.3, n), vocab) - 1
    return pa.array(names[ranks], pa.string())


@pytest.fixture(scope="module")
def batch(bench_rows: int) -> pa.RecordBatch:
    rng = np.random.default_rng(42)
    n = bench_rows
    transports = pa.array(rng.choice(np.array(["tcp", "udp", "icmp"]), n, p=[0.7, 0.27, 0.03]))
    return conform(
        {
            "@timestamp": pa.array(
                np.arange(n, dtype="int64") * 1000, pa.timestamp("us", tz="UTC")
            ),
            "source.ip": _ip_text(rng, n),
            "destination.ip": _ip_text(rng, n),
            "source.port": pa.array(rng.integers(1024, 65536, n).astype(np.uint16)),
            "destination.port": pa.array(
                rng.choice(np.array([53, 80, 443, 8080, 22], np.uint16), n)
            ),
            "network.transport": transports,
            "dns.question.name": _domains(rng, n),
            "url.domain": _domains(rng, n),
            "tls.server.name": _domains(rng, n),
            "source.bytes": pa.array(rng.integers(0, 10**6, n).astype(np.uint64)),
        },
        n,
    )


def _report(name: str, ours: float, others: dict[str, float], n: int) -> None:
    parts = [f"{name}: ours {ours * 1e3:.0f} ms ({n / ours / 1e6:.2f} M rows/s)"]
    parts += [f"{k} {v * 1e3:.0f} ms (x{v / ours:.2f})" for k, v in others.items()]
    print("\n" + "; ".join(parts))


def test_compile_time_apart() -> None:
    """Cold compile (empty cache) and warm start (cache hit), each in a fresh process."""
    code = (
        "import time, numpy as np, pyarrow as pa; t0 = time.perf_counter();"
        "from detect.enrich import enrich, community_id; from detect.schema import conform;"
        "t1 = time.perf_counter();"
        "b = conform({'source.ip': pa.array(['10.0.0.1']), 'destination.ip': pa.array(['::1']),"
        "'source.port': pa.array([1], pa.uint16()), 'destination.port': pa.array([2], pa.uint16()),"
        "'network.transport': pa.array(['tcp'])}, 1);"
        "t2 = time.perf_counter(); community_id(enrich(b)); from detect.enrich import bin_to_ip;"
        "bin_to_ip(enrich(b).column('source.ip_bin')); t3 = time.perf_counter();"
        "print(f'{t1 - t0:.2f} {t3 - t2:.2f}')"
    )
    (imp_cold, cold), (imp_warm, warm) = compile_cold_and_warm(code)
    print(
        f"\ncompile: cold {cold:.2f} s (import {imp_cold:.2f} s); "
        f"warm cache {warm:.2f} s (import {imp_warm:.2f} s)"
    )
    assert warm < cold


def test_enrich(benchmark, batch: pa.RecordBatch) -> None:
    enrich(batch.slice(0, 10))  # compile / load from cache outside the timing
    out = benchmark(enrich, batch)
    assert out.num_rows == batch.num_rows
    _report(
        "enrich (2 ip + 3 registered domain)", _best(lambda: enrich(batch), 2), {}, batch.num_rows
    )


def test_ip_parse(benchmark, batch: pa.RecordBatch) -> None:
    col = batch.column("source.ip")
    ip_to_bin(col.slice(0, 10))
    out = benchmark(ip_to_bin, col)
    assert out.null_count < len(col) // 5
    ours = _best(lambda: ip_to_bin(col))
    df = pl.from_arrow(pa.record_batch([col], names=["ip"]))

    def polars_v4() -> pl.DataFrame:  # v4 only: split, cast, shift; v6 left null
        parts = pl.col("ip").str.split_exact(".", 3).struct
        return df.select(
            sum(
                parts.field(f"field_{i}").cast(pl.UInt32, strict=False) * (1 << (24 - 8 * i))
                for i in range(4)
            )
        )

    con = duckdb.connect()
    con.register("t", pa.table({"ip": col}))
    duck_sql = (
        "SELECT TRY_CAST(split_part(ip, '.', 1) AS UINTEGER) * 16777216"
        " + TRY_CAST(split_part(ip, '.', 2) AS UINTEGER) * 65536"
        " + TRY_CAST(split_part(ip, '.', 3) AS UINTEGER) * 256"
        " + TRY_CAST(split_part(ip, '.', 4) AS UINTEGER) AS v FROM t"
    )
    others = {
        "polars v4-only split/cast": _best(polars_v4),
        "duckdb v4-only split_part/cast (inet ext. not offline)": _best(
            lambda: con.sql(duck_sql).to_arrow_table()
        ),
    }
    _report("ip text -> 16 bytes (v4+v6, exact)", ours, others, len(col))


def test_registered_domain(benchmark, batch: pa.RecordBatch) -> None:
    col = batch.column("dns.question.name")
    registered_domain(col.slice(0, 10))
    out = benchmark(registered_domain, col)
    assert out.null_count < len(col)
    ours = _best(lambda: registered_domain(col))
    df = pl.from_arrow(pa.record_batch([col], names=["q"]))
    con = duckdb.connect()
    con.register("t", pa.table({"q": col}))
    others = {  # the naive "last two labels" way: wrong for co.uk / github.io, shown for speed
        "polars last-2-labels": _best(
            lambda: df.select(pl.col("q").str.split(".").list.slice(-2, 2).list.join("."))
        ),
        "duckdb last-2-labels": _best(
            lambda: con.sql(
                "SELECT array_to_string(string_split(q, '.')[-2:], '.') FROM t"
            ).to_arrow_table()
        ),
    }
    _report("registered domain (PSL, per unique)", ours, others, len(col))


def test_community_id(benchmark, batch: pa.RecordBatch, tmp_path: Path) -> None:
    """Community ID throughput, and its cost relative to reading the batch from parquet."""
    enriched = enrich(batch)
    community_id(enriched.slice(0, 10))
    out = benchmark(community_id, enriched)
    assert out.null_count < len(out) // 5
    ours = _best(lambda: community_id(enriched))
    src = ab.fixed_binary_buffers(enriched.column("source.ip_bin"))
    dst = ab.fixed_binary_buffers(enriched.column("destination.ip_bin"))
    sport, _ = ab.primitive_buffers(enriched.column("source.port"))
    dport, _ = ab.primitive_buffers(enriched.column("destination.port"))
    proto = np.full(len(sport), 6)
    kernel = _best(lambda: community_id_kernel(src.values, dst.values, sport, dport, proto))
    path = tmp_path / "batch.parquet"
    pq.write_table(pa.Table.from_batches([batch]), path)
    read = _best(lambda: pq.read_table(path))
    con = duckdb.connect()
    con.register(
        "t",
        pa.table(
            {
                "s": batch.column("source.ip"),
                "d": batch.column("destination.ip"),
                "sp": batch.column("source.port"),
                "dp": batch.column("destination.port"),
            }
        ),
    )
    duck = _best(
        lambda: con.sql(  # the hash alone, no ordering / ICMP rules / base64
            "SELECT sha1(s || '|' || d || '|' || sp || '|' || dp) FROM t"
        ).to_arrow_table(),
        1,
    )
    _report(
        "community id (batch column)",
        ours,
        {
            "kernel only (numpy in/out)": kernel,
            "duckdb sha1 of concatenated text": duck,
            "parquet read of the batch": read,
        },
        len(out),
    )
    print(
        f"community id / parquet read = {ours / read:.0%} (ingest budget 15%); "
        f"kernel {len(out) / kernel / 1e6:.2f} M flows/s"
    )
