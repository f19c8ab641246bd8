"""Hits to alerts: group by rule, entity and fixed time window, with deterministic ids.

One hit is one (event, rule) match. An alert is every hit of one rule on one
entity inside one window of ``window`` seconds aligned on the Unix epoch, so the
same events and rules give the same alert ids in every run, on every machine.
The aggregation here is per input file (a *contribution*): the store keeps one
row per (alert, input) and sums them, so reprocessing an input replaces its
share instead of counting it twice. All grouping is done by polars, never per
row in Python; only the (much fewer) groups are hashed in Python.

Severity follows Sigma's ``level``: informational < low < medium < high < critical.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence

import polars as pl
import pyarrow as pa

from detect.errors import ConfigError

SEVERITIES: tuple[str, ...] = ("informational", "low", "medium", "high", "critical")
_RANK = {name: i for i, name in enumerate(SEVERITIES)}

DEFAULT_WINDOW_SECONDS = 3600
DEFAULT_MAX_SAMPLES = 5
TIME_COLUMN = "@timestamp"

_TS = pa.timestamp("us", tz="UTC")

CONTRIBUTION_SCHEMA = pa.schema(
    [
        pa.field("alert_id", pa.string(), nullable=False),
        pa.field("input_hash", pa.string(), nullable=False),
        pa.field("rule_id", pa.string(), nullable=False),
        pa.field("rule_kind", pa.string(), nullable=False),
        pa.field("title", pa.string()),
        pa.field("severity", pa.string(), nullable=False),
        pa.field("entity", pa.string(), nullable=False),
        pa.field("window_start", _TS, nullable=False),
        pa.field("window_end", _TS, nullable=False),
        pa.field("first_seen", _TS, nullable=False),
        pa.field("last_seen", _TS, nullable=False),
        pa.field("event_count", pa.int64(), nullable=False),
        pa.field("attack", pa.list_(pa.string())),
        pa.field("author", pa.string()),
        pa.field("rule_references", pa.list_(pa.string())),
        pa.field("evidence", pa.list_(pa.string())),
    ]
)
"""One row per (alert, input); ``evidence`` holds up to ``max_samples`` JSON objects."""

_REQUIRED = ("rule_id", "rule_kind", "entity", "severity")
_METADATA = (
    "rule_id",
    "rule_kind",
    "title",
    "severity",
    "entity",
    "attack",
    "author",
    "references",
    "rule_references",
    "input_hash",
    "event_index",
)


def severity_rank(severity: str) -> int:
    """Position of ``severity`` on the Sigma scale (0 = informational); raises on unknown names."""
    try:
        return _RANK[severity.lower()]
    except (KeyError, AttributeError):
        msg = f"unknown severity {severity!r}; use one of {', '.join(SEVERITIES)}"
        raise ConfigError(msg) from None


def severity_at_least(severity: str | None, threshold: str) -> bool:
    """Whether ``severity`` reaches ``threshold``, for ``--fail-on``; ``None`` never does."""
    if severity is None:
        return False
    return severity_rank(severity) >= severity_rank(threshold)


def max_severity(severities: Iterable[str | None]) -> str | None:
    """The highest severity in ``severities``, or ``None`` when there is none."""
    ranks = [severity_rank(s) for s in severities if s is not None]
    return SEVERITIES[max(ranks)] if ranks else None


def alert_id(rule_id: str, entity: str, window_start_seconds: int) -> str:
    """Deterministic alert id: 32 hex digits of sha256 over the JSON of the grouping key.

    JSON keeps the key unambiguous when a rule id or an entity contains a separator.
    """
    key = json.dumps([rule_id, entity, int(window_start_seconds)], ensure_ascii=False)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _rank_expr(name: str) -> pl.Expr:
    return pl.col(name).replace_strict(_RANK, return_dtype=pl.Int8)


def _check_severities(df: pl.DataFrame) -> None:
    bad = df.filter(~pl.col("severity").is_in(SEVERITIES))["severity"].unique().sort().to_list()
    if bad:
        msg = f"unknown severity values {bad}; use one of {', '.join(SEVERITIES)}"
        raise ConfigError(msg)


def aggregate_hits(
    hits: pa.Table,
    *,
    window: int = DEFAULT_WINDOW_SECONDS,
    input_hash: str | None = None,
    time_column: str = TIME_COLUMN,
    evidence_columns: Sequence[str] | None = None,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    default_severity: str = "medium",
) -> pa.Table:
    """Group hits into per-input alert contributions (``CONTRIBUTION_SCHEMA``).

    ``hits`` needs ``time_column``, ``rule_id``, ``rule_kind``, ``entity`` and
    ``severity``; ``title``, ``attack``, ``author``, ``references`` (or
    ``rule_references``) are used when present. The input is ``input_hash`` or,
    when that is ``None``, a per-row ``input_hash`` column. Evidence samples are the
    first ``max_samples`` hits of each group in read order, as JSON objects of
    ``evidence_columns`` (default: the time, ``field`` and every event column,
    i.e. all but the rule metadata and ``event_index``, which differs between runs).
    ``event_count`` counts distinct events: by ``event_index`` when the hits have it
    (unique within what one call is given), so an event that hits an indicator in two
    fields (source and destination) counts once; else one event per hit.
    """
    if window <= 0:
        msg = f"alert window must be a positive number of seconds, got {window}"
        raise ConfigError(msg)
    if max_samples < 0:
        msg = f"max_samples must be zero or more, got {max_samples}"
        raise ConfigError(msg)
    severity_rank(default_severity)
    columns = set(hits.column_names)
    missing = [c for c in (time_column, *_REQUIRED) if c not in columns]
    if input_hash is None and "input_hash" not in columns:
        missing.append("input_hash")
    if missing:
        msg = f"hits table lacks columns {missing}; it has {sorted(columns)}"
        raise ValueError(msg)
    if evidence_columns is None:
        evidence_columns = [c for c in hits.column_names if c not in _METADATA]
    else:
        unknown = [c for c in evidence_columns if c not in columns]
        if unknown:
            msg = f"evidence columns {unknown} are not in the hits table"
            raise ValueError(msg)
    if hits.num_rows == 0:
        return CONTRIBUTION_SCHEMA.empty_table()

    df = pl.from_arrow(hits)
    assert isinstance(df, pl.DataFrame)
    if input_hash is not None:
        df = df.with_columns(input_hash=pl.lit(input_hash, dtype=pl.String))
    ts = pl.col(time_column)
    dtype = df.schema[time_column]
    if not isinstance(dtype, pl.Datetime):
        msg = f"hits column {time_column!r} must be a timestamp, got {dtype}"
        raise ValueError(msg)
    ts = ts.dt.replace_time_zone("UTC") if dtype.time_zone is None else ts
    ts = ts.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    null_times = df[time_column].null_count()
    if null_times:
        msg = f"{null_times} hits have no event time in {time_column!r}; readers must reject them"
        raise ValueError(msg)

    refs = next((c for c in ("rule_references", "references") if c in columns), None)
    win_us = window * 1_000_000
    sample = (
        pl.struct([pl.col(c) for c in evidence_columns]).struct.json_encode()
        if evidence_columns
        else pl.lit("{}")
    )
    df = df.select(
        input_hash=pl.col("input_hash").cast(pl.String),
        rule_id=pl.col("rule_id").cast(pl.String),
        rule_kind=pl.col("rule_kind").cast(pl.String),
        title=pl.col("title").cast(pl.String) if "title" in columns else pl.lit(None, pl.String),
        severity=pl.col("severity")
        .cast(pl.String)
        .str.to_lowercase()
        .fill_null(default_severity.lower()),
        entity=pl.col("entity").cast(pl.String).fill_null(""),
        attack=pl.col("attack").cast(pl.List(pl.String))
        if "attack" in columns
        else pl.lit(None, pl.List(pl.String)),
        author=pl.col("author").cast(pl.String) if "author" in columns else pl.lit(None, pl.String),
        rule_references=pl.col(refs).cast(pl.List(pl.String))
        if refs
        else pl.lit(None, pl.List(pl.String)),
        ts=ts,
        sample=sample,
        event=pl.col("event_index") if "event_index" in columns else pl.int_range(pl.len()),
    ).with_columns(window_us=(pl.col("ts").dt.epoch("us") // win_us) * win_us)
    _check_severities(df)

    grouped = (
        df.group_by(["input_hash", "rule_id", "entity", "window_us"], maintain_order=True)
        .agg(
            rule_kind=pl.col("rule_kind").first(),
            title=pl.col("title").drop_nulls().first(),
            severity_rank=_rank_expr("severity").max(),
            attack=pl.col("attack").drop_nulls().first(),
            author=pl.col("author").drop_nulls().first(),
            rule_references=pl.col("rule_references").drop_nulls().first(),
            first_seen=pl.col("ts").min(),
            last_seen=pl.col("ts").max(),
            event_count=pl.col("event").n_unique().cast(pl.Int64),
            evidence=pl.col("sample").head(max_samples),
        )
        .sort(["input_hash", "rule_id", "entity", "window_us"])
    )
    return _finish(grouped, win_us)


def _finish(grouped: pl.DataFrame, win_us: int) -> pa.Table:
    keys = grouped.select("rule_id", "entity", "window_us").unique()
    ids = pl.DataFrame(
        {
            "rule_id": keys["rule_id"],
            "entity": keys["entity"],
            "window_us": keys["window_us"],
            "alert_id": [alert_id(r, e, w // 1_000_000) for r, e, w in keys.iter_rows()],
        },
        schema={
            "rule_id": pl.String,
            "entity": pl.String,
            "window_us": pl.Int64,
            "alert_id": pl.String,
        },
    )
    out = grouped.join(
        ids, on=["rule_id", "entity", "window_us"], how="left", maintain_order="left"
    )
    out = out.select(
        "alert_id",
        "input_hash",
        "rule_id",
        "rule_kind",
        "title",
        severity=pl.col("severity_rank").replace_strict(
            dict(enumerate(SEVERITIES)), return_dtype=pl.String
        ),
        entity="entity",
        window_start=pl.from_epoch("window_us", time_unit="us").dt.replace_time_zone("UTC"),
        window_end=pl.from_epoch(pl.col("window_us") + win_us, time_unit="us").dt.replace_time_zone(
            "UTC"
        ),
        first_seen="first_seen",
        last_seen="last_seen",
        event_count="event_count",
        attack="attack",
        author="author",
        rule_references="rule_references",
        evidence="evidence",
    )
    return out.to_arrow().cast(CONTRIBUTION_SCHEMA)


def merge_contributions(
    tables: Iterable[pa.Table], *, max_samples: int = DEFAULT_MAX_SAMPLES
) -> pa.Table:
    """Combine partial contributions (e.g. one per batch) into one row per (alert, input).

    Counts add up, first/last seen widen, evidence keeps the first ``max_samples``
    samples in the order the tables are given, so streaming batch by batch gives
    the same result as aggregating all hits at once.
    """
    parts = [t.cast(CONTRIBUTION_SCHEMA) for t in tables if t.num_rows]
    if not parts:
        return CONTRIBUTION_SCHEMA.empty_table()
    df = pl.from_arrow(pa.concat_tables(parts))
    assert isinstance(df, pl.DataFrame)
    merged = (
        df.with_columns(severity_rank=_rank_expr("severity"))
        .group_by(["alert_id", "input_hash"], maintain_order=True)
        .agg(
            rule_id=pl.col("rule_id").first(),
            rule_kind=pl.col("rule_kind").first(),
            title=pl.col("title").drop_nulls().first(),
            severity_rank=pl.col("severity_rank").max(),
            entity=pl.col("entity").first(),
            window_start=pl.col("window_start").first(),
            window_end=pl.col("window_end").first(),
            first_seen=pl.col("first_seen").min(),
            last_seen=pl.col("last_seen").max(),
            event_count=pl.col("event_count").sum(),
            attack=pl.col("attack").drop_nulls().first(),
            author=pl.col("author").drop_nulls().first(),
            rule_references=pl.col("rule_references").drop_nulls().first(),
            evidence=pl.col("evidence").explode().drop_nulls().head(max_samples),
        )
        .with_columns(
            severity=pl.col("severity_rank").replace_strict(
                dict(enumerate(SEVERITIES)), return_dtype=pl.String
            )
        )
        .sort(["input_hash", "rule_id", "entity", "window_start"])
    )
    return merged.select(CONTRIBUTION_SCHEMA.names).to_arrow().cast(CONTRIBUTION_SCHEMA)
