"""Fixtures for the run store tests: small hit tables and full, ordered table dumps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from detect.alerts import aggregate_hits

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
TABLES = ("schema_migrations", "runs", "inputs", "alerts", "alert_contributions")


def make_hits(
    n: int = 6,
    *,
    rule_id: str = "rule-1",
    entity: str = "10.0.0.1",
    severity: str = "high",
    title: str = "Suspicious beacon",
    start: datetime = T0,
    step: timedelta = timedelta(minutes=1),
) -> pa.Table:
    """``n`` hits of one rule on one entity, one per ``step`` from ``start``."""
    return pa.table(
        {
            "@timestamp": pa.array([start + i * step for i in range(n)], pa.timestamp("us", "UTC")),
            "rule_id": [rule_id] * n,
            "rule_kind": ["sigma"] * n,
            "field": ["destination.ip"] * n,
            "entity": [entity] * n,
            "title": [title] * n,
            "severity": [severity] * n,
            "attack": [["T1071.001"]] * n,
            "author": ["Jane Doe"] * n,
            "references": [["https://example.org/x"]] * n,
            "destination.ip": [f"192.0.2.{i % 250}" for i in range(n)],
        }
    )


def contributions(input_hash: str, **kwargs: Any) -> pa.Table:
    return aggregate_hits(make_hits(**kwargs), input_hash=input_hash)


def dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every store table, in a stable order, read through a fresh connection."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {}
        for table in TABLES:
            rel = con.table(table)
            out[table] = sorted(rel.fetchall(), key=repr)
        return out
    finally:
        con.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "detect.duckdb"
