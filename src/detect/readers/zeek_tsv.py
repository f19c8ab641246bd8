"""Zeek TSV logs (the ASCII writer's default format) -> canonical batches.

The file is read in blocks of whole lines (memory bounded by the block size). ``#`` lines are
split off with a byte search; each run of data lines between them is parsed by
``pyarrow.csv.read_csv`` (multi-threaded C++, tab delimiter, no quoting, explicit column
names, only the columns the mapping needs, all as text, ``-`` as null) and converted with
``pyarrow.compute``. Python only touches a row on a slow path: a value holding a ``\\xHH``
or ``\\\\`` escape, a line with the wrong number of fields, a value that does not parse.

Decisions:

* Several header blocks in one file (concatenated or appended logs) are read, each with its
  own ``#fields``/``#types``/``#path``; ``#close`` and unknown ``#`` lines (btest's ``###``
  banner) are skipped.
* Headerless ``zeek-cut -c``-style output is read when the first non-``#`` line is a row of
  Zeek field names (``uid	service	history``); the log path then comes from the file name
  and field types from ``zeek_fields.FIELD_KINDS``. Bare ``zeek-cut`` output without any
  names cannot be mapped and is not sniffed.
* ``-`` (``#unset_field``) is null; ``(empty)`` (``#empty_field``) is ``""`` or ``[]``.
  Escapes are decoded to bytes and read as UTF-8; bytes that are not UTF-8 stay written as
  ``\\xHH``, the way Zeek's JSON writer writes them, so both formats agree.
* A line whose field count differs from ``#fields`` is a reject (real line number, raw
  text); so is a ``time``/``interval``/``bool`` value that does not parse (btest's masked
  ``XXXXXXXXXX.XXXXXX``). Other bad values (port ``abc``) are rejected by ``schema.conform``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from detect.readers import zeek_fields as zf
from detect.readers.base import ReadContext, Reject
from detect.readers.source import iter_line_blocks
from detect.schema import RowProblem

MIN_BLOCK_BYTES = 1 << 20
MAX_BLOCK_BYTES = 64 << 20
_BYTES_PER_ROW_GUESS = 256

_NAME = re.compile(rb"[A-Za-z_@][A-Za-z0-9_.]*")
_KEY_FIELDS = frozenset([b"ts", b"uid", b"fuid", b"id.orig_h", b"id_orig_h"])
_ESCAPE = re.compile(rb"\\(?:x([0-9A-Fa-f]{2})|(\\))")
_NUMBER = r"^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$"


def sniff(head: bytes, path: Path) -> bool:
    """True for a Zeek TSV log: a ``#separator`` header, or a header-less line of field names."""
    lines = head.split(b"\n", 64)[:64]
    for i, raw in enumerate(lines):
        line = raw.rstrip(b"\r")
        if line.startswith(b"#separator "):
            return True
        if line.startswith(b"#") or not line.strip():
            continue
        names = line.split(b"\t")
        if not _looks_like_names(names):
            return False
        rest = [r.rstrip(b"\r") for r in lines[i + 1 : i + 2] if r.strip()]
        return all(r.count(b"\t") == len(names) - 1 for r in rest)
    return False


def _looks_like_names(names: list[bytes]) -> bool:
    return (
        len(names) >= 2
        and all(_NAME.fullmatch(n) for n in names)
        and not _KEY_FIELDS.isdisjoint(names)
        and len(set(names)) == len(names)
    )


def read_batches(ctx: ReadContext) -> Iterator[pa.RecordBatch]:
    """Canonical batches of at most ``ctx.batch_size`` rows from one Zeek TSV file."""
    return zf.rebatch(_TsvReader(ctx).batches(), ctx.batch_size)


@dataclass
class _Header:
    """One header block; a ``#separator`` line starts a new one."""

    separator: str = "\t"
    set_separator: str = ","
    empty_field: str = "(empty)"
    unset_field: str = "-"
    path: str | None = None
    fields: list[str] | None = None
    types: list[str] | None = None
    fields_line: int | None = None


