"""keep_freed_memory: large blocks come from the heap (kept for reuse), not from mmap."""

from __future__ import annotations

import subprocess
import sys

import pytest

from detect.allocator import keep_freed_memory

_PROBE = """
import sys
import numpy as np
from detect.allocator import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "on" else None
a = np.ones(20_000_000, np.int64)  # 160 MB: above glibc's largest mmap threshold
for line in open("/proc/self/maps"):
    lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
    if lo <= a.ctypes.data < hi:
        print(applied, line.rstrip().endswith("[heap]"))
"""


def _probe(mode: str) -> tuple[str, str]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True
    )
    applied, in_heap = out.stdout.split()
    return applied, in_heap


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_large_blocks_come_from_the_heap_only_when_applied() -> None:
    applied, in_heap = _probe("on")
    if applied != "True":
        pytest.skip("not glibc")
    assert in_heap == "True"
    assert _probe("off") == ("None", "False")  # the default: an mmap of its own


def test_is_harmless_to_call_twice() -> None:
    first = keep_freed_memory()
    assert keep_freed_memory() == first
