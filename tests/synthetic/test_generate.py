"""The generator: reproducible, canonical, exact in size, and true to its ground truth."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from detect.errors import ConfigError
from detect.schema import CANONICAL_SCHEMA
from detect.synthetic import CHUNK_EVENTS, generate
from detect.synthetic.records import DATASETS

EVENTS = 6_000


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("gen")
    seen: list[int] = []
    result = generate(out, events=EVENTS, seed=11, progress=seen.append)
    return result, seen


def _frames(out: Path) -> dict[str, pl.DataFrame]:
    return {ds: pl.read_parquet(out / f"{ds}.parquet") for ds in DATASETS}


def _ground_truth(out: Path) -> dict:
    return json.loads((out / "ground_truth.json").read_text())


def _files(out: Path) -> dict[str, bytes]:
    names = [f"{ds}.parquet" for ds in DATASETS]
    names += ["ground_truth.json", "ground_truth_events.parquet", "indicators.csv"]
    return {n: (out / n).read_bytes() for n in names}


def test_same_seed_same_bytes_and_different_seed_differs(run, tmp_path: Path) -> None:
    result, _ = run
    again = generate(tmp_path / "a", events=EVENTS, seed=11)
    assert _files(again.out_dir) == _files(result.out_dir)
    other = generate(tmp_path / "b", events=EVENTS, seed=12)
    a, b = _frames(result.out_dir)["conn"], _frames(other.out_dir)["conn"]
    assert not a.equals(b)


def test_rows_do_not_depend_on_batch_size(tmp_path: Path) -> None:
    n = 2 * CHUNK_EVENTS + 500
    small = generate(tmp_path / "s", events=n, seed=3, batch_size=1)
    big = generate(tmp_path / "b", events=n, seed=3, batch_size=10**6)
    for ds in DATASETS:
        s = pq.ParquetFile(small.files[ds])
        b = pq.ParquetFile(big.files[ds])
        assert s.metadata.num_row_groups >= b.metadata.num_row_groups
        key = ["@timestamp", "event.id"]
        fs = pl.read_parquet(small.files[ds]).sort(key, maintain_order=True)
        fb = pl.read_parquet(big.files[ds]).sort(key, maintain_order=True)
        assert fs.equals(fb), ds


def test_exact_canonical_schema(run) -> None:
    result, _ = run
    for ds in DATASETS:
        schema = pq.read_schema(result.files[ds]).remove_metadata()
        assert schema.equals(CANONICAL_SCHEMA), ds
        table = pq.read_table(result.files[ds])
        assert table.column("event.dataset").unique().to_pylist() == [ds]
        for col in ("source.ip_bin", "destination.ip_bin"):
            assert table.column(col).null_count == table.num_rows


@pytest.mark.parametrize("events", [1_000, 12_345])
def test_event_count_is_exact(tmp_path: Path, events: int) -> None:
    r = generate(tmp_path, events=events, seed=5, organizations=2)
    rows = {ds: pq.read_metadata(r.files[ds]).num_rows for ds in DATASETS}
    assert rows == r.counts
    assert sum(rows.values()) == events
    assert all(rows[ds] > 0 for ds in DATASETS)
    gt = _ground_truth(r.out_dir)
    assert gt["planted_events"] == sum(a["events"] for a in gt["activities"])
    assert gt["planted_events"] < events // 2


def test_progress_reports_running_total(run) -> None:
    result, seen = run
    assert seen and seen[-1] == result.events
    assert seen == sorted(seen)


def test_every_labelled_event_is_in_the_data(run) -> None:
    result, _ = run
    frames = _frames(result.out_dir)
    labels = pl.read_parquet(result.ground_truth_events)
    gt = _ground_truth(result.out_dir)
    for ds in DATASETS:
        want = labels.filter(pl.col("dataset") == ds)
        got = frames[ds].join(
            want, left_on=["event.id", "@timestamp"], right_on=["event_id", "timestamp"],
            how="inner",
        )
        assert got.height == want.height, ds
    per_activity = labels.group_by("activity_id").len()
    counts = dict(per_activity.iter_rows())
    for act in gt["activities"]:
        assert counts[act["id"]] == act["events"]
        assert act["events"] == sum(act["events_by_dataset"].values())


def _activity_conns(frames: dict[str, pl.DataFrame], act: dict) -> pl.DataFrame:
    return frames["conn"].filter(
        (pl.col("source.ip") == act["source_ip"])
        & (pl.col("organization.name") == act["organization"])
        & pl.col("destination.ip").is_in(act["destination_ips"])
        & pl.col("destination.port").is_in(act["destination_ports"])
    )


def test_each_kind_has_its_shape(run) -> None:
    result, _ = run
    frames = _frames(result.out_dir)
    acts = _ground_truth(result.out_dir)["activities"]
    kinds = {a["kind"] for a in acts}
    assert kinds == {"ioc_contact", "beacon", "dns_tunnel", "vertical_scan", "horizontal_scan",
                     "exfiltration"}
    for act in acts:
        p = act["parameters"]
        if act["kind"] == "beacon":
            conns = _activity_conns(frames, act).sort("@timestamp")
            assert conns.height == p["checkins"] >= 4
            gaps = conns["@timestamp"].diff().dt.total_seconds().drop_nulls().to_numpy()
            assert abs(np.median(gaps) - p["period_s"]) <= p["period_s"] * (p["jitter"] + 0.01)
            sb = conns["source.bytes"].to_numpy().astype(float)
            assert np.ptp(sb) <= 2 * p["bytes_spread"]
        elif act["kind"] == "vertical_scan":
            conns = _activity_conns(frames, act)
            assert conns["destination.port"].n_unique() == p["ports"] > 10
            failed = conns["network.connection.state"].cast(pl.Utf8).is_in(["REJ", "S0"]).mean()
            assert failed >= 0.8
        elif act["kind"] == "horizontal_scan":
            conns = _activity_conns(frames, act)
            assert conns["destination.ip"].n_unique() == p["targets"] > 32
            span = (conns["@timestamp"].max() - conns["@timestamp"].min()).total_seconds()
            assert span <= 30
        elif act["kind"] == "dns_tunnel":
            dns = frames["dns"].filter(
                pl.col("dns.question.name").str.ends_with("." + act["destination_domain"]))
            assert dns.height == p["queries"]
            assert dns["dns.question.name"].n_unique() == p["unique_subdomains"]
            assert (dns["dns.question.name"].str.split(".").list.first().str.len_chars()
                    > 24).all()
            assert (dns["dns.question.type"].cast(pl.Utf8) == "TXT").mean() > 0.5
        elif act["kind"] == "exfiltration":
            conns = _activity_conns(frames, act)
            assert conns.height == p["sessions"]
            assert conns["source.bytes"].sum() == p["total_src_bytes"]
            base = frames["conn"].filter(
                (pl.col("source.ip") == act["source_ip"])
                & ~pl.col("destination.ip").is_in(act["destination_ips"]))
            baseline = base["source.bytes"].median() or 0
            assert conns["source.bytes"].min() > 1000 * max(baseline, 1000)
        elif act["kind"] == "ioc_contact":
            assert act["indicators"]


def test_indicators_are_contacted_and_decoys_are_not(run) -> None:
    result, _ = run
    frames = _frames(result.out_dir)
    with result.indicators.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and set(rows[0]) == {"type", "value", "source", "confidence", "severity", "tags"}
    columns = {
        "ip": [("conn", "destination.ip"), ("dns", "dns.answers.data")],
        "domain": [("dns", "dns.question.name"), ("tls", "tls.server.name")],
        "url": [("http", "url.full")],
        "sha256": [("files", "file.hash.sha256")],
        "ja3": [("tls", "tls.client.ja3")],
    }

    def hits(typ: str, value: str) -> int:
        n = 0
        for ds, col in columns[typ]:
            s = frames[ds][col]
            if s.dtype == pl.List(pl.Utf8):
                s = s.explode()
            n += int((s.cast(pl.Utf8) == value).sum())
        return n

    for row in rows:
        n = hits(row["type"], row["value"])
        if "decoy" in row["tags"]:
            assert n == 0, row
        else:
            assert n > 0, row
    assert {r["type"] for r in rows} == {"ip", "domain", "url", "sha256", "ja3"}


def test_day_hours_are_busier_than_night(run) -> None:
    result, _ = run
    conn = _frames(result.out_dir)["conn"]
    hour = ((conn["@timestamp"].dt.hour().cast(pl.Int32) + 1) % 24).to_numpy()  # UTC+1
    day = np.isin(hour, range(9, 17)).sum() / 8
    night = np.isin(hour, range(0, 5)).sum() / 5
    assert day > 3 * night


def test_cross_dataset_consistency(run) -> None:
    result, _ = run
    f = _frames(result.out_dir)
    tls = f["tls"].select("event.id", "destination.ip", "source.ip")
    joined = tls.join(f["conn"].select("event.id", "destination.ip", "source.ip"),
                      on="event.id", how="left", suffix="_c")
    assert (joined["destination.ip"] == joined["destination.ip_c"]).all()
    # a looked-up name is answered with the address the next connection goes to
    answered = f["dns"].explode("dns.answers.data")["dns.answers.data"].drop_nulls()
    tls_dst = f["tls"]["destination.ip"]
    assert tls_dst.is_in(answered).mean() > 0.3
    assert f["conn"]["source.ip"].str.contains(":").any()  # some IPv6


def test_memory_stays_flat_across_batches(tmp_path: Path) -> None:
    peaks: list[int] = []
    generate(tmp_path, events=6 * CHUNK_EVENTS, seed=2, batch_size=CHUNK_EVENTS,
             progress=lambda _: peaks.append(pa.total_allocated_bytes()))
    assert len(peaks) == 6
    assert max(peaks[3:]) <= 1.5 * max(peaks[:3]) + 16 * 2**20


@pytest.mark.parametrize(("kw", "match"), [
    ({"events": 10}, "events must be between"),
    ({"events": 5000, "days": 0}, "days must be"),
    ({"events": 5000, "organizations": 0}, "organizations must be"),
])
def test_bad_arguments_are_config_errors(tmp_path: Path, kw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        generate(tmp_path, seed=1, **kw)
