"""Zeek TSV conn log -> canonical batches, beside DuckDB ``read_csv`` and polars ``read_csv``.

The input replays the real rita-missing-host conn rows (106k) with timestamps shifted by
three days per replay until it holds ``DETECT_BENCH_ZEEK_ROWS`` rows (default 2,000,000).
Without ``../shared`` a seeded synthetic conn log of the same layout is written instead.
The DuckDB and polars variants parse the same file and cast the same columns to the same
types (timestamp, ports, counts, duration in ns), so the ratio compares like with like.

Run: ``python -m pytest benchmarks/test_zeek_tsv_bench.py --benchmark-enable -s``
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from detect.readers import zeek_tsv
from detect.readers.base import ReadContext
from detect.schema import CANONICAL_SCHEMA

ROWS = int(os.environ.get("DETECT_BENCH_ZEEK_ROWS", "2000000"))
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "zeek" / "rita-missing-host"
SHIFT = 3 * 86_400  # the rita capture spans three days
RESULTS: dict[str, float] = {}

pytestmark = pytest.mark.benchmark

FIELDS = [
    "_node_name",
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "proto",
    "service",
    "duration",
    "orig_bytes",
    "resp_bytes",
    "conn_state",
    "local_orig",
    "local_resp",
    "missed_bytes",
    "history",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
    "tunnel_parents",
]
TYPES = [
    "string",
    "time",
    "string",
    "addr",
    "port",
    "addr",
    "port",
    "enum",
    "string",
    "interval",
    "count",
    "count",
    "string",
    "bool",
    "bool",
    "count",
    "string",
    "count",
    "count",
    "count",
    "count",
    "set[string]",
]
HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
    "#open\t2024-04-19-00-00-01\n#fields\t"
    + "\t".join(FIELDS)
    + "\n#types\t"
    + "\t".join(TYPES)
    + "\n"
)


def _real_rows() -> list[bytes]:
    rows: list[bytes] = []
    for f in sorted(SHARED.glob("2024-04-*/conn.*.log.gz")):
        with gzip.open(f, "rb") as fh:
            rows.extend(
                line for line in fh.read().split(b"\n") if line and not line.startswith(b"#")
            )
    return rows


def _synthetic_rows(n: int) -> list[bytes]:
    rng = np.random.default_rng(7)
    ts = 1713484800 + np.sort(rng.uniform(0, 3 * 86400, n))
    states = np.array(["REJ", "S0", "SF", "OTH"])[rng.integers(0, 4, n)]
    return [
        (
            f"worker-1\t{ts[i]:.6f}\tC{i:017d}\t10.0.{i % 250}.{i % 200}\t{40000 + i % 20000}\t"
            f"64.225.56.201\t{[22, 80, 443, 53][i % 4]}\ttcp\t-\t{(i % 997) / 1000:.6f}\t"
            f"{i % 5000}\t{i % 3000}\t{states[i]}\tF\tT\t0\tSr\t1\t60\t1\t40\t-"
        ).encode()
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def conn_tsv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uncompressed Zeek TSV conn log of ``ROWS`` rows (real rows replayed when available)."""
    rows = _real_rows() if SHARED.is_dir() else _synthetic_rows(min(ROWS, 200_000))
    out = tmp_path_factory.mktemp("zeek") / "conn.log"
    # shift ts (column 2) by whole replays; text surgery keeps the original 6-decimal format
    split = [r.split(b"\t", 2) for r in rows]
    heads = [s[0] for s in split]
    ts = np.array([float(s[1]) for s in split])
    tails = [s[2] for s in split]
    written = 0
    with out.open("wb") as f:
        f.write(HEADER.encode())
        replay = 0
        while written < ROWS:
            take = min(len(rows), ROWS - written)
            shifted = ts[:take] + replay * SHIFT
            f.write(
                b"".join(b"%s\t%.6f\t%s\n" % (heads[i], shifted[i], tails[i]) for i in range(take))
            )
            written += take
            replay += 1
        f.write(b"#close\t2024-04-22-00-00-00\n")
    return out


def _detect(path: Path) -> int:
    ctx = ReadContext(path, batch_size=65_536)
    return sum(b.num_rows for b in zeek_tsv.read_batches(ctx))


