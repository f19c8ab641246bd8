"""Shared set-up of the indicator benchmarks: sizes, one-thread DuckDB, reporting."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from _timing import best

EVENTS = int(os.environ.get("DETECT_BENCH_EVENTS", "10000000"))
INDICATORS = int(os.environ.get("DETECT_BENCH_INDICATORS", "1000000"))
HIT_SHARE = 0.01
_MAPPED = np.array([0] * 10 + [255, 255], dtype=np.uint8)

os.environ.setdefault("POLARS_MAX_THREADS", "1")  # before polars builds its pool


def _report(name: str, ours: float, others: dict[str, float], n: int) -> None:
    parts = [f"{name}: ours {ours * 1e3:.0f} ms ({n / ours / 1e6:.1f} M events/s)"]
    parts += [f"{k} {v * 1e3:.0f} ms (x{v / ours:.2f})" for k, v in others.items()]
    print("\n" + "; ".join(parts))


def _time(benchmark, fn: Callable[[], object]) -> float:
    """pytest-benchmark record (3 rounds) and our own best-of-3 for the printed ratio."""
    benchmark.pedantic(fn, rounds=3, iterations=1)
    return best(fn, 3)


def _v4_matrix(v: np.ndarray) -> np.ndarray:
    out = np.zeros((len(v), 16), np.uint8)
    out[:, :12] = _MAPPED
    out[:, 12:] = v.astype(">u4").view(np.uint8).reshape(-1, 4)
    return out


def _draw_events(rng: np.random.Generator, pool: np.ndarray, random: np.ndarray) -> np.ndarray:
    hit = rng.random(len(random)) < HIT_SHARE
    out = random.copy()
    out[hit] = pool[rng.integers(0, len(pool), int(hit.sum()))]
    return out


# ---------------------------------------------------------------- IP membership
