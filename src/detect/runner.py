"""``detect run`` and ``detect match`` as functions: the orchestration, no I/O formatting.

A run takes the run lock, reads which inputs the database has already seen, streams
every new file through the pipeline, and commits the run record, the inputs and the
alert contributions in one DuckDB transaction at the very end. Until then nothing
is written, so a run killed at any point leaves the database as it was.
"""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from detect import __version__
from detect.alerts import aggregate_hits, merge_contributions, severity_at_least
from detect.anomaly.engine import AnomalyResult
from detect.config import Settings
from detect.engines import load_engines
from detect.errors import InputError, NotTelemetryError
from detect.hits import HITS_SCHEMA, EngineSet
from detect.hits_context import EVIDENCE_COLUMNS, with_context
from detect.pipeline import (
    FileReport,
    Progress,
    Timer,
    expand,
    iter_file_batches,
    prepare_file,
    run_engines,
    unmatched,
)
from detect.readers import InputFile
from detect.rejects import RejectWriter, clean_stale
from detect.store.runstore import IndicatorSetRecord, new_run_id


@dataclass
class RunSummary:
    """The outcome of one ``detect run``: what the CLI prints and ``runs`` records."""

    run_id: str
    status: str = "ok"  # ok | partial | failed | nothing-new
    exit_code: int = 0
    files: list[FileReport] = field(default_factory=list)
    events: int = 0
    rejects: int = 0
    bytes: int = 0
    hits: int = 0
    alerts_new: int = 0
    alerts_updated: int = 0
    alerts_at_fail_on: int = 0
    state_rows: int = 0  # stateful detectors' state after the run
    late_events: int = 0  # events older than a closed detector window
    seconds: dict[str, float] = field(default_factory=dict)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    rejects_path: str | None = None
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[FileReport]:
        return [f for f in self.files if f.status == "error"]

    def counts(self) -> dict[str, int]:
        by: dict[str, int] = {}
        for f in self.files:
            by[f.status] = by.get(f.status, 0) + 1
        return by


def _rule_severity_counts(contributions: pa.Table, threshold: str) -> int:
    return sum(
        1 for s in contributions.column("severity").to_pylist() if severity_at_least(s, threshold)
    )


