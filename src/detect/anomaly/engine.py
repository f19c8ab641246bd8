"""The stateful detectors of a run: feed them batches, then turn findings into alerts.

During a run every configured detector projects each canonical batch to its compact
rows (``select``); detectors that look at hits (cross-organisation spread) also get
each batch's hits in context. At the end the run loads each detector's state from the
store, calls ``run`` once over this run's rows and that state, and commits findings
(as alert contributions) and the new states in the run's one transaction, so a
killed run changes neither alerts nor state.

Memory: each detector's selected rows (a few narrow columns per event it cares about)
are kept until the end of the run, or until they pass ``flush_rows``: then, even in the
middle of a file, the detector folds them into its state with its watermark held
(:func:`detect.anomaly.keys.watermark_held`): no window closes before the end of the
run, so another file of the run covering the same hours (conn and DNS logs of one day)
is not late. Detectors whose state aggregates (first seen, spread, volume, DNS) shrink
their memory so; those that keep rows (beacon's per-connection times) do not.
After each fold the freed temporaries go back to the system
(:func:`detect.allocator.release_free_memory`), so the next fold's peak starts from live memory.
A file that fails midway is rolled back: every detector returns to its state, findings
and pending rows from before the file (:meth:`AnomalyEngine.checkpoint`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from detect.alerts import CONTRIBUTION_SCHEMA, alert_id
from detect.allocator import release_free_memory
from detect.anomaly.base import FINDINGS_SCHEMA
from detect.anomaly.config import DetectorConfig
from detect.anomaly.keys import watermark_held
from detect.schema import CANONICAL_SCHEMA
from detect.store.runstore import StateRecord

KIND = "anomaly"


@dataclass
class _Slot:
    key: str  # state key
    detector: Any
    kind: str = KIND  # rule_kind of its alerts: anomaly, or correlation
    parts: list[pa.Table] = field(default_factory=list)
    rows: int = 0  # rows in parts
    seconds: float = 0.0
    state: pa.Table | None = None  # carried between flushes within the run
    found: list[pa.Table] = field(default_factory=list)
    late: int = 0
    fingerprint: str = ""  # of the configuration; state kept under another one is dropped


@dataclass(frozen=True)
class _Mark:
    """A detector as it was before a file (see :meth:`AnomalyEngine.checkpoint`)."""

    parts: list[pa.Table]
    state: pa.Table | None
    found: int
    late: int


@dataclass(frozen=True)
class FindingInfo:
    """What an alert shows about a finding's rule (title, ATT&CK, author, references)."""

    title: str
    attack: tuple[str, ...] = ()
    author: str | None = "detect project"
    references: tuple[str, ...] = ()


@dataclass
class AnomalyResult:
    """What the detectors produced for a run."""

    contributions: pa.Table  # CONTRIBUTION_SCHEMA
    states: list[StateRecord]
    findings: pa.Table  # FINDINGS_SCHEMA plus a "detector" column
    late: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


