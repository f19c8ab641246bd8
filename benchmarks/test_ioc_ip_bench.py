"""Indicator matching kernels beside the fastest polars and DuckDB ways, one thread each.

Run ``python -m pytest benchmarks/test_ioc_ip_bench.py -q -s -p no:randomly`` for numbers
(``DETECT_BENCH_EVENTS``, default 10,000,000, and ``DETECT_BENCH_INDICATORS``,
default 1,000,000, per indicator type); ``--benchmark-disable`` runs every body once.
Each test asserts that every competitor gives our answer before it times anything,
then prints one line: our time, each competitor's, and the ratio (theirs / ours;
> 1 means we are faster). Data are seeded; the JIT is warmed on a slice first, and
compile time is measured apart in fresh processes (``test_compile_time_apart``).

The competitors get every advantage we could think of: polars and DuckDB are pinned
to one thread, IPs are given to them as integers already where the test says so,
and for CIDRs they join against *our* flattened disjoint ranges (so they skip the
nested-prefix problem entirely). Event distribution: uniform random values with a
1 % share drawn from the indicators (worst case for caches, for them and for us);
``test_ip_text_realistic`` adds the realistic case (50k distinct addresses, Zipf-like
counts), as a plain string column and dictionary-encoded.

Which comparison a target refers to (issue 3): "text IPs >= 5x" is parse + probe
against the fastest competitor giving the same answer (polars ``is_in`` on the raw
text). The pipeline parses IPs once at ingest (``enrich``) for every purpose, so
the "probe of the parsed-once column" line is printed apart and is not the target.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from _ioc_common import (
    EVENTS,
    INDICATORS,
    _draw_events,
    _report,
    _time,
    _v4_matrix,
)
from _timing import best
from detect import arrow_buffers as ab
from detect.enrich import ip_to_bin
from detect.kernels.ip_set import build_ip_set, probe_ip_set, probe_ip_text
from detect.kernels.prefix_match import build_prefix_index, probe_prefix

pytestmark = pytest.mark.benchmark


@pytest.fixture(scope="module")
def v4() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    ind = np.unique(rng.integers(0, 2**32, INDICATORS, dtype=np.uint32))
    ev = _draw_events(rng, ind, rng.integers(0, 2**32, EVENTS, dtype=np.uint32))
    return ind, ev


def test_ip_v4_integers(benchmark, v4, con) -> None:
    """16-byte IPs vs polars ``is_in`` / DuckDB ``IN`` on uint32 IPs (target >= 1.5x polars)."""
    ind, ev = v4
    index = build_ip_set(_v4_matrix(ind), np.arange(len(ind)))
    matrix = _v4_matrix(ev)
    probe_ip_set(index, matrix[:10])  # JIT warm-up outside the timing
    ours_ids = probe_ip_set(index, matrix)
    s, members = pl.Series("ip", ev), pl.Series("ip", ind).implode()
    assert np.array_equal(ours_ids >= 0, s.is_in(members).to_numpy())
    con.register("ev", pa.table({"ip": ev}))
    con.register("ind", pa.table({"ip": ind}))
    duck_sql = "SELECT ip IN (SELECT ip FROM ind) AS hit FROM ev"
    assert int(con.execute(f"SELECT count(*) FROM ({duck_sql}) WHERE hit").fetchall()[0][0]) == int(
        (ours_ids >= 0).sum()
    )
    ours = _time(benchmark, lambda: probe_ip_set(index, matrix))
    _report(
        "IPv4 membership (16-byte kernel vs integer IPs)",
        ours,
        {
            "polars is_in u32": best(lambda: s.is_in(members)),
            "duckdb IN u32": best(lambda: con.sql(duck_sql).to_arrow_table(), 1),
        },
        len(ev),
    )


def test_ip_text(benchmark, v4, con) -> None:
    """From the text users have: ours parses once + probes (target >= 5x)."""
    ind, ev = v4
    n = min(len(ev), EVENTS)
    text = (
        pl.DataFrame(
            {f"o{i}": (ev[:n] >> np.uint32(24 - 8 * i)) & np.uint32(255) for i in range(4)}
        )
        .select(pl.concat_str([pl.col(f"o{i}").cast(pl.Utf8) for i in range(4)], separator="."))
        .to_series()
        .to_arrow()
    )
    ind_text = (
        pl.DataFrame({f"o{i}": (ind >> np.uint32(24 - 8 * i)) & np.uint32(255) for i in range(4)})
        .select(pl.concat_str([pl.col(f"o{i}").cast(pl.Utf8) for i in range(4)], separator="."))
        .to_series()
    )
    index = build_ip_set(ip_to_bin(ind_text.to_arrow()), np.arange(len(ind)))
    probe_ip_set(index, ip_to_bin(text.slice(0, 10)))

    def ours_fn() -> np.ndarray:  # fused: text filter, parse only candidates
        return probe_ip_text(index, text)

    def ours_parse_all() -> np.ndarray:  # parse every row to 16 bytes, then probe
        return probe_ip_set(index, ip_to_bin(text))

    ours_ids = ours_fn()
    assert np.array_equal(ours_ids, ours_parse_all())
    df = pl.from_arrow(pa.table({"ip": text}))
    members_text = ind_text.implode()
    members_int = pl.Series(ind).implode()
    parts = pl.col("ip").str.split_exact(".", 3).struct

    def polars_parse() -> pl.DataFrame:
        as_int = sum(
            parts.field(f"field_{i}").cast(pl.UInt32, strict=False) * (1 << (24 - 8 * i))
            for i in range(4)
        )
        return df.select(as_int.is_in(members_int))

    def polars_text() -> pl.DataFrame:  # raw text equality: wrong for "::ffff:1.2.3.4" etc.
        return df.select(pl.col("ip").is_in(members_text))

    hits = ours_ids >= 0
    assert np.array_equal(polars_parse().to_series().to_numpy(), hits)
    assert np.array_equal(polars_text().to_series().to_numpy(), hits)
    con.register("evt", pa.table({"ip": text}))
    con.register("indt", pa.table({"ip": ind_text.to_arrow()}))
    duck_sql = "SELECT ip IN (SELECT ip FROM indt) AS hit FROM evt"
    parsed = ip_to_bin(text)  # what the pipeline holds after enrich (parse once at ingest)
    probe_only = best(lambda: probe_ip_set(index, parsed), 3)
    ours = _time(benchmark, ours_fn)
    _report(
        "IP membership, uniform text: probe of the parsed-once column (enrich) vs text",
        probe_only,
        {"polars is_in on raw text": best(polars_text, 2)},
        n,
    )
    _report(
        "IP membership, uniform text: probe_ip_text (target >= 5x)",
        ours,
        {
            "ours ip_to_bin + probe_ip_set": best(ours_parse_all, 2),
            "polars split/cast + is_in": best(polars_parse, 2),
            "polars is_in on raw text": best(polars_text, 2),
            "duckdb IN on raw text": best(lambda: con.sql(duck_sql).to_arrow_table(), 1),
        },
        n,
    )


def _dotted(v: np.ndarray) -> pl.Series:
    return (
        pl.DataFrame({f"o{i}": (v >> np.uint32(24 - 8 * i)) & np.uint32(255) for i in range(4)})
        .select(pl.concat_str([pl.col(f"o{i}").cast(pl.Utf8) for i in range(4)], separator="."))
        .to_series()
    )


@pytest.mark.parametrize("layout", ["string", "dictionary"])
def test_ip_text_realistic(benchmark, v4, con, layout: str) -> None:
    """Text IPs as telemetry has them: 50k distinct addresses, Zipf-like counts, 10M events.

    ``string``: a plain string column (every row parsed); ``dictionary``: the same
    values dictionary-encoded, as Parquet/Arrow readers often deliver repeated
    strings (ours parses and probes each distinct value once and gathers; polars
    gets the same column as Categorical, DuckDB as its dictionary-backed VARCHAR).
    """
    ind, _ = v4
    rng = np.random.default_rng(4)
    distinct = 50_000
    pool = rng.integers(0, 2**32, distinct, dtype=np.uint32)
    pool[: distinct // 100] = rng.choice(ind, distinct // 100, replace=False)  # 1 % are indicators
    rng.shuffle(pool)
    weights = 1.0 / np.arange(1, distinct + 1) ** 1.1
    ev = pool[rng.choice(distinct, EVENTS, p=weights / weights.sum())]
    text = _dotted(ev).to_arrow()
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    text = text.cast(pa.string())
    if layout == "dictionary":
        text = text.dictionary_encode()
    ind_text = _dotted(ind)
    index = build_ip_set(ip_to_bin(ind_text.to_arrow()), np.arange(len(ind)))
    probe_ip_set(index, ip_to_bin(text.slice(0, 10)))

    def ours_fn() -> np.ndarray:  # a dictionary: its 50k entries probed once, gathered
        return probe_ip_text(index, text)

    def ours_parse_all() -> np.ndarray:
        if layout == "dictionary":  # parse the dictionary once, keep the codes
            parsed = pa.DictionaryArray.from_arrays(text.indices, ip_to_bin(text.dictionary))
            return probe_ip_set(index, parsed)  # probes the 50k entries, gathers by code
        return probe_ip_set(index, ip_to_bin(text))

    hits = ours_fn() >= 0
    assert np.array_equal(ours_fn(), ours_parse_all())
    df = pl.from_arrow(pa.table({"ip": text}))
    members_text = ind_text.implode()

    def polars_text() -> pl.DataFrame:
        col = pl.col("ip").cast(pl.Utf8) if layout == "dictionary" else pl.col("ip")
        return df.select(col.is_in(members_text))

    def polars_dict() -> pl.DataFrame:  # categorical: is_in on the categories, gathered
        return df.select(pl.col("ip").is_in(members_text.cast(pl.List(pl.Categorical))))

    assert np.array_equal(polars_text().to_series().to_numpy(), hits)
    others = {
        "ours ip_to_bin + probe_ip_set": best(ours_parse_all, 2),
        "polars is_in on raw text": best(polars_text, 2),
    }
    if layout == "dictionary":
        try:
            got = polars_dict().to_series().to_numpy()
        except pl.exceptions.PolarsError:
            got = None
        if got is not None and np.array_equal(got, hits):
            others["polars is_in on Categorical"] = best(polars_dict, 2)
    con.register("evr", pa.table({"ip": text}))
    con.register("indr", pa.table({"ip": ind_text.to_arrow()}))
    duck_sql = "SELECT ip IN (SELECT ip FROM indr) AS hit FROM evr"
    got = con.sql(duck_sql).to_arrow_table().column("hit").to_numpy()
    assert np.array_equal(got, hits)
    others["duckdb IN on raw text"] = best(lambda: con.sql(duck_sql).to_arrow_table(), 1)
    ours = _time(benchmark, ours_fn)
    _report(f"IP membership, realistic text (50k distinct, {layout}): probe_ip_text", ours,
            others, EVENTS)  # fmt: skip


def test_ip_v6(benchmark, con) -> None:
    """IPv6 membership: ours vs polars ``is_in`` / DuckDB ``IN`` on 16-byte binary."""
    rng = np.random.default_rng(2)
    ind = rng.integers(0, 256, (INDICATORS, 16), dtype=np.uint8)
    ind[:, :4] = [0x20, 0x01, 0x0D, 0xB8]
    ev = _draw_events(rng, ind, rng.integers(0, 256, (EVENTS, 16), dtype=np.uint8))
    ev[: len(ev) // 2, :4] = [0x20, 0x01, 0x0D, 0xB8]
    index = build_ip_set(ind, np.arange(len(ind)))
    probe_ip_set(index, ev[:10])
    ours_ids = probe_ip_set(index, ev)
    ev_arr = ab.fixed_binary_array(ev)
    s = pl.Series("ip", ev_arr.cast(pa.binary()))
    members = pl.Series("ip", ab.fixed_binary_array(ind).cast(pa.binary())).implode()
    assert np.array_equal(ours_ids >= 0, s.is_in(members).to_numpy())
    con.register("ev6", pa.table({"ip": ev_arr.cast(pa.binary())}))
    con.register("ind6", pa.table({"ip": ab.fixed_binary_array(ind).cast(pa.binary())}))
    duck_sql = "SELECT ip IN (SELECT ip FROM ind6) AS hit FROM ev6"
    ours = _time(benchmark, lambda: probe_ip_set(index, ev))
    _report(
        "IPv6 membership",
        ours,
        {
            "polars is_in binary": best(lambda: s.is_in(members), 2),
            "duckdb IN blob": best(lambda: con.sql(duck_sql).to_arrow_table(), 1),
        },
        len(ev),
    )


# ---------------------------------------------------------------- CIDR longest prefix


@pytest.mark.parametrize("n_prefixes", [100_000, 1_000_000])
@pytest.mark.parametrize("family", ["v4", "v6"])
def test_cidr(benchmark, con, n_prefixes: int, family: str) -> None:
    """Longest prefix: ours vs ASOF joins on our own flattened ranges (target >= 5x)."""
    n_prefixes = min(n_prefixes, INDICATORS)
    rng = np.random.default_rng(3)
    if family == "v4":
        nets = _v4_matrix(rng.integers(0, 2**32, n_prefixes, dtype=np.uint32))
        lens = 96 + rng.choice(np.array([8, 12, 16, 20, 24, 28, 32]), n_prefixes,
                               p=[0.01, 0.02, 0.07, 0.1, 0.5, 0.1, 0.2])  # fmt: skip
        ev = _v4_matrix(
            _draw_events(
                rng,
                nets[:, 12:].copy().view(">u4").ravel().astype(np.uint32),
                rng.integers(0, 2**32, EVENTS, dtype=np.uint32),
            )
        )
    else:
        nets = rng.integers(0, 256, (n_prefixes, 16), dtype=np.uint8)
        nets[:, :2] = [0x20, 0x01]
        lens = rng.choice(np.array([32, 40, 48, 56, 64, 128]), n_prefixes)
        ev = rng.integers(0, 256, (EVENTS, 16), dtype=np.uint8)
        ev[:, :2] = [0x20, 0x01]
        pick = rng.random(EVENTS) < 0.3
        ev[pick, :7] = nets[rng.integers(0, n_prefixes, int(pick.sum())), :7]
    index = build_prefix_index(nets, lens, np.arange(n_prefixes))
    probe_prefix(index, ev[:10])
    ours_ids = probe_prefix(index, ev)
    others: dict[str, float] = {}
    if family == "v4":
        starts = pl.DataFrame(
            {
                "start": (index.v4_ranges >> np.uint64(32)).astype(np.int64),
                "id": (index.v4_ranges & np.uint64(0xFFFFFFFF)).astype(np.int64) - 1,
            }
        ).with_columns(pl.col("id").cast(pl.Int32))
        key = ev[:, 12:].copy().view(">u4").ravel().astype(np.int64)
        events = pl.DataFrame({"row": np.arange(len(key)), "ip": key})

        def polars_asof() -> pl.DataFrame:
            return (
                events.sort("ip")
                .join_asof(starts, left_on="ip", right_on="start", strategy="backward")
                .sort("row")
            )

        assert np.array_equal(polars_asof()["id"].to_numpy(), ours_ids)
        others["polars sort + join_asof + sort"] = best(polars_asof, 1)
        con.register("e_v4", pa.table({"row": np.arange(len(key)), "ip": key}))
        con.register("r_v4", starts.to_arrow())
    else:
        hi = index.v6_bounds[:, 0].astype(object)
        lows = index.v6_bounds[:, 1]
        starts_py = [(int(h) << 64) | int(lo) for h, lo in zip(hi, lows, strict=True)]
        rng_tab = pa.table(
            {
                "start": pa.array([str(x) for x in starts_py]),
                "id": index.v6_bounds[:, 2].view(np.int64).astype(np.int32),
            }
        )  # UHUGEINT via text: Arrow has no 128-bit integers
        con.register("r_text", rng_tab)
        con.execute(
            "CREATE OR REPLACE TABLE r_v6 AS SELECT start::UHUGEINT AS start, id FROM r_text"
        )
        be = ev.view(">u8")
        con.register(
            "e_parts",
            pa.table(
                {
                    "row": np.arange(len(ev)),
                    "hi": be[:, 0].astype(np.uint64),
                    "lo": be[:, 1].astype(np.uint64),
                }
            ),
        )
        con.execute(
            "CREATE OR REPLACE TABLE e_v6 AS SELECT row, "
            "(hi::UHUGEINT << 64) | lo::UHUGEINT AS ip FROM e_parts"
        )
    duck_sql = (  # table names are constants of this test, not user input
        f"SELECT e.row, r.id FROM e_{family} e ASOF LEFT JOIN r_{family} r"
        " ON e.ip >= r.start ORDER BY e.row"
    )
    got = con.sql(duck_sql).to_arrow_table().column("id").to_numpy()
    assert np.array_equal(got, ours_ids)
    others["duckdb ASOF join + order"] = best(lambda: con.sql(duck_sql).to_arrow_table(), 1)
    ours = _time(benchmark, lambda: probe_prefix(index, ev))
    _report(f"CIDR longest prefix {family}, {n_prefixes} prefixes", ours, others, len(ev))


# ---------------------------------------------------------------- domain suffix
