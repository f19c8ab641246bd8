"""The README's first Quickstart command, as a user runs it: every planted IOC contact is found."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[2]


def test_detect_run_on_the_bundled_samples_finds_every_planted_indicator(tmp_path: Path) -> None:
    # run from a copy of the repository's samples and settings, as in a fresh clone
    shutil.copytree(ROOT / "data", tmp_path / "data")
    shutil.copy(ROOT / "detect.toml", tmp_path / "detect.toml")
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    result = subprocess.run(
        [sys.executable, "-m", "detect", "run", "data/samples"], cwd=tmp_path,
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")},
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    truth = json.loads((ROOT / "data/samples/generated/ground_truth.json").read_text())
    planted = {f"ioc:{i['type']}:{i['value']}" for a in truth["activities"]
               if a["kind"] == "ioc_contact" for i in a["indicators"]}
    assert planted
    con = duckdb.connect(str(tmp_path / "alerts.duckdb"), read_only=True)
    found = {r for (r,) in con.execute("SELECT DISTINCT rule_id FROM alerts").fetchall()}
    status = con.execute("SELECT status FROM runs").fetchall()
    con.close()
    assert planted <= found
    assert status == [("ok",)]
    # decoy indicators never appear in the data, so they never alert
    decoys = [line.split(",")[1] for line in
              (ROOT / "data/samples/generated/indicators.csv").read_text().splitlines()[1:]
              if "decoy" in line]
    assert decoys
    assert not any(d in rid for d in decoys for rid in found)
