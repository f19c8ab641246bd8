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


_RELEASE = """
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from detect.allocator import keep_freed_memory, release_free_memory
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 >> 20
keep_freed_memory()
a = np.ones(40_000_000, np.int64)  # 320 MB from the heap, kept when freed
a[:] = 2
b = pc.multiply(pa.array(a), 3)  # 320 MB in Arrow's pool
del a, b
kept = rss()
release_free_memory()
print(kept, rss())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_release_hands_freed_heap_and_arrow_memory_back() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _RELEASE], capture_output=True, text=True, check=True
    )
    kept, released = (int(x) for x in out.stdout.split())
    assert kept - released > 500, (kept, released)  # both 320 MB blocks went back
