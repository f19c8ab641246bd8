"""JSON lines into Arrow tables, block by block, with bad lines isolated and rejected.

pyarrow's JSON parser is fast but fails a whole block on one malformed line. We feed it
blocks of whole lines; when a block fails we bisect it until the bad lines are alone,
reject those (with their line number and text) and keep the rest. Memory is bounded by
the block size, whatever the file size.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.json as pj

from detect.readers.base import ReadContext, Reject
from detect.readers.source import iter_line_blocks

MIN_BLOCK_BYTES = 1 << 20
MAX_BLOCK_BYTES = 64 << 20


@dataclass
class JsonBlock:
    """Parsed rows of one block of lines, with where each row came from."""

    table: pa.Table
    line_numbers: np.ndarray  # 1-based line of each row
    _buf: bytes
    _starts: np.ndarray
    _ends: np.ndarray

    def line_of(self, row: int) -> int:
        return int(self.line_numbers[row])

    def raw(self, row: int) -> str:
        """The original text of ``row``."""
        return self._buf[self._starts[row] : self._ends[row]].decode("utf-8", "replace")


def block_bytes_for(batch_size: int) -> int:
    """Bytes of text to parse at once for batches of ``batch_size`` rows."""
    return int(min(MAX_BLOCK_BYTES, max(MIN_BLOCK_BYTES, batch_size * 512)))


def _parse(buf: bytes, options: pj.ParseOptions) -> pa.Table:
    return pj.read_json(
        io.BytesIO(buf),
        read_options=pj.ReadOptions(use_threads=False, block_size=max(len(buf) + 1, 1 << 16)),
        parse_options=options,
    )


def _first_line(err: Exception) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return re.sub(r" in row \d+$", "", text.removeprefix("JSON parse error: "))


@dataclass(frozen=True)
class LineFilter:
    """Lines to leave unparsed: ``pattern`` found within the first ``window`` bytes.

    Parsing is the cost of a JSON log; a sensor's bulky records that are skipped
    anyway (Suricata ``stats``) are dropped before the parser sees them. Each dropped
    line is reported to ``on_drop`` with its match, so it is counted, not lost.
    """

    pattern: re.Pattern[bytes]
    on_drop: Callable[[re.Match[bytes]], None]
    window: int = 256


def iter_json_blocks(
    ctx: ReadContext,
    *,
    explicit_schema: pa.Schema | None = None,
    line_filter: LineFilter | None = None,
) -> Iterator[JsonBlock]:
    """Yield the file's JSON lines as Arrow tables, one block of lines at a time.

    With ``explicit_schema`` only those fields are parsed (others ignored), so a
    heterogeneous log (Suricata EVE) parses into one fixed layout. Lines that are not
    a JSON object of that layout are rejected through ``ctx.reject``; blank lines are
    skipped, and so are lines ``line_filter`` drops.
    """
    if explicit_schema is not None:
        options = pj.ParseOptions(
            explicit_schema=explicit_schema, unexpected_field_behavior="ignore"
        )
    else:
        options = pj.ParseOptions(unexpected_field_behavior="infer")
    for block, line_base in iter_line_blocks(ctx.path, block_bytes_for(ctx.batch_size)):
        yield from _blocks(ctx, block, line_base, options, line_filter)


def _blocks(
    ctx: ReadContext,
    buf: bytes,
    line_base: int,
    options: pj.ParseOptions,
    line_filter: LineFilter | None = None,
) -> Iterator[JsonBlock]:
    arr = np.frombuffer(buf, dtype=np.uint8)
    nl = np.flatnonzero(arr == 10)
    starts = np.concatenate(([0], nl + 1))
    ends = np.concatenate((nl, [len(buf)]))
    if len(starts) and starts[-1] == len(buf):  # trailing newline: no final line
        starts, ends = starts[:-1], ends[:-1]
    # strip a trailing \r; skip blank lines
    has_cr = (ends > starts) & (arr[np.maximum(ends - 1, 0)] == 13)
    ends = ends - has_cr
    numbers = np.arange(line_base, line_base + len(starts), dtype=np.int64)
    nonblank = _nonblank(arr, starts, ends)
    starts, ends, numbers = starts[nonblank], ends[nonblank], numbers[nonblank]
    if line_filter is not None and len(starts):
        buf, starts, ends, numbers = _drop_lines(buf, starts, ends, numbers, line_filter)
    if not len(starts):
        return
    try:
        table = _parse(buf, options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        table = None
    if table is not None and table.num_rows == len(starts):
        yield JsonBlock(table, numbers, buf, starts, ends)
        return
    # slow path: isolate bad lines by bisection, keep the good runs
    good: list[int] = []
    tables: list[pa.Table] = []
    _bisect(ctx, buf, starts, ends, numbers, 0, len(starts), options, good, tables)
    if not tables:
        return
    keep = np.asarray(good, dtype=np.int64)
    table = _concat(ctx, tables, int(numbers[keep[0]]))
    yield JsonBlock(table, numbers[keep], buf, starts[keep], ends[keep])


def _drop_lines(
    buf: bytes, starts: np.ndarray, ends: np.ndarray, numbers: np.ndarray, line_filter: LineFilter
) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
    """The block without the lines the filter drops (reported as they go)."""
    search = line_filter.pattern.search
    window = line_filter.window
    keep = np.ones(len(starts), dtype=np.bool_)
    for i, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        m = search(buf, a, min(b, a + window))
        if m is not None:
            keep[i] = False
            line_filter.on_drop(m)
    if keep.all():
        return buf, starts, ends, numbers
    starts, ends, numbers = starts[keep], ends[keep], numbers[keep]
    kept = b"\n".join([buf[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)])
    lengths = ends - starts
    new_starts = np.zeros(len(lengths), dtype=np.int64)
    if len(lengths) > 1:
        new_starts[1:] = np.cumsum(lengths[:-1] + 1)
    return kept, new_starts, new_starts + lengths, numbers


def _concat(ctx: ReadContext, tables: list[pa.Table], line: int) -> pa.Table:
    """Concatenate pieces whose inferred types may differ: conflicting scalars become text."""
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass
    types: dict[str, set[pa.DataType]] = {}
    for t in tables:
        for field in t.schema:
            types.setdefault(field.name, set()).add(field.type)
    conflicting = {name for name, ts in types.items() if len(ts) > 1}
    fixed = []
    for table in tables:
        t = table
        for name in conflicting & set(t.column_names):
            i = t.schema.get_field_index(name)
            try:
                t = t.set_column(i, name, t.column(name).cast(pa.string()))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                msg = f"field changes between object and value within lines {line}+: {e}"
                raise ctx.error(msg, line=line, column=name) from e
        fixed.append(t)
    return pa.concat_tables(fixed, promote_options="permissive")


def _nonblank(arr: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    lengths = ends - starts
    mask = lengths > 0
    short = np.flatnonzero(mask & (lengths <= 4))
    for i in short:  # lines of only spaces/tabs are blank too (rare: only short ones checked)
        if not bytes(arr[starts[i] : ends[i]]).strip():
            mask[i] = False
    return mask


def _bisect(
    ctx: ReadContext,
    buf: bytes,
    starts: np.ndarray,
    ends: np.ndarray,
    numbers: np.ndarray,
    lo: int,
    hi: int,
    options: pj.ParseOptions,
    good: list[int],
    tables: list[pa.Table],
) -> None:
    piece = b"\n".join(buf[starts[i] : ends[i]] for i in range(lo, hi))
    try:
        table = _parse(piece, options)
        if table.num_rows != hi - lo:
            msg = "line is not one JSON object"
            raise pa.ArrowInvalid(msg)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        if hi - lo == 1:
            ctx.reject(
                Reject(
                    ctx.display,
                    int(numbers[lo]),
                    f"invalid JSON: {_first_line(e)}",
                    buf[starts[lo] : ends[lo]].decode("utf-8", "replace"),
                )
            )
            return
        mid = (lo + hi) // 2
        _bisect(ctx, buf, starts, ends, numbers, lo, mid, options, good, tables)
        _bisect(ctx, buf, starts, ends, numbers, mid, hi, options, good, tables)
        return
    good.extend(range(lo, hi))
    tables.append(table)
