"""500 Sigma rules over generated telemetry: detect's fused engine vs each rule's SQL in DuckDB.

Run ``python -m pytest benchmarks/test_sigma_rules_bench.py -q -s -p no:randomly``
(``DETECT_BENCH_SIGMA_EVENTS``, default 2,000,000; the issue's figure is 10,000,000;
``DETECT_BENCH_SIGMA_RULES``, default 500).

Rules: the bundled pack plus the SigmaHQ network and web rules in ``../shared`` (when
present) that both detect and pysigma-backend-sqlite accept, then variants of those
(new id, every literal value changed) up to the rule count: rule packs are mostly
rules that do not fire, and the variants keep the mix of modifiers and columns.

The competitor is what a SOC engineer would write without us: convert each rule with
pySigma's SQL backend (``pysigma-backend-sqlite``: the only maintained SQL one) and
run every query in DuckDB over the same Parquet, one thread, with a case-insensitive
default collation (Sigma's default). DuckDB reads only the columns each query needs.
detect reads the Parquet once into canonical batches and runs every rule per batch.
Hit counts per rule are compared before timing is reported (rules whose SQL cannot
mean the same, keyword searches, cidr as LIKE prefixes, are left out of both sides).
"""

from __future__ import annotations

import copy
import os
import re
import time
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import yaml
from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.rule import SigmaRule

import detect
from detect.schema import CANONICAL_SCHEMA
from detect.sigma import SigmaEngine
from detect.sigma.pipelines import apply_pipeline

pytestmark = pytest.mark.benchmark

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets" / "sigma" / "sigmahq"
EVENTS = int(os.environ.get("DETECT_BENCH_SIGMA_EVENTS", "2000000"))
RULES = int(os.environ.get("DETECT_BENCH_SIGMA_RULES", "500"))
LIST_COLUMNS = [f.name for f in CANONICAL_SCHEMA if pa.types.is_list(f.type)]
SKIP_MODIFIERS = ("cidr", "re", "gt", "lt", "base64", "windash", "expand", "exists", "fieldref")


def _rule_texts() -> list[str]:
    files = sorted((ROOT / "rules" / "sigma").glob("*.yml"))
    for sub in ("rules/network", "rules/web", "rules-emerging-threats", "rules-threat-hunting"):
        if (SHARED / sub).is_dir():
            files += sorted((SHARED / sub).rglob("*.yml"))
    return [f.read_text(encoding="utf-8") for f in files]


def _vary(value: object, k: int) -> object:
    if isinstance(value, list):
        return [_vary(v, k) for v in value]
    if isinstance(value, str):
        return value[:-1] + f"q{k}z*" if value.endswith("*") else value + f"q{k}z"
    return value


def _variant(doc: dict, k: int) -> dict:
    out = copy.deepcopy(doc)
    out["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{doc.get('id')}/{k}"))
    out["title"] = f"{doc.get('title')} (variant {k})"
    for name, sel in out.get("detection", {}).items():
        if name == "condition" or not isinstance(sel, dict):
            continue
        for key in list(sel):
            mods = key.split("|")[1:]
            if not any(m.startswith(SKIP_MODIFIERS) for m in mods):
                sel[key] = _vary(sel[key], k)
    return out


def _convertible(rule: SigmaRule, con: duckdb.DuckDBPyConnection) -> str | None:
    """The rule's SQL (after our field mapping), or None when it cannot mean the same."""
    try:
        sql = sqliteBackend().convert(SigmaCollection([rule]))
    except Exception:  # noqa: BLE001 - the backend refuses many features; skip those rules
        return None
    if len(sql) != 1 or "LIKE '%' " in sql[0] or "cidr" in str(rule.detection):
        return None
    if any(f"`{name}`" in sql[0] for name in LIST_COLUMNS):
        return None  # SQL compares a list column as one value; Sigma means any element
    sql_text = re.sub(r"`([^`]*)`", lambda m: '"' + m.group(1) + '"', sql[0])
    # SQLite's "x REGEXP 'p'" operator is DuckDB's regexp_matches(x, 'p')
    sql_text = re.sub(
        r'("[^"]+") REGEXP (\'(?:[^\']|\'\')*\')', r"regexp_matches(\1, \2)", sql_text
    )
    try:  # SQLite's loose typing lets LIKE run on numbers; DuckDB refuses those rules
        con.execute(f"SELECT count(*) FROM ({sql_text}) LIMIT 0")
    except duckdb.Error:
        return None
    return sql_text


