"""The project's one ``njit`` decorator: every kernel is compiled with the same options.

Why each option:

- ``cache=True``: compiled machine code is written next to the module (``__pycache__``)
  so a warm start costs ~0.2 s instead of seconds of LLVM per kernel (DESIGN.md,
  "Kernel rules"). Numba re-compiles when the source or the argument types change.
- ``nogil=True``: kernels release the GIL, so batches can be processed on threads.
- ``error_model="numpy"``: division by zero gives inf/nan instead of a Python
  exception check in every loop iteration; kernels validate in their wrappers.
- ``fastmath`` stays off: our kernels are integer and byte work, where it buys
  nothing, and it would make float results depend on the machine.
- ``boundscheck`` is left to numba's default (off; ``NUMBA_BOUNDSCHECK=1`` turns it
  on for debugging).

Set ``NUMBA_DISABLE_JIT=1`` to run kernels as plain Python (coverage, debugging).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba

__all__ = ["JIT_OPTIONS", "njit"]

F = TypeVar("F", bound=Callable[..., Any])

JIT_OPTIONS: dict[str, Any] = {
    "cache": True,
    "nogil": True,
    "error_model": "numpy",
    "fastmath": False,
}


def njit(fn: F) -> F:
    """Compile ``fn`` with the project options (see module docstring); lazy, on first call."""
    return numba.njit(**JIT_OPTIONS)(fn)  # type: ignore[no-any-return]