class AnomalyEngine:
    """The configured detectors of one run."""

    def __init__(
        self, configs: Sequence[DetectorConfig] = (), *, flush_rows: int = 5_000_000
    ) -> None:
        self.slots = [
            _Slot(c.key, c.build(), fingerprint=_fingerprint([c.detector, c.params]))
            for c in configs
        ]
        self.info: dict[str, FindingInfo] = {}  # rule id -> alert metadata, beyond built-ins
        self.flush_rows = flush_rows
        self.reset: list[str] = []  # detectors whose stored state was dropped this run

    def begin(self, states: Mapping[str, pa.Table]) -> None:
        """Start a run from the stored states (``Store.load_states``)."""
        self.reset = []
        for slot in self.slots:
            slot.state = states.get(slot.key)
            stored = _stored_fingerprint(slot.state)
            if stored is not None and stored != slot.fingerprint:
                slot.state = None  # windows, thresholds or rules changed: start afresh
                self.reset.append(slot.key)
            slot.parts, slot.rows, slot.found, slot.late = [], 0, [], 0

    def add(
        self,
        key: str,
        detector: Any,
        *,
        kind: str,
        info: Mapping[str, FindingInfo],
        fingerprint: object = None,
    ) -> None:
        """Another detector (Sigma correlations), its alerts of ``kind``."""
        self.slots.append(_Slot(key, detector, kind, fingerprint=_fingerprint(fingerprint)))
        self.info.update(info)

    @property
    def keys(self) -> list[str]:
        return [s.key for s in self.slots]

    def observe(self, batch: pa.RecordBatch, hits: pa.Table | None = None) -> None:
        """Keep each detector's compact rows of ``batch`` (and hits in context)."""
        for slot in self.slots:
            t = time.perf_counter()
            rows = slot.detector.select(batch)
            if rows.num_rows:
                slot.parts.append(rows)
                slot.rows += rows.num_rows
            select_hits = getattr(slot.detector, "select_hits", None)
            if select_hits is not None and hits is not None and hits.num_rows:
                more = select_hits(hits)
                if more.num_rows:
                    slot.parts.append(more)
                    slot.rows += more.num_rows
            slot.seconds += time.perf_counter() - t  # _run counts its own time
            if slot.rows > self.flush_rows:  # fold into state, close nothing yet
                with watermark_held():
                    self._run(slot, final=False)

    def _run(self, slot: _Slot, *, final: bool) -> None:
        t = time.perf_counter()
        rows = _concat(slot.parts, slot.detector)
        slot.parts, slot.rows = [], 0
        out = slot.detector.run(rows, slot.state, final=final)
        slot.state = out.state
        slot.late += out.late
        found = out.findings.select(FINDINGS_SCHEMA.names).cast(FINDINGS_SCHEMA)
        slot.found.append(
            found.append_column(
                "detector", pa.repeat(pa.scalar(slot.key), found.num_rows)
            ).append_column("rule_kind", pa.repeat(pa.scalar(slot.kind), found.num_rows))
        )
        del rows, out
        release_free_memory()  # the fold's temporaries: the next step starts from live memory
        slot.seconds += time.perf_counter() - t

    def checkpoint(self) -> list[_Mark]:
        """A mark to :meth:`rollback` to (a file that fails midway feeds no detector).

        It holds each detector's pending rows (fewer than ``flush_rows``), state, findings
        count and late count, so a flush inside the failed file is undone too.
        """
        return [_Mark(list(s.parts), s.state, len(s.found), s.late) for s in self.slots]

    def rollback(self, mark: list[_Mark]) -> None:
        for slot, m in zip(self.slots, mark, strict=True):
            slot.parts = list(m.parts)
            slot.rows = sum(p.num_rows for p in slot.parts)
            slot.state = m.state
            del slot.found[m.found :]
            slot.late = m.late

    def finish(self, *, final: bool, run_id: str) -> AnomalyResult:
        """Run every detector over its remaining rows; findings as contributions."""
        findings: list[pa.Table] = []
        records: list[StateRecord] = []
        seconds: dict[str, float] = {}
        late = 0
        for slot in self.slots:
            self._run(slot, final=final)
            found = pa.concat_tables(slot.found)
            findings.append(found)
            state = slot.state
            meta = dict(state.schema.metadata or {})
            meta[_FINGERPRINT] = slot.fingerprint.encode()
            state = state.replace_schema_metadata(meta)
            records.append(StateRecord(slot.key, state, slot.late, found.num_rows))
            late += slot.late
            seconds[slot.key] = slot.seconds
            slot.found, slot.state = [], None
        table = (
            pa.concat_tables(findings)
            if findings
            else FINDINGS_SCHEMA.append(pa.field("detector", pa.string()))
            .append(pa.field("rule_kind", pa.string()))
            .empty_table()
        )
        return AnomalyResult(
            contributions=findings_to_contributions(table, f"run:{run_id}", self.info),
            states=records,
            findings=table,
            late=late,
            seconds=seconds,
        )


_FINGERPRINT = b"detect.configuration"


