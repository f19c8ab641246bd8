"""``generate``: stream synthetic telemetry with planted attacks to Parquet.

Benign events are drawn in fixed chunks of ``CHUNK_EVENTS`` consecutive events,
each with its own random stream (``seed``, chunk number) and its own slice of
time, so the rows depend only on ``events``, ``seed``, ``start``, ``days`` and
``organizations`` -- never on ``batch_size``, which only sets the row-group size
(rounded to whole chunks). Memory holds one batch being generated and one being
written, whatever ``events`` is.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from detect.errors import ConfigError
from detect.schema import CANONICAL_SCHEMA
from detect.synthetic.attacks import Planted, check_budget, iso, plant_attacks
from detect.synthetic.benign import benign_chunk
from detect.synthetic.records import DATASET_COLUMNS, DATASETS, to_canonical
from detect.synthetic.timeline import US_PER_S, Timeline
from detect.synthetic.world import build_world

CHUNK_EVENTS = 65_536
MIN_EVENTS = 1_000
MAX_EVENTS = 10_000_000_000
DEFAULT_START = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday; fixed so runs reproduce
GROUND_TRUTH = "ground_truth.json"
GROUND_TRUTH_EVENTS = "ground_truth_events.parquet"
INDICATORS = "indicators.csv"
INDICATOR_COLUMNS = ("type", "value", "source", "confidence", "severity", "tags")
COMPRESSION = "zstd"
# Columns whose values are (nearly) all distinct: a dictionary only costs time and bytes.
# ``@timestamp`` is sorted within a row group, so delta encoding is both smaller and faster.
NO_DICTIONARY = frozenset({"@timestamp", "event.id", "event.duration", "destination.bytes",
                           "dns.id"})
ENCODINGS = {"@timestamp": "DELTA_BINARY_PACKED"}
WRITER_THREADS = 2


def writer_options(dataset: str) -> dict[str, object]:
    """``pq.ParquetWriter`` options for one dataset's file.

    The ~60 columns a dataset never fills are written without statistics or a dictionary
    (they are all null; that is most of the writer's per-column work); the filled ones
    keep statistics, and a dictionary where values repeat.
    """
    filled = DATASET_COLUMNS[dataset]
    return {
        "compression": COMPRESSION,
        "use_dictionary": [c for c in filled if c not in NO_DICTIONARY],
        "column_encoding": {c: e for c, e in ENCODINGS.items() if c in filled},
        "write_statistics": list(filled),
    }


@dataclass(frozen=True)
class GenerateResult:
    """What a run wrote and how big it is."""

    out_dir: Path
    events: int
    seed: int
    start: datetime
    end: datetime
    counts: dict[str, int]
    planted_events: int
    activities: int
    files: dict[str, Path]
    ground_truth: Path
    ground_truth_events: Path
    indicators: Path
    seconds: float = field(compare=False)


def _check(events: int, seed: int, days: float, organizations: int, batch_size: int) -> None:
    if not MIN_EVENTS <= events <= MAX_EVENTS:
        msg = (f"events must be between {MIN_EVENTS:,} and {MAX_EVENTS:,}, got {events:,}; "
               f"the planted attacks need at least {MIN_EVENTS:,} events to stay a minority")
        raise ConfigError(msg)
    if seed < 0:
        msg = f"seed must be 0 or more, got {seed}"
        raise ConfigError(msg)
    if not 0.01 <= days <= 366:
        msg = f"days must be between 0.01 and 366, got {days}"
        raise ConfigError(msg)
    if not 1 <= organizations <= 250:
        msg = f"organizations must be between 1 and 250, got {organizations}"
        raise ConfigError(msg)
    if batch_size < 1:
        msg = f"batch_size must be positive, got {batch_size}"
        raise ConfigError(msg)


def generate(
    out_dir: Path,
    *,
    events: int,
    seed: int,
    start: datetime | None = None,
    days: float = 1.0,
    organizations: int = 3,
    batch_size: int = 250_000,
    progress: Callable[[int], None] | None = None,
) -> GenerateResult:
    """Write ``events`` synthetic events with planted, labelled attacks into ``out_dir``.

    Writes ``conn.parquet``, ``dns.parquet``, ``http.parquet``, ``tls.parquet`` and
    ``files.parquet`` (exactly ``detect.schema.CANONICAL_SCHEMA``, time-sorted per row
    group), ``ground_truth.json`` (one record per planted activity),
    ``ground_truth_events.parquet`` (dataset, event_id, timestamp, activity_id of every
    planted row) and ``indicators.csv`` (the planted IOCs plus never-contacted decoys).
    The same arguments give byte-identical files. ``progress`` is called after each
    batch with the number of events written so far.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from detect.synthetic import generate
    >>> r = generate(Path(tempfile.mkdtemp()), events=5_000, seed=1)
    >>> r.events, sum(r.counts.values())
    (5000, 5000)
    """
    _check(events, seed, days, organizations, batch_size)
    t_start = time.perf_counter()
    start = DEFAULT_START if start is None else start
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    start_us = int(start.timestamp()) * US_PER_S + start.microsecond
    timeline = Timeline.build(start_us, days)
    world = build_world(np.random.default_rng([seed, 1]), events=events,
                        organizations=organizations, timeline=timeline)
    planted = plant_attacks(world, np.random.default_rng([seed, 2]), events=events)
    check_budget(planted, events)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = _write_datasets(out_dir, world_seed=seed, events=events, planted=planted,
                             world=world, batch_size=batch_size, progress=progress)
    files = {ds: out_dir / f"{ds}.parquet" for ds in DATASETS}
    end = datetime.fromtimestamp(timeline.end_us / US_PER_S, tz=UTC)
    _write_ground_truth(out_dir / GROUND_TRUTH, planted=planted, seed=seed, events=events,
                        timeline=timeline, counts=counts, days=days,
                        organizations=world.population.org_names.to_pylist())
    pq.write_table(planted.labels, out_dir / GROUND_TRUTH_EVENTS, compression=COMPRESSION)
    _write_indicators(out_dir / INDICATORS, planted)
    return GenerateResult(
        out_dir=out_dir, events=events, seed=seed, start=start, end=end, counts=counts,
        planted_events=planted.events, activities=len(planted.activities), files=files,
        ground_truth=out_dir / GROUND_TRUTH, ground_truth_events=out_dir / GROUND_TRUTH_EVENTS,
        indicators=out_dir / INDICATORS, seconds=time.perf_counter() - t_start,
    )


def _write_datasets(
    out_dir: Path, *, world_seed: int, events: int, planted: Planted, world: object,
    batch_size: int, progress: Callable[[int], None] | None,
) -> dict[str, int]:
    from detect.synthetic.world import World

    assert isinstance(world, World)
    benign = events - planted.events
    n_chunks = max(1, math.ceil(benign / CHUNK_EVENTS))
    per_batch = max(1, round(batch_size / CHUNK_EVENTS))
    batches = [range(b, min(b + per_batch, n_chunks)) for b in range(0, n_chunks, per_batch)]
    tl = world.timeline
    # batch b owns planted rows with bounds[b] <= ts < bounds[b + 1]
    firsts = np.array([b.start * CHUNK_EVENTS / benign for b in batches[1:]], dtype=np.float64)
    bounds = tl.at(firsts) if len(firsts) else np.empty(0, dtype=np.int64)
    planted_ts = {ds: planted.rows[ds].column("@timestamp").cast(pa.int64()).to_numpy()
                  for ds in DATASETS}
    cuts = {ds: np.concatenate([[0], np.searchsorted(planted_ts[ds], bounds, side="left"),
                                [len(planted_ts[ds])]]) for ds in DATASETS}

    tmp = {ds: out_dir / f".{ds}.parquet.partial" for ds in DATASETS}
    writers = {ds: pq.ParquetWriter(tmp[ds], CANONICAL_SCHEMA, **writer_options(ds))
               for ds in DATASETS}
    counts = dict.fromkeys(DATASETS, 0)
    written = 0
    pending: list[Future[None]] = []

    def write(ds: str, table: pa.Table) -> None:
        if table.num_rows:
            writers[ds].write_table(table, row_group_size=table.num_rows)

    try:
        # pyarrow encodes with the GIL released: the files are written on their own threads
        # while the next batch is generated (one batch generated, one being written)
        with ThreadPoolExecutor(max_workers=WRITER_THREADS) as pool:
            for b, chunk_ids in enumerate(batches):
                parts: dict[str, list[pa.RecordBatch]] = {ds: [] for ds in DATASETS}
                for j in chunk_ids:
                    n = min(CHUNK_EVENTS, benign - j * CHUNK_EVENTS)
                    q_lo, q_hi = j * CHUNK_EVENTS / benign, (j * CHUNK_EVENTS + n) / benign
                    rng = np.random.default_rng([world_seed, 3, j])
                    for ds, batch in benign_chunk(world, rng, n, q_lo, q_hi).items():
                        parts[ds].append(batch)
                tables: dict[str, pa.Table] = {}
                for ds in DATASETS:
                    lo, hi = int(cuts[ds][b]), int(cuts[ds][b + 1])
                    table = pa.Table.from_batches(parts[ds])
                    if hi > lo:
                        table = pa.concat_tables([table, planted.rows[ds].slice(lo, hi - lo)])
                    tables[ds] = to_canonical(_time_sorted(table))
                    counts[ds] += table.num_rows
                for f in pending:
                    f.result()
                # largest first, so the writer threads finish together
                order = sorted(DATASETS, key=lambda d: -tables[d].num_rows)
                pending = [pool.submit(write, ds, tables[ds]) for ds in order]
                written = sum(counts.values())
                if progress is not None:
                    progress(written)
            for f in pending:
                f.result()
    finally:
        for w in writers.values():
            w.close()
    for ds in DATASETS:
        tmp[ds].replace(out_dir / f"{ds}.parquet")
    assert written == events, (written, events)
    return counts


def _time_sorted(table: pa.Table) -> pa.Table:
    """Rows in ``@timestamp`` order, ties in input order (a stable sort, like Arrow's).

    Benign chunks arrive in time order and planted rows are few, so the stable numpy sort
    runs over nearly sorted keys, and an already sorted batch is not copied row by row.
    """
    ts = table.column("@timestamp").cast(pa.int64()).to_numpy()
    if len(ts) < 2 or bool(np.all(ts[:-1] <= ts[1:])):
        return table.combine_chunks()
    return table.combine_chunks().take(pa.array(np.argsort(ts, kind="stable")))


def _write_ground_truth(
    path: Path, *, planted: Planted, seed: int, events: int, timeline: Timeline,
    counts: dict[str, int], days: float, organizations: list[str],
) -> None:
    doc = {
        "format": "detect-ground-truth/1",
        "seed": seed,
        "events": events,
        "start": iso(timeline.start_us),
        "end": iso(timeline.end_us),
        "days": days,
        "organizations": organizations,
        "datasets": counts,
        "planted_events": planted.events,
        "activities": [a.to_json() for a in planted.activities],
        "decoy_indicators": planted.decoys,
    }
    path.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n", encoding="utf-8")


def _write_indicators(path: Path, planted: Planted) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=INDICATOR_COLUMNS, lineterminator="\n")
        w.writeheader()
        for row in planted.indicators:
            w.writerow(row)