def _rules(con: duckdb.DuckDBPyConnection) -> tuple[list[SigmaRule], list[str]]:
    docs = []
    for text in _rule_texts():
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict) and "detection" in doc and "correlation" not in doc:
                docs.append(doc)
    base: list[tuple[dict, SigmaRule, str]] = []
    for doc in docs:
        try:
            rule = apply_pipeline(SigmaCollection.from_dicts([doc]).rules[0])
        except Exception:  # noqa: BLE001 - broken upstream rules are not the benchmark
            continue
        engine = SigmaEngine([rule])
        sql = _convertible(rule, con)
        if engine.plans and sql and "keywords" not in str(doc.get("detection")):
            base.append((doc, rule, sql))
    rules, sqls = [r for _, r, _ in base], [s for _, _, s in base]
    k = 0
    while len(rules) < RULES:
        k += 1
        for doc, _, _ in base:
            if len(rules) >= RULES:
                break
            try:
                rule = apply_pipeline(SigmaCollection.from_dicts([_variant(doc, k)]).rules[0])
            except Exception:  # noqa: BLE001 - a variant the parser refuses is skipped
                continue
            sql = _convertible(rule, con)
            if sql:
                rules.append(rule)
                sqls.append(sql)
    return rules[:RULES], sqls[:RULES]


@pytest.fixture(scope="module")
def telemetry(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("sigma_bench")
    detect.generate(out, events=EVENTS, seed=7)
    return sorted(
        p for p in out.glob("*.parquet") if p.stem in ("conn", "dns", "http", "tls", "files")
    )


def test_500_rules_vs_duckdb_sql(telemetry: list[Path]) -> None:
    con = duckdb.connect()
    con.execute("SET threads = 1")
    con.execute("SET default_collation = 'nocase'")
    files = ", ".join(f"'{p}'" for p in telemetry)
    con.execute(f"CREATE VIEW logs AS SELECT * FROM read_parquet([{files}], union_by_name=true)")
    rules, sqls = _rules(con)
    t0 = time.perf_counter()
    engine = SigmaEngine(rules)
    compile_s = time.perf_counter() - t0
    assert len(engine.plans) == len(rules), engine.unsupported[:3]

    def ours() -> dict[str, int]:
        counts: dict[str, int] = {}
        for batch in detect.read(telemetry, batch_size=1_000_000):
            hits = engine.match(batch)
            for row in hits.group_by("rule_id").aggregate([("event_index", "count")]).to_pylist():
                counts[row["rule_id"]] = counts.get(row["rule_id"], 0) + row["event_index_count"]
        return counts

    def theirs() -> dict[str, int]:
        counts: dict[str, int] = {}
        for plan, sql in zip(engine.plans, sqls, strict=True):
            n = con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
            if n:
                counts[plan.rule_id] = n
        return counts

    ours()  # warm the JIT and the page cache
    t0 = time.perf_counter()
    got = ours()
    ours_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    want = theirs()
    theirs_s = time.perf_counter() - t0
    differ = {
        r: (got.get(r), want.get(r)) for r in set(got) | set(want) if got.get(r) != want.get(r)
    }
    print(
        f"\n{len(rules)} rules x {EVENTS:,} events: compile {compile_s:.2f} s; detect "
        f"{ours_s:.2f} s ({EVENTS / ours_s / 1e6:.2f} M events/s), DuckDB SQL per rule "
        f"{theirs_s:.2f} s ({EVENTS / theirs_s / 1e6:.2f} M events/s); ratio "
        f"{theirs_s / ours_s:.1f}x; rules with hits {len(got)}; differing counts {len(differ)}"
    )
    for rid, pair in list(differ.items())[:10]:
        print(f"  {engine.rule(rid).title}: detect {pair[0]}, DuckDB {pair[1]}")
