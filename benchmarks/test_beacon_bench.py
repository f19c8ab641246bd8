"""Beacon scoring (RITA v5, DETECTORS.md d.1): ours vs the same statistics in DuckDB and polars.

Run ``python -m pytest benchmarks/test_beacon_bench.py -q -s -p no:cacheprovider``.
``DETECT_BENCH_BEACON_ROWS`` conn rows (default 2,000,000) over ~50k (src, dst, port)
pairs in one day window, 1 % of the pairs periodic beacons. Ours is ``select`` over the
canonical batches plus ``run(..., final=True)`` (encode pairs, group, one numba pass,
findings); DuckDB is one SQL query (``list`` aggregation per pair, quartiles as
``list_median`` of montanaflynn's halves, MAD, 24 histogram counts, bimodal buckets,
wrapping run via a string of bars, all four sub-scores and the score), polars the same
with ``group_by`` and list expressions. One thread each: ``SET threads = 1``; polars runs
in a subprocess started with ``POLARS_MAX_THREADS=1`` (it reads the variable once, when
its pool starts). Every way's per-pair scores are checked against ours first (DuckDB:
all equal; polars: within 0.001, ~1 % differ by 0.001 because polars computes ``x / 1000`` as
``x * 0.001``, so Go's ``math.Round(x*1000)/1000`` cannot be reproduced bit for bit).
Numba compile time is measured apart, cold and from cache, in fresh processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from _timing import best, compile_cold_and_warm
from detect.anomaly.beacon import BeaconDetector

pytestmark = pytest.mark.benchmark

ROWS = int(os.environ.get("DETECT_BENCH_BEACON_ROWS", "2000000"))
PAIRS = max(100, ROWS // 40)
WS = 1_709_510_400  # 2024-03-04 00:00 UTC
US = 1_000_000
BATCH = 65_536
PARAMS = {"internal_subnets": (), "never_included_subnets": ()}  # score every pair, as SQL


def _data() -> pa.Table:
    """Canonical-like conn rows: random pairs and times, 1 % periodic beacons."""
    rng = np.random.default_rng(11)
    pair = rng.integers(0, PAIRS, ROWS)
    src_of = rng.integers(0, max(PAIRS // 10, 1), PAIRS)
    dst_of = rng.integers(0, max(PAIRS // 3, 1), PAIRS)
    port_of = rng.choice(np.array([53, 80, 123, 443, 8080, 8443, 22, 4444]), PAIRS)
    ts = WS * US + rng.integers(0, 86_400 * US, ROWS)
    beacon = pair % 100 == 0  # periodic: slot index * period + small jitter
    period = 60 + (pair % 37) * 60
    slot = rng.integers(0, 86_400 // 60, ROWS) % (86_400 // period)
    jitter = rng.integers(-2 * US, 2 * US, ROWS)
    ts = np.where(beacon, WS * US + slot * period * US + 5 * US + jitter, ts)
    nbytes = np.where(beacon, 300 + rng.integers(-8, 9, ROWS), rng.lognormal(7, 1.5, ROWS))
    src = np.char.add("10.1.", (src_of // 250).astype(str))
    src = np.char.add(np.char.add(src, "."), (src_of % 250).astype(str))
    dst = np.char.add("198.", (dst_of // 65_000 % 250).astype(str))
    dst = np.char.add(np.char.add(dst, "."), (dst_of // 250 % 250).astype(str))
    dst = np.char.add(np.char.add(dst, "."), (dst_of % 250).astype(str))
    return pa.table(
        {
            "event.dataset": pa.array(["conn"] * ROWS).dictionary_encode(),
            "@timestamp": pa.array(ts, pa.timestamp("us", "UTC")),
            "source.ip": pa.array(src[pair]),
            "destination.ip": pa.array(dst[pair]),
            "destination.port": pa.array(port_of[pair], pa.uint16()),
            "source.bytes": pa.array(nbytes.astype(np.uint64), pa.uint64()),
        }
    )


SQL = f"""
WITH r AS (
  SELECT "source.ip" AS src, "destination.ip" AS dst, "destination.port" AS port,
         floor(epoch_us("@timestamp") / 1e6)::BIGINT AS t, "source.bytes"::DOUBLE AS b
  FROM conn WHERE "event.dataset" IN ('conn', 'flow')
),
g AS (
  SELECT src, dst, port, count(*) AS n, min(t) AS tmin, max(t) AS tmax,
         list(t ORDER BY t) AS ts, list(b ORDER BY b) AS bs,
         list(((t - {WS}) * 24) // 86400) AS bins
  FROM r GROUP BY src, dst, port
  HAVING count(DISTINCT t) >= 4 AND count(*) < 86400
),
d AS (
  SELECT *, list_sort(list_filter(list_transform(range(1, len(ts)), lambda i: ts[i + 1] - ts[i]),
                                  lambda x: x > 0))::DOUBLE[] AS dl,
         list_transform(range(24), lambda k: len(list_filter(bins, lambda x: x = k))) AS hist
  FROM g
),
q AS (
  SELECT *,
    list_median(list_slice(dl, 1, len(dl) // 2)) AS tq1, list_median(dl) AS tq2,
    list_median(list_slice(dl, len(dl) // 2 + 1 + len(dl) % 2, len(dl))) AS tq3,
    list_median(list_slice(bs, 1, len(bs) // 2)) AS bq1, list_median(bs) AS bq2,
    list_median(list_slice(bs, len(bs) // 2 + 1 + len(bs) % 2, len(bs))) AS bq3,
    list_max(hist) AS hmax, len(list_filter(hist, lambda h: h > 0)) AS bars
  FROM d
),
m AS (
  SELECT *,
    list_median(list_transform(dl, lambda x: abs(x - tq2))) AS tmad,
    list_median(list_transform(bs, lambda x: abs(x - bq2))) AS bmad,
    list_transform(list_filter(hist, lambda h: h > 0),
                   lambda h: floor(h / ceil(hmax * 0.05)) * ceil(hmax * 0.05)) AS buckets,
    sqrt(list_sum(list_transform(hist, lambda h: (h - n / 24) * (h - n / 24))) / 24)
      / (n / 24) AS cv,
    least(list_max(list_transform(string_split(
        list_aggregate(list_transform(hist || hist,
                                      lambda h: CASE WHEN h > 0 THEN '1' ELSE '0' END),
                       'string_agg', ''), '0'), lambda x: len(x))), 24) AS run
  FROM q
),
s AS (
  SELECT src, dst, port, n, tq2 AS period, tmad AS jitter,
    r3(((1 - abs(CASE WHEN tq3 - tq1 >= 10 AND tq2 != tq1 AND tq2 != tq3
                    THEN (tq1 + tq3 - 2 * tq2) / (tq3 - tq1) ELSE 0 END))
           + greatest(CASE WHEN tq2 >= 1 THEN (tq2 - tmad) / tq2 ELSE 1 END, 0)) / 2) AS ts_score,
    r3(((1 - abs(CASE WHEN bq3 - bq1 >= 10 AND bq2 != bq1 AND bq2 != bq3
                    THEN (bq1 + bq3 - 2 * bq2) / (bq3 - bq1) ELSE 0 END))
           + greatest(CASE WHEN bq2 >= 1 THEN (bq2 - bmad) / bq2 ELSE 0 END, 0)) / 2) AS ds_score,
    greatest(CASE WHEN cv > 1 THEN 0 ELSE r3(1 - cv) END,
             CASE WHEN bars >= 11 THEN least(1, r3(
               (coalesce(list_sort(list_transform(list_distinct(buckets),
                   lambda v: len(list_filter(buckets, lambda x: x = v))), 'DESC')[1], 0)
              + coalesce(list_sort(list_transform(list_distinct(buckets),
                   lambda v: len(list_filter(buckets, lambda x: x = v))), 'DESC')[2], 0))
               / greatest(bars - 1, 1))) ELSE 0 END) AS hist_score,
    CASE WHEN bars >= 6 THEN greatest(least(1, ceil((tmax - tmin) / 86400 * 1000) / 1000),
                                      least(1, ceil(run / 12 * 1000) / 1000)) ELSE 0 END
      AS dur_score
  FROM m
)
SELECT *, r3(0.25 * ts_score + 0.25 * ds_score + 0.25 * dur_score + 0.25 * hist_score)
  AS score
FROM s
"""

POLARS = textwrap.dedent(
    f"""
    import sys, time
    import polars as pl
    assert pl.thread_pool_size() == 1
    conn = pl.read_parquet(sys.argv[1])

    def r3(e):  # Go math.Round: half away from zero
        return (e * 1000).round(0, mode="half_away_from_zero") / 1000

    def score(q1, q2, q3, mad, d):
        skew = pl.when((q3 - q1 >= 10) & (q2 != q1) & (q2 != q3)).then(
            (q1 + q3 - 2 * q2) / (q3 - q1)).otherwise(0.0)
        mads = pl.when(q2 >= 1).then((q2 - mad) / q2).otherwise(d).clip(lower_bound=0)
        return r3((1 - skew.abs() + mads) / 2)

    def quart(c):
        n = pl.col(c).list.len()
        return (pl.col(c).list.slice(0, n // 2).list.median(),
                pl.col(c).list.median(),
                pl.col(c).list.slice(n // 2 + n % 2, n).list.median())

    def run():
        g = (conn.lazy()
             .filter(pl.col("event.dataset").cast(pl.String).is_in(["conn", "flow"]))
             .select(pl.col("source.ip").alias("src"), pl.col("destination.ip").alias("dst"),
                     pl.col("destination.port").alias("port"),
                     (pl.col("@timestamp").dt.epoch("us") // 1_000_000).alias("t"),
                     pl.col("source.bytes").cast(pl.Float64).alias("b"))
             .with_columns((((pl.col("t") - {WS}) * 24) // 86400).alias("bin"))
             .group_by("src", "dst", "port")
             .agg(pl.len().alias("n"), pl.col("t").n_unique().alias("u"),
                  pl.col("t").sort().alias("ts"), pl.col("b").sort().alias("bs"),
                  *[(pl.col("bin") == k).sum().alias(f"h{{k}}") for k in range(24)])
             .filter((pl.col("u") >= 4) & (pl.col("n") < 86400))
             .with_columns(pl.col("ts").list.diff(null_behavior="drop")
                           .list.eval(pl.element().filter(pl.element() > 0).sort())
                           .cast(pl.List(pl.Float64)).alias("dl"),
                           pl.concat_list([f"h{{k}}" for k in range(24)]).alias("hist"))
             .with_columns(
                 *[e.alias(nm) for e, nm in zip(quart("dl"), ["tq1", "tq2", "tq3"])],
                 *[e.alias(nm) for e, nm in zip(quart("bs"), ["bq1", "bq2", "bq3"])],
                 pl.col("dl").list.eval((pl.element() - pl.element().median()).abs().median())
                   .list.first().alias("tmad"),
                 pl.col("bs").list.eval((pl.element() - pl.element().median()).abs().median())
                   .list.first().alias("bmad"),
                 pl.col("hist").list.max().alias("hmax"),
                 pl.col("hist").list.eval((pl.element() > 0).sum()).list.first().alias("bars"),
                 pl.col("hist").list.eval(pl.element().std(ddof=0) / pl.element().mean())
                   .list.first().alias("cv"),
                 pl.concat_str([pl.when(pl.col(f"h{{k % 24}}") > 0).then(pl.lit("1"))
                                .otherwise(pl.lit("0")) for k in range(48)])
                   .str.split("0").list.eval(pl.element().str.len_chars()).list.max()
                   .clip(upper_bound=24).alias("run"))
             .with_columns((pl.col("hmax") * 0.05).ceil().alias("bsz"))
             .with_columns(
                 pl.concat_list([pl.when(pl.col(f"h{{k}}") > 0).then(
                     (pl.col(f"h{{k}}") / pl.col("bsz")).floor()) for k in range(24)])
                   .list.drop_nulls()
                   .list.eval(pl.element().value_counts(sort=True).struct.field("count")
                              .head(2).sum()).list.first().alias("top2"))
             .select("src", "dst", "port",
                     score(pl.col("tq1"), pl.col("tq2"), pl.col("tq3"), pl.col("tmad"), 1.0)
                       .alias("ts_score"),
                     score(pl.col("bq1"), pl.col("bq2"), pl.col("bq3"), pl.col("bmad"), 0.0)
                       .alias("ds_score"),
                     pl.max_horizontal(
                         pl.when(pl.col("cv") > 1).then(0.0).otherwise(r3(1 - pl.col("cv"))),
                         pl.when(pl.col("bars") >= 11).then(
                             r3(pl.col("top2") / (pl.col("bars") - 1).clip(lower_bound=1))
                             .clip(upper_bound=1)).otherwise(0.0)).alias("hist_score"),
                     pl.when(pl.col("bars") >= 6).then(pl.max_horizontal(
                         ((pl.col("ts").list.max() - pl.col("ts").list.min()) / 86400 * 1000)
                           .ceil().truediv(1000).clip(upper_bound=1),
                         (pl.col("run") / 12 * 1000).ceil().truediv(1000).clip(upper_bound=1)))
                       .otherwise(0.0).alias("dur_score"))
             .with_columns(r3(0.25 * pl.col("ts_score") + 0.25 * pl.col("ds_score")
                              + 0.25 * pl.col("dur_score") + 0.25 * pl.col("hist_score"))
                           .alias("score"))
             .collect())
        return g

    out = run()
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    out.write_parquet(sys.argv[2])
    print(best)
    """
)


def _ours(det: BeaconDetector, table: pa.Table) -> pa.Table:
    rows = pa.concat_tables(det.select(b) for b in table.to_batches(BATCH))
    return det.run(rows, None, final=True).findings


def _our_scores(table: pa.Table) -> dict[tuple, float]:
    det = BeaconDetector({**PARAMS, "threshold": 0.0})
    rows = det.select(table)
    keys, fo, io, _ = det.scores(rows)
    from detect.kernels import beacon as k

    ok = io[:, k.I_ELIGIBLE] == 1
    src = keys.column("source.ip").to_pylist()
    dst = keys.column("destination.ip").to_pylist()
    port = keys.column("destination.port").to_pylist()
    return {(src[i], dst[i], port[i]): float(fo[i, k.F_SCORE]) for i in np.flatnonzero(ok)}


def _agree(ours: dict[tuple, float], theirs: dict[tuple, float]) -> float:
    assert set(theirs) == set(ours)
    assert all(abs(theirs[key] - v) <= 0.001 + 1e-9 for key, v in ours.items())
    same = sum(abs(theirs[key] - v) < 1e-9 for key, v in ours.items())
    return same / max(len(ours), 1)


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return _data()


def test_beacon_vs_duckdb_and_polars(benchmark, table: pa.Table) -> None:
    det = BeaconDetector(PARAMS)
    _ours(det, table.slice(0, 10_000))  # kernels from the numba cache, outside the timing
    findings = benchmark.pedantic(_ours, args=(det, table), rounds=1, iterations=1)
    ours = best(lambda: _ours(det, table), 3)

    # correctness first: every way's per-pair beacon score against ours
    mine = _our_scores(table)
    con = duckdb.connect()
    con.execute("SET threads = 1")
    con.register("conn", table)
    # Go's math.Round(x*1000)/1000; DuckDB's round(x, 3) rounds 0.6525 down
    con.execute("CREATE MACRO r3(x) AS round(x * 1000) / 1000")
    res = con.sql(SQL).to_arrow_table()
    theirs = dict(
        zip(
            zip(*(res.column(c).to_pylist() for c in ("src", "dst", "port")), strict=True),
            res.column("score").to_pylist(),
            strict=True,
        )
    )
    duck_agree = _agree(mine, theirs)
    duck = best(lambda: con.sql(SQL).to_arrow_table(), 2)

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "conn.parquet", Path(tmp) / "out.parquet"
        pq.write_table(table, src)
        env = {**os.environ, "POLARS_MAX_THREADS": "1"}
        proc = subprocess.run(
            [sys.executable, "-c", POLARS, str(src), str(dst)],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        polars_s = float(proc.stdout.split()[-1])
        pres = pq.read_table(dst)
    ptheirs = dict(
        zip(
            zip(*(pres.column(c).to_pylist() for c in ("src", "dst", "port")), strict=True),
            pres.column("score").to_pylist(),
            strict=True,
        )
    )
    polars_agree = _agree(mine, ptheirs)

    n = table.num_rows
    print(
        f"\n{n:,} conn rows, {len(mine):,} scored pairs, {findings.num_rows:,} findings >= 0.7"
        f"\n  ours (select + run)  {ours * 1e3:8.0f} ms  ({n / ours / 1e6:.1f} M rows/s)"
        f"\n  DuckDB SQL, 1 thread {duck * 1e3:8.0f} ms  x{duck / ours:.1f}"
        f"  (scores equal on {duck_agree:.2%} of pairs)"
        f"\n  polars, 1 thread     {polars_s * 1e3:8.0f} ms  x{polars_s / ours:.1f}"
        f"  (scores equal on {polars_agree:.2%} of pairs)"
    )
    assert duck_agree > 0.99
    # polars divides a float column by a constant as a multiplication by its reciprocal
    # (813 / 1000 -> 0.8130000000000001), so round3 sums sometimes land 0.001 apart
    assert polars_agree > 0.97
    assert findings.num_rows >= PAIRS // 100 * 0.9


def test_beacon_compile_time() -> None:
    code = textwrap.dedent(
        """
        import time
        t0 = time.perf_counter()
        import numpy as np
        from detect.kernels.beacon import beacon_scores, group_rows
        t1 = time.perf_counter()
        ts = np.arange(8, dtype=np.int64) * 60_000_000
        perm, off = group_rows(np.zeros(8, np.int64), 1)
        beacon_scores(ts, np.ones(8), perm, off, np.zeros(1, np.int64),
                      np.full(1, 86400, np.int64), 24, 4, 86400, 0.05, 1, 11, 6, 12,
                      0.25, 0.25, 0.25, 0.25)
        print(t1 - t0, time.perf_counter() - t1)
        """
    )
    (imp_cold, cold), (imp_warm, warm) = compile_cold_and_warm(code)
    print(
        f"\nbeacon kernels: cold compile {cold:.2f} s (import {imp_cold:.2f} s), "
        f"from cache {warm:.3f} s (import {imp_warm:.2f} s)"
    )
    assert warm < cold
