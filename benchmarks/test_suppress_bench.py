"""Warninglist suppression at real scale: 1.85M Maltrail trails against all 136 MISP lists.

Run ``python -m pytest benchmarks/test_suppress_bench.py -q -s -p no:cacheprovider``
for numbers; ``--benchmark-disable`` runs each body once. Each test prints our time,
the obvious polars and DuckDB ways of the same job on the same data, and the ratios.
The DuckDB hostname join (``ends_with`` against every listed name) is a nested loop,
so it runs on a slice and the ratio is taken on that slice.

Trails are typed with a few vectorised rules (IP, ``ip:port`` -> IP, ``/`` -> URL,
else domain), not the Maltrail loader, so the benchmark stands alone.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from _timing import best as _best
from detect.indicators.model import indicator_table
from detect.indicators.suppress import suppress
from detect.indicators.warninglists import _v4_key, ip_ranges, load_warninglists

pytestmark = pytest.mark.benchmark

DATASETS = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
TRAILS = DATASETS / "iocs" / "maltrail" / "trails-static.tar.gz"
LISTS = DATASETS / "warninglists" / "lists"


def _report(name: str, ours: float, others: dict[str, float], n: int) -> None:
    parts = [f"{name}: ours {ours * 1e3:.0f} ms ({n / ours / 1e6:.2f} M rows/s)"]
    parts += [f"{k} {v * 1e3:.0f} ms (x{v / ours:.2f})" for k, v in others.items()]
    print("\n" + "; ".join(parts))


def _trails() -> pa.Table:
    lines: list[str] = []
    with tarfile.open(TRAILS) as tar:
        for member in tar:
            f = tar.extractfile(member) if member.isfile() else None
            if f is not None:
                lines.extend(f.read().decode("utf-8", "replace").splitlines())
    df = pl.DataFrame({"raw": pl.Series(lines).str.replace(r"#.*$", "").str.strip_chars()})
    df = df.filter(pl.col("raw") != "").with_columns(
        pl.col("raw").str.replace(r"^(\d{1,3}(?:\.\d{1,3}){3}):\d+$", "$1").alias("v")
    )
    kind = (
        pl.when(pl.col("v").str.contains(r"^\d{1,3}(\.\d{1,3}){3}$"))
        .then(pl.lit("ip"))
        .when(pl.col("v").str.contains("/", literal=True))
        .then(pl.lit("url"))
        .otherwise(pl.lit("domain"))
    )
    df = df.with_columns(kind.alias("type")).with_columns(
        pl.when(pl.col("type") == "url")
        .then(
            pl.when(pl.col("v").str.contains("://", literal=True))
            .then(pl.col("v"))
            .otherwise(pl.lit("http://") + pl.col("v"))
        )
        .when(pl.col("type") == "domain")
        .then(pl.col("v").str.to_lowercase())
        .otherwise(pl.col("v"))
        .alias("value")
    )
    n = df.height
    return indicator_table(
        {
            "type": df["type"].to_arrow(),
            "value": df["value"].to_arrow(),
            "source": pa.array(np.full(n, "maltrail", dtype=object)),
        }
    )


@pytest.fixture(scope="module")
def data() -> tuple[pa.Table, object]:
    if not TRAILS.is_file() or not LISTS.is_dir():
        pytest.skip("needs ../shared/datasets (maltrail and warninglists)")
    return _trails(), load_warninglists([LISTS])


def test_load_lists(benchmark) -> None:
    if not LISTS.is_dir():
        pytest.skip("needs ../shared/datasets/warninglists")
    lists = benchmark.pedantic(load_warninglists, args=([LISTS],), rounds=1, iterations=1)
    assert len(lists.lists) == 136
    print(f"\nload 136 lists: {_best(lambda: load_warninglists([LISTS]), 1) * 1e3:.0f} ms")


def test_suppress_all(benchmark, data) -> None:
    table, lists = data
    suppress(table.slice(0, 1000), lists)  # numba IP parser from cache, outside the timing
    kept, removed = benchmark.pedantic(suppress, args=(table, lists), rounds=1, iterations=1)
    assert kept.num_rows + removed.num_rows == table.num_rows
    assert removed.num_rows > 100_000
    ours = _best(lambda: suppress(table, lists), 2)
    print(f"\n{table.num_rows:,} indicators, {removed.num_rows:,} removed")
    _report("suppress, all 136 lists", ours, {}, table.num_rows)


def _hostname_frames(table: pa.Table, lists) -> tuple[pl.DataFrame, pl.DataFrame]:
    df = pl.from_arrow(table.select(["type", "value"]))
    domains = df.filter(pl.col("type") == "domain").select(pl.col("value").alias("name"))
    names = pl.from_arrow(lists.hostnames).select(pl.col("value").alias("entry")).unique()
    return domains.with_row_index("row"), names


def _only(lists, kind: str):
    """A copy of the set holding only one match type (same lists, same applicability)."""
    from dataclasses import replace

    keep = {"hostname": ("hostnames",), "cidr": ("v4", "v6")}[kind]
    return replace(
        lists,
        strings=None,
        substrings={},
        regexes={},
        **{k: None for k in ("hostnames", "v4", "v6") if k not in keep},
    )


def test_hostname_suffix(benchmark, data) -> None:
    table, lists = data
    domains_only = table.filter(pc.equal(table["type"], "domain"))
    hosts = _only(lists, "hostname")
    _, removed = benchmark.pedantic(suppress, args=(domains_only, hosts), rounds=1, iterations=1)
    ours = _best(lambda: suppress(domains_only, hosts), 2)
    doms, names = _hostname_frames(domains_only, lists)

    def polars_explode() -> pl.DataFrame:  # every suffix as rows, one join
        parts = pl.col("name").str.split(".")
        suffixes = pl.int_ranges(0, parts.list.len() - 1).alias("k")
        return (
            doms.with_columns(suffixes)
            .explode("k")
            .with_columns(
                pl.col("name").str.split(".").list.slice(pl.col("k")).list.join(".").alias("entry")
            )
            .join(names, on="entry", how="semi")
            .select("row")
            .unique()
        )

    got = polars_explode().height
    assert got == removed.num_rows, (got, removed.num_rows)
    others = {"polars split/explode/join": _best(polars_explode, 2)}
    _report("hostname suffix (all domain trails x 86k names)", ours, others, doms.height)

    n = 5_000  # DuckDB's ends_with join is a nested loop: a slice, same job for both
    part = domains_only.slice(0, n)
    ours_n = _best(lambda: suppress(part, hosts), 2)
    con = duckdb.connect()
    con.register("d", pa.table({"name": part["value"]}))
    con.register("h", names.to_arrow())
    sql = (
        "SELECT count(DISTINCT d.name) FROM d JOIN h ON d.name = h.entry"
        " OR ends_with(d.name, '.' || h.entry)"
    )
    duck = _best(lambda: con.sql(sql).fetchall(), 1)
    _report(f"hostname suffix ({n:,} domains)", ours_n, {"duckdb ends_with join": duck}, n)


def test_cidr_containment(benchmark, data) -> None:
    table, lists = data
    ips = table.filter(pc.equal(table["type"], "ip"))
    cidr = _only(lists, "cidr")
    _, removed = benchmark.pedantic(suppress, args=(ips, cidr), rounds=1, iterations=1)
    ours = _best(lambda: suppress(ips, cidr), 2)

    lo, _, _, ok = ip_ranges(ips["value"].combine_chunks())
    q = pa.table({"row": np.flatnonzero(ok), "ip": _v4_key(lo[ok]).astype(np.int64)})
    v4 = lists.v4
    nets = pa.table({"lo": v4.start.astype(np.int64), "hi": _ends(v4)})
    con = duckdb.connect()
    con.register("q", q)
    con.register("n", nets)
    sql = "SELECT count(DISTINCT q.row) FROM q JOIN n ON q.ip BETWEEN n.lo AND n.hi"
    assert con.sql(sql).fetchall()[0][0] == removed.num_rows
    qp, np_ = pl.from_arrow(q), pl.from_arrow(nets)

    def polars_join_where() -> int:
        return qp.join_where(np_, pl.col("ip") >= pl.col("lo"), pl.col("ip") <= pl.col("hi"))[
            "row"
        ].n_unique()

    others = {
        "duckdb range join": _best(lambda: con.sql(sql).fetchall(), 2),
        "polars join_where": _best(polars_join_where, 2),
    }
    _report(
        f"cidr containment ({len(q):,} IPs x {len(nets):,} v4 networks)", ours, others, ips.num_rows
    )


def _ends(index) -> np.ndarray:
    """Each entry's own end (the index keeps running maxima): start | host bits."""
    prefix = index.prefix.astype(np.int64)
    host = (np.int64(1) << (32 - prefix)) - 1
    return index.start.astype(np.int64) | host
