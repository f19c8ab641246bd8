"""Hits joined with the event columns and rule metadata that alerts need.

Engines return bare hits (event, rule, field). Alerts need the event time, the
entity value and a little evidence; those are taken from the batch by index (a
vectorised ``take``), and the rule's title, severity and ATT&CK ids from the engine.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detect.hits import EngineSet, RuleInfo

EVIDENCE_COLUMNS = (
    "@timestamp",
    "event.dataset",
    "observer.name",
    "organization.name",
    "source.ip",
    "source.port",
    "destination.ip",
    "destination.port",
    "network.transport",
    "network.community_id",
    "dns.question.name",
    "url.full",
    "tls.server.name",
    "file.hash.sha256",
    "log.file.path",
)


def rules_by_id(engines: EngineSet, hits: pa.Table) -> dict[str, RuleInfo]:
    """Rule metadata for the rule ids in ``hits``."""
    wanted = set(pc.unique(hits.column("rule_id")).to_pylist())
    info: dict[str, RuleInfo] = {}
    for engine in engines.engines:
        for rid in list(wanted):
            try:
                info[rid] = engine.rule(rid)
                wanted.discard(rid)
            except KeyError:
                continue
    for rid in wanted:
        info[rid] = RuleInfo(rule_id=rid, kind="unknown", title=rid)
    return info


def with_context(hits: pa.Table, batch: pa.RecordBatch, engines: EngineSet,
                 local_index: pa.Array | pa.ChunkedArray) -> pa.Table:
    """``hits`` plus event columns (taken by ``local_index``) and rule metadata."""
    from detect.enrich import community_id

    if isinstance(local_index, pa.ChunkedArray):
        local_index = local_index.combine_chunks()
    hit_rows = batch.take(local_index)
    # Community ID is computed here, for hit events only: at ingest it would cost
    # about half a Parquet read (see detect.enrich)
    i = hit_rows.schema.get_field_index("network.community_id")
    hit_rows = hit_rows.set_column(i, hit_rows.schema.field(i), community_id(hit_rows))
    events = pa.Table.from_batches([hit_rows]).select(list(EVIDENCE_COLUMNS))
    table = hits
    for name in events.column_names:
        table = table.append_column(name, events.column(name))
    info = rules_by_id(engines, hits)
    # one value per distinct rule, gathered by dictionary index (not per hit in Python)
    uniq = sorted(info)
    index = pc.index_in(hits.column("rule_id"), value_set=pa.array(uniq))

    def gather(values: list, typ: pa.DataType) -> pa.Array:
        return pa.array(values, type=typ).take(index)

    table = table.append_column("title", gather([info[r].title for r in uniq], pa.string()))
    table = table.append_column("severity", gather([info[r].severity for r in uniq], pa.string()))
    table = table.append_column(
        "attack", gather([list(info[r].attack) for r in uniq], pa.list_(pa.string()))
    )
    table = table.append_column("author", gather([info[r].author for r in uniq], pa.string()))
    table = table.append_column(
        "references", gather([list(info[r].references) for r in uniq], pa.list_(pa.string()))
    )
    # the entity: the value of the rule's entity column for that event; one pass per
    # distinct entity column (a handful), not per rule (thousands of indicators)
    columns = sorted({info[r].entity for r in uniq})
    column_of_rule = np.array([columns.index(info[r].entity) for r in uniq], dtype=np.int64)
    column_of_hit = column_of_rule[np.asarray(index.fill_null(0).to_numpy(zero_copy_only=False))]
    entity = pa.nulls(hits.num_rows, pa.string())
    for k, column in enumerate(columns):
        if column not in events.column_names:
            continue
        values = events.column(column).combine_chunks().cast(pa.string())
        entity = pc.if_else(pa.array(column_of_hit == k), values, entity)
    entity = pc.fill_null(entity, "-")
    return table.append_column("entity", entity)