_DUCK_SQL = """
SELECT make_timestamp(CAST(round(CAST(ts AS DOUBLE) * 1e6) AS BIGINT)) AS "@timestamp",
       uid AS "event.id",
       "id.orig_h" AS "source.ip", CAST("id.orig_p" AS USMALLINT) AS "source.port",
       "id.resp_h" AS "destination.ip", CAST("id.resp_p" AS USMALLINT) AS "destination.port",
       proto AS "network.transport", service AS "network.protocol",
       CAST(round(CAST(duration AS DOUBLE) * 1e6) AS BIGINT) * 1000 AS "event.duration",
       CAST(orig_bytes AS UBIGINT) AS "source.bytes",
       CAST(resp_bytes AS UBIGINT) AS "destination.bytes",
       CAST(orig_pkts AS UBIGINT) AS "source.packets",
       CAST(resp_pkts AS UBIGINT) AS "destination.packets",
       conn_state AS "network.connection.state", _node_name AS "observer.name"
FROM read_csv(?, delim = '\t', comment = '#', header = false, quote = '', escape = '',
              nullstr = '-', columns = {columns}, auto_detect = false)
"""


def _duckdb(path: Path) -> int:
    columns = "{" + ", ".join(f"'{f}': 'VARCHAR'" for f in FIELDS) + "}"
    con = duckdb.connect()
    try:
        query = _DUCK_SQL.replace("{columns}", columns)
        table = con.sql(query, params=[str(path)]).to_arrow_table()
    finally:
        con.close()
    return table.num_rows


def _polars(path: Path) -> int:
    df = pl.read_csv(
        path,
        separator="\t",
        comment_prefix="#",
        has_header=False,
        new_columns=FIELDS,
        quote_char=None,
        null_values="-",
        infer_schema=False,
    )
    out = df.select(
        (pl.col("ts").cast(pl.Float64) * 1e6).round().cast(pl.Int64).cast(pl.Datetime("us", "UTC")),
        pl.col("uid"),
        pl.col("id.orig_h"),
        pl.col("id.orig_p").cast(pl.UInt16),
        pl.col("id.resp_h"),
        pl.col("id.resp_p").cast(pl.UInt16),
        pl.col("proto").cast(pl.Categorical),
        pl.col("service").cast(pl.Categorical),
        ((pl.col("duration").cast(pl.Float64) * 1e6).round().cast(pl.Int64) * 1000),
        pl.col("orig_bytes").cast(pl.UInt64),
        pl.col("resp_bytes").cast(pl.UInt64),
        pl.col("orig_pkts").cast(pl.UInt64),
        pl.col("resp_pkts").cast(pl.UInt64),
        pl.col("conn_state").cast(pl.Categorical),
        pl.col("_node_name").cast(pl.Categorical),
    ).to_arrow()
    return out.num_rows


def test_correct_before_timing(conn_tsv: Path) -> None:
    """All three agree on the row count, and the reader's batches are canonical."""
    ctx = ReadContext(conn_tsv, batch_size=65_536)
    first = next(iter(zeek_tsv.read_batches(ctx)))
    assert first.schema == CANONICAL_SCHEMA
    assert first.num_rows == 65_536
    assert _detect(conn_tsv) == _duckdb(conn_tsv) == _polars(conn_tsv) == ROWS


@pytest.mark.parametrize(
    "impl",
    [
        pytest.param(_detect, id="detect"),
        pytest.param(_duckdb, id="duckdb"),
        pytest.param(_polars, id="polars"),
    ],
)
def test_zeek_tsv_conn(benchmark: pytest.FixtureRequest, conn_tsv: Path, impl: object) -> None:
    benchmark.group = f"zeek-tsv-conn-{ROWS}"
    rows = benchmark.pedantic(impl, args=(conn_tsv,), rounds=3, iterations=1, warmup_rounds=1)
    assert rows == ROWS
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        RESULTS[impl.__name__.lstrip("_")] = stats.stats.mean  # type: ignore[attr-defined]


def test_report_ratio() -> None:
    """Print detect / DuckDB and detect / polars (run with ``-s``)."""
    if not {"detect", "duckdb", "polars"} <= RESULTS.keys():
        pytest.skip("benchmarks disabled: run with --benchmark-enable to get ratios")
    d, k, p = RESULTS["detect"], RESULTS["duckdb"], RESULTS["polars"]
    print(
        f"\nzeek tsv conn {ROWS} rows: detect {d:.3f}s  duckdb {k:.3f}s  polars {p:.3f}s  "
        f"detect/duckdb {d / k:.2f}x  detect/polars {d / p:.2f}x"
    )
