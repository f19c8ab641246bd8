"""CSV with a header row of ECS column names, streamed block by block.

Every column is read as text and converted by the canonical schema, so a bad value
rejects its row (with its line number) instead of failing the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv

from detect.readers.base import ReadContext, Reject
from detect.readers.source import open_binary
from detect.readers.tabular import check_mappable, map_columns


def sniff(head: bytes, path: Path) -> bool:
    """Text whose first line is a comma-separated header naming ``@timestamp``."""
    first = head.split(b"\n", 1)[0].strip().lstrip(b"\xef\xbb\xbf")
    names = [n.strip(b'" ') for n in first.split(b",")]
    return len(names) > 1 and b"@timestamp" in names


def read_batches(ctx: ReadContext) -> Iterator[pa.RecordBatch]:
    """Canonical batches; rows with the wrong number of fields are rejected."""
    with open_binary(ctx.path) as f:
        header = f.readline().decode("utf-8", "replace").lstrip("\ufeff")
    names = [n.strip().strip('"') for n in header.strip("\r\n").split(",")]
    check_mappable(ctx, pa.schema([(n, pa.string()) for n in names]))
    # pyarrow counts rows without the header; line numbers need the header back
    bad_lines: list[int] = []

    def invalid(row: pcsv.InvalidRow) -> str:
        line = row.number  # pyarrow counts from the top of the file, header included
        ctx.reject(Reject(ctx.display, line, f"wrong number of fields: {row.text[:80]!r}"
                          f" has {row.actual_columns}, header has {row.expected_columns}",
                          row.text))
        if line is not None:
            bad_lines.append(line)
        return "skip"

    read = pcsv.ReadOptions(
        column_names=names, skip_rows=1, block_size=max(1 << 20, ctx.batch_size * 256),
        use_threads=False,
    )
    parse = pcsv.ParseOptions(invalid_row_handler=invalid, newlines_in_values=False)
    convert = pcsv.ConvertOptions(
        column_types={n: pa.string() for n in names}, strings_can_be_null=True,
        null_values=[""],
    )
    with open_binary(ctx.path) as src:
        yield from _stream(ctx, src, read, parse, convert, bad_lines)


def _stream(ctx: ReadContext, src, read, parse, convert,
            bad_lines: list[int]) -> Iterator[pa.RecordBatch]:
    stream = pcsv.open_csv(src, read_options=read, parse_options=parse, convert_options=convert)
    next_row = 0  # rows delivered so far; line = 2 + row + rejected lines before it
    try:
        for batch in stream:
            for start in range(0, batch.num_rows, ctx.batch_size):
                piece = batch.slice(start, ctx.batch_size)
                base = next_row
                skipped_before = sorted(bad_lines)

                def line_of(i: int, base: int = base, skipped: list[int] = skipped_before) -> int:
                    line = 2 + base + i
                    for b in skipped:
                        if b <= line:
                            line += 1
                    return line

                yield map_columns(ctx, piece, line_of=line_of)
                next_row += piece.num_rows
    except pa.ArrowInvalid as e:
        msg = f"cannot parse CSV after data row {next_row}: {e}"
        raise ctx.error(msg, line=next_row + 2) from e
