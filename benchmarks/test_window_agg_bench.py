"""Window aggregation and the window detectors against DuckDB and polars, one thread each.

Run ``PYTHONPATH=src python -m pytest benchmarks/test_window_agg_bench.py -q -s
-p no:cacheprovider`` for numbers. Rows: ``DETECT_BENCH_WINDOW_ROWS`` (default 2,000,000;
the issue's figure is 10M). Synthetic conn rows: 20k sources, 5k destinations, 1,000 ports,
one day of timestamps.

- kernel: distinct destination ports per (source, destination) per 5-minute window.
  Ours = :func:`fixed_window_distinct_count` on pre-encoded ids, and the same with
  :func:`encode_keys` from the raw integer columns included; DuckDB
  ``count(DISTINCT port) ... GROUP BY src, dst, ts // 300 s`` with ``SET threads = 1``;
  polars ``group_by(...).agg(n_unique)`` in a subprocess started with
  ``POLARS_MAX_THREADS=1`` (the variable is read once, at polars import).
- detectors end to end (select -> run -> findings, one run, final flush) on a slice of the
  rows, against the SQL that computes the same numbers (sliding ``count(DISTINCT)`` over a
  30 s ``RANGE`` window for scans; hourly byte sums per source for volume, without the
  EWMA; per-pair day sums for long connections).
- compile time, apart: :func:`_timing.compile_cold_and_warm` in fresh processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from _timing import best, compile_cold_and_warm
from detect.anomaly.keys import encode_keys
from detect.anomaly.long_conn import LongConnDetector
from detect.anomaly.scan import ScanDetector
from detect.anomaly.volume import VolumeDetector
from detect.kernels.window_agg import fixed_window_distinct_count

pytestmark = pytest.mark.benchmark

ROWS = int(os.environ.get("DETECT_BENCH_WINDOW_ROWS", "2000000"))
DETECTOR_ROWS = min(ROWS, 500_000)
US = 1_000_000
T0 = 1_709_510_400 * US  # 2024-03-04


def _report(name: str, ours: float, others: dict[str, float], n: int) -> None:
    parts = [f"{name}: ours {ours * 1e3:.0f} ms ({n / ours / 1e6:.1f} M rows/s)"]
    parts += [
        f"{k} {v * 1e3:.0f} ms ({n / v / 1e6:.1f} M/s, ours x{v / ours:.1f})"
        for k, v in others.items()
    ]
    print("\n" + "; ".join(parts))


@pytest.fixture(scope="module")
def data() -> pa.Table:
    rng = np.random.default_rng(7)
    n = ROWS
    return pa.table(
        {
            "ts": np.sort(T0 + rng.integers(0, 86_400 * US, n)),
            "src": rng.integers(0, 20_000, n).astype(np.uint32) + 167772160,
            "dst": rng.integers(0, 5_000, n).astype(np.uint32) + 167837696,
            "port": rng.integers(0, 1_000, n).astype(np.uint16),
            "bytes": rng.integers(0, 100_000, n),
            "dur": rng.integers(0, 60 * 10**9, n),
        }
    )


POLARS_SCRIPT = """
import sys, time
import polars as pl
df = pl.read_parquet(sys.argv[1])
q = lambda: df.group_by("src", "dst", (pl.col("ts") // 300_000_000).alias("w")).agg(
    pl.col("port").n_unique())
q(); best = 1e9
for _ in range(3):
    t = time.perf_counter(); q(); best = min(best, time.perf_counter() - t)
print(best, pl.thread_pool_size())
"""


def test_distinct_ports_per_pair_per_5min(data, con):
    ts, port = data.column("ts").to_numpy(), data.column("port").to_numpy().astype(np.int64)
    pair = encode_keys([data.column("src"), data.column("dst")]).ids
    W = 300 * US
    g, _w, d = fixed_window_distinct_count(pair, ts, W, port)  # compile / warm
    kernel = best(lambda: fixed_window_distinct_count(pair, ts, W, port))
    with_enc = best(
        lambda: fixed_window_distinct_count(
            encode_keys([data.column("src"), data.column("dst")]).ids, ts, W, port
        )
    )
    con.register("t", data)
    sql = "SELECT src, dst, ts // 300000000 AS w, count(DISTINCT port) AS d FROM t GROUP BY ALL"
    ref = con.execute(f"SELECT count(*), sum(d) FROM ({sql})").fetchone()
    assert ref == (g.size, int(d.sum()))
    duck = best(lambda: con.execute(f"SELECT count(*) FROM ({sql})").fetchone())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.parquet"
        pq.write_table(data, path)
        env = {**os.environ, "POLARS_MAX_THREADS": "1"}
        out = subprocess.run(
            [sys.executable, "-c", POLARS_SCRIPT, str(path)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    polars_s, threads = float(out[0]), int(out[1])
    assert threads == 1
    _report(
        "distinct ports / (src, dst) / 5 min, kernel",
        kernel,
        {"duckdb": duck, "polars": polars_s},
        ROWS,
    )
    _report("  ... with encode_keys", with_enc, {"duckdb": duck, "polars": polars_s}, ROWS)


def _conn_batch(data: pa.Table, n: int) -> pa.RecordBatch:
    t = data.slice(0, n).combine_chunks()
    t = pa.record_batch({k: t.column(k).chunk(0) for k in t.column_names})

    def ip(a: pa.Array) -> pa.Array:
        return pa.array(
            [f"10.{(x >> 16) & 255}.{(x >> 8) & 255}.{x & 255}" for x in a.to_numpy().tolist()]
        )

    return pa.record_batch(
        {
            "@timestamp": t.column("ts").cast(pa.timestamp("us", tz="UTC")),
            "source.ip": ip(t.column("src")),
            "destination.ip": ip(t.column("dst")),
            "destination.port": t.column("port"),
            "source.bytes": t.column("bytes").cast(pa.uint64()),
            "destination.bytes": t.column("bytes").cast(pa.uint64()),
            "event.duration": t.column("dur"),
            "event.id": pa.array([f"C{i}" for i in range(n)]),
        }
    )


def test_detectors_end_to_end(data):
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads = 1")
    n = DETECTOR_ROWS
    batch = _conn_batch(data, n)
    con.register("c", pa.Table.from_batches([batch]))
    sqls = {
        "scan": """SELECT count(*) FROM (SELECT count(DISTINCT "destination.port") OVER (
              PARTITION BY "source.ip", "destination.ip" ORDER BY "@timestamp"
              RANGE BETWEEN INTERVAL 30 SECOND PRECEDING AND CURRENT ROW) AS d FROM c)
              WHERE d > 10""",
        "volume": """SELECT count(*) FROM (SELECT "source.ip", time_bucket(INTERVAL 1 HOUR,
              "@timestamp") AS w, sum("source.bytes") FROM c GROUP BY ALL)""",
        "long_conn": """SELECT count(*) FROM (SELECT "source.ip", "destination.ip",
              "destination.port", time_bucket(INTERVAL 1 DAY, "@timestamp") AS w,
              sum("event.duration") AS s, count(*) AS k FROM c GROUP BY ALL)
              WHERE s >= 3600e9 OR k >= 86400""",
    }
    for det in (ScanDetector(), VolumeDetector(), LongConnDetector()):

        def e2e(det=det):
            return det.run(det.select(batch), None, final=True).findings

        e2e()
        ours = best(e2e)
        try:
            duck = best(lambda det=det: con.execute(sqls[det.name]).fetchone())
        except Exception as exc:  # noqa: BLE001  (a DuckDB build without the feature)
            print(f"\n{det.name}: ours {ours * 1e3:.0f} ms; duckdb failed: {exc}")
            continue
        _report(f"detector {det.name} end to end", ours, {"duckdb sql": duck}, n)


def test_compile_time():
    code = (
        "import time; t=time.perf_counter()\n"
        "import numpy as np\n"
        "from detect.kernels.window_agg import fixed_window_agg, sliding_window_stats\n"
        "i=time.perf_counter()-t; t=time.perf_counter()\n"
        "g=np.zeros(4,np.int64); ts=np.arange(4)\n"
        "fixed_window_agg(g, ts, 2, values=ts, distinct=ts)\n"
        "sliding_window_stats(g, ts, 2, values=ts, distinct=ts)\n"
        "print(i, time.perf_counter()-t)\n"
    )
    (ic, cold), (iw, warm) = compile_cold_and_warm(code)
    print(
        f"\nwindow_agg compile: cold {cold:.2f} s (import {ic:.2f} s), "
        f"warm cache {warm:.3f} s (import {iw:.2f} s)"
    )
    assert warm < cold