def run(
    inputs: list[str],
    settings: Settings,
    *,
    progress: Progress | None = None,
    engines: EngineSet | None = None,
) -> RunSummary:
    """Detect over ``inputs`` and store the alerts in ``settings.db``.

    Examples
    --------
    >>> import detect, tempfile, pathlib
    >>> db = pathlib.Path(tempfile.mkdtemp()) / "alerts.duckdb"
    >>> s = detect.run(["data/samples/zeek"], db=db)  # doctest: +SKIP
    """
    from detect.store import InputRecord, RunLock, RunRecord, open_store

    progress = progress or Progress()
    db = Path(settings.db)
    summary = RunSummary(run_id=new_run_id())
    timer = Timer()
    start = time.perf_counter()
    with RunLock(db):  # creates the database folder when missing
        if engines is None:
            # rules and feeds before the database: a bad feed is a configuration
            # error, and nothing (not even an empty database) is written for it
            engines = load_engines(settings)
        clean_stale(db)
        t = time.perf_counter()
        store = open_store(db)
        try:
            files, failed = expand(inputs)
            summary.files.extend(failed)
            summary.problems.extend(  # warned: a typo, or a cron job with nothing new yet
                f"{spec}: matched no file" for spec in unmatched(inputs, files)
            )
            reports = [FileReport(path=str(f.path)) for f in files]
            for f, r in zip(files, reports, strict=True):
                try:
                    prepare_file(f, r, timer)
                except InputError as e:
                    _failed(f, r, e)
            hashes = [r.content_hash for r in reports if r.content_hash]
            seen = store.seen_hashes(hashes) if not settings.reprocess else set()
            new = [r for r in reports if r.content_hash and r.content_hash not in seen]
            before = store.earlier_versions([(r.path, r.content_hash or "") for r in new])
            summary.problems.extend(
                f"{r.path}: read before with other content ({before[r.path]:,} bytes then, "
                f"{r.size:,} now): every event in it is read again, and those read before "
                "count twice (give detect closed, rotated logs, not a file still growing)"
                for r in new
                if r.path in before
            )
            if engines.anomaly is not None:
                engines.anomaly.begin(store.load_states())
        finally:
            store.close()
        timer.add("store", t)
        timer.seconds["compile"] = engines.compile_seconds
        summary.notes.extend(engines.notes)
        summary.problems.extend(engines.problems)
        rejects = RejectWriter(db, summary.run_id)
        contributions: list[pa.Table] = []
        input_records: list[InputRecord] = []
        offset = 0
        done_hashes: set[str] = set()
        try:
            for f, r in zip(files, reports, strict=True):
                summary.files.append(r)
                if r.status != "pending":
                    continue
                if r.content_hash in seen or r.content_hash in done_hashes:
                    r.status = "unchanged"
                    progress.on_file_done(r)
                    continue
                progress.on_file_start(r)
                file_start = time.perf_counter()
                file_contribs, offset = _process_file(
                    f, r, settings, rejects, timer, engines, offset
                )
                r.seconds = time.perf_counter() - file_start
                if r.status == "ok":
                    done_hashes.add(r.content_hash or "")
                    contributions.extend(file_contribs)
                    input_records.append(
                        InputRecord(
                            path=r.path,
                            size=r.size,
                            mtime=r.mtime,
                            content_hash=r.content_hash or "",
                            format=r.format,
                            events=r.events,
                            rejects=r.rejects,
                        )
                    )
                    summary.bytes += r.size
                summary.events += r.events
                summary.rejects += r.rejects
                progress.on_file_done(r)
            summary.status = "partial" if summary.errors else "ok"
            summary.exit_code = 3 if summary.errors else 0
            # rule and indicator hits of the stored files; anomaly findings are in the notes
            summary.hits = sum(r.hits for r in summary.files if r.status == "ok")
            anomaly = None
            if engines.anomaly is not None:
                t = time.perf_counter()
                anomaly = engines.anomaly.finish(
                    final=settings.close_windows, run_id=summary.run_id
                )
                timer.add("anomaly", t)
                if anomaly.contributions.num_rows:
                    contributions.append(anomaly.contributions)
                summary.notes.append(_anomaly_note(anomaly))
                for key in engines.anomaly.reset:
                    summary.notes.append(
                        f"detector {key}: configuration changed since its state was kept; "
                        "its state was reset (windows open before this run start afresh)"
                    )
                summary.state_rows = sum(r.state.num_rows for r in anomaly.states)
                summary.late_events = anomaly.late
            summary.finished_at = datetime.now(UTC)
            summary.seconds = dict(timer.seconds)
            summary.seconds["total"] = time.perf_counter() - start
            all_contrib = pa.concat_tables(contributions) if contributions else None
            t = time.perf_counter()
            store = open_store(db)
            try:
                secs = summary.seconds
                record = RunRecord(
                    run_id=summary.run_id,
                    started_at=summary.started_at,
                    finished_at=summary.finished_at,
                    status=summary.status,
                    inputs_skipped=sum(1 for f in summary.files if f.status == "unchanged"),
                    events_read=summary.events,
                    events_rejected=summary.rejects,
                    bytes_read=summary.bytes,
                    hits=summary.hits,
                    read_seconds=secs.get("read"),
                    enrich_seconds=secs.get("enrich"),
                    match_seconds=secs.get("match"),
                    compile_seconds=secs.get("compile", 0.0),
                    stage_seconds=secs,
                    rejects_path=str(rejects.final) if rejects.count else None,
                    errors=[f"{f.path}: {f.error}" for f in summary.errors],
                    args=_run_args(settings, summary),
                    version=__version__,
                    index_hash=_index_hash(engines),
                )
                result = store.commit_run(
                    record,
                    input_records,
                    all_contrib if all_contrib is not None else [],
                    replace_inputs=settings.reprocess,
                    indicator_set=_indicator_set(engines),
                    states=anomaly.states if anomaly is not None else (),
                )
            finally:
                store.close()
            timer.add("store", t)
            summary.seconds["store"] = timer.seconds["store"]
            summary.alerts_new = result.alerts_new
            summary.alerts_updated = result.alerts_updated
        except BaseException:
            rejects.discard()
            raise
        published = rejects.publish()
        summary.rejects_path = str(published) if published else None
    if settings.fail_on and all_contrib is not None:
        summary.alerts_at_fail_on = _rule_severity_counts(all_contrib, settings.fail_on)
        if summary.alerts_at_fail_on and summary.exit_code == 0:
            summary.exit_code = 1
    return summary


