"""The compiled indicator index: build time, and the cached load a cron job pays every run.

``python -m pytest benchmarks/test_index_cache_bench.py -q -s`` writes plain-list feeds
of ``DETECT_BENCH_INDEX_INDICATORS`` (default 10M) indicators once (IPv4, IPv6, domains
and SHA-256 in equal parts, kept in ``.benchmarks/data``), builds the index cold (parse,
merge, compile, save) and loads it from the cache; target: cached load < 2 s for 10M.
``test_compile_1m`` times the build from a loaded indicator table (merge, then kernel
arrays) for 1M indicators, a fifth of each of five types (target: < 5 s); feed parsing
is measured by the cold build above.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from detect.config import load_settings
from detect.indicators.engine import IndicatorEngine, compile_arrays, load_index
from detect.indicators.merge import merge
from detect.indicators.model import indicator_table

pytestmark = pytest.mark.benchmark

DATA = Path(__file__).resolve().parent.parent / ".benchmarks" / "data"


def _feeds(n: int) -> Path:
    """Four plain-list feeds with ``n`` indicators in all (deterministic)."""
    out = DATA / f"feeds-{n}"
    if (out / "done").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    q = n // 4
    v4 = np.unique(rng.integers(1 << 24, 0xDF000000, q, dtype=np.uint32))
    (out / "v4.txt").write_text(
        "\n".join(f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}" for a in v4.tolist())
        + "\n")
    hi = rng.integers(0, 1 << 32, q, dtype=np.uint64)
    (out / "v6.txt").write_text("\n".join(f"2001:db8:{h >> 16:x}:{h & 0xFFFF:x}::1"
                                          for h in hi.tolist()) + "\n")
    words = rng.integers(0, 26, (q, 12)).astype(np.uint8) + 97
    names = [bytes(w).decode() for w in words]
    (out / "domains.txt").write_text("\n".join(f"{a[:7]}.{a[7:]}.com" for a in names) + "\n")
    hexes = rng.integers(0, 16, (q, 64)).astype(np.uint8)
    digits = np.frombuffer(b"0123456789abcdef", np.uint8)[hexes]
    (out / "sha256.txt").write_text("\n".join(bytes(r).decode() for r in digits) + "\n")
    (out / "done").write_text("ok")
    return out


def test_cached_load_of_a_large_index(tmp_path: Path) -> None:
    n = int(os.environ.get("DETECT_BENCH_INDEX_INDICATORS", "10000000"))
    feeds = _feeds(n)
    cache = tmp_path / "cache"
    settings = load_settings(environ={}, flags={"indicators": (str(feeds),), "cache_dir": cache})
    t0 = time.perf_counter()
    built = load_index(settings)
    cold = time.perf_counter() - t0
    assert not built.from_cache
    loads = []
    for _ in range(3):
        t0 = time.perf_counter()
        index = load_index(settings)
        engine = IndicatorEngine(index)
        loads.append(time.perf_counter() - t0)
    assert index.from_cache
    assert index.indicators.num_rows == built.indicators.num_rows
    del engine
    warm = min(loads)
    print(f"\nindicator index, {built.indicators.num_rows:,} indicators: cold build "
          f"{cold:.1f} s (parse + merge + compile + save), cached load + engine {warm:.2f} s "
          f"(target < 2 s)")
    shutil.rmtree(cache, ignore_errors=True)
    assert warm < 2.0


def test_compile_1m() -> None:
    # 1M indicators in all, a fifth of each type (the "index build for 1M")
    n = int(os.environ.get("DETECT_BENCH_INDICATORS", "1000000")) // 5
    rng = np.random.default_rng(3)
    v4 = np.unique(rng.integers(1 << 24, 0xDF000000, n, dtype=np.uint32))
    ips = [f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}" for a in v4.tolist()]
    cidrs = [f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.0/24" for a in v4.tolist()]
    domains = [f"d{i:07d}x.example{i % 97}.com" for i in range(n)]
    hexes = np.frombuffer(b"0123456789abcdef", np.uint8)[rng.integers(0, 16, (n, 64))]
    sha = [bytes(r).decode() for r in hexes]
    urls = [f"http://h{i % 5000}.example.org/p/{i}" for i in range(n)]
    kinds = (["ip"] * len(ips) + ["cidr"] * len(cidrs) + ["domain"] * n + ["sha256"] * n
             + ["url"] * n)
    values = ips + cidrs + domains + sha + urls
    table = indicator_table({"type": pa.array(kinds), "value": pa.array(values),
                             "source": pa.array(["bench"] * len(values))})
    t0 = time.perf_counter()
    merged = merge(table)
    t_merge = time.perf_counter() - t0
    compile_arrays(merged.slice(0, 1000))  # warm the JIT
    t0 = time.perf_counter()
    arrays = compile_arrays(merged)
    t_compile = time.perf_counter() - t0
    assert arrays
    per_type = merged.num_rows / 5
    print(f"\nindex build, {merged.num_rows:,} indicators (~{per_type:,.0f} per type, 5 types): "
          f"merge {t_merge:.2f} s, compile {t_compile:.2f} s, total {t_merge + t_compile:.2f} s "
          f"(target < 5 s for 1M)")
    assert t_merge + t_compile < 5
