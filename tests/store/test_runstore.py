"""The run store: one transaction per run, idempotent upserts, reprocess replaces, kill-safe."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from detect.errors import StoreError
from detect.store import InputRecord, RunRecord, Store, new_run_id, open_store
from tests.store.conftest import T0, contributions, dump


def record(**kwargs: object) -> RunRecord:
    return RunRecord(run_id=new_run_id(), started_at=datetime.now(UTC), **kwargs)  # type: ignore[arg-type]


def inp(content_hash: str, events: int = 6) -> InputRecord:
    return InputRecord(
        path=f"/data/{content_hash}.ndjson",
        content_hash=content_hash,
        size=100,
        mtime=T0,
        format="ndjson",
        events=events,
        rejects=1,
    )


def alerts_by_id(store: Store) -> dict[str, dict[str, object]]:
    return {a["alert_id"]: a for a in store.query_alerts().to_pylist()}


def test_commit_writes_run_inputs_contributions_and_alerts(db: Path) -> None:
    c = contributions("h1", n=90)  # 90 minutes: two hourly windows
    rec = record(events_read=91, events_rejected=1, read_seconds=0.5, stage_seconds={"x": 1.0})
    with open_store(db) as store:
        result = store.commit_run(rec, [inp("h1", 90)], c)
        assert (result.alerts_new, result.alerts_updated) == (2, 0)
        assert result.max_severity == "high"
        assert result.contributions_written == 2
        assert store.seen_hashes(["h1", "h2"]) == {"h1"}
        alerts = store.query_alerts().to_pylist()
        runs = store.query_runs().to_pylist()
    assert sorted(a["event_count"] for a in alerts) == [30, 60]
    first = min(alerts, key=lambda a: a["window_start"])
    assert first["window_start"] == T0
    assert first["window_end"] == T0 + timedelta(hours=1)
    assert first["attack"] == ["T1071.001"]
    assert first["author"] == "Jane Doe"
    assert first["rule_references"] == ["https://example.org/x"]
    evidence = json.loads(first["evidence"])
    assert len(evidence) == 5
    assert evidence[0]["destination.ip"] == "192.0.2.0"
    (run,) = runs
    assert run["run_id"] == rec.run_id
    assert (run["inputs"], run["alerts_new"], run["alerts_updated"]) == (1, 2, 0)
    assert run["status"] == "ok"
    assert run["store_seconds"] is not None
    assert run["finished_at"] is not None
    assert json.loads(run["stage_seconds"]) == {"x": 1.0}


def test_same_contributions_twice_change_nothing(db: Path) -> None:
    c = pa.concat_tables([contributions("h1", n=90), contributions("h2", entity="10.0.0.2")])
    with open_store(db) as store:
        store.commit_run(record(), [inp("h1"), inp("h2")], c)
    before = dump(db)["alerts"]
    with open_store(db) as store:
        again = store.commit_run(record(), [], c)
    assert (again.alerts_new, again.alerts_updated, again.contributions_written) == (0, 0, 0)
    assert again.max_severity is None
    assert dump(db)["alerts"] == before


def test_contributions_of_two_inputs_add_up(db: Path) -> None:
    with open_store(db) as store:
        store.commit_run(record(), [inp("h1")], contributions("h1", n=6))
        second = store.commit_run(record(), [inp("h2")], contributions("h2", n=4))
        (alert,) = store.query_alerts().to_pylist()
    assert (second.alerts_new, second.alerts_updated) == (0, 1)
    assert alert["event_count"] == 10
    evidence = json.loads(alert["evidence"])
    assert len(evidence) == 9  # each contribution keeps up to 5 samples: 5 from h1, 4 from h2
    assert evidence[0] == evidence[5]  # both inputs begin with the same event


def test_reprocess_replaces_an_inputs_contribution(db: Path) -> None:
    with open_store(db) as store:
        store.commit_run(
            record(),
            [inp("h1"), inp("h2")],
            pa.concat_tables([contributions("h1", n=6), contributions("h2", n=4)]),
        )
        rerun = record()
        result = store.commit_run(rerun, [inp("h1")], contributions("h1", n=8, severity="critical"))
        (alert,) = store.query_alerts().to_pylist()
    assert (result.alerts_new, result.alerts_updated) == (0, 1)
    assert alert["event_count"] == 12  # 8 (h1, replaced) + 4 (h2), not 6 + 8 + 4
    assert alert["severity"] == "critical"
    assert result.max_severity == "critical"
    assert alert["run_id"] == rerun.run_id
    rows = dump(db)["alert_contributions"]
    assert len(rows) == 2


def test_replace_inputs_drops_alerts_the_rules_no_longer_raise(db: Path) -> None:
    both = pa.concat_tables([contributions("h1"), contributions("h1", rule_id="rule-2")])
    with open_store(db) as store:
        store.commit_run(record(), [inp("h1")], both)
        assert store.query_alerts().num_rows == 2
        kept = store.commit_run(record(), [inp("h1")], contributions("h1"))
        assert (kept.alerts_removed, kept.contributions_deleted) == (0, 0)
        assert store.query_alerts().num_rows == 2  # keyed replace keeps rule-2
        pruned = store.commit_run(record(), [inp("h1")], contributions("h1"), replace_inputs=True)
        assert (pruned.alerts_removed, pruned.contributions_deleted) == (1, 1)
        assert store.query_alerts()["rule_id"].to_pylist() == ["rule-1"]


def test_alert_ids_do_not_depend_on_the_run(tmp_path: Path) -> None:
    ids = []
    for name in ("a", "b"):
        with open_store(tmp_path / f"{name}.duckdb") as store:
            store.commit_run(record(), [inp("h1")], contributions("h1", n=90))
            ids.append(sorted(store.query_alerts()["alert_id"].to_pylist()))
    assert ids[0] == ids[1]


def test_values_with_quotes_and_semicolons_are_stored_verbatim(db: Path) -> None:
    nasty = 'x\'); DROP TABLE alerts; -- "quoted" ; $1 ? %s {}'
    c = contributions(nasty, rule_id=nasty, entity=nasty, title=nasty)
    rec = record(errors=[nasty], args={"q": nasty}, rejects_path=nasty, version=nasty)
    with open_store(db) as store:
        store.commit_run(rec, [InputRecord(path=nasty, content_hash=nasty, events=6)], c)
        (alert,) = store.query_alerts(rule=nasty).to_pylist()
        (run,) = store.query_runs().to_pylist()
        assert store.seen_hashes([nasty]) == {nasty}
    assert alert["rule_id"] == alert["entity"] == alert["title"] == nasty
    assert run["errors"] == [nasty]
    assert json.loads(run["args"]) == {"q": nasty}
    assert run["rejects_path"] == run["version"] == nasty
    assert dump(db)["inputs"][0][2] == nasty


def test_query_alerts_filters(db: Path) -> None:
    c = pa.concat_tables(
        [
            contributions("h1", rule_id="r-low", severity="low"),
            contributions("h1", rule_id="r-med", severity="medium", start=T0 + timedelta(days=1)),
            contributions(
                "h1", rule_id="r-crit", severity="critical", start=T0 + timedelta(days=2)
            ),
        ]
    )
    with open_store(db) as store:
        store.commit_run(record(), [inp("h1")], c)
    with open_store(db, read_only=True) as store:
        assert store.query_alerts()["rule_id"].to_pylist() == ["r-crit", "r-med", "r-low"]
        assert store.query_alerts(min_severity="medium")["rule_id"].to_pylist() == [
            "r-crit",
            "r-med",
        ]
        assert store.query_alerts(since=T0 + timedelta(hours=12))["rule_id"].to_pylist() == [
            "r-crit",
            "r-med",
        ]
        assert store.query_alerts(until=T0 + timedelta(hours=12))["rule_id"].to_pylist() == [
            "r-low"
        ]
        assert store.query_alerts(rule="r-med")["rule_id"].to_pylist() == ["r-med"]
        assert store.query_alerts(limit=1)["rule_id"].to_pylist() == ["r-crit"]
        with pytest.raises(StoreError, match="read-only"):
            store.commit_run(record(), [], [])


def test_failed_run_records_only_itself(db: Path) -> None:
    with open_store(db) as store:
        with pytest.raises(ValueError, match="failed run records only itself"):
            store.commit_run(record(status="failed"), [inp("h1")], contributions("h1"))
        store.commit_run(record(status="failed", errors=["boom"]), [], [])
        assert store.query_alerts().num_rows == 0
        assert store.query_runs()["status"].to_pylist() == ["failed"]


def test_bad_batches_are_refused_before_anything_is_written(db: Path) -> None:
    c = contributions("h1")
    with open_store(db) as store:
        with pytest.raises(ValueError, match="repeat an"):
            store.commit_run(record(), [inp("h1")], pa.concat_tables([c, c]))
        with pytest.raises(ValueError, match="same content hash"):
            store.commit_run(record(), [inp("h1"), inp("h1")], c)
        with pytest.raises(ValueError, match="time zone"):
            store.commit_run(RunRecord(run_id="x", started_at=datetime(2024, 1, 1)), [], [])
    assert all(dump(db)[t] == [] for t in ("runs", "inputs", "alerts", "alert_contributions"))


def test_an_error_inside_the_transaction_rolls_everything_back(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(db) as store:
        store.commit_run(record(), [inp("h1")], contributions("h1"))
    before = dump(db)

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Store, "_write_run", boom)
    with open_store(db) as store, pytest.raises(RuntimeError, match="disk on fire"):
        store.commit_run(record(), [inp("h2")], contributions("h2", n=50, entity="10.9.9.9"))
    assert dump(db) == before


def test_duplicate_run_id_is_a_store_error_and_writes_nothing(db: Path) -> None:
    rec = record()
    with open_store(db) as store:
        store.commit_run(rec, [inp("h1")], contributions("h1"))
    before = dump(db)
    with open_store(db) as store, pytest.raises(StoreError, match="nothing was written"):
        store.commit_run(rec, [inp("h2")], contributions("h2", entity="10.1.1.1"))
    assert dump(db) == before


KILL_MID_COMMIT = """
import sys, time
from pathlib import Path
import pyarrow as pa
from detect.store import InputRecord, RunRecord, Store, open_store, new_run_id
from tests.store.conftest import T0, contributions

