"""Arrow IPC files (Feather v2, ``ARROW1`` magic) and IPC streams, with ECS column names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from detect.readers.base import ReadContext
from detect.readers.source import open_binary
from detect.readers.tabular import check_mappable, map_columns, rebatch

FILE_MAGIC = b"ARROW1"
STREAM_CONTINUATION = b"\xff\xff\xff\xff"


def sniff(head: bytes, path: Path) -> bool:
    """An IPC file starts with ``ARROW1``; a stream with a continuation marker."""
    return head.startswith(FILE_MAGIC) or head.startswith(STREAM_CONTINUATION)


def _batches(ctx: ReadContext) -> Iterator[pa.RecordBatch]:
    with open_binary(ctx.path) as f:
        head = f.read(8)
    if head.startswith(FILE_MAGIC):
        reader = pa.ipc.open_file(ctx.path)
        check_mappable(ctx, reader.schema)
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)
    else:
        with open_binary(ctx.path) as f:
            stream = pa.ipc.open_stream(f)
            check_mappable(ctx, stream.schema)
            yield from stream


def read_batches(ctx: ReadContext) -> Iterator[pa.RecordBatch]:
    """Canonical batches of at most ``ctx.batch_size`` rows."""
    row = 1
    try:
        for big in _batches(ctx):
            for batch in rebatch(big, ctx.batch_size):
                yield map_columns(ctx, batch, line_of=row)
                row += batch.num_rows
    except (pa.ArrowInvalid, OSError, EOFError) as e:
        msg = f"not a readable Arrow IPC file or stream (after row {row}): {e}"
        raise ctx.error(msg, line=row) from e
