"""Versioned schema migrations: named, ordered steps, each applied with its record.

A step and the row that records it in ``schema_migrations`` commit in one
transaction, so a crash or a failing statement leaves neither behind and the step
runs again next time. ``applied`` and ``pending`` only read, so ``--list`` style
commands and read-only connections can use them. Each record keeps a checksum of
the step's SQL: editing a step that a database already applied is caught instead
of silently diverging (the chroma way). Steps are plain SQL with no values in
them; anything that carries values binds them as parameters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from detect.errors import StoreError

MIGRATIONS_TABLE = "schema_migrations"


@dataclass(frozen=True)
class Migration:
    """One named schema step; ``sql`` may hold several statements separated by ``;``."""

    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """Sha256 of the step's SQL, to notice a step edited after it shipped."""
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


_RUNS = """
CREATE TABLE runs (
    run_id          VARCHAR PRIMARY KEY,
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ,
    status          VARCHAR NOT NULL CHECK (status IN ('ok', 'partial', 'failed')),
    inputs          INTEGER NOT NULL,
    inputs_skipped  INTEGER NOT NULL,
    events_read     BIGINT NOT NULL,
    events_rejected BIGINT NOT NULL,
    bytes_read      BIGINT NOT NULL,
    read_seconds    DOUBLE,
    enrich_seconds  DOUBLE,
    match_seconds   DOUBLE,
    store_seconds   DOUBLE,
    compile_seconds DOUBLE,
    stage_seconds   JSON,
    rejects_path    VARCHAR,
    errors          VARCHAR[] NOT NULL,
    alerts_new      INTEGER NOT NULL,
    alerts_updated  INTEGER NOT NULL,
    args            JSON,
    version         VARCHAR
);
"""

_INPUTS = """
CREATE TABLE inputs (
    run_id       VARCHAR NOT NULL,
    content_hash VARCHAR NOT NULL,
    path         VARCHAR NOT NULL,
    size         BIGINT,
    mtime        TIMESTAMPTZ,
    format       VARCHAR,
    events       BIGINT NOT NULL,
    rejects      BIGINT NOT NULL,
    PRIMARY KEY (run_id, content_hash)
);
CREATE INDEX inputs_content_hash ON inputs (content_hash);
"""

_ALERTS = """
CREATE TABLE alerts (
    alert_id        VARCHAR PRIMARY KEY,
    rule_id         VARCHAR NOT NULL,
    rule_kind       VARCHAR NOT NULL,
    title           VARCHAR,
    severity        VARCHAR NOT NULL,
    entity          VARCHAR NOT NULL,
    window_start    TIMESTAMPTZ NOT NULL,
    window_end      TIMESTAMPTZ NOT NULL,
    first_seen      TIMESTAMPTZ NOT NULL,
    last_seen       TIMESTAMPTZ NOT NULL,
    event_count     BIGINT NOT NULL,
    attack          VARCHAR[],
    evidence        JSON,
    author          VARCHAR,
    rule_references VARCHAR[],
    run_id          VARCHAR NOT NULL,
    first_run_id    VARCHAR NOT NULL,
    updated_seq     BIGINT NOT NULL
);
CREATE INDEX alerts_last_seen ON alerts (last_seen);
CREATE INDEX alerts_updated_seq ON alerts (updated_seq);
"""

_CONTRIBUTIONS = """
CREATE TABLE alert_contributions (
    alert_id        VARCHAR NOT NULL,
    input_hash      VARCHAR NOT NULL,
    rule_id         VARCHAR NOT NULL,
    rule_kind       VARCHAR NOT NULL,
    title           VARCHAR,
    severity        VARCHAR NOT NULL,
    entity          VARCHAR NOT NULL,
    window_start    TIMESTAMPTZ NOT NULL,
    window_end      TIMESTAMPTZ NOT NULL,
    first_seen      TIMESTAMPTZ NOT NULL,
    last_seen       TIMESTAMPTZ NOT NULL,
    event_count     BIGINT NOT NULL,
    attack          VARCHAR[],
    evidence        JSON,
    author          VARCHAR,
    rule_references VARCHAR[],
    run_id          VARCHAR NOT NULL,
    PRIMARY KEY (alert_id, input_hash)
);
CREATE INDEX alert_contributions_input_hash ON alert_contributions (input_hash);
"""

