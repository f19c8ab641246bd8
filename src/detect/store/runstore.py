"""The DuckDB run store: seen inputs, one transaction per run, idempotent alert upsert.

A run touches the database twice and briefly: once at the start to learn which
inputs it has already ingested, once at the end to commit everything it found
(run row, inputs, per-input alert contributions, recomputed alerts) in a single
transaction. Between the two the file is closed, so dashboards can read it; and
a run that dies before the commit leaves the database exactly as it was.

Alerts are sums of contributions keyed by (alert_id, input content hash):
committing the same contributions again changes nothing, and reprocessing an
input replaces its rows instead of adding to them. SQL text only ever holds
table and column names from this module; every value is a bound parameter.
DuckDB exceptions are translated here into ``StoreError`` with a readable cause.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import duckdb
import pyarrow as pa

from detect.alerts import CONTRIBUTION_SCHEMA, SEVERITIES, max_severity, severity_rank
from detect.errors import StoreError
from detect.store import migrations

RunStatus = Literal["ok", "partial", "failed"]
_STATUSES = ("ok", "partial", "failed")

# Columns an alert takes from its contributions; compared to decide "updated".
_ALERT_VALUES = (
    "rule_id",
    "rule_kind",
    "title",
    "severity",
    "entity",
    "window_start",
    "window_end",
    "first_seen",
    "last_seen",
    "event_count",
    "attack",
    "evidence",
    "author",
    "rule_references",
)
_CONTRIB_VALUES = tuple(c for c in CONTRIBUTION_SCHEMA.names if c not in ("alert_id", "input_hash"))
ALERT_COLUMNS = ("alert_id", *_ALERT_VALUES, "run_id", "first_run_id", "updated_seq")
MAX_ALERT_SAMPLES = 10

_STAGED = "detect_incoming_arrow"
_INCOMING = "detect_incoming"
_TOUCHED = "detect_touched"
_AGG = "detect_agg"
_CHANGED = "detect_changed"
_TEMP_TABLES = (_INCOMING, _TOUCHED, _AGG, _CHANGED)

# --- SQL -------------------------------------------------------------------------------
# Every statement is built once, here, from the identifier constants above; values are
# always bound parameters (``?`` or ``$name``). S608 is silenced only for that reason.
_C_COLS = ", ".join(CONTRIBUTION_SCHEMA.names)
_C_NO_EVIDENCE = ", ".join(c for c in CONTRIBUTION_SCHEMA.names if c != "evidence")
_A_COLS = ", ".join(_ALERT_VALUES)
_PICK = "ORDER BY (run_id = $run) DESC, input_hash"

_SQL_SELECT_ALERTS = (
    f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts "  # noqa: S608
    "WHERE (?::TIMESTAMPTZ IS NULL OR last_seen >= ?::TIMESTAMPTZ) "
    "AND (?::TIMESTAMPTZ IS NULL OR first_seen <= ?::TIMESTAMPTZ) "
    "AND (?::VARCHAR[] IS NULL OR list_contains(?::VARCHAR[], severity)) "
    "AND (?::VARCHAR IS NULL OR rule_id = ?::VARCHAR) "
    "AND (?::VARCHAR IS NULL OR starts_with(rule_id, ?::VARCHAR)) "
    "ORDER BY last_seen DESC, alert_id LIMIT ?"
)
# Evidence arrives as a list of JSON objects; the tables keep one JSON array.
_SQL_STAGE = (
    f"CREATE TEMP TABLE {_INCOMING} AS SELECT {_C_NO_EVIDENCE}, "  # noqa: S608
    "CASE WHEN evidence IS NULL THEN NULL "
    "ELSE ('[' || array_to_string(evidence, ',') || ']')::JSON END AS evidence "
    f"FROM {_STAGED}"
)
_SQL_CREATE_TOUCHED = f"CREATE TEMP TABLE {_TOUCHED} (alert_id VARCHAR PRIMARY KEY)"
_STALE = (
    "FROM alert_contributions c WHERE c.input_hash IN (SELECT unnest(?::VARCHAR[])) "  # noqa: S608
    f"AND NOT EXISTS (SELECT 1 FROM {_INCOMING} i "
    "WHERE i.alert_id = c.alert_id AND i.input_hash = c.input_hash)"
)
_SQL_TOUCH_STALE = f"INSERT OR IGNORE INTO {_TOUCHED} SELECT DISTINCT c.alert_id {_STALE}"
_SQL_COUNT_STALE = f"SELECT count(*) {_STALE}"
_SQL_DELETE_STALE = (
    "DELETE FROM alert_contributions WHERE (alert_id, input_hash) IN "  # noqa: S608
    f"(SELECT (c.alert_id, c.input_hash) {_STALE})"
)
_SQL_DROP_UNCHANGED = (
    f"DELETE FROM {_INCOMING} i USING alert_contributions c "  # noqa: S608
    "WHERE i.alert_id = c.alert_id AND i.input_hash = c.input_hash AND "
    + " AND ".join(f"i.{c} IS NOT DISTINCT FROM c.{c}" for c in _CONTRIB_VALUES)
)
_SQL_TOUCH_INCOMING = f"INSERT OR IGNORE INTO {_TOUCHED} SELECT DISTINCT alert_id FROM {_INCOMING}"  # noqa: S608
_SQL_UPSERT_CONTRIBUTIONS = (
    f"INSERT INTO alert_contributions ({_C_COLS}, run_id) "  # noqa: S608
    f"SELECT {_C_COLS}, ?::VARCHAR FROM {_INCOMING} "
    "ON CONFLICT (alert_id, input_hash) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*_CONTRIB_VALUES, "run_id"))
)
_SQL_COUNT_INCOMING = f"SELECT count(*) FROM {_INCOMING}"  # noqa: S608
# Metadata comes from this run's contribution when there is one (rules may have been
# edited), else from the lowest input hash: deterministic either way.
_SQL_AGGREGATE = (
    f"CREATE TEMP TABLE {_AGG} AS SELECT alert_id, "  # noqa: S608
    f"first(rule_id {_PICK}) AS rule_id, "
    f"first(rule_kind {_PICK}) AS rule_kind, "
    f"first(title {_PICK}) AS title, "
    "list_extract($levels::VARCHAR[], max(list_position($levels::VARCHAR[], severity))) "
    "AS severity, "
    f"first(entity {_PICK}) AS entity, "
    "min(window_start) AS window_start, max(window_end) AS window_end, "
    "min(first_seen) AS first_seen, max(last_seen) AS last_seen, "
    "sum(event_count)::BIGINT AS event_count, "
    f"first(attack {_PICK}) AS attack, "
    "to_json(list_slice(flatten(list(coalesce(evidence::JSON[], []) "
    "ORDER BY first_seen, input_hash)), 1, $samples))::JSON AS evidence, "
    f"first(author {_PICK}) AS author, "
    f"first(rule_references {_PICK}) AS rule_references "
    "FROM alert_contributions "
    f"WHERE alert_id IN (SELECT alert_id FROM {_TOUCHED}) GROUP BY alert_id"
)
_SQL_CHANGED = (
    f"CREATE TEMP TABLE {_CHANGED} AS SELECT a.*, b.alert_id IS NULL AS is_new, "  # noqa: S608
    "coalesce(b.first_run_id, ?::VARCHAR) AS first_run_id "
    f"FROM {_AGG} a LEFT JOIN alerts b USING (alert_id) WHERE b.alert_id IS NULL OR "
    + " OR ".join(f"a.{c} IS DISTINCT FROM b.{c}" for c in _ALERT_VALUES)
)
_ORPHANS = (
    f"FROM alerts WHERE alert_id IN (SELECT alert_id FROM {_TOUCHED}) "  # noqa: S608
    f"AND alert_id NOT IN (SELECT alert_id FROM {_AGG})"
)
_SQL_COUNT_ORPHANS = f"SELECT count(*) {_ORPHANS}"
_SQL_DELETE_ORPHANS = f"DELETE {_ORPHANS}"
_SQL_UPSERT_ALERTS = (
    f"INSERT INTO alerts (alert_id, {_A_COLS}, run_id, first_run_id, updated_seq) "  # noqa: S608
    f"SELECT alert_id, {_A_COLS}, ?::VARCHAR, first_run_id, "
    "(SELECT coalesce(max(updated_seq), 0) FROM alerts) "
    f"+ row_number() OVER (ORDER BY alert_id) FROM {_CHANGED} "
    "ON CONFLICT (alert_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*_ALERT_VALUES, "run_id", "updated_seq"))
)
_SQL_COUNT_CHANGED = (
    "SELECT count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE NOT is_new), "  # noqa: S608
    f"list(DISTINCT severity) FROM {_CHANGED}"
)


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """What a run reports about itself; the store adds input and alert counts at commit.

    ``store_seconds`` and ``finished_at`` are filled in by ``commit_run`` when left
    ``None``. ``stage_seconds`` holds any stage beyond the four with columns.
    """

    run_id: str
    started_at: datetime
    finished_at: datetime | None = None
    status: RunStatus = "ok"
    inputs_skipped: int = 0
    events_read: int = 0
    events_rejected: int = 0
    bytes_read: int = 0
    hits: int | None = None  # rule and indicator hits of the stored files
    read_seconds: float | None = None
    enrich_seconds: float | None = None
    match_seconds: float | None = None
    store_seconds: float | None = None
    compile_seconds: float | None = None
    stage_seconds: Mapping[str, float] = field(default_factory=dict)
    rejects_path: str | None = None
    errors: Sequence[str] = ()
    args: Mapping[str, Any] = field(default_factory=dict)
    version: str | None = None
    index_hash: str | None = None


@dataclass(frozen=True)
class StateRecord:
    """A stateful detector's state after a run (Arrow, any schema) and what it noticed.

    Stored as an Arrow IPC stream in ``anomaly_state``, one row per detector, replaced
    in the run's transaction: a killed run leaves the previous state in place.
    """

    detector: str
    state: pa.Table
    late: int = 0
    findings: int = 0


def state_blob(table: pa.Table) -> pa.Buffer:
    """A detector state as an Arrow IPC stream, zstd-compressed: a day of beacon and long
    connection state is hundreds of MB uncompressed, and the run's commit held it three
    times over (the stream, a bytes copy, DuckDB's copy) at its memory peak."""
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue()


@dataclass(frozen=True, kw_only=True)
class IndicatorSetRecord:
    """The compiled indicator set a run matched with; stored once per distinct set.

    ``suppressed`` lists every indicator a warninglist or allowlist removed, with the
    list that removed it (columns of ``indicator_suppressions`` but ``index_hash``).
    """

    index_hash: str
    built_at: datetime
    feeds: Sequence[Mapping[str, Any]] = ()
    indicators: int = 0
    by_type: Mapping[str, int] = field(default_factory=dict)
    problems: Sequence[str] = ()
    suppressed: pa.Table | None = None


@dataclass(frozen=True, kw_only=True)
class InputRecord:
    """One ingested file; ``content_hash`` (e.g. sha256 hex) is what makes reruns idempotent."""

    path: str
    content_hash: str
    size: int | None = None
    mtime: datetime | None = None
    format: str | None = None
    events: int = 0
    rejects: int = 0


@dataclass(frozen=True)
class CommitResult:
    """What one ``commit_run`` changed.

    ``max_severity`` is the highest severity among new and updated alerts, for ``--fail-on``.
    """

    run_id: str
    alerts_new: int
    alerts_updated: int
    alerts_removed: int
    contributions_written: int
    contributions_deleted: int
    max_severity: str | None
    store_seconds: float


def new_run_id(now: datetime | None = None) -> str:
    """A run id that sorts by start time and is unique: ``20240131T120000Z-1a2b3c4d``."""
    import secrets

    now = now or datetime.now(UTC)
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        msg = f"{name} must carry a time zone (use datetime.now(UTC)), got naive {value!r}"
        raise ValueError(msg)
    return value


def _lock_holder(message: str) -> str:
    found = re.search(r"Conflicting lock is held in (.*?)(?:\. See also|$)", message)
    return found.group(1).strip() if found else "another process"


def _connect(path: Path, *, read_only: bool, wait_seconds: float) -> duckdb.DuckDBPyConnection:
    """Open DuckDB and translate its errors; retry ``wait_seconds`` while another process has it."""
    if read_only and not path.exists():
        msg = f"no database at {path}; run `detect run --db {path}` first to create it"
        raise StoreError(msg)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as e:
            text = str(e)
            if "not a valid DuckDB database" in text:
                msg = f"{path} is not a DuckDB database; point --db at a new or existing file"
                raise StoreError(msg) from e
            if "Could not set lock" in text:
                if time.monotonic() < deadline:
                    time.sleep(0.1)
                    continue
                msg = (
                    f"database {path} is open in {_lock_holder(text)}; close that connection "
                    "(a dashboard or shell holding it open) and retry"
                )
                raise StoreError(msg) from e
            msg = f"cannot open database {path}: {text}"
            raise StoreError(msg) from e
        except duckdb.Error as e:
            msg = f"cannot open database {path}: {e}"
            raise StoreError(msg) from e


class Store:
    """An open run store; use ``open_store`` and close it soon (``with`` works)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path, *, read_only: bool) -> None:
        self._con: duckdb.DuckDBPyConnection | None = con
        self.path = path
        self.read_only = read_only

    # -- connection -----------------------------------------------------------------

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection, for read queries (exports, reports); bind every value."""
        if self._con is None:
            msg = f"store {self.path} is closed; open it again with open_store()"
            raise StoreError(msg)
        return self._con

    def close(self) -> None:
        """Close the connection so other processes can open the file; safe to call twice."""
        con, self._con = self._con, None
        if con is not None:
            con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def applied_migrations(self) -> list[str]:
        """Schema steps this database has applied (read-only)."""
        return migrations.applied(self.connection)

    def pending_migrations(self) -> list[str]:
        """Schema steps not yet applied (read-only)."""
        return migrations.pending(self.connection)

    # -- reads ----------------------------------------------------------------------

    def seen_hashes(self, hashes: Sequence[str]) -> set[str]:
        """Which of ``hashes`` some committed run already ingested, so a rerun can skip them."""
        if not hashes:
            return set()
        rows = self.connection.execute(
            "SELECT DISTINCT content_hash FROM inputs "
            "WHERE content_hash IN (SELECT unnest(?::VARCHAR[]))",
            [list(hashes)],
        ).fetchall()
        return {r[0] for r in rows}

    def earlier_versions(self, files: Sequence[tuple[str, str]]) -> dict[str, int]:
        """Of ``(path, content hash)`` pairs, the paths ingested before with another hash,
        and the size they had then (the largest): a file that grew or was rewritten."""
        if not files:
            return {}
        rows = self.connection.execute(
            "SELECT i.path, max(i.size) FROM inputs i "
            "JOIN (SELECT unnest(?::VARCHAR[]) AS path, unnest(?::VARCHAR[]) AS h) f "
            "ON i.path = f.path AND i.content_hash <> f.h GROUP BY i.path",
            [[p for p, _ in files], [h for _, h in files]],
        ).fetchall()
        return {path: int(size or 0) for path, size in rows}

    def query_alerts(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        min_severity: str | None = None,
        rule: str | None = None,
        limit: int | None = None,
    ) -> pa.Table:
        """Alerts active in [since, until] (by first/last seen), newest last-seen first.

        ``min_severity`` keeps that level and above; ``rule`` is an exact rule id, or
        a prefix when it ends with ``*`` (``ioc:*``).
        """
        _aware(since, "since")
        _aware(until, "until")
        levels = list(SEVERITIES[severity_rank(min_severity) :]) if min_severity else None
        if limit is not None and limit < 0:
            msg = f"limit must be zero or more, got {limit}"
            raise ValueError(msg)
        exact = prefix = None
        if rule is not None and rule.endswith("*"):
            prefix = rule.rstrip("*")
        else:
            exact = rule
        params = [since, since, until, until, levels, levels, exact, exact, prefix, prefix, limit]
        try:
            return self.connection.sql(_SQL_SELECT_ALERTS, params=params).to_arrow_table()
        except duckdb.Error as e:
            msg = f"cannot read alerts from {self.path}: {e}"
            raise StoreError(msg) from e

    def query_runs(self, *, limit: int | None = None) -> pa.Table:
        """Run records, newest first."""
        try:
            return self.connection.sql(
                "SELECT * FROM runs ORDER BY started_at DESC, run_id LIMIT ?", params=[limit]
            ).to_arrow_table()
        except duckdb.Error as e:
            msg = f"cannot read runs from {self.path}: {e}"
            raise StoreError(msg) from e

    # -- the one write --------------------------------------------------------------

    def commit_run(
        self,
        record: RunRecord,
        inputs: Sequence[InputRecord],
        contributions: pa.Table | Sequence[Mapping[str, Any]],
        *,
        replace_inputs: bool = False,
        indicator_set: IndicatorSetRecord | None = None,
        states: Sequence[StateRecord] = (),
    ) -> CommitResult:
        """Write a whole run in one transaction: run row, inputs, contributions, alerts.

        Contributions are upserted by (alert_id, input_hash); only those that differ
        from what is stored touch their alert, whose row is then recomputed from all
        its contributions. With ``replace_inputs`` every stored contribution of the
        given inputs that this run did not produce again is deleted too (a reprocess
        with changed rules drops alerts the rules no longer raise). A failed run may
        only record itself: pass no inputs and no contributions.
        """
        if self.read_only:
            msg = f"store {self.path} was opened read-only; open it writable to commit a run"
            raise StoreError(msg)
        t0 = time.perf_counter()
        table = _contribution_table(contributions)
        _validate(record, inputs, table)
        con = self.connection
        con.begin()
        try:
            with _registered(con, table):
                result = self._write(con, record, inputs, replace_inputs=replace_inputs, t0=t0)
                if indicator_set is not None:
                    self._write_indicator_set(con, indicator_set)
                if states:
                    self._write_states(con, record.run_id, states)
            con.commit()
        except duckdb.Error as e:
            con.rollback()
            msg = f"could not commit run {record.run_id} to {self.path}; nothing was written: {e}"
            raise StoreError(msg) from e
        except BaseException:
            con.rollback()
            raise
        finally:
            for name in _TEMP_TABLES:
                con.execute(f"DROP TABLE IF EXISTS temp.{name}")
        return result

    def _write(
        self,
        con: duckdb.DuckDBPyConnection,
        record: RunRecord,
        inputs: Sequence[InputRecord],
        *,
        replace_inputs: bool,
        t0: float,
    ) -> CommitResult:
        run_id = record.run_id
        deleted = self._stage(con, inputs, replace_inputs=replace_inputs)
        written = self._write_contributions(con, run_id)
        new, updated, removed, severities = self._recompute_alerts(con, run_id)
        self._write_inputs(con, run_id, inputs)
        store_seconds = record.store_seconds
        if store_seconds is None:
            store_seconds = time.perf_counter() - t0
        self._write_run(
            con, record, n_inputs=len(inputs), new=new, updated=updated, store_seconds=store_seconds
        )
        return CommitResult(
            run_id=run_id,
            alerts_new=new,
            alerts_updated=updated,
            alerts_removed=removed,
            contributions_written=written,
            contributions_deleted=deleted,
            max_severity=max_severity(severities),
            store_seconds=store_seconds,
        )

    def _stage(
        self,
        con: duckdb.DuckDBPyConnection,
        inputs: Sequence[InputRecord],
        *,
        replace_inputs: bool,
    ) -> int:
        """Copy incoming contributions to a temp table, keep the ones that change something.

        Returns how many stored contributions ``replace_inputs`` deleted.
        """
        con.execute(_SQL_STAGE)
        con.execute(_SQL_CREATE_TOUCHED)
        deleted = 0
        if replace_inputs and inputs:
            hashes = [[i.content_hash for i in inputs]]
            con.execute(_SQL_TOUCH_STALE, hashes)
            deleted = _count(con, _SQL_COUNT_STALE, hashes)
            con.execute(_SQL_DELETE_STALE, hashes)
        con.execute(_SQL_DROP_UNCHANGED)
        con.execute(_SQL_TOUCH_INCOMING)
        return deleted

    def _write_contributions(self, con: duckdb.DuckDBPyConnection, run_id: str) -> int:
        con.execute(_SQL_UPSERT_CONTRIBUTIONS, [run_id])
        return _count(con, _SQL_COUNT_INCOMING)

    def _recompute_alerts(
        self, con: duckdb.DuckDBPyConnection, run_id: str
    ) -> tuple[int, int, int, list[str]]:
        """Rebuild touched alerts from their contributions.

        Returns (new, updated, removed, severities of new and updated).
        """
        params = {"run": run_id, "levels": list(SEVERITIES), "samples": MAX_ALERT_SAMPLES}
        con.execute(_SQL_AGGREGATE, params)
        con.execute(_SQL_CHANGED, [run_id])
        # Alerts whose every contribution was replaced away (replace_inputs) disappear.
        removed = _count(con, _SQL_COUNT_ORPHANS)
        if removed:
            con.execute(_SQL_DELETE_ORPHANS)
        con.execute(_SQL_UPSERT_ALERTS, [run_id])
        row = con.execute(_SQL_COUNT_CHANGED).fetchone()
        if row is None:
            return 0, 0, removed, []
        return int(row[0]), int(row[1]), removed, list(row[2] or [])

    def _write_inputs(
        self, con: duckdb.DuckDBPyConnection, run_id: str, inputs: Sequence[InputRecord]
    ) -> None:
        if not inputs:
            return
        con.executemany(
            "INSERT INTO inputs (run_id, content_hash, path, size, mtime, format, events, rejects) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [run_id, i.content_hash, i.path, i.size, i.mtime, i.format, i.events, i.rejects]
                for i in inputs
            ],
        )

    def _write_indicator_set(self, con: duckdb.DuckDBPyConnection, s: IndicatorSetRecord) -> None:
        """Record the indicator set and its suppressions, once per distinct set."""
        known = con.execute(
            "SELECT count(*) FROM indicator_sets WHERE index_hash = ?", [s.index_hash]
        ).fetchall()
        if known[0][0]:
            return
        removed = 0 if s.suppressed is None else s.suppressed.num_rows
        con.execute(
            "INSERT INTO indicator_sets (index_hash, built_at, feeds, indicators, by_type, "
            "suppressed, problems) VALUES (?, ?, ?::JSON, ?, ?::JSON, ?, ?::VARCHAR[])",
            [
                s.index_hash,
                s.built_at,
                json.dumps(list(s.feeds), default=str, sort_keys=True),
                s.indicators,
                json.dumps(dict(s.by_type), sort_keys=True),
                removed,
                list(s.problems),
            ],
        )
        if removed:
            table = s.suppressed
            assert table is not None
            staged = table.select(
                ["type", "value", "port", "sources", "list_name", "list_entry", "match"]
            )
            con.register("_detect_suppressed", staged)
            try:
                con.execute(
                    "INSERT INTO indicator_suppressions SELECT ?, type, value, port, sources, "
                    "list_name, list_entry, match FROM _detect_suppressed",
                    [s.index_hash],
                )
            finally:
                con.unregister("_detect_suppressed")

    def _write_states(
        self, con: duckdb.DuckDBPyConnection, run_id: str, states: Sequence[StateRecord]
    ) -> None:
        now = datetime.now(UTC)
        rows = size = late = 0
        detail = {}
        for rec in states:
            blob = state_blob(rec.state)
            con.execute(
                "INSERT OR REPLACE INTO anomaly_state (detector, state, state_rows, state_bytes, "
                "run_id, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                [rec.detector, memoryview(blob), rec.state.num_rows, blob.size, run_id, now],
            )
            rows += rec.state.num_rows
            size += blob.size
            late += rec.late
            detail[rec.detector] = {
                "state_rows": rec.state.num_rows,
                "state_bytes": blob.size,
                "late_events": rec.late,
                "findings": rec.findings,
            }
        con.execute(
            "UPDATE runs SET state_rows = ?, state_bytes = ?, late_events = ?, detectors = ?::JSON "
            "WHERE run_id = ?",
            [rows, size, late, json.dumps(detail, sort_keys=True), run_id],
        )

    def load_states(self) -> dict[str, pa.Table]:
        """Every stored detector state, by detector key."""
        out: dict[str, pa.Table] = {}
        for name, blob in self.connection.execute(
            "SELECT detector, state FROM anomaly_state"
        ).fetchall():
            out[name] = pa.ipc.open_stream(pa.py_buffer(blob)).read_all()
        return out

    def _write_run(
        self,
        con: duckdb.DuckDBPyConnection,
        record: RunRecord,
        *,
        n_inputs: int,
        new: int,
        updated: int,
        store_seconds: float,
    ) -> None:
        finished = record.finished_at or datetime.now(UTC)
        con.execute(
            "INSERT INTO runs (run_id, started_at, finished_at, status, inputs, inputs_skipped, "
            "events_read, events_rejected, bytes_read, read_seconds, enrich_seconds, "
            "match_seconds, store_seconds, compile_seconds, stage_seconds, rejects_path, "
            "errors, alerts_new, alerts_updated, args, version, index_hash, hits) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::JSON, ?, ?::VARCHAR[], ?, ?, "
            "?::JSON, ?, ?, ?)",
            [
                record.run_id,
                record.started_at,
                finished,
                record.status,
                n_inputs,
                record.inputs_skipped,
                record.events_read,
                record.events_rejected,
                record.bytes_read,
                record.read_seconds,
                record.enrich_seconds,
                record.match_seconds,
                store_seconds,
                record.compile_seconds,
                json.dumps(dict(record.stage_seconds), sort_keys=True),
                record.rejects_path,
                list(record.errors),
                new,
                updated,
                json.dumps(dict(record.args), sort_keys=True, default=str),
                record.version,
                record.index_hash,
                record.hits,
            ],
        )


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> int:
    row = con.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection, table: pa.Table) -> Iterator[None]:
    con.register(_STAGED, table)
    try:
        yield
    finally:
        con.unregister(_STAGED)


