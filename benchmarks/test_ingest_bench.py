"""Ingest benchmarks: Parquet to enriched canonical batches, and a whole ``detect run``.

``python -m pytest benchmarks/test_ingest_bench.py -s`` prints, on the same generated
file in the same run: a plain ``pyarrow.parquet`` read, polars and DuckDB reads, and
``detect``'s read + canonical mapping + enrichment, with the ratio (target >= 0.5x
the plain pyarrow read). ``test_detect_run_peak_memory`` runs ``detect run`` over
``DETECT_BENCH_RUN_EVENTS`` (default 10M) generated events in a subprocess and prints
its peak RSS (target < 2 GiB). Sizes: ``DETECT_BENCH_EVENTS`` (default 2M).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from _timing import best as _best
from detect.enrich import enrich
from detect.readers import read_file
from detect.synthetic import generate

pytestmark = pytest.mark.benchmark

CACHE = Path(__file__).resolve().parent.parent / ".benchmarks" / "data"


def _generated(events: int, seed: int) -> Path:
    """Generated telemetry, kept between benchmark runs (it is deterministic)."""
    out = CACHE / f"gen-{events}-{seed}"
    if not (out / "ground_truth.json").exists():
        generate(out, events=events, seed=seed)
    return out




@pytest.fixture(scope="module")
def conn_parquet() -> Path:
    events = int(os.environ.get("DETECT_BENCH_EVENTS", "2000000"))
    return _generated(events, seed=11) / "conn.parquet"


def _detect_ingest(path: Path) -> int:
    return sum(enrich(b).num_rows for b in read_file(path, batch_size=65_536))


def test_parquet_ingest_against_plain_reads(benchmark, conn_parquet: Path) -> None:
    rows = pq.ParquetFile(conn_parquet).metadata.num_rows
    assert _detect_ingest(conn_parquet) == rows  # warm the JIT cache, check the count
    plain = _best(lambda: pq.read_table(conn_parquet))
    polars = _best(lambda: pl.read_parquet(conn_parquet))
    con = duckdb.connect()
    ddb = _best(lambda: con.sql("SELECT * FROM read_parquet(?)", params=[str(conn_parquet)])
                .to_arrow_table())
    ours = _best(lambda: _detect_ingest(conn_parquet))
    benchmark.group = "parquet-ingest"
    benchmark.pedantic(_detect_ingest, args=(conn_parquet,), rounds=3, iterations=1)
    print(
        f"\nparquet ingest, {rows:,} conn rows: detect read+map+enrich {ours:.3f}s "
        f"({rows / ours / 1e6:.2f} M rows/s); plain pyarrow read {plain:.3f}s -> ratio "
        f"{plain / ours:.2f}x (target >= 0.5x); polars {polars:.3f}s ({polars / ours:.2f}x); "
        f"duckdb {ddb:.3f}s ({ddb / ours:.2f}x)"
    )
    assert plain / ours >= 0.5


@pytest.mark.slow
def test_detect_run_peak_memory(tmp_path: Path) -> None:
    events = int(os.environ.get("DETECT_BENCH_RUN_EVENTS", "10000000"))
    data = _generated(events, seed=12)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "detect", "run", str(data), "--db", str(tmp_path / "a.duckdb"),
         "--log-format", "json"],
        capture_output=True, text=True, check=False,
    )
    seconds = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert result.returncode == 0, result.stderr[-2000:]
    assert peak_kib >= before
    peak_gib = peak_kib / (1 << 20)
    print(f"\ndetect run over {events:,} generated events: {seconds:.1f}s "
          f"({events / seconds / 1e6:.2f} M events/s), peak RSS {peak_gib:.2f} GiB "
          f"(target < 2 GiB)")
    assert peak_gib < 2.0