def _fingerprint(config: object) -> str:
    """A stable hash of a detector's configuration (kept with its state)."""
    import hashlib
    import json

    text = json.dumps(config, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _stored_fingerprint(state: pa.Table | None) -> str | None:
    if state is None or not state.schema.metadata:
        return None
    value = state.schema.metadata.get(_FINGERPRINT)
    return value.decode() if value is not None else None


def _concat(parts: list[pa.Table], detector: Any) -> pa.Table:
    if not parts:
        return detector.select(_EMPTY_BATCH)
    if len(parts) == 1:
        return parts[0]
    return pa.concat_tables(parts, promote_options="permissive")


_EMPTY_BATCH = pa.RecordBatch.from_pylist([], schema=CANONICAL_SCHEMA)


def findings_to_contributions(
    findings: pa.Table, input_hash: str, info: Mapping[str, FindingInfo] | None = None
) -> pa.Table:
    """Findings as alert contributions of one pseudo-input (``run:<run id>``).

    A finding is reported once, in the run where its window closed, so it belongs to
    that run; its alert id is deterministic (rule, entity, window start) like every
    alert's, so the same events give the same ids however they were split into runs.
    """
    n = findings.num_rows
    if not n:
        return CONTRIBUTION_SCHEMA.empty_table()
    rule_ids = findings.column("rule_id").to_pylist()
    entities = findings.column("entity").to_pylist()
    starts = pc.cast(findings.column("window_start"), pa.int64()).to_pylist()
    ids = [
        alert_id(r, e, s // 1_000_000) for r, e, s in zip(rule_ids, entities, starts, strict=True)
    ]
    info = info or {}
    meta = [info.get(r) or _builtin(r) for r in rule_ids]
    evidence = [[e] for e in findings.column("evidence").to_pylist()]
    kinds = (
        findings.column("rule_kind")
        if "rule_kind" in findings.column_names
        else pa.repeat(pa.scalar(KIND), n)
    )
    return pa.table(
        {
            "alert_id": pa.array(ids, pa.string()),
            "input_hash": pa.repeat(pa.scalar(input_hash), n),
            "rule_id": findings.column("rule_id"),
            "rule_kind": kinds,
            "title": pa.array([m.title for m in meta], pa.string()),
            "severity": findings.column("severity"),
            "entity": findings.column("entity"),
            "window_start": findings.column("window_start"),
            "window_end": findings.column("window_end"),
            "first_seen": findings.column("first_seen"),
            "last_seen": findings.column("last_seen"),
            "event_count": findings.column("event_count"),
            "attack": pa.array([list(m.attack) for m in meta], pa.list_(pa.string())),
            "author": pa.array([m.author for m in meta], pa.string()),
            "rule_references": pa.array([list(m.references) for m in meta], pa.list_(pa.string())),
            "evidence": pa.array(evidence, pa.list_(pa.string())),
        }
    ).cast(CONTRIBUTION_SCHEMA)


def _family(rule_id: str) -> str:
    parts = rule_id.split(":")
    return ":".join(parts[:2])


_TITLES = {
    "anomaly:beacon": "Beaconing (RITA beacon score)",
    "anomaly:dns:tunnel": "DNS tunnelling: many distinct subdomains",
    "anomaly:dns:dga": "DGA-like NXDOMAIN names",
    "anomaly:dns:nxdomain": "Excessive NXDOMAIN answers",
    "anomaly:dns:long-domain": "Long DNS label (Maltrail)",
    "anomaly:scan:vertical": "Port scan (vertical)",
    "anomaly:scan:horizontal": "Network sweep (horizontal scan)",
    "anomaly:long-connection": "Long connection",
    "anomaly:strobe": "Strobe: very many connections to one service",
    "anomaly:volume:exfil": "Unusual outbound volume against the source's baseline",
    "anomaly:first-seen:domain": "Destination domain first seen in the hub",
    "anomaly:first-seen:ip": "Destination IP first seen in the hub",
}
_ATTACK = {
    "anomaly:beacon": ["T1071"],
    "anomaly:dns": ["T1071.004", "T1568.002"],
    "anomaly:scan": ["T1046"],
    "anomaly:long-connection": ["T1071"],
    "anomaly:strobe": ["T1071"],
    "anomaly:volume": ["T1048"],
}
_REFERENCES = {
    "anomaly:beacon": ["https://github.com/activecm/rita"],
    "anomaly:dns": ["https://github.com/stamparm/maltrail", "https://github.com/activecm/rita"],
    "anomaly:scan": ["https://github.com/stamparm/maltrail"],
    "anomaly:long-connection": ["https://github.com/activecm/rita"],
    "anomaly:strobe": ["https://github.com/activecm/rita"],
}


def _builtin(rule_id: str) -> FindingInfo:
    """Alert metadata of the built-in detectors' rule ids."""
    family = _family(rule_id)
    if rule_id in _TITLES:
        title = _TITLES[rule_id]
    elif rule_id.startswith("anomaly:spread:"):
        title = f"Campaign across organisations ({rule_id.rsplit(':', 1)[-1]})"
    else:
        title = rule_id
    return FindingInfo(
        title, tuple(_ATTACK.get(family, ())), "detect project", tuple(_REFERENCES.get(family, ()))
    )
