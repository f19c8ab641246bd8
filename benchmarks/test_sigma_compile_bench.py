"""Compiling Sigma rules: cold (empty plan cache) and from the plan cache, fresh processes.

Run ``python -m pytest benchmarks/test_sigma_compile_bench.py -q -s -p no:randomly``.
Target (issue 4): the SigmaHQ network and web rules plus the bundled pack compile in
< 5 s cold and load in < 0.5 s from the cache. Each figure is the time ``load_sigma``
takes inside a fresh Python process (imports of detect and pySigma timed apart),
best of three; the numba cache is warm in both so this is about parsing and planning.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.benchmark

ROOT = Path(__file__).resolve().parents[1]
SIGMAHQ = ROOT.parent / "shared" / "datasets" / "sigma" / "sigmahq"

CODE = """
import json, sys, time
t0 = time.perf_counter()
from pathlib import Path
from detect.sigma import load_sigma
t1 = time.perf_counter()
engine = load_sigma(json.loads(sys.argv[1]), cache_dir=Path(sys.argv[2]))
_ = engine.executor
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "cached": engine.from_cache,
                  "rules": len(engine.plans), "unsupported": len(engine.unsupported)}))
"""


def _paths() -> list[str]:
    paths = [str(ROOT / "rules" / "sigma")]
    for sub in ("rules/network", "rules/web", "rules-emerging-threats", "rules-threat-hunting"):
        if (SIGMAHQ / sub).is_dir():
            paths.append(str(SIGMAHQ / sub))
    return paths


def _run(paths: list[str], cache: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CODE, json.dumps(paths), cache],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ),
    )
    return json.loads(out.stdout)


def test_compile_cold_and_cached() -> None:
    paths = _paths()
    colds, warms = [], []
    for _ in range(3):
        with tempfile.TemporaryDirectory() as cache:
            cold = _run(paths, cache)
            warm = _run(paths, cache)
        assert not cold["cached"] and warm["cached"]
        assert warm["rules"] == cold["rules"]
        colds.append(cold)
        warms.append(warm)
    cold = min(colds, key=lambda r: r["load"])
    warm = min(warms, key=lambda r: r["load"])
    print(
        f"\n{cold['rules']} rules compiled ({cold['unsupported']} unsupported) from "
        f"{len(paths)} folder(s): cold {cold['load']:.2f} s (target < 5), from cache "
        f"{warm['load']:.3f} s (target < 0.5); imports {cold['import']:.2f} s apart"
    )
    assert cold["load"] < 5 and warm["load"] < 0.5
