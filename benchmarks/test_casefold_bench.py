"""Unicode case folding (``str.casefold``) of a string column beside the lower-casing others have.

Run ``python -m pytest benchmarks/test_casefold_bench.py -q -s -p no:randomly`` for numbers
(``DETECT_BENCH_ROWS`` rows, default 1,000,000). Competitors: ``pyarrow.compute.utf8_lower``,
polars ``str.to_lowercase`` and DuckDB ``lower``, one thread each. They lower-case, which
is *not* case folding ('ß', 'ẞ', 'ﬁ', 'ς', Cherokee, ...), so they are timed for the
cost, not the answer; ours is checked against Python's ``str.casefold`` on a sample
first. The goal: folding costs no more than ~1.5x ``utf8_lower`` on mostly-ASCII data.
One line per data set: our time, each competitor's, and the ratio (theirs / ours; > 1
means we are faster). Data are seeded; the JIT is warmed on a slice first, and
compile time is measured apart in fresh processes (``test_compile_time_apart``).

Data (host names and URLs built with polars, no per-row Python; 10 % upper case):

- ``ascii``: host names only ASCII, the common case (one flat pass);
- ``idn``: URLs, 2 % with an internationalised label ('bücher', 'пример', 'ΑΘΗΝΑ',
  '例え', 'straße') whose folds keep their byte length (folded in place);
- ``idn_resizing``: as ``idn`` but the labels hold 'İ', 'ẞ', 'ﬁ', 'ΐ', whose folds change
  the byte length, so the result is rebuilt in a second buffer (the slow path).
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("POLARS_MAX_THREADS", "1")  # before polars builds its pool

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from _timing import best, compile_cold_and_warm
from detect.kernels.casefold import casefold, casefold_table

pytestmark = pytest.mark.benchmark

_WORDS = ["www", "Login", "CDN", "api", "Mail", "static", "google", "Example", "update", "s3"]
_TLDS = ["com", "net", "ORG", "de", "ru", "co.uk", "io"]
_IDN = {
    "idn": ["bücher", "münchen", "Straße", "пример", "ΑΘΗΝΑ", "例え", "ÖBB", "Ελλάδα"],
    "idn_resizing": ["İstanbul", "GROẞ", "ﬁle", "ΐota", "bücher", "пример"],
}


def _pick(rng: np.random.Generator, words: list[str], n: int) -> pl.Series:
    return pl.Series(words).gather(rng.integers(0, len(words), n))


def _data(kind: str, n: int) -> pa.Array:
    rng = np.random.default_rng(7)
    num = pl.Series(rng.integers(0, 10**6, n)).cast(pl.Utf8)
    host = pl.concat_str(
        [_pick(rng, _WORDS, n), pl.lit("k") + num, _pick(rng, _TLDS, n)], separator="."
    )
    if kind == "ascii":
        col = host
    else:
        idn = pl.Series(rng.random(n) < 0.02)
        host = (
            pl.when(idn)
            .then(pl.concat_str([_pick(rng, _IDN[kind], n), host], separator="."))
            .otherwise(host)
        )
        col = pl.lit("https://") + host + pl.lit("/Path/Index.HTML?id=") + num
    upper = pl.Series(rng.random(n) < 0.1)
    s = pl.select(pl.when(upper).then(col.str.to_uppercase()).otherwise(col)).to_series()
    arr = s.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.string())


@pytest.mark.parametrize("kind", ["ascii", "idn", "idn_resizing"])
def test_casefold(benchmark, con, bench_rows: int, kind: str) -> None:
    """Fold ``bench_rows`` strings vs lower-casing them with pyarrow, polars and DuckDB."""
    arr = _data(kind, bench_rows)
    t0 = time.perf_counter()
    casefold_table.__wrapped__()
    table_s = time.perf_counter() - t0
    casefold(arr.slice(0, 100))  # JIT warm-up
    got = casefold(arr)
    sample = np.random.default_rng(1).integers(0, len(arr), 20_000)
    want = [v.casefold() for v in arr.take(pa.array(sample)).to_pylist()]
    assert got.take(pa.array(sample)).to_pylist() == want
    non_ascii = pc.sum(pc.invert(pc.string_is_ascii(arr))).as_py() or 0

    series = pl.Series(arr)
    con.register("ev", pa.table({"d": arr}))
    benchmark.pedantic(lambda: casefold(arr), rounds=3, iterations=1)
    ours = best(lambda: casefold(arr), 5)
    others = {
        "pyarrow utf8_lower": best(lambda: pc.utf8_lower(arr), 5),
        "polars to_lowercase": best(series.str.to_lowercase, 5),
        "duckdb lower": best(lambda: con.sql("SELECT lower(d) FROM ev").to_arrow_table(), 3),
    }
    parts = [
        f"casefold [{kind}] ({len(arr)} rows, {arr.nbytes / 1e6:.0f} MB, "
        f"{non_ascii / len(arr):.1%} non-ASCII): ours {ours * 1e3:.1f} ms "
        f"({arr.nbytes / ours / 1e9:.2f} GB/s)"
    ]
    parts += [f"{k} {v * 1e3:.1f} ms (x{v / ours:.2f})" for k, v in others.items()]
    print("\n" + "; ".join(parts) + f"; fold table build {table_s * 1e3:.0f} ms (once)")


def test_compile_time_apart() -> None:
    """Cold compile of the casefold kernels (empty cache) and warm start, in fresh processes."""
    code = (
        "import time, pyarrow as pa; t0 = time.perf_counter();"
        "from detect.kernels.casefold import casefold;"
        "t1 = time.perf_counter(); casefold(pa.array(['ABC', 'Straße', 'GROẞ', None]));"
        "print(f'{t1 - t0:.2f} {time.perf_counter() - t1:.2f}')"
    )
    (imp_cold, cold), (imp_warm, warm) = compile_cold_and_warm(code)
    print(
        f"\ncasefold compile (+ fold table): cold {cold:.2f} s (import {imp_cold:.2f} s); "
        f"warm cache {warm:.2f} s (import {imp_warm:.2f} s)"
    )
    assert warm < cold
