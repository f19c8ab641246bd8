"""The detector contract: compact rows in, findings and next state out.

A detector never sees more than it asks for: ``select`` projects each canonical
batch to the few columns it needs (and the rows it cares about, e.g. conn events),
the run concatenates those, and ``run`` turns them, plus the state the detector
returned at the end of the previous run (loaded from DuckDB), into findings and the
next state. State is an Arrow table of the detector's choosing (the rows still inside
its window, per-entity baselines, a watermark...), bounded by its retention.

Split-run equivalence: a finding is reported once, when its window has closed (the
window ends before the watermark: the latest event time seen minus the allowed
lateness, carried in the state), so the same events fed through one run or through
many successive runs give the same findings. Events older than the watermark when
they arrive are ``late``: counted, reported, not folded in.

Findings become alerts (``rule_kind = anomaly``); ``rule_id`` is ``anomaly:<detector>``
unless a detector distinguishes kinds (``anomaly:dns:tunnel``, ``anomaly:scan:vertical``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

FINDINGS_SCHEMA = pa.schema(
    [
        pa.field("rule_id", pa.string(), nullable=False),  # anomaly:<detector>[:<kind>]
        pa.field("entity", pa.string(), nullable=False),  # grouping key as text
        pa.field("window_start", TS, nullable=False),
        pa.field("window_end", TS, nullable=False),
        pa.field("first_seen", TS, nullable=False),  # first / last event of the finding
        pa.field("last_seen", TS, nullable=False),
        pa.field("event_count", pa.int64(), nullable=False),
        pa.field("score", pa.float64(), nullable=False),  # detector's own score, documented
        pa.field("severity", pa.string(), nullable=False),  # informational .. critical
        pa.field("evidence", pa.string(), nullable=False),  # JSON object: sub-scores, period...
    ]
)


def empty_findings() -> pa.Table:
    return FINDINGS_SCHEMA.empty_table()


@dataclass(frozen=True)
class RunOutput:
    """What a detector returns for one run."""

    findings: pa.Table  # FINDINGS_SCHEMA
    state: pa.Table  # carried to the next run (any schema the detector likes)
    late: int = 0  # events older than the watermark, not folded in


class Detector(Protocol):
    """A statistical detector (one module of :mod:`detect.anomaly` each)."""

    name: str

    def select(self, batch: pa.RecordBatch) -> pa.Table:
        """The compact rows this detector needs from one canonical batch."""
        ...

    def run(self, rows: pa.Table, state: pa.Table | None, *, final: bool = False) -> RunOutput:
        """Findings over ``rows`` (this run's selected rows) and ``state`` (last run's).

        ``final`` closes every window that holds data (a one-off run over old logs,
        with no later run to close them); a cron job leaves it off.
        """
        ...