write_inputs = Store._write_inputs

def stall(self, con, run_id, inputs):
    write_inputs(self, con, run_id, inputs)
    print("inside", flush=True)
    time.sleep(60)

Store._write_inputs = stall
parts = [contributions(f"k{i}", n=40, entity=f"10.0.{i // 250}.{i % 250}") for i in range(400)]
with open_store(Path(sys.argv[1])) as store:
    store.commit_run(
        RunRecord(run_id=new_run_id(), started_at=T0),
        [InputRecord(path=f"/k{i}", content_hash=f"k{i}", events=40) for i in range(400)]
        + [InputRecord(path="/h1", content_hash="h1", events=3)],
        pa.concat_tables([*parts, contributions("h1", n=3)]),
    )
"""


def test_sigkill_during_commit_leaves_the_database_as_it_was(db: Path) -> None:
    with open_store(db) as store:
        store.commit_run(record(), [inp("h1")], contributions("h1", n=6))
    before = dump(db)
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_MID_COMMIT, str(db)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "inside"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert dump(db) == before
    with open_store(db) as store:  # and the database still takes the next run
        assert store.commit_run(record(), [inp("h2")], contributions("h2")).alerts_updated == 1


def test_detector_state_is_stored_compressed_and_read_back_exactly(db: Path) -> None:
    from detect.store import StateRecord

    n = 200_000
    state = pa.table({
        "source.ip": pa.array([f"10.1.{i % 250}.{i % 7}" for i in range(n)]),
        "ts": pa.array(range(0, n * 1000, 1000), pa.int64()),
    })
    with open_store(db) as store:
        store.commit_run(record(), [], [], states=[StateRecord("beacon", state)])
        assert store.load_states()["beacon"].equals(state)
        stored = store.connection.execute(
            "SELECT state_bytes, octet_length(state) FROM anomaly_state"
        ).fetchone()
    assert stored[0] == stored[1]
    assert stored[0] < state.nbytes / 3  # zstd: the uncompressed stream is ~nbytes
