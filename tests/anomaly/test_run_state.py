"""Detector state across ``detect run`` calls: split runs give the alerts of one run.

The same generated events, cut in time order into any number of files processed by
successive runs against one database (state carried in ``anomaly_state``), must give
exactly the anomaly alerts of a single run over all of them. Also: a re-run adds
nothing, state size and late events are recorded in ``runs``, and a run that fails
at commit leaves state and alerts as they were.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import detect
from detect.config import Settings
from detect.runner import run
from detect.schema import CANONICAL_SCHEMA

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> pa.Table:
    """Two days of generated telemetry with planted attacks, one table in time order."""
    out = tmp_path_factory.mktemp("gen")
    detect.generate(out, events=30_000, seed=5, days=2)
    names = ("conn", "dns", "http", "tls", "files")
    parts = [pq.read_table(out / f"{n}.parquet") for n in names if (out / f"{n}.parquet").exists()]
    table = pa.concat_tables([p.cast(parts[0].schema) for p in parts])
    return table.sort_by("@timestamp")


def _settings(db: Path, *, close: bool) -> Settings:
    return Settings(
        db=db,
        rules=(str(ROOT / "rules" / "anomaly"),),
        indicators=(str(ROOT / "data" / "samples" / "indicators"),),
        close_windows=close,
        progress=False,
        quiet=True,
    )


def _anomaly_alerts(db: Path) -> set[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT rule_id, entity, window_start, window_end, event_count, severity "
            "FROM alerts WHERE rule_kind = 'anomaly'"
        ).fetchall()
    finally:
        con.close()
    return set(rows)


def _write_pieces(table: pa.Table, cuts: list[int], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    bounds = [0, *sorted(set(cuts)), table.num_rows]
    paths = []
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        if b <= a:
            continue
        path = folder / f"part-{i:03d}.parquet"
        pq.write_table(table.slice(a, b - a), path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def one_run(events: pa.Table, tmp_path_factory: pytest.TempPathFactory) -> set[tuple]:
    folder = tmp_path_factory.mktemp("one")
    [path] = _write_pieces(events, [], folder / "in")
    db = folder / "one.duckdb"
    summary = run([str(path)], _settings(db, close=True))
    assert summary.exit_code == 0
    alerts = _anomaly_alerts(db)
    assert {a[0].split(":")[1] for a in alerts} >= {"beacon", "dns", "scan"}
    return alerts


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_split_runs_equal_one_run(
    events: pa.Table,
    one_run: set[tuple],
    tmp_path_factory: pytest.TempPathFactory,
    data: st.DataObject,
) -> None:
    k = data.draw(st.integers(min_value=1, max_value=4), label="cuts")
    cuts = data.draw(st.lists(st.integers(1, events.num_rows - 1), min_size=k, max_size=k))
    folder = tmp_path_factory.mktemp("split")
    paths = _write_pieces(events, cuts, folder / "in")
    db = folder / "split.duckdb"
    for i, path in enumerate(paths):
        last = i == len(paths) - 1
        assert run([str(path)], _settings(db, close=last)).exit_code == 0
    assert _anomaly_alerts(db) == one_run
    con = duckdb.connect(str(db), read_only=True)
    try:
        late = con.execute("SELECT sum(late_events), min(state_rows) FROM runs").fetchone()
    finally:
        con.close()
    assert late[0] == 0 and late[1] is not None


def test_rerun_adds_nothing_and_state_is_recorded(events: pa.Table, tmp_path: Path) -> None:
    paths = _write_pieces(events, [events.num_rows // 2], tmp_path / "in")
    db = tmp_path / "x.duckdb"
    run([str(paths[0])], _settings(db, close=False))
    first = _anomaly_alerts(db)
    again = run([str(paths[0])], _settings(db, close=False))
    assert again.files[0].status == "unchanged"
    assert _anomaly_alerts(db) == first
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT state_rows, state_bytes, detectors FROM runs").fetchall()
        stored = con.execute("SELECT count(*) FROM anomaly_state").fetchone()[0]
    finally:
        con.close()
    assert all(r[0] > 0 and r[1] > 0 and '"beacon"' in r[2] for r in rows)
    assert stored == len(list((ROOT / "rules" / "anomaly").glob("*.yml")))


def test_late_events_are_counted_not_folded_in(events: pa.Table, tmp_path: Path) -> None:
    half = events.num_rows // 2
    early, later = events.slice(0, half), events.slice(half)
    db = tmp_path / "late.duckdb"
    (tmp_path / "in").mkdir()
    pq.write_table(later, tmp_path / "in" / "later.parquet")
    run([str(tmp_path / "in" / "later.parquet")], _settings(db, close=True))
    pq.write_table(early, tmp_path / "in" / "early.parquet")
    summary = run([str(tmp_path / "in" / "early.parquet")], _settings(db, close=True))
    con = duckdb.connect(str(db), read_only=True)
    try:
        late = con.execute(
            "SELECT late_events FROM runs WHERE run_id = ?", [summary.run_id]
        ).fetchone()[0]
    finally:
        con.close()
    assert late > 0
    assert any("late event" in n for n in summary.notes)


def test_failed_commit_leaves_state_as_it_was(
    events: pa.Table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from detect.store import runstore

    paths = _write_pieces(events, [events.num_rows // 2], tmp_path / "in")
    db = tmp_path / "k.duckdb"
    run([str(paths[0])], _settings(db, close=False))
    con = duckdb.connect(str(db), read_only=True)
    before = con.execute("SELECT detector, state FROM anomaly_state ORDER BY 1").fetchall()
    con.close()

    def boom(*args: object, **kwargs: object) -> None:
        raise duckdb.IOException("disk gone")

    monkeypatch.setattr(runstore.Store, "_write_states", boom)
    with pytest.raises(Exception, match="nothing was written"):
        run([str(paths[1])], _settings(db, close=True))
    con = duckdb.connect(str(db), read_only=True)
    after = con.execute("SELECT detector, state FROM anomaly_state ORDER BY 1").fetchall()
    runs = con.execute("SELECT count(*) FROM runs").fetchone()[0]
    con.close()
    assert after == before and runs == 1


def test_canonical_schema_pieces(events: pa.Table) -> None:
    """The generated pieces are canonical tables (the reader maps them unchanged)."""
    assert set(events.column_names) <= set(CANONICAL_SCHEMA.names)
    assert pc.all(
        pc.greater_equal(
            events.column("@timestamp").slice(1),
            events.column("@timestamp").slice(0, events.num_rows - 1),
        )
    )


def test_detectors_run_between_files_when_rows_pile_up(
    events: pa.Table, one_run: set[tuple], tmp_path: Path
) -> None:
    """Memory bound: past ``detector_rows`` a detector runs between two files of a run
    (as at a run boundary) and keeps only its state; time-ordered files give the same
    alerts as one file."""
    paths = _write_pieces(events, [events.num_rows // 4 * i for i in (1, 2, 3)], tmp_path / "in")
    db = tmp_path / "f.duckdb"
    settings = dataclasses.replace(_settings(db, close=True), detector_rows=1_000)
    summary = run([str(p) for p in paths], settings)
    assert summary.exit_code == 0 and summary.late_events == 0
    assert _anomaly_alerts(db) == one_run


def test_detectors_run_inside_a_file_when_rows_pile_up(
    events: pa.Table, one_run: set[tuple], tmp_path: Path
) -> None:
    """Memory bound within one big file: a detector runs every ``detector_rows`` rows
    (batches of 1,000 here), and a time-ordered file gives the alerts of no flush."""
    [path] = _write_pieces(events, [], tmp_path / "in")
    db = tmp_path / "m.duckdb"
    settings = dataclasses.replace(_settings(db, close=True), detector_rows=2_000, batch_size=1_000)
    summary = run([str(path)], settings)
    assert summary.exit_code == 0 and summary.late_events == 0
    assert _anomaly_alerts(db) == one_run


def test_files_overlapping_in_time_are_not_late_after_a_flush(
    events: pa.Table, one_run: set[tuple], tmp_path: Path
) -> None:
    """A folder of per-log files covering the same hours (conn, then DNS and the rest):
    a flush inside the conn file holds the watermark, so the next file is not late."""
    folder = tmp_path / "in"
    folder.mkdir()
    conn = pc.equal(events.column("event.dataset").cast(pa.string()), "conn")
    pq.write_table(events.filter(conn), folder / "a-conn.parquet")
    pq.write_table(events.filter(pc.invert(conn)), folder / "b-rest.parquet")
    db = tmp_path / "o.duckdb"
    settings = dataclasses.replace(_settings(db, close=True), detector_rows=2_000, batch_size=1_000)
    summary = run([str(folder / "a-conn.parquet"), str(folder / "b-rest.parquet")], settings)
    assert summary.exit_code == 0 and summary.late_events == 0
    assert _anomaly_alerts(db) == one_run


def test_rollback_undoes_a_flush_inside_the_failed_file(events: pa.Table) -> None:
    """A file failing after its rows made detectors run leaves them as before it."""
    from detect.anomaly.config import load_detector_configs
    from detect.anomaly.engine import AnomalyEngine

    configs = load_detector_configs([ROOT / "rules" / "anomaly"])
    batches = list(events.cast(CANONICAL_SCHEMA).to_batches(max_chunksize=1_000))
    half = len(batches) // 2

    def engine_after(feed_failed: bool) -> tuple[set, list]:
        eng = AnomalyEngine(configs, flush_rows=1_500)
        eng.begin({})
        for b in batches[:half]:
            eng.observe(b)
        if feed_failed:
            mark = eng.checkpoint()
            for b in batches[half:]:  # the failed file: enough rows for several flushes
                eng.observe(b)
            assert any(s.found or s.state is not mark[i].state for i, s in enumerate(eng.slots))
            eng.rollback(mark)
        res = eng.finish(final=True, run_id="r")
        f = res.findings
        found = set(zip(f.column("rule_id").to_pylist(), f.column("entity").to_pylist(),
                        strict=True))  # fmt: skip
        return found, [(s.detector, s.state.num_rows) for s in res.states]

    assert engine_after(feed_failed=True) == engine_after(feed_failed=False)


def test_changed_configuration_resets_that_detectors_state(
    events: pa.Table, tmp_path: Path
) -> None:
    """State kept under other parameters (a window length, a threshold) is not reused."""
    import shutil

    rules = tmp_path / "rules" / "anomaly"
    shutil.copytree(ROOT / "rules" / "anomaly", rules)
    paths = _write_pieces(events, [events.num_rows // 2], tmp_path / "in")
    db = tmp_path / "r.duckdb"
    settings = dataclasses.replace(_settings(db, close=False), rules=(str(rules),))
    run([str(paths[0])], settings)
    scan = rules / "scan.yml"
    scan.write_text(scan.read_text().replace("vertical_threshold: 10", "vertical_threshold: 12"))
    summary = run([str(paths[1])], settings)
    resets = [n for n in summary.notes if "state was reset" in n]
    assert resets == [
        "detector scan: configuration changed since its state was kept; its state was reset "
        "(windows open before this run start afresh)"
    ]
    again = run([str(paths[1])], dataclasses.replace(settings, reprocess=True))
    assert not [n for n in again.notes if "state was reset" in n]