@dataclass
class _Lines:
    """Where each parsed row of a segment came from; computed only when needed."""

    seg: memoryview
    first_line: int
    separator: int
    nfields: int
    _starts: np.ndarray | None = None
    _ends: np.ndarray | None = None
    _counts: np.ndarray | None = None
    _valid: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def compute(self) -> None:
        if self._starts is not None:
            return
        arr = np.frombuffer(self.seg, dtype=np.uint8)
        nl = np.flatnonzero(arr == 10)
        starts = np.concatenate(([0], nl + 1))
        ends = np.concatenate((nl, [len(arr)]))
        if starts[-1] == len(arr):
            starts, ends = starts[:-1], ends[:-1]
        has_cr = (ends > starts) & (arr[np.maximum(ends - 1, 0)] == 13)
        ends = ends - has_cr
        seps = np.flatnonzero(arr == self.separator)
        self._counts = np.searchsorted(seps, ends) - np.searchsorted(seps, starts) + 1
        self._starts, self._ends = starts, ends
        empty = ends == starts
        self._valid = np.flatnonzero((self._counts == self.nfields) & ~empty)

    def bad(self) -> Iterator[tuple[int, int, str]]:
        """(line, field count, text) of every non-empty line with the wrong field count."""
        self.compute()
        assert self._counts is not None
        empty = self._ends == self._starts
        for i in np.flatnonzero((self._counts != self.nfields) & ~empty):
            yield self.first_line + int(i), int(self._counts[i]), self._text(int(i))

    def valid_count(self) -> int:
        self.compute()
        return len(self._valid)

    def line_of(self, row: int) -> int:
        self.compute()
        return self.first_line + int(self._valid[row])

    def raw(self, row: int) -> str | None:
        self.compute()
        if row >= len(self._valid):
            return None
        return self._text(int(self._valid[row]))

    def _text(self, i: int) -> str:
        assert self._starts is not None and self._ends is not None
        return bytes(self.seg[self._starts[i] : self._ends[i]]).decode("utf-8", "backslashreplace")


