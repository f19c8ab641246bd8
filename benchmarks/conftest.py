"""Benchmark settings shared by the suites: the row count comes from the environment."""

from __future__ import annotations

import os

import pytest

from detect.allocator import keep_freed_memory

# ours runs as the ``detect`` command runs it (see detect/allocator.py); DuckDB and polars
# bring their own allocators and do not use glibc's for their data
keep_freed_memory()


@pytest.fixture(scope="session")
def bench_rows() -> int:
    """Rows per synthetic batch: ``DETECT_BENCH_ROWS`` (default 1,000,000)."""
    return int(os.environ.get("DETECT_BENCH_ROWS", "1000000"))


@pytest.fixture(scope="module")
def con():
    """An in-memory DuckDB pinned to one thread, as the benchmarks compare one thread each."""
    import duckdb

    c = duckdb.connect()
    c.execute("SET threads = 1")
    return c
