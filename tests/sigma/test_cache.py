"""The compiled-plan cache: reused while nothing changed, rebuilt when a rule changes."""

from __future__ import annotations

import shutil
from pathlib import Path

from detect.sigma import load_sigma

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "rules" / "sigma"


def test_plan_cache_hit_and_invalidation(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(PACK, rules)
    cache = tmp_path / "cache"
    first = load_sigma([rules], cache_dir=cache)
    again = load_sigma([rules], cache_dir=cache)
    assert not first.from_cache and again.from_cache
    assert again.rule_ids == first.rule_ids
    assert again.leaves == first.leaves
    one = sorted(rules.glob("*.yml"))[0]
    one.write_text(one.read_text().replace("level: ", "level: ", 1) + "\n# edited\n")
    changed = load_sigma([rules], cache_dir=cache)
    assert not changed.from_cache
    assert load_sigma([rules], cache_dir=cache, placeholders={"x": ["y"]}).from_cache is False


def test_cached_engine_matches_like_a_fresh_one(tmp_path: Path) -> None:
    from tests.sigma.test_engine import batch_of

    cache = tmp_path / "cache"
    load_sigma([PACK], cache_dir=cache)
    cached = load_sigma([PACK], cache_dir=cache)
    fresh = load_sigma([PACK])
    events = [
        {"event.dataset": "dns", "dns.question.name": "x" * 60 + ".example.com"},
        {"event.dataset": "http", "user_agent.original": "sqlmap/1.5", "url.path": "/"},
    ]
    batch = batch_of(events)
    assert cached.from_cache
    assert fresh.match(batch).num_rows  # the events do hit the pack
    assert cached.match(batch).to_pylist() == fresh.match(batch).to_pylist()


def test_unwritable_cache_is_skipped(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    engine = load_sigma([PACK], cache_dir=blocker)
    assert engine.plans and not engine.from_cache
