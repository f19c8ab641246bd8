"""The run from hits to alerts, with a stand-in engine (the real engines plug in the same way)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from detect.config import load_settings
from detect.hits import HITS_SCHEMA, EngineSet, RuleInfo
from detect.runner import match, run


class PortEngine:
    """Flags every event to destination port 53: one hit per event."""

    kind = "sigma"

    def match(self, batch: pa.RecordBatch) -> pa.Table:
        mask = pc.fill_null(pc.equal(batch.column("destination.port"), 53), False)
        idx = pc.indices_nonzero(mask).cast(pa.int64())
        n = len(idx)
        return pa.table(
            [idx, pa.array(["test-dns-port"] * n), pa.array(["sigma"] * n),
             pa.array(["destination.port"] * n)],
            schema=HITS_SCHEMA,
        )

    def rule(self, rule_id: str) -> RuleInfo:
        if rule_id != "test-dns-port":
            raise KeyError(rule_id)
        return RuleInfo(rule_id=rule_id, kind="sigma", title="DNS to port 53", severity="high",
                        attack=("T1071.004",), author="detect tests")


def write_events(path: Path, rows: list[tuple[str, str, int]]) -> None:
    lines = [
        json.dumps({"@timestamp": ts, "event.dataset": "conn", "source.ip": src,
                    "source.port": 40000, "destination.ip": "8.8.8.8", "destination.port": port,
                    "network.transport": "udp"})
        for ts, src, port in rows
    ]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    folder = tmp_path / "logs"
    folder.mkdir()
    write_events(folder / "a.ndjson", [
        ("2024-01-01T00:10:00Z", "10.0.0.1", 53),
        ("2024-01-01T00:20:00Z", "10.0.0.1", 53),
        ("2024-01-01T00:30:00Z", "10.0.0.2", 443),
    ])
    write_events(folder / "b.ndjson", [
        ("2024-01-01T00:40:00Z", "10.0.0.1", 53),
        ("2024-01-01T01:10:00Z", "10.0.0.1", 53),
    ])
    return folder


def alerts(db: Path) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT alert_id, rule_id, entity, severity, event_count, window_start, "
            "first_seen, last_seen, attack, author, evidence FROM alerts ORDER BY window_start"
        ).fetchall()
    finally:
        con.close()


def test_hits_become_alerts_per_rule_entity_and_window(tmp_path: Path, logs: Path) -> None:
    db = tmp_path / "a.duckdb"
    settings = load_settings(environ={}, flags={"db": db})
    summary = run([str(logs)], settings, engines=EngineSet([PortEngine()]))
    assert summary.status == "ok"
    assert summary.hits == 4
    assert summary.alerts_new == 2
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT hits FROM runs").fetchall() == [(4,)]  # counts per stage
    con.close()
    rows = alerts(db)
    assert [(r[1], r[2], r[3], r[4]) for r in rows] == [
        ("test-dns-port", "10.0.0.1", "high", 3), ("test-dns-port", "10.0.0.1", "high", 1)]
    assert rows[0][8] == ["T1071.004"]
    assert rows[0][9] == "detect tests"
    evidence = json.loads(rows[0][10])
    assert evidence[0]["network.community_id"].startswith("1:")
    assert evidence[0]["field"] == "destination.port"


def test_alert_ids_are_deterministic_and_reruns_change_nothing(tmp_path: Path,
                                                               logs: Path) -> None:
    engines = EngineSet([PortEngine()])
    first, second = tmp_path / "1.duckdb", tmp_path / "2.duckdb"
    run([str(logs)], load_settings(environ={}, flags={"db": first}), engines=engines)
    run([str(logs)], load_settings(environ={}, flags={"db": second}), engines=engines)
    assert [r[0] for r in alerts(first)] == [r[0] for r in alerts(second)]
    before = alerts(first)
    again = run([str(logs)], load_settings(environ={}, flags={"db": first}), engines=engines)
    assert (again.alerts_new, again.alerts_updated, again.events) == (0, 0, 0)
    assert alerts(first) == before
    forced = run([str(logs)], load_settings(environ={}, flags={"db": first, "reprocess": True}),
                 engines=engines)
    assert forced.events == 5
    assert [r[4] for r in alerts(first)] == [r[4] for r in before]  # replaced, not added


def test_a_new_file_adds_to_an_existing_alert(tmp_path: Path, logs: Path) -> None:
    db = tmp_path / "a.duckdb"
    engines = EngineSet([PortEngine()])
    run([str(logs)], load_settings(environ={}, flags={"db": db}), engines=engines)
    write_events(logs / "c.ndjson", [("2024-01-01T00:50:00Z", "10.0.0.1", 53)])
    summary = run([str(logs)], load_settings(environ={}, flags={"db": db}), engines=engines)
    assert (summary.alerts_new, summary.alerts_updated) == (0, 1)
    assert [r[4] for r in alerts(db)] == [4, 1]


def test_fail_on_exits_1_only_at_or_above_the_threshold(tmp_path: Path, logs: Path) -> None:
    engines = EngineSet([PortEngine()])
    high = run([str(logs)], load_settings(environ={}, flags={"db": tmp_path / "h.duckdb",
                                                             "fail_on": "high"}), engines=engines)
    assert high.exit_code == 1
    crit = run([str(logs)], load_settings(environ={}, flags={"db": tmp_path / "c.duckdb",
                                                             "fail_on": "critical"}),
               engines=engines)
    assert crit.exit_code == 0


def test_match_writes_event_indexes_across_files(tmp_path: Path, logs: Path) -> None:
    out = tmp_path / "hits.parquet"
    summary = match([str(logs)], out, load_settings(environ={}), engines=EngineSet([PortEngine()]))
    hits = pq.read_table(out)
    assert hits.schema == HITS_SCHEMA
    assert summary.hits == 4
    assert hits.column("event_index").to_pylist() == [0, 1, 3, 4]


def test_match_without_engines_writes_an_empty_hits_file(tmp_path: Path, logs: Path) -> None:
    out = tmp_path / "hits.parquet"
    match([str(logs)], out, load_settings(environ={}), engines=EngineSet())
    hits = pq.read_table(out)
    assert hits.num_rows == 0
    assert hits.schema == HITS_SCHEMA


def test_an_alert_window_spanning_batches_is_one_contribution(tmp_path: Path,
                                                              logs: Path) -> None:
    db = tmp_path / "a.duckdb"
    settings = load_settings(environ={}, flags={"db": db, "batch_size": 1})
    summary = run([str(logs)], settings, engines=EngineSet([PortEngine()]))
    assert summary.status == "ok"
    assert [r[4] for r in alerts(db)] == [3, 1]


class TwoFieldEngine(PortEngine):
    """Each port-53 event hits twice, in two fields (as an indicator in source and destination)."""

    def match(self, batch: pa.RecordBatch) -> pa.Table:
        one = super().match(batch)
        field = pa.array(["destination.ip"] * one.num_rows)
        other = pa.Table.from_arrays([*one.columns[:3], field], schema=one.schema)
        return pa.concat_tables([one, other])


@pytest.mark.parametrize("batch_size", [1, 2, 65536])
def test_an_event_hitting_in_two_fields_is_one_event_of_its_alert(
    tmp_path: Path, logs: Path, batch_size: int
) -> None:
    db = tmp_path / "a.duckdb"
    settings = load_settings(environ={}, flags={"db": db, "batch_size": batch_size})
    summary = run([str(logs)], settings, engines=EngineSet([TwoFieldEngine()]))
    assert summary.hits == 8
    assert [r[4] for r in alerts(db)] == [3, 1]  # events, not hits (6 and 2)


def test_match_event_index_does_not_count_rejects(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "a.ndjson").write_text(
        '{"@timestamp":"2024-01-01T00:00:00Z","destination.port":53}\n'
        "{broken line\n"
        '{"@timestamp":"2024-01-01T00:00:01Z","destination.port":"http"}\n'
        '{"@timestamp":"2024-01-01T00:00:02Z","destination.port":53}\n'
    )
    (folder / "b.ndjson").write_text(
        '{"@timestamp":"2024-01-01T00:00:03Z","destination.port":53}\n')
    out = tmp_path / "hits.parquet"
    summary = match([str(folder)], out, load_settings(environ={}),
                    engines=EngineSet([PortEngine()]))
    assert summary.rejects == 2
    assert pq.read_table(out).column("event_index").to_pylist() == [0, 1, 2]
    assert (tmp_path / "hits.parquet.rejects.ndjson").exists()


@pytest.mark.parametrize("held", [1, 2, 10_000])
def test_hits_aggregated_every_few_batches_give_the_same_alerts(
    tmp_path: Path, logs: Path, monkeypatch: pytest.MonkeyPatch, held: int
) -> None:
    """Hits are aggregated once ``_AGGREGATE_HITS`` are held (batches of one event here):
    after every batch, every other, or once per file, the alerts are the same."""
    from detect import runner

    engines = EngineSet([PortEngine()])
    want = tmp_path / "want.duckdb"
    run([str(logs)], load_settings(environ={}, flags={"db": want, "batch_size": 1}),
        engines=engines)
    monkeypatch.setattr(runner, "_AGGREGATE_HITS", held)
    got = tmp_path / "got.duckdb"
    run([str(logs)], load_settings(environ={}, flags={"db": got, "batch_size": 1}),
        engines=engines)
    assert alerts(got) == alerts(want)
    assert [r[4] for r in alerts(got)] == [3, 1]


def test_an_empty_file_in_a_folder_is_skipped_not_an_error(tmp_path: Path, logs: Path) -> None:
    (logs / "quiet-hour.log").write_bytes(b"")  # a rotated log with no events
    db = tmp_path / "a.duckdb"
    summary = run([str(logs)], load_settings(environ={}, flags={"db": db}),
                  engines=EngineSet([PortEngine()]))
    assert (summary.status, summary.exit_code) == ("ok", 0)
    empty = next(r for r in summary.files if r.path.endswith("quiet-hour.log"))
    assert empty.status == "not-telemetry"
    assert summary.alerts_new == 2  # the other files were read
    named = run([str(logs / "quiet-hour.log")], load_settings(environ={}, flags={"db": db}),
                engines=EngineSet([PortEngine()]))
    assert named.exit_code == 3  # named explicitly, it is still reported


def test_a_folder_or_glob_that_matches_nothing_is_warned_not_an_error(
    tmp_path: Path, logs: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    db = tmp_path / "a.duckdb"
    specs = [str(empty), str(tmp_path / "*.nomatch"), str(logs)]
    summary = run(specs, load_settings(environ={}, flags={"db": db}),
                  engines=EngineSet([PortEngine()]))
    assert summary.exit_code == 0  # a cron job may find nothing new yet
    assert [p for p in summary.problems if "matched no file" in p] == [
        f"{empty}: matched no file", f"{tmp_path / '*.nomatch'}: matched no file"]


def test_a_file_that_grew_since_it_was_read_is_warned_about(tmp_path: Path) -> None:
    log = tmp_path / "current.ndjson"
    rows = [(f"2024-01-01T00:{m:02d}:00Z", "10.0.0.1", 53) for m in range(10)]
    write_events(log, rows[:4])
    db = tmp_path / "a.duckdb"
    settings = load_settings(environ={}, flags={"db": db})
    first = run([str(log)], settings, engines=EngineSet([PortEngine()]))
    assert not [p for p in first.problems if "read before" in p]
    size = log.stat().st_size
    write_events(log, rows)  # the sensor appended to it
    again = run([str(log)], settings, engines=EngineSet([PortEngine()]))
    (warning,) = [p for p in again.problems if "read before" in p]
    assert warning.startswith(f"{log}: read before with other content ({size:,} bytes then")
    other = tmp_path / "other.ndjson"
    write_events(other, rows[4:])
    fresh = run([str(other)], settings, engines=EngineSet([PortEngine()]))
    assert not [p for p in fresh.problems if "read before" in p]  # a new name: no warning


def test_hits_on_events_without_a_time_are_counted_not_a_crash(tmp_path: Path) -> None:
    logs = tmp_path / "cut"
    logs.mkdir()
    # zeek-cut output: no ts column, so its events cannot be put in an alert window
    (logs / "dns.log").write_text(
        "### BTest baseline banner\nuid\tid.orig_h\tid.resp_p\tquery\n"
        "C1\t10.0.0.1\t53\tx.org\nC2\t10.0.0.2\t53\ty.org\n"
    )
    db = tmp_path / "a.duckdb"
    summary = run([str(logs)], load_settings(environ={}, flags={"db": db}),
                  engines=EngineSet([PortEngine()]))
    assert (summary.status, summary.exit_code, summary.alerts_new) == ("ok", 0, 0)
    (report,) = summary.files
    assert report.skipped["hits on events without a time (no alert)"] == 2
