"""The hit: one row per (event, rule) match, the contract between engines and alerts.

``detect match`` writes these rows to Parquet; ``detect run`` aggregates them into
alerts. Engines (indicator index, Sigma plans, anomaly detectors) return hits with
``event_index`` relative to the batch they were given; the pipeline shifts them to
the position of the event in the whole input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

RULE_KINDS = ("sigma", "indicator", "correlation", "anomaly")

HITS_SCHEMA = pa.schema(
    [
        pa.field("event_index", pa.int64(), nullable=False),
        pa.field("rule_id", pa.string(), nullable=False),
        pa.field("rule_kind", pa.string(), nullable=False),
        pa.field("field", pa.string()),
    ]
)


@dataclass(frozen=True)
class RuleInfo:
    """What an alert shows about the rule that raised it."""

    rule_id: str
    kind: str
    title: str
    severity: str = "medium"
    attack: tuple[str, ...] = ()
    author: str | None = None
    references: tuple[str, ...] = ()
    entity: str = "source.ip"  # canonical column whose value groups hits into alerts


class Engine(Protocol):
    """A detection engine: compiled once, then run over every canonical batch."""

    kind: str

    def match(self, batch: pa.RecordBatch) -> pa.Table:
        """Hits (``HITS_SCHEMA``) with ``event_index`` = row number within ``batch``."""
        ...

    def rule(self, rule_id: str) -> RuleInfo:
        """Metadata for a rule id this engine emitted."""
        ...


@dataclass
class EngineSet:
    """The engines a run uses, and what could not be loaded (for the run record)."""

    engines: Sequence[Engine] = ()
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    compile_seconds: float = 0.0
    indicator_index: Any = None  # detect.indicators.index.IndicatorIndex, for the run record
    anomaly: Any = None  # detect.anomaly.engine.AnomalyEngine: stateful detectors


def empty_hits() -> pa.Table:
    """A zero-row hits table with the contract schema."""
    return HITS_SCHEMA.empty_table()
