"""Sigma correlations (event_count, value_count) against DuckDB and polars, one thread each.

Run ``PYTHONPATH=src python -m pytest benchmarks/test_correlation_bench.py -q -s
-p no:cacheprovider``. Rows: ``DETECT_BENCH_CORR_ROWS`` (default 2,000,000): one day of
conn events from 20k sources over 1,000 ports, plus 30 bursts (60 events in 60 s from one
source). Rules: more than 20 conn events per source within 5 minutes (``event_count``), at
least 15 distinct destination ports per source within 5 minutes (``value_count``).

- ours: ``CorrelationDetector.run`` over the selected compact rows (sort, sliding-window
  episode kernel, findings), one final run; ``select`` (the base rule's Sigma engine and the
  compact rows) is timed apart.
- DuckDB: the same per-event sliding counts with a window function, ``count(*)`` /
  ``count(DISTINCT port) OVER (PARTITION BY src ORDER BY ts RANGE BETWEEN INTERVAL
  (5 min - 1 us) PRECEDING AND CURRENT ROW)``, then the sources over the threshold;
  ``SET threads = 1``.
- polars: ``sort`` + ``rolling(index_column="ts", period="5m", group_by="src")`` with
  ``len`` / ``n_unique``, in a subprocess started with ``POLARS_MAX_THREADS=1``.

The firing sources are checked equal (for ``gt`` / ``gte`` a source fires in some window
exactly when some event's trailing window is over the threshold). Compile time is apart:
:func:`_timing.compile_cold_and_warm`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sigma.collection import SigmaCollection

from _timing import best, compile_cold_and_warm
from detect.anomaly.correlation import CorrelationDetector

pytestmark = pytest.mark.benchmark

ROWS = int(os.environ.get("DETECT_BENCH_CORR_ROWS", "2000000"))
US = 1_000_000
T0 = 1_709_510_400 * US  # 2024-03-04
WINDOW = 300 * US

RULES = """
title: conn
id: 00000000-0000-4000-8000-0000000000b1
name: conn
logsource: {product: zeek, service: conn}
detection: {sel: {network.transport: tcp}, condition: sel}
---
title: many connections
id: 00000000-0000-4000-8000-0000000000e1
correlation:
    type: event_count
    rules: [conn]
    group-by: [source.ip]
    timespan: 5m
    condition: {gt: 20}
---
title: many ports
id: 00000000-0000-4000-8000-0000000000e2
correlation:
    type: value_count
    rules: [conn]
    group-by: [source.ip]
    timespan: 5m
    condition: {field: destination.port, gte: 15}
"""
KIND_SQL = {
    "00000000-0000-4000-8000-0000000000e1": ("count(*)", "> 20"),
    "00000000-0000-4000-8000-0000000000e2": ("count(DISTINCT port)", ">= 15"),
}


def _report(name: str, ours: float, others: dict[str, float], n: int) -> None:
    parts = [f"{name}: ours {ours * 1e3:.0f} ms ({n / ours / 1e6:.1f} M rows/s)"]
    parts += [
        f"{k} {v * 1e3:.0f} ms ({n / v / 1e6:.1f} M/s, ours x{v / ours:.1f})"
        for k, v in others.items()
    ]
    print("\n" + "; ".join(parts))


@pytest.fixture(scope="module")
def data() -> pa.Table:
    rng = np.random.default_rng(11)
    n = ROWS
    ts = T0 + rng.integers(0, 86_400 * US, n)
    src = rng.integers(0, 20_000, n)
    port = rng.integers(0, 1_000, n)
    for b in range(30):  # bursts: 60 events in 60 s, one source, 30 ports
        k = slice(b * 60, b * 60 + 60)
        ts[k] = T0 + b * 2_000 * US + np.arange(60) * US
        src[k] = 20_000 + b
        port[k] = np.arange(60) % 30
    order = np.argsort(ts, kind="stable")
    names = pa.array([f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(20_030)])
    return pa.table(
        {
            "ts": pa.array(ts[order]).cast(pa.timestamp("us", tz="UTC")),
            "src": names.take(pa.array(src[order])),
            "port": pa.array(port[order].astype(np.uint16)),
        }
    )


@pytest.fixture(scope="module")
def batch(data: pa.Table) -> pa.RecordBatch:
    from detect.schema import conform

    cols = {
        "@timestamp": data.column("ts"),
        "event.dataset": pa.array(["conn"] * data.num_rows),
        "network.transport": pa.array(["tcp"] * data.num_rows),
        "source.ip": data.column("src"),
        "destination.ip": pa.array(["192.0.2.1"] * data.num_rows),
        "destination.port": data.column("port"),
    }
    return conform(cols, data.num_rows)


POLARS_SCRIPT = """
import sys, time
import polars as pl
df = pl.read_parquet(sys.argv[1])
def q(agg):
    return (df.sort("src", "ts").rolling(index_column="ts", period="5m", group_by="src")
              .agg(agg).filter(pl.col("m") {cmp}).select(pl.col("src").n_unique()).item())
