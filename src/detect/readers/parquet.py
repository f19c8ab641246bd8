"""Parquet files with ECS column names (flat dotted or nested), read row group by row group."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from detect.readers.base import ReadContext
from detect.readers.tabular import check_mappable, map_columns
from detect.schema import COLUMNS

MAGIC = b"PAR1"


def sniff(head: bytes, path: Path) -> bool:
    """Parquet starts (and ends) with ``PAR1``."""
    return head.startswith(MAGIC)


def _open(ctx: ReadContext) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(ctx.path)
    except (pa.ArrowInvalid, OSError) as e:
        msg = f"not a readable Parquet file: {e}"
        raise ctx.error(msg) from e


def read_batches(ctx: ReadContext) -> Iterator[pa.RecordBatch]:
    """Canonical batches; only the columns the canonical schema uses are read."""
    pf = _open(ctx)
    schema = pf.schema_arrow
    check_mappable(ctx, schema)
    wanted = set(COLUMNS)
    # top-level columns holding canonical leaves (a nested struct is read whole)
    columns = [
        name for name in schema.names
        if name in wanted or pa.types.is_struct(schema.field(name).type)
    ]
    row = 1
    try:
        for batch in pf.iter_batches(batch_size=ctx.batch_size, columns=columns):
            yield map_columns(ctx, batch, line_of=row)
            row += batch.num_rows
    except (pa.ArrowInvalid, OSError) as e:
        msg = f"cannot read Parquet data after row {row}: {e}"
        raise ctx.error(msg, line=row) from e
