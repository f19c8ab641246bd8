"""Hit to alert aggregation: fixed windows, deterministic ids, severity order, streaming merge."""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detect.alerts import (
    CONTRIBUTION_SCHEMA,
    SEVERITIES,
    aggregate_hits,
    alert_id,
    max_severity,
    merge_contributions,
    severity_at_least,
    severity_rank,
)
from detect.errors import ConfigError

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def hits(rows: list[dict[str, object]]) -> pa.Table:
    base = {
        "rule_id": "r1",
        "rule_kind": "sigma",
        "field": "source.ip",
        "entity": "10.0.0.1",
        "title": "T",
        "severity": "high",
        "attack": ["T1046"],
    }
    full = [{**base, **r} for r in rows]
    schema = pa.schema(
        [
            ("@timestamp", pa.timestamp("us", "UTC")),
            ("rule_id", pa.string()),
            ("rule_kind", pa.string()),
            ("field", pa.string()),
            ("entity", pa.string()),
            ("title", pa.string()),
            ("severity", pa.string()),
            ("attack", pa.list_(pa.string())),
            ("event_index", pa.int64()),
        ]
    )
    for i, r in enumerate(full):
        r.setdefault("event_index", i)
    return pa.Table.from_pylist(full, schema=schema)


def test_groups_by_rule_entity_and_epoch_aligned_window() -> None:
    t = hits(
        [
            {"@timestamp": T0 + timedelta(minutes=59, seconds=59)},
            {"@timestamp": T0},
            {"@timestamp": T0 + timedelta(hours=1)},  # next window
            {"@timestamp": T0, "entity": "10.0.0.2"},
            {"@timestamp": T0, "rule_id": "r2"},
        ]
    )
    out = aggregate_hits(t, input_hash="h").to_pylist()
    assert [(r["rule_id"], r["entity"], r["window_start"], r["event_count"]) for r in out] == [
        ("r1", "10.0.0.1", T0, 2),
        ("r1", "10.0.0.1", T0 + timedelta(hours=1), 1),
        ("r1", "10.0.0.2", T0, 1),
        ("r2", "10.0.0.1", T0, 1),
    ]
    first = out[0]
    assert first["window_end"] == T0 + timedelta(hours=1)
    assert first["first_seen"] == T0
    assert first["last_seen"] == T0 + timedelta(minutes=59, seconds=59)
    assert first["attack"] == ["T1046"]


def test_an_event_hitting_in_two_fields_counts_once() -> None:
    t = hits(
        [
            {"@timestamp": T0, "field": "source.ip", "event_index": 7},
            {"@timestamp": T0, "field": "destination.ip", "event_index": 7},  # same event
            {"@timestamp": T0, "field": "source.ip", "event_index": 8},
        ]
    )
    (alert,) = aggregate_hits(t, input_hash="h").to_pylist()
    assert alert["event_count"] == 2
    assert [json.loads(e)["field"] for e in alert["evidence"]] == [
        "source.ip",
        "destination.ip",
        "source.ip",
    ]  # both fields of event 7 stay in the evidence
    (alert,) = aggregate_hits(t.drop_columns(["event_index"]), input_hash="h").to_pylist()
    assert alert["event_count"] == 3  # without event indexes: one event per hit


def test_window_is_configurable_and_aligned_on_the_epoch() -> None:
    t = hits([{"@timestamp": T0 + timedelta(minutes=7)}])
    (row,) = aggregate_hits(t, input_hash="h", window=300).to_pylist()
    assert row["window_start"] == T0 + timedelta(minutes=5)
    assert row["window_end"] == T0 + timedelta(minutes=10)
    with pytest.raises(ConfigError, match="positive"):
        aggregate_hits(t, input_hash="h", window=0)


def test_alert_id_is_a_stable_hash_of_the_key() -> None:
    t = hits([{"@timestamp": T0 + timedelta(minutes=3)}])
    (row,) = aggregate_hits(t, input_hash="h").to_pylist()
    key = json.dumps(["r1", "10.0.0.1", int(T0.timestamp())])
    assert row["alert_id"] == hashlib.sha256(key.encode()).hexdigest()[:32]
    assert row["alert_id"] == alert_id("r1", "10.0.0.1", int(T0.timestamp()))
    # the same hits from another input give the same alert id
    assert aggregate_hits(t, input_hash="other")["alert_id"].to_pylist() == [row["alert_id"]]
    # separators inside the parts cannot make two keys collide
    assert alert_id("a|b", "c", 0) != alert_id("a", "b|c", 0)


def test_severity_is_the_highest_and_null_takes_the_default() -> None:
    t = hits(
        [
            {"@timestamp": T0, "severity": "LOW"},
            {"@timestamp": T0, "severity": "critical"},
            {"@timestamp": T0, "severity": None, "rule_id": "r2"},
        ]
    )
    out = aggregate_hits(t, input_hash="h", default_severity="medium")
    assert out["severity"].to_pylist() == ["critical", "medium"]
    with pytest.raises(ConfigError, match="unknown severity values \\['severe'\\]"):
        aggregate_hits(hits([{"@timestamp": T0, "severity": "severe"}]), input_hash="h")