class _TsvReader:
    """State across blocks: the current header and the block size."""

    def __init__(self, ctx: ReadContext) -> None:
        self.ctx = ctx
        self.header = _Header()
        self.saw_header = False
        self.file_path = zf.path_from_filename(ctx.path)
        self.block_bytes = _clamp(ctx.batch_size * _BYTES_PER_ROW_GUESS)

    def batches(self) -> Iterator[pa.RecordBatch]:
        for text, line in iter_line_blocks(self.ctx.path, self.block_bytes):
            yield from self._text(text, line, text.count(b"\n"))

    def _text(self, text: bytes, line: int, newlines: int) -> Iterator[pa.RecordBatch]:
        """Split whole lines into ``#`` lines (handled here) and runs of data lines."""
        view = memoryview(text)
        has_cr = b"\r" in text
        pos, end, first = 0, len(text), line
        while pos < end:
            if text[pos] == 0x23:  # '#': header, footer or comment line
                eol = text.find(b"\n", pos)
                eol = end if eol < 0 else eol
                self._directive(text[pos:eol].rstrip(b"\r"), line)
                pos, line = eol + 1, line + 1
                continue
            stop = _next_hash_line(text, pos)
            if stop < 0:
                stop, seg_newlines = end, newlines - (line - first)
            else:
                seg_newlines = text.count(b"\n", pos, stop)
            yield from self._segment(view[pos:stop], line, seg_newlines, has_cr=has_cr)
            line += seg_newlines
            pos = stop

    def _directive(self, raw: bytes, line: int) -> None:
        text = raw.decode("utf-8", "backslashreplace")
        if text.startswith("#separator"):
            sep = _unescape_header(text[len("#separator") :].strip())
            self.header = _Header(separator=sep)
            self.saw_header = True
            return
        h = self.header
        key, _, value = text.partition(h.separator)
        if key == "#set_separator":
            h.set_separator = _unescape_header(value)
        elif key == "#empty_field":
            h.empty_field = value
        elif key == "#unset_field":
            h.unset_field = value
        elif key == "#path":
            h.path = value
        elif key == "#fields":
            h.fields = value.split(h.separator)
            h.types = None
            h.fields_line = line
        elif key == "#types":
            h.types = value.split(h.separator)
        # #open, #close and comments (btest's "### ..." banner) carry nothing we map

    def _segment(
        self, seg: memoryview, line: int, newlines: int, *, has_cr: bool
    ) -> Iterator[pa.RecordBatch]:
        h = self.header
        if h.fields is None:
            text = bytes(seg)
            eol = text.find(b"\n")
            first = (text if eol < 0 else text[:eol]).rstrip(b"\r")
            names = first.split(b"\t")
            if self.saw_header or not _looks_like_names(names):
                msg = "data before a #fields header: not a Zeek TSV log, or its header is missing"
                raise self.ctx.error(msg, line=line)
            h.fields = [n.decode() for n in names]
            h.fields_line = line
            if eol < 0:
                return
            seg, line, newlines = seg[eol + 1 :], line + 1, newlines - 1
        if h.types is not None and len(h.types) != len(h.fields):
            msg = f"#types has {len(h.types)} entries but #fields has {len(h.fields)}"
            raise self.ctx.error(msg, line=h.fields_line)
        if len(h.separator) != 1:
            msg = f"separator {h.separator!r} is not one character; only single-byte separators"
            raise self.ctx.error(msg, line=h.fields_line)
        if len(seg) == 0:
            return
        path = h.path or self.file_path or "unknown"
        lines = newlines + (0 if seg[-1] == 0x0A else 1)
        yield self._parse(seg, line, lines, h, path, has_cr=has_cr)

    def _parse(
        self, seg: memoryview, line: int, nlines: int, h: _Header, path: str, *, has_cr: bool
    ) -> pa.RecordBatch:
        assert h.fields is not None
        wanted = _wanted(path)
        needed = [f for f in h.fields if f in wanted] or [h.fields[0]]
        invalid = [0]
        table = self._read(seg, h, needed, invalid)
        n = table.num_rows
        lines = _Lines(seg, line, ord(h.separator), len(h.fields))
        line_of: Callable[[int], int | None] | int | None = line
        if invalid[0] or n != nlines or has_cr:
            # skipped lines (wrong field count, blank): find them, so line numbers stay true
            for bad_line, count, text in lines.bad():
                reason = f"expected {len(h.fields)} fields (#fields), found {count}"
                self.ctx.reject(Reject(self.ctx.display, bad_line, reason, text))
            line_of = lines.line_of if lines.valid_count() == n else None
        self._adapt(len(seg), n)
        problems: list[RowProblem] = []
        columns: dict[str, pa.Array] = {}
        types = h.types
        for name in needed:
            zeek_type = types[h.fields.index(name)] if types is not None else None
            arr = table.column(name).combine_chunks()
            columns[name] = _normalise(arr, name, zeek_type, h, problems)
        raw = lines.raw if line_of is not None else None
        return zf.finish(self.ctx, path, columns, n, problems, line_of=line_of, raw=raw)

    def _read(self, seg: memoryview, h: _Header, needed: list[str], invalid: list[int]) -> pa.Table:
        assert h.fields is not None

        def on_invalid(_row: pcsv.InvalidRow) -> str:
            invalid[0] += 1  # reported with line numbers from _Lines
            return "skip"

        def read(typ: pa.DataType) -> pa.Table:
            return pcsv.read_csv(
                pa.BufferReader(pa.py_buffer(seg)),
                read_options=pcsv.ReadOptions(column_names=h.fields, use_threads=True),
                parse_options=pcsv.ParseOptions(
                    delimiter=h.separator,
                    quote_char=False,
                    double_quote=False,
                    escape_char=False,
                    newlines_in_values=False,
                    ignore_empty_lines=True,
                    invalid_row_handler=on_invalid,
                ),
                convert_options=pcsv.ConvertOptions(
                    column_types=dict.fromkeys(needed, typ),
                    include_columns=needed,
                    null_values=[h.unset_field],
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                ),
            )

        try:
            return read(pa.string())
        except pa.ArrowInvalid as e:
            if "UTF8" not in str(e) and "utf8" not in str(e).lower():
                msg = f"cannot parse Zeek TSV: {str(e).splitlines()[0]}"
                raise self.ctx.error(msg) from e
        # invalid UTF-8 (a writer without Zeek's escaping): keep the bytes as \xHH text
        invalid[0] = 0
        table = read(pa.binary())
        fixed = [
            _binary_to_text(table.column(i).combine_chunks()) for i in range(table.num_columns)
        ]
        return pa.table(fixed, names=table.column_names)

    def _adapt(self, nbytes: int, nrows: int) -> None:
        """Size later blocks so that one block gives about one batch."""
        if nrows >= 1000:
            self.block_bytes = _clamp(int(nbytes / nrows * self.ctx.batch_size * 0.95))


def _next_hash_line(text: bytes, pos: int) -> int:
    """Offset of the next line that starts with ``#`` (memchr for ``#``, then check), or -1."""
    i = text.find(b"#", pos)
    while i > 0 and text[i - 1] != 0x0A:
        i = text.find(b"#", i + 1)
    return i


def _clamp(n: int) -> int:
    return max(MIN_BLOCK_BYTES, min(MAX_BLOCK_BYTES, n))


@cache
def _wanted(path: str) -> frozenset[str]:
    return frozenset(s for f in zf.source_fields(path) for s in zf.spellings(f))


def _kind(name: str, zeek_type: str | None) -> str:
    if zeek_type is None:
        return zf.kind_of(name) or zf.STRING
    if zeek_type.startswith(("set[", "vector[")):
        inner = zeek_type[zeek_type.index("[") + 1 : -1]
        return zf.FLOAT_LIST if inner in ("interval", "double", "time") else zf.STRING_LIST
    return {
        "time": zf.TIME,
        "interval": zf.INTERVAL,
        "double": zf.INTERVAL,
        "bool": zf.BOOL,
        "count": zf.UINT,
        "int": zf.INT,
        "port": zf.INT,
    }.get(zeek_type, zf.STRING)


