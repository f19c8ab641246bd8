"""Sigma ``contains`` with many patterns on one column, case-insensitive, beside polars and DuckDB.

Run ``python -m pytest benchmarks/test_sigma_contains_bench.py -q -s -p no:randomly`` for
numbers (``DETECT_BENCH_ROWS``, default 1,000,000); ``--benchmark-disable`` runs every
body once. Issue 4 §4 target: with 100 and with 10k patterns, >= 3x polars
``str.contains_any``.

Data (seeded): URL-like values of ~45 bytes (``https://<host>.<tld>/<dir>/<file>.<ext>?id=<n>``)
made of the same syllables as the patterns, so the automaton walks partial matches all
the time; 5 % of rows upper case; 2 % of rows get a pattern planted in the middle.
Patterns: lower-case ``/<word>.php``, ``<word>-<word>.exe``, ``?<word>=``, ``/<word>/``.

Ours is :func:`~detect.kernels.multi_pattern.match_strings` of a ``fold=True`` pattern
set on the raw column, the call the Sigma engine makes: full Unicode case folding
(with ASCII patterns Hyperscan scans the raw bytes ignoring ASCII case and folds only
rows holding one of the 19 characters that fold into ASCII; otherwise the column is
folded with :func:`~detect.kernels.casefold.casefold`); each engine is timed apart.
"ours casefold + exact" times the other way, folding the whole column first.
polars gets ``contains_any(..., ascii_case_insensitive=True)`` (faster than
``to_lowercase`` first, both timed) and DuckDB ``regexp_matches(lower(u), <alternation>)``
(the fastest correct SQL we found: 100 ``contains`` ORed is ~18x slower). RE2 gives up
its DFA on a 10k-way alternation, so at 10k patterns DuckDB runs on a slice of
:data:`DUCK_SLICE_10K` rows and its rate is scaled to the batch. Every competitor's
per-row "any pattern matched" is asserted equal to ours before timing. polars and
DuckDB are pinned to one thread, as we are.
"""

from __future__ import annotations

import os
import re
import time

os.environ.setdefault("POLARS_MAX_THREADS", "1")  # before polars builds its pool

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from _timing import best, compile_cold_and_warm
from detect.kernels.casefold import casefold
from detect.kernels.multi_pattern import CONTAINS, compile_patterns, engines, match_strings

pytestmark = pytest.mark.benchmark

HIT_SHARE = 0.02
UPPER_SHARE = 0.05
DUCK_SLICE_10K = 2_000
_CONSONANTS = "bcdfghjklmnprstvwz"
_SYLLABLES = [c + v for c in _CONSONANTS for v in "aeiou"] + [
    c + v + e for c in _CONSONANTS[:8] for v in "aeiou" for e in "nrst"
]


def _words(rng: np.random.Generator, n: int, syllables: int) -> pl.Series:
    syl = pl.Series(_SYLLABLES)
    parts = [syl.gather(rng.integers(0, len(syl), n)) for _ in range(syllables)]
    return pl.select(pl.concat_str(parts)).to_series()


def _pick(rng: np.random.Generator, words: list[str], n: int) -> pl.Series:
    return pl.Series(words).gather(rng.integers(0, len(words), n))