agg = {agg}
q(agg); best = 1e9
for _ in range(3):
    t = time.perf_counter(); n = q(agg); best = min(best, time.perf_counter() - t)
print(best, n, pl.thread_pool_size())
"""


def _polars(path: Path, agg: str, cmp: str) -> tuple[float, int]:
    env = {**os.environ, "POLARS_MAX_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", POLARS_SCRIPT.format(agg=agg, cmp=cmp), str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert int(out[2]) == 1
    return float(out[0]), int(out[1])


@pytest.mark.parametrize("rule_id", list(KIND_SQL))
def test_correlation_vs_sql(rule_id, data, batch):
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads = 1")
    rules = SigmaCollection.from_yaml(RULES).rules
    keep = [r for r in rules if str(r.id) in (rule_id, "00000000-0000-4000-8000-0000000000b1")]
    det = CorrelationDetector(keep)
    rows = det.select(batch)  # builds the engine's executor
    select_s = best(lambda: det.select(batch), repeat=1)
    out = det.run(rows, None, final=True)  # compile / warm
    ours = best(lambda: det.run(rows, None, final=True))
    fired = {
        json.loads(e)["group"]["source.ip"] for e in out.findings.column("evidence").to_pylist()
    }
    agg_sql, cmp = KIND_SQL[rule_id]
    con.register("t", data)
    sql = (
        f"SELECT count(DISTINCT src) FROM (SELECT src, {agg_sql} OVER (PARTITION BY src "
        "ORDER BY ts RANGE BETWEEN INTERVAL 299999999 MICROSECONDS PRECEDING AND CURRENT ROW)"
        f" AS m FROM t) WHERE m {cmp}"
    )
    assert con.execute(sql).fetchone()[0] == len(fired)
    duck = best(lambda: con.execute(sql).fetchone(), repeat=2)
    agg_pl = (
        'pl.len().alias("m")'
        if "DISTINCT" not in agg_sql
        else ('pl.col("port").n_unique().alias("m")')
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.parquet"
        pq.write_table(data, path)
        polars_s, polars_n = _polars(path, agg_pl, cmp)
    assert polars_n == len(fired)
    name = (
        "event_count > 20 / source / 5m"
        if "DISTINCT" not in agg_sql
        else ("value_count(port) >= 15 / source / 5m")
    )
    print(
        f"\n{name}: {len(fired)} sources fire, {out.findings.num_rows} findings;"
        f" select {select_s * 1e3:.0f} ms ({ROWS / select_s / 1e6:.1f} M rows/s)"
    )
    _report("  run", ours, {"duckdb": duck, "polars": polars_s}, ROWS)


COMPILE = """
import time
t = time.perf_counter()
from sigma.collection import SigmaCollection
from detect.anomaly.correlation import CorrelationDetector, ROW_SCHEMA
import pyarrow as pa
t_imp = time.perf_counter() - t
det = CorrelationDetector(SigmaCollection.from_yaml('''{rules}''').rules)
rows = pa.table({{"@timestamp": pa.array([0, 1], pa.int64()).cast(ROW_SCHEMA.field(0).type),
  "corr": pa.array([0, 0], pa.int32()), "slot": pa.array([0, 0], pa.int32()),
  "rule": pa.array([0, 0], pa.int32()), "group": ["a", "a"], "value": ["1", "2"],
  "num": pa.array([1.0, 2.0])}})
t = time.perf_counter()
det.run(rows, None, final=True)
print(t_imp, time.perf_counter() - t)
"""


def test_compile_time():
    (imp_c, cold), (imp_w, warm) = compile_cold_and_warm(COMPILE.format(rules=RULES))
    print(
        f"\ncorrelation compile: first run cold {cold:.2f} s (import {imp_c:.2f} s),"
        f" warm numba cache {warm:.2f} s (import {imp_w:.2f} s)"
    )