def _unescape_header(value: str) -> str:
    return _unescape_bytes(value.encode())


def _unescape_bytes(raw: bytes) -> str:
    def sub(m: re.Match[bytes]) -> bytes:
        return bytes([int(m.group(1), 16)]) if m.group(1) else b"\\"

    return _ESCAPE.sub(sub, raw).decode("utf-8", "backslashreplace")


def _unescape(arr: pa.Array) -> pa.Array:
    """Decode ``\\xHH`` and ``\\\\``; only values holding a backslash take the Python path."""
    mask = pc.fill_null(pc.match_substring(arr, "\\"), False)
    if not mask.true_count:
        return arr
    idx = np.flatnonzero(np.asarray(mask))
    fixed = [
        _unescape_bytes(v.encode("utf-8", "surrogateescape")) for v in arr.take(idx).to_pylist()
    ]
    return pc.replace_with_mask(arr, mask, pa.array(fixed, pa.string()))


def _binary_to_text(arr: pa.Array) -> pa.Array:
    try:
        return arr.cast(pa.string())
    except pa.ArrowInvalid:
        values = [
            None if v is None else v.decode("utf-8", "backslashreplace") for v in arr.to_pylist()
        ]
        return pa.array(values, pa.string())


_PLAIN_TYPES = frozenset(["addr", "subnet", "enum", "port", "count", "int"])


def _normalise(
    arr: pa.Array, name: str, zeek_type: str | None, h: _Header, problems: list[RowProblem]
) -> pa.Array:
    """Text of one TSV column -> the Zeek logical type ``zeek_fields`` expects."""
    if zeek_type in _PLAIN_TYPES:
        return arr  # cannot hold escapes or the empty marker; conform casts numbers
    kind = _kind(name, zeek_type)
    if kind in (zf.INT, zf.UINT):
        return arr  # conform casts and rejects
    if kind == zf.TIME:
        secs = _floats(arr, name, problems, "not epoch seconds")
        return zf.epoch_to_timestamp(secs)
    if kind == zf.INTERVAL:
        return _floats(arr, name, problems, "not a number of seconds")
    if kind == zf.BOOL:
        is_t = pc.equal(arr, "T")
        bad = pc.and_(pc.invert(is_t), pc.not_equal(arr, "F"))
        _report(arr, bad, name, "not T or F", problems)
        return pc.if_else(bad, pa.nulls(len(arr), pa.bool_()), is_t)
    empty = pc.fill_null(pc.equal(arr, h.empty_field), False)
    if kind == zf.STRING:
        if empty.true_count:
            arr = pc.if_else(empty, "", arr)
        return _unescape(arr)
    lists = pc.split_pattern(arr, h.set_separator)
    values = _unescape(lists.values)
    lists = pa.ListArray.from_arrays(
        lists.offsets, values, mask=pc.is_null(arr) if arr.null_count else None
    )
    if empty.true_count:
        lists = pc.if_else(empty, pa.scalar([], lists.type), lists)
    if kind == zf.FLOAT_LIST:
        lists = _float_lists(lists, name, problems)
    return lists


def _floats(arr: pa.Array, name: str, problems: list[RowProblem], reason: str) -> pa.Array:
    try:
        return arr.cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    ok = pc.fill_null(pc.match_substring_regex(arr, _NUMBER), True)
    bad = pc.invert(ok)
    _report(arr, bad, name, reason, problems)
    return pc.if_else(bad, pa.nulls(len(arr), pa.string()), arr).cast(pa.float64())


def _float_lists(lists: pa.ListArray, name: str, problems: list[RowProblem]) -> pa.Array:
    target = pa.list_(pa.float64())
    try:
        return lists.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    values = lists.values
    ok = pc.fill_null(pc.match_substring_regex(values, _NUMBER), True)
    offsets = np.asarray(lists.offsets)
    bad_values = np.flatnonzero(~np.asarray(ok))
    bad_rows = np.unique(np.searchsorted(offsets, bad_values, side="right") - 1)
    bad = np.zeros(len(lists), dtype=bool)
    bad[bad_rows] = True
    _report(lists, pa.array(bad), name, "not a list of numbers", problems)
    fixed_values = pc.if_else(ok, values, pa.nulls(len(values), pa.string())).cast(pa.float64())
    return pa.ListArray.from_arrays(
        lists.offsets, fixed_values, mask=lists.is_null() if lists.null_count else None
    )


def _report(
    arr: pa.Array, bad: pa.Array, name: str, reason: str, problems: list[RowProblem]
) -> None:
    bad = pc.fill_null(bad, False)
    if not bad.true_count:
        return
    for i in np.flatnonzero(np.asarray(bad)):
        value = arr[int(i)].as_py()
        problems.append(RowProblem(int(i), name, str(value), reason))