def _patterns(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct lower-case patterns in four Sigma-like shapes, shuffled."""
    m = n // 2 + 1000
    shapes = [
        pl.concat_str([pl.lit("/"), _words(rng, m, 3), pl.lit(".php")]),
        pl.concat_str([_words(rng, m, 2), pl.lit("-"), _words(rng, m, 2), pl.lit(".exe")]),
        pl.concat_str([pl.lit("?"), _words(rng, m, 2), pl.lit("=")]),
        pl.concat_str([pl.lit("/"), _words(rng, m, 4), pl.lit("/")]),
    ]
    pats = pl.concat([pl.select(s).to_series() for s in shapes]).unique(maintain_order=True)
    return pats.sample(n, seed=int(rng.integers(0, 2**31))).to_list()


def _column(rng: np.random.Generator, n: int, patterns: list[str]) -> pl.Series:
    """URL-like values, 2 % with a pattern planted mid-string, 5 % upper case."""
    urls = pl.select(
        pl.concat_str(
            [
                pl.lit("https://"),
                _words(rng, n, 2),
                pl.lit("."),
                _pick(rng, ["com", "net", "org", "io", "de"], n),
                pl.lit("/"),
                _words(rng, n, 2),
                pl.lit("/"),
                _words(rng, n, 3),
                pl.lit("."),
                _pick(rng, ["html", "php", "js", "png", "css", "json"], n),
                pl.lit("?id="),
                pl.Series(rng.integers(0, 10**6, n)).cast(pl.Utf8),
            ]
        )
    ).to_series()
    hit = np.flatnonzero(rng.random(n) < HIT_SHARE)
    host = urls.gather(hit)
    planted = pl.select(
        pl.concat_str([host.str.slice(0, 30), _pick(rng, patterns, len(hit)), host.str.slice(30)])
    ).to_series()
    urls = urls.scatter(hit, planted)
    upper = pl.Series(rng.random(n) < UPPER_SHARE)
    return pl.select(pl.when(upper).then(urls.str.to_uppercase()).otherwise(urls)).to_series()


def _any_row(rows: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=np.bool_)
    out[rows] = True
    return out


@pytest.mark.parametrize("n_patterns", [100, 10_000])
def test_contains_any(benchmark, con, bench_rows: int, n_patterns: int) -> None:
    """Case-insensitive multi-pattern contains vs polars contains_any (target >= 3x)."""
    rng = np.random.default_rng(11)
    n = bench_rows
    patterns = _patterns(rng, n_patterns)
    col = _column(rng, n, patterns)
    arr = col.to_arrow()
    t0 = time.perf_counter()
    pset = compile_patterns([p.encode() for p in patterns], [CONTAINS] * n_patterns, fold=True)
    build = time.perf_counter() - t0
    exact = compile_patterns([p.encode() for p in patterns], [CONTAINS] * n_patterns)
    for engine in engines():  # compile / warm outside the timing
        match_strings(pset, arr.slice(0, 100), engine=engine)
        match_strings(exact, casefold(arr.slice(0, 100)), engine=engine)

    def ours(engine: str):
        return lambda: match_strings(pset, arr, engine=engine)

    def ours_fold_first() -> tuple[np.ndarray, np.ndarray]:
        return match_strings(exact, casefold(arr))

    want = _any_row(ours_fold_first()[0], n)
    for engine in engines():
        assert np.array_equal(_any_row(ours(engine)()[0], n), want), engine

    def polars_ci() -> pl.Series:
        return col.str.contains_any(patterns, ascii_case_insensitive=True)

    def polars_lower() -> pl.Series:
        return col.str.to_lowercase().str.contains_any(patterns)

    assert np.array_equal(polars_ci().to_numpy(), want)
    assert np.array_equal(polars_lower().to_numpy(), want)

    duck_n = n if n_patterns <= 1000 else min(n, DUCK_SLICE_10K)
    con.register("ev", pa.table({"u": arr.slice(0, duck_n)}))
    alternation = "|".join(re.escape(p) for p in patterns)
    duck_sql = "SELECT regexp_matches(lower(u), ?) AS m FROM ev"

    def duck() -> np.ndarray:
        return con.execute(duck_sql, [alternation]).fetchnumpy()["m"]

    assert np.array_equal(np.asarray(duck(), dtype=np.bool_), want[:duck_n])

    benchmark.pedantic(ours("auto"), rounds=3, iterations=1)
    times = {f"ours {e}": best(ours(e), 3) for e in (*engines(), "auto")}
    times["ours casefold + exact (auto)"] = best(ours_fold_first, 3)
    lower = best(lambda: casefold(arr), 3)
    theirs = {
        "polars contains_any(ascii_case_insensitive)": best(polars_ci, 2),
        "polars to_lowercase + contains_any": best(polars_lower, 1),
        "duckdb regexp_matches(lower(u), alternation)": best(duck, 1) * n / duck_n,
    }
    polars_best = min(v for k, v in theirs.items() if k.startswith("polars"))
    rate = {k: n / v / 1e6 for k, v in {**times, **theirs}.items()}
    print(
        f"\nsigma contains, {n_patterns} patterns, {n} rows ({want.mean():.1%} match),"
        f" {pset.trans.nbytes / 1e6:.1f} MB DFA, compile_patterns {build * 1e3:.0f} ms,"
        f" casefold of the column {lower * 1e3:.0f} ms"
    )
    for k, v in {**times, **theirs}.items():
        ratio = f" (x{polars_best / v:.2f} polars)" if k.startswith("ours") else ""
        scaled = " [on a slice, scaled]" if k.startswith("duckdb") and duck_n < n else ""
        print(f"  {k}: {v * 1e3:.0f} ms, {rate[k]:.3g} M events/s{ratio}{scaled}")


def test_compile_time_apart() -> None:
    """Cold compile of the kernels of both engines (empty cache) and warm start, fresh processes."""
    code = (
        "import time, pyarrow as pa; t0 = time.perf_counter();"
        "from detect.kernels import multi_pattern as mp;"
        "t1 = time.perf_counter(); s = pa.array(['a.b', 'c', None]);"
        "p = mp.compile_patterns([b'a', b'c'], [mp.CONTAINS, mp.EQUALS]);"
        "[mp.match_strings(p, a, engine=e) for e in mp.engines()"
        " for a in (s, s.cast(pa.large_string()))];"
        "print(f'{t1 - t0:.2f} {time.perf_counter() - t1:.2f}')"
    )
    (imp_cold, cold), (imp_warm, warm) = compile_cold_and_warm(code)
    print(
        f"\nmulti-pattern kernels compile (string + large_string): cold {cold:.2f} s"
        f" (import {imp_cold:.2f} s); warm cache {warm:.2f} s (import {imp_warm:.2f} s)"
    )
    assert warm < cold