def test_evidence_keeps_the_first_samples_in_read_order_without_event_index() -> None:
    t = hits([{"@timestamp": T0 + timedelta(seconds=60 - i)} for i in range(8)])
    (row,) = aggregate_hits(t, input_hash="h", max_samples=3).to_pylist()
    samples = [json.loads(s) for s in row["evidence"]]
    assert [s["@timestamp"] for s in samples] == [
        "2024-03-01T12:01:00+00:00",
        "2024-03-01T12:00:59+00:00",
        "2024-03-01T12:00:58+00:00",
    ]
    assert set(samples[0]) == {"@timestamp", "field"}
    (row,) = aggregate_hits(t, input_hash="h", evidence_columns=["entity"]).to_pylist()
    assert json.loads(row["evidence"][0]) == {"entity": "10.0.0.1"}


def test_null_entity_naive_time_and_input_hash_column() -> None:
    t = hits([{"@timestamp": T0, "entity": None}])
    naive = t.set_column(0, "@timestamp", t.column(0).cast(pa.timestamp("ms")))
    naive = naive.append_column("input_hash", pa.array(["from-column"]))
    (row,) = aggregate_hits(naive).to_pylist()
    assert row["entity"] == ""
    assert row["window_start"] == T0
    assert row["input_hash"] == "from-column"


def test_bad_input_is_explained() -> None:
    t = hits([{"@timestamp": T0}])
    with pytest.raises(ValueError, match="input_hash"):
        aggregate_hits(t)
    with pytest.raises(ValueError, match="lacks columns \\['rule_kind'\\]"):
        aggregate_hits(t.drop_columns(["rule_kind"]), input_hash="h")
    with pytest.raises(ValueError, match="1 hits have no event time"):
        aggregate_hits(hits([{"@timestamp": T0}, {"@timestamp": None}]), input_hash="h")


def test_empty_hits_give_an_empty_table_with_the_schema() -> None:
    out = aggregate_hits(hits([]), input_hash="h")
    assert out.num_rows == 0
    assert out.schema == CONTRIBUTION_SCHEMA
    assert merge_contributions([]).schema == CONTRIBUTION_SCHEMA


def test_output_schema_and_author_references() -> None:
    t = hits([{"@timestamp": T0}]).append_column("author", pa.array(["Jane"]))
    t = t.append_column("references", pa.array([["https://x"]]))
    out = aggregate_hits(t, input_hash="h")
    assert out.schema == CONTRIBUTION_SCHEMA
    assert out["author"].to_pylist() == ["Jane"]
    assert out["rule_references"].to_pylist() == [["https://x"]]
    assert "author" not in json.loads(out["evidence"].to_pylist()[0][0])


def test_severity_helpers() -> None:
    assert [severity_rank(s) for s in SEVERITIES] == [0, 1, 2, 3, 4]
    assert severity_at_least("critical", "high")
    assert severity_at_least("HIGH", "high")
    assert not severity_at_least("medium", "high")
    assert not severity_at_least(None, "informational")
    assert max_severity(["low", None, "high", "medium"]) == "high"
    assert max_severity([]) is None
    with pytest.raises(ConfigError, match="unknown severity 'urgent'; use one of"):
        severity_rank("urgent")


HIT = st.fixed_dictionaries(
    {
        "@timestamp": st.integers(0, 4 * 3600).map(lambda s: T0 + timedelta(seconds=s)),
        "rule_id": st.sampled_from(["r1", "r2", "ioc:domain:a|b"]),
        "entity": st.sampled_from(["10.0.0.1", "::1", "", None, "é"]),
        "severity": st.sampled_from(SEVERITIES),
    }
)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(HIT, max_size=40), cuts=st.lists(st.integers(0, 40), max_size=4))
def test_merging_batch_contributions_equals_aggregating_everything(
    rows: list[dict[str, object]], cuts: list[int]
) -> None:
    t = hits(rows)
    whole = aggregate_hits(t, input_hash="h", max_samples=3)
    bounds = sorted({0, t.num_rows, *(c for c in cuts if c <= t.num_rows)})
    parts = [
        aggregate_hits(t.slice(a, b - a), input_hash="h", max_samples=3)
        for a, b in itertools.pairwise(bounds)
    ]
    assert merge_contributions(parts, max_samples=3).equals(whole)
    # and the counts against an obviously right per-row reference
    expected: dict[tuple[object, ...], int] = {}
    for r in t.to_pylist():
        key = (r["rule_id"], r["entity"] or "", r["@timestamp"].timestamp() // 3600 * 3600)
        expected[key] = expected.get(key, 0) + 1
    got = {
        (r["rule_id"], r["entity"], r["window_start"].timestamp()): r["event_count"]
        for r in whole.to_pylist()
    }
    assert got == expected
