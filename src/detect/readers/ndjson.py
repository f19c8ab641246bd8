"""Newline-delimited JSON with ECS names (flat dotted keys or nested objects)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from detect.readers.base import ReadContext
from detect.readers.jsonlines import iter_json_blocks
from detect.readers.tabular import check_mappable, map_columns, rebatch


def first_object(head: bytes) -> dict | None:
    """The first line of ``head`` as a JSON object, or None."""
    for line in head.split(b"\n")[:5]:
        text = line.strip()
        if not text:
            continue
        try:
            obj = json.loads(text)
        except ValueError:
            return None
        return obj if isinstance(obj, dict) else None
    return None


def sniff(head: bytes, path: Path) -> bool:
    """JSON lines whose first object names the event time ``@timestamp``."""
    obj = first_object(head)
    return obj is not None and ("@timestamp" in obj)


def read_batches(ctx: ReadContext) -> Iterator[pa.RecordBatch]:
    """Canonical batches; invalid lines are rejected with their line number."""
    checked = False
    for block in iter_json_blocks(ctx):
        if not checked:
            check_mappable(ctx, block.table.schema)
            checked = True
        row = 0
        for piece in rebatch(block.table, ctx.batch_size):
            offset = row

            def line_of(i: int, offset: int = offset, block=block) -> int:
                return block.line_of(offset + i)

            def raw(i: int, offset: int = offset, block=block) -> str:
                return block.raw(offset + i)

            yield map_columns(ctx, piece, line_of=line_of, raw=raw)
            row += piece.num_rows
