"""Keep freed memory in the process for reuse (glibc ``mallopt``), as the CLI runs.

Why: the kernels and detectors allocate large temporaries (80 MB per column at 10M
rows). glibc serves allocations above 32 MB with ``mmap`` and gives them back with
``munmap`` when freed, so the next one faults its pages in again; in a VM whose memory
is backed lazily by the host that faulting costs more than the work (measured at 10M
conn rows: the beacon detector's key encoding 2.7 s -> 0.67 s, a subtraction over a
column 238 -> 8 ms). DuckDB and polars avoid it with their own allocators. With
``M_MMAP_MAX = 0`` every allocation comes from the heap, and a high ``M_TRIM_THRESHOLD``
keeps freed heap memory for the next batch instead of returning it: resident memory
stays at its peak (which the batch size bounds) instead of shrinking between batches.

:func:`keep_freed_memory` is called by the ``detect`` command; a program using the
Python API can call it once at start, or set ``MALLOC_MMAP_MAX_=0`` and
``MALLOC_TRIM_THRESHOLD_=2147483647`` in the environment. Elsewhere than glibc it does
nothing.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_TRIM_BYTES = 2**31 - 1  # mallopt takes a C int: return heap tops above 2 GiB only


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed memory for reuse; ``True`` when it applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_BYTES))