def _anomaly_note(anomaly: AnomalyResult) -> str:
    by_detector: dict[str, int] = {}
    for key in anomaly.findings.column("detector").to_pylist():
        by_detector[key] = by_detector.get(key, 0) + 1
    parts = [f"{k} {n}" for k, n in sorted(by_detector.items())]
    rows = sum(r.state.num_rows for r in anomaly.states)
    return (
        f"anomaly findings: {anomaly.findings.num_rows}"
        + (f" ({', '.join(parts)})" if parts else "")
        + f"; detector state {rows:,} rows; {anomaly.late:,} late event(s) not folded in"
    )


def _index_hash(engines: EngineSet) -> str | None:
    index = engines.indicator_index
    return None if index is None else index.index_hash


def _indicator_set(engines: EngineSet) -> IndicatorSetRecord | None:
    """The indicator set of this run, with every suppression, for ``indicator_sets``."""
    index = engines.indicator_index
    if index is None:
        return None
    return IndicatorSetRecord(
        index_hash=index.index_hash,
        built_at=index.built_at,
        feeds=index.feeds,
        indicators=index.indicators.num_rows,
        by_type=index.by_type(),
        problems=index.problems,
        suppressed=index.suppressed,
    )


def _run_args(settings: Settings, summary: RunSummary) -> dict:
    """What the run was asked to do and what it noticed, for the ``runs.args`` JSON."""
    record = asdict(settings)
    record.pop("source", None)
    record = {k: (str(v) if isinstance(v, Path) else v) for k, v in record.items()}
    record["argv"] = sys.argv
    record["python"] = platform.python_version()
    record["hits"] = summary.hits
    record["notes"] = summary.notes
    record["problems"] = summary.problems
    skipped: dict[str, int] = {}
    for f in summary.files:
        for key, n in f.skipped.items():
            skipped[key] = skipped.get(key, 0) + n
    record["skipped_events"] = skipped
    record["files"] = {
        status: [f.path for f in summary.files if f.status == status]
        for status in ("error", "not-telemetry")
    }
    return record


_AGGREGATE_HITS = 65_536  # hits in context held before they are aggregated (bounds memory)


