"""Timing shared by the benchmark suites: best of a few runs (machines here are noisy)."""

from __future__ import annotations

import time
from collections.abc import Callable


def best(fn: Callable[[], object], repeat: int = 3) -> float:
    """The fastest of ``repeat`` runs of ``fn``, in seconds."""
    fastest = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        fastest = min(fastest, time.perf_counter() - t0)
    return fastest


def compile_cold_and_warm(code: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """Run ``code`` twice in fresh processes sharing an empty numba cache.

    ``code`` prints two numbers: import seconds and first-call seconds. Returns
    ``((import, call) cold, (import, call) warm)``: compile time apart from throughput.
    """
    import os
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        runs = [
            subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            ).stdout.split()
            for _ in range(2)
        ]
    (imp_cold, cold), (imp_warm, warm) = ((float(a), float(b)) for a, b in runs)
    return (imp_cold, cold), (imp_warm, warm)