def _contribution_table(contributions: pa.Table | Sequence[Mapping[str, Any]]) -> pa.Table:
    """Contributions as ``CONTRIBUTION_SCHEMA``; a list of dicts is converted first."""
    if isinstance(contributions, pa.Table):
        table = contributions
    else:
        table = pa.Table.from_pylist(list(contributions), schema=CONTRIBUTION_SCHEMA)
    missing = [c for c in CONTRIBUTION_SCHEMA.names if c not in table.column_names]
    if missing:
        msg = f"contributions lack columns {missing}; build them with detect.alerts.aggregate_hits"
        raise ValueError(msg)
    return table.select(CONTRIBUTION_SCHEMA.names).cast(CONTRIBUTION_SCHEMA)


def _validate(record: RunRecord, inputs: Sequence[InputRecord], table: pa.Table) -> None:
    if record.status not in _STATUSES:
        msg = f"run status must be one of {_STATUSES}, got {record.status!r}"
        raise ValueError(msg)
    _aware(record.started_at, "started_at")
    _aware(record.finished_at, "finished_at")
    for i in inputs:
        _aware(i.mtime, f"mtime of {i.path}")
    if record.status == "failed" and (inputs or table.num_rows):
        msg = "a failed run records only itself; pass no inputs and no contributions"
        raise ValueError(msg)
    hashes = [i.content_hash for i in inputs]
    if len(set(hashes)) != len(hashes):
        dup = sorted({h for h in hashes if hashes.count(h) > 1})
        msg = f"inputs with the same content hash {dup} in one run; ingest each content once"
        raise ValueError(msg)
    if table.num_rows:
        keys = table.group_by(["alert_id", "input_hash"]).aggregate([([], "count_all")])
        if keys.num_rows != table.num_rows:
            msg = (
                "contributions repeat an (alert_id, input_hash) pair; "
                "merge them first with detect.alerts.merge_contributions"
            )
            raise ValueError(msg)
        for name in ("alert_id", "input_hash", "rule_id", "rule_kind", "severity", "entity"):
            if table.column(name).null_count:
                msg = f"contributions have nulls in {name!r}"
                raise ValueError(msg)
        bad = set(table.column("severity").unique().to_pylist()) - set(SEVERITIES)
        if bad:
            msg = f"contributions have unknown severities {sorted(bad)}; use one of {SEVERITIES}"
            raise ValueError(msg)


def open_store(path: Path, *, read_only: bool = False, wait_seconds: float = 5.0) -> Store:
    """Open (and, when writable, create and migrate) the run store at ``path``.

    ``wait_seconds`` is how long to retry while another process has the file open
    (a dashboard's connection) before raising ``StoreError``. Read-only opens never
    write and refuse a database whose schema is behind or ahead of this version.
    """
    path = Path(path)
    con = _connect(path, read_only=read_only, wait_seconds=wait_seconds)
    try:
        con.execute("SET TimeZone = 'UTC'")
        if read_only:
            migrations.check(con)
            todo = migrations.pending(con)
            if todo:
                msg = (
                    f"database {path} needs schema steps {todo}; open it writable once "
                    "(e.g. `detect run`) to migrate it"
                )
                raise StoreError(msg)
        else:
            migrations.migrate(con)
    except BaseException:
        con.close()
        raise
    return Store(con, path, read_only=read_only)