def _process_file(
    f: InputFile,
    r: FileReport,
    settings: Settings,
    rejects: RejectWriter,
    timer: Timer,
    engines: EngineSet,
    offset: int,
) -> tuple[list[pa.Table], int]:
    """One file through the pipeline; errors stop the file and drop its contributions."""
    contribs: list[pa.Table] = []
    pending: list[pa.Table] = []  # hits in context not yet aggregated (in read order)
    pending_rows = 0

    def aggregate() -> None:
        nonlocal pending, pending_rows
        if pending:
            contribs.append(
                aggregate_hits(
                    pa.concat_tables(pending, promote_options="permissive"),
                    window=settings.alert_window,
                    input_hash=r.content_hash,
                    evidence_columns=[*EVIDENCE_COLUMNS, "field"],
                )
            )
        pending, pending_rows = [], 0

    start_offset = offset
    mark = engines.anomaly.checkpoint() if engines.anomaly is not None else None
    try:
        for batch in iter_file_batches(f, r, settings, rejects, timer):
            t = time.perf_counter()
            hits = run_engines(engines, batch, 0)
            t = timer.add("match", t)
            table = None
            if hits.num_rows:
                local = hits.column("event_index")
                table = with_context(hits, batch, engines, local)
                # input-wide: an event's hits counted once when aggregated with other batches
                table = table.set_column(0, "event_index", pc.add(local, offset))
                timeless = table.column("@timestamp").null_count
                if timeless:  # zeek-cut output without ts: no alert window to put them in
                    r.skipped["hits on events without a time (no alert)"] += timeless
                    table = table.filter(pc.is_valid(table.column("@timestamp")))
                # aggregated a few batches at once: per call, polars costs ~9 ms whatever
                # the size, and a batch has a few hundred hits (merging is exact, below)
                pending.append(table)
                pending_rows += table.num_rows
                r.hits += table.num_rows
                if pending_rows >= _AGGREGATE_HITS:
                    aggregate()
            t = timer.add("aggregate", t)
            if engines.anomaly is not None:
                engines.anomaly.observe(batch, table)
                timer.add("anomaly", t)
            offset += batch.num_rows
        t = time.perf_counter()
        aggregate()
        timer.add("aggregate", t)
        r.status = "ok"
    except InputError as e:
        _failed(f, r, e)
        r.hits = 0  # its contributions are dropped
        if mark is not None:
            engines.anomaly.rollback(mark)  # the file is not recorded: nor are its rows
        return [], start_offset + r.events
    if len(contribs) > 1:
        # an alert window spans batches: one contribution per (alert, input)
        contribs = [merge_contributions(contribs)]
    return contribs, offset


def _failed(f: InputFile, r: FileReport, e: InputError) -> None:
    """Record why a file stopped: an error, or (met in a folder walk) not telemetry."""
    quiet_skip = isinstance(e, NotTelemetryError) and not f.explicit
    r.status = "not-telemetry" if quiet_skip else "error"
    where = e.location
    if where is not None and (where.line is not None or where.column is not None):
        detail = str(where).removeprefix(f"{r.path}, ")
        r.error = f"{detail}: {e.msg}" if detail != r.path else e.msg
    else:
        r.error = e.msg


def match(
    inputs: list[str],
    output: Path,
    settings: Settings,
    *,
    progress: Progress | None = None,
    engines: EngineSet | None = None,
) -> RunSummary:
    """Write one row per (event, rule) hit to a Parquet file; no database involved."""
    progress = progress or Progress()
    summary = RunSummary(run_id=new_run_id())
    timer = Timer()
    start = time.perf_counter()
    if engines is None:
        engines = load_engines(settings)
    timer.seconds["compile"] = engines.compile_seconds
    summary.notes.extend(engines.notes)
    summary.problems.extend(engines.problems)
    files, failed = expand(inputs)
    summary.files.extend(failed)
    summary.problems.extend(f"{spec}: matched no file" for spec in unmatched(inputs, files))
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    reject = RejectWriter(output, summary.run_id)

    offset = 0
    with pq.ParquetWriter(tmp, HITS_SCHEMA) as writer:
        for f in files:
            r = FileReport(path=str(f.path))
            summary.files.append(r)
            try:
                prepare_file(f, r, timer)
            except InputError as e:
                _failed(f, r, e)
                continue
            progress.on_file_start(r)
            try:
                for batch in iter_file_batches(f, r, settings, reject, timer):
                    t = time.perf_counter()
                    hits = run_engines(engines, batch, offset)
                    timer.add("match", t)
                    if hits.num_rows:
                        writer.write_table(hits.select(HITS_SCHEMA.names).cast(HITS_SCHEMA))
                        summary.hits += hits.num_rows
                    offset += batch.num_rows
                r.status = "ok"
            except InputError as e:
                _failed(f, r, e)
            summary.events += r.events
            summary.rejects += r.rejects
            progress.on_file_done(r)
    tmp.replace(output)
    published = reject.publish()
    summary.rejects_path = str(published) if published else None
    summary.status = "partial" if summary.errors else "ok"
    summary.exit_code = 3 if summary.errors else 0
    summary.seconds = dict(timer.seconds)
    summary.seconds["total"] = time.perf_counter() - start
    summary.finished_at = datetime.now(UTC)
    return summary