_INDICATOR_SETS = """
CREATE TABLE indicator_sets (
    index_hash   VARCHAR PRIMARY KEY,
    built_at     TIMESTAMPTZ NOT NULL,
    feeds        JSON,
    indicators   BIGINT NOT NULL,
    by_type      JSON,
    suppressed   BIGINT NOT NULL,
    problems     VARCHAR[]
);
CREATE TABLE indicator_suppressions (
    index_hash   VARCHAR NOT NULL,
    type         VARCHAR NOT NULL,
    value        VARCHAR NOT NULL,
    port         INTEGER,
    sources      VARCHAR[],
    list_name    VARCHAR NOT NULL,
    list_entry   VARCHAR,
    match        VARCHAR
);
CREATE INDEX indicator_suppressions_hash ON indicator_suppressions (index_hash);
ALTER TABLE runs ADD COLUMN index_hash VARCHAR;
"""

_ANOMALY_STATE = """
CREATE TABLE anomaly_state (
    detector     VARCHAR PRIMARY KEY,
    state        BLOB NOT NULL,
    state_rows   BIGINT NOT NULL,
    state_bytes  BIGINT NOT NULL,
    run_id       VARCHAR NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
ALTER TABLE runs ADD COLUMN state_rows BIGINT;
ALTER TABLE runs ADD COLUMN state_bytes BIGINT;
ALTER TABLE runs ADD COLUMN late_events BIGINT;
ALTER TABLE runs ADD COLUMN detectors JSON;
"""

_RUN_HITS = """
ALTER TABLE runs ADD COLUMN hits BIGINT;
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration("0001_runs", _RUNS),
    Migration("0002_inputs", _INPUTS),
    Migration("0003_alerts", _ALERTS),
    Migration("0004_alert_contributions", _CONTRIBUTIONS),
    Migration("0005_indicator_sets", _INDICATOR_SETS),
    Migration("0006_anomaly_state", _ANOMALY_STATE),
    Migration("0007_run_hits", _RUN_HITS),  # rule and indicator hits (DESIGN: counts per stage)
)

_CREATE_TABLE = """
CREATE TABLE schema_migrations (
    name       VARCHAR PRIMARY KEY,
    checksum   VARCHAR NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL
)
"""


def _has_table(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = 'main' AND table_name = ?",
        [MIGRATIONS_TABLE],
    ).fetchone()
    return bool(row and row[0])


def _applied_rows(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    if not _has_table(con):
        return {}
    rows = con.execute("SELECT name, checksum FROM schema_migrations ORDER BY name").fetchall()
    return dict(rows)


def applied(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Names of the steps this database has applied, in order; never writes."""
    return list(_applied_rows(con))


def pending(
    con: duckdb.DuckDBPyConnection, migrations: Sequence[Migration] = MIGRATIONS
) -> list[str]:
    """Names of the steps still to apply, in order; never writes."""
    done = _applied_rows(con)
    return [m.name for m in migrations if m.name not in done]


def check(con: duckdb.DuckDBPyConnection, migrations: Sequence[Migration] = MIGRATIONS) -> None:
    """Raise ``StoreError`` when the database was edited or written by a newer ``detect``."""
    done = _applied_rows(con)
    known = {m.name: m for m in migrations}
    unknown = [name for name in done if name not in known]
    if unknown:
        msg = (
            f"the database has schema steps this version of detect does not know: {unknown}; "
            "upgrade detect or use a database written by this version"
        )
        raise StoreError(msg)
    for name, checksum in done.items():
        if known[name].checksum != checksum:
            msg = (
                f"schema step {name!r} was changed after this database applied it "
                f"(checksum {checksum[:12]} in the database, {known[name].checksum[:12]} in "
                "detect); add a new step instead of editing a shipped one"
            )
            raise StoreError(msg)


def migrate(
    con: duckdb.DuckDBPyConnection, migrations: Sequence[Migration] = MIGRATIONS
) -> list[str]:
    """Apply every pending step, each in its own transaction with its record; return their names.

    A failing step rolls back (with its record) and raises ``StoreError``; the
    steps before it stay applied, so the next call resumes from the failed one.
    """
    names = [m.name for m in migrations]
    if names != sorted(names) or len(set(names)) != len(names):
        msg = f"migration names must be unique and sorted, got {names}"
        raise ValueError(msg)
    check(con, migrations)
    if not _has_table(con):
        con.execute(_CREATE_TABLE)
    done = set(applied(con))
    ran: list[str] = []
    for step in migrations:
        if step.name in done:
            continue
        con.begin()
        try:
            con.execute(step.sql)
            con.execute(
                "INSERT INTO schema_migrations (name, checksum, applied_at) VALUES (?, ?, ?)",
                [step.name, step.checksum, datetime.now(UTC)],
            )
            con.commit()
        except duckdb.Error as e:
            con.rollback()
            msg = f"schema step {step.name!r} failed and was rolled back: {e}"
            raise StoreError(msg) from e
        ran.append(step.name)
    return ran
