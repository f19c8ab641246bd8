"""CSV feeds: ``type,value,...`` files, and abuse.ch-style exports whose header is a comment.

Two shapes share this loader:

- *typed* CSV: a header with ``type`` and ``value`` and optionally ``source``,
  ``confidence`` (0..100), ``severity``, ``tags`` (``;``, ``|`` or ``,``
  separated), ``valid_from``/``valid_until`` (ISO 8601), ``port``, ``description``;
- *export* CSV (abuse.ch Feodo Tracker, SSLBL, URLhaus, ThreatFox): ``#`` banner
  lines, the header either a plain line or the last comment line
  (``# Listingdate,SHA1,Listingreason``). The value column is
  ``FeedOptions.column`` or the first known one (``ioc_value``, ``dst_ip``,
  ``url``, ``sha1``, ``ja3_md5`` ...); its type comes from ThreatFox's
  ``ioc_type``, else from the column's name (``sha1`` -> sha1, ``dst_ip`` -> ip),
  else is inferred per value.

Observation dates of exports (``first_seen_utc``, ``dateadded``) are *not* taken
as ``valid_from``: they say when abuse.ch saw the value, not from when it is bad, and
would hide older events from a normal hunt. Malware family columns become tags,
SSLBL's listing reason the description.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from detect.indicators.feeds import FeedRows, parse_time
from detect.indicators.model import (
    INDICATOR_SCHEMA,
    INDICATOR_TYPES,
    SEVERITIES,
    TIMESTAMP,
    FeedOptions,
    LoadResult,
    empty_indicators,
)
from detect.indicators.normalize import infer_column, normalize_column
from detect.readers.source import open_binary, text_lines

# indicator types as feeds spell them -> ours ("ip:port" splits off a port)
TYPE_ALIASES: dict[str, str] = {
    **{t: t for t in INDICATOR_TYPES},
    "ipv4": "ip", "ipv6": "ip", "ip-src": "ip", "ip-dst": "ip", "ip_address": "ip",
    "ipaddress": "ip", "addr": "ip", "address": "ip",
    "subnet": "cidr", "network": "cidr", "netblock": "cidr",
    "hostname": "domain", "host": "domain", "fqdn": "domain", "domain-name": "domain",
    "uri": "url", "link": "url",
    "md5_hash": "md5", "sha1_hash": "sha1", "sha256_hash": "sha256",
    "ja3_md5": "ja3", "ja3-fingerprint-md5": "ja3", "ja3s_md5": "ja3s",
    "email-src": "email", "email-addr": "email", "mail": "email",
    "user_agent": "user-agent", "useragent": "user-agent", "ua": "user-agent",
    "ip:port": "ip:port", "ip_port": "ip:port",
}

# value columns of known exports, best first, each with the type its name implies
# (None: typed by a type column, else inferred per value)
VALUE_COLUMNS: dict[str, str | None] = {
    "value": None, "ioc_value": None, "indicator": None, "ioc": None,
    "dst_ip": "ip", "ip_address": "ip", "ip": "ip", "ipaddress": "ip",
    "cidr": "cidr", "network": "cidr",
    "url": "url", "domain": "domain", "hostname": "domain",
    "sha256": "sha256", "sha256_hash": "sha256", "sha1": "sha1", "sha1_hash": "sha1",
    "md5": "md5", "md5_hash": "md5", "ja3_md5": "ja3", "ja3": "ja3", "ja3s": "ja3s",
    "email": "email", "user_agent": "user-agent", "user-agent": "user-agent",
}
TYPE_COLUMNS = ("type", "ioc_type", "indicator_type")
PORT_COLUMNS = ("port", "dst_port")
CONFIDENCE_COLUMNS = ("confidence", "confidence_level")
TAG_COLUMNS = ("tags", "tag", "malware", "malware_printable", "threat", "threat_type")
DESCRIPTION_COLUMNS = ("description", "desc", "listingreason", "comment")
SEVERITY_ALIASES = {**{s: s for s in SEVERITIES}, "info": "informational", "med": "medium",
                    "moderate": "medium", "crit": "critical"}

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_ .:-]*$")
_TAG_SPLIT = re.compile(r"[;|,]")
_EMPTY = frozenset({"", "-", "none", "null", "n/a"})
_SNIFF_ROWS = 20


def _key(name: str) -> str:
    return name.strip().strip('"').strip().lower()


def _parse(line: str) -> list[str]:
    return next(csv.reader([line], skipinitialspace=True), [])


def _is_header(fields: list[str], column: str | None) -> bool:
    """Names only, and a value column among them (or the one ``column`` names)."""
    keys = [_key(f) for f in fields]
    if not keys or not all(_NAME.match(k) for k in keys):
        return False
    if column is not None:
        return column.lower() in keys
    return any(k in VALUE_COLUMNS for k in keys)


def find_header(lines: list[str], column: str | None = None) -> tuple[list[str], int] | None:
    """The header fields and the index of the first data line, from the file's first lines.

    The header is the first line that is not a comment, or (abuse.ch) the last
    comment line before the data when that first line is already data.
    """
    last_comment: str | None = None
    for i, line in enumerate(lines):
        text = line.strip()
        if not text:
            continue
        if text.startswith("#"):
            last_comment = text.lstrip("#").strip()
            continue
        fields = _parse(text)
        if _is_header(fields, column):
            return fields, i + 1
        if last_comment is not None:
            header = _parse(last_comment)
            if len(header) == len(fields) and _is_header(header, column):
                return header, i
        return None
    return None


def sniff(head: bytes, path: Path) -> bool:
    """A header with a known value column, and comma-separated rows of its width.

    Most sampled rows, not all: one bad row near the top is a problem the loader
    reports with its line, not a reason to call the whole file no feed at all.
    """
    del path
    lines = head.decode("utf-8", errors="replace").splitlines()[:400]
    found = find_header(lines)
    if found is None:
        return False
    header, start = found
    if len(header) < 2 and not any("," in line for line in lines[start:start + 5]):
        return _key(header[0]) in VALUE_COLUMNS and _key(header[0]) != "value"
    rows = [r for r in lines[start:start + _SNIFF_ROWS] if r.strip() and not r.startswith("#")]
    if len(head) >= 65_536 and len(rows) > 1:
        rows = rows[:-1]
    fit = sum(len(_parse(r)) == len(header) for r in rows)
    return not rows or 2 * fit > len(rows)


def _column(keys: list[str], names: tuple[str, ...]) -> int | None:
    for name in names:
        if name in keys:
            return keys.index(name)
    return None


def split_host_port(text: str) -> tuple[str, int | None]:
    """``1.2.3.4:80`` / ``[2001:db8::1]:443`` / ``evil.com:8080`` -> host and port."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if sep and rest.startswith(":") and rest[1:].isdigit():
            return host, int(rest[1:])
        return text, None
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host, int(port)
    return text, None


class _DataLines:
    """Lines after the header that are neither blank nor comments, for ``csv.reader``.

    Remembers the numbered lines of the record being read (``record``) and whether the
    file ran out under it (``at_end``), so a record whose quote opened by mistake can be
    put back (``again``) and read again from the line after the one it started on.
    """

    def __init__(self, f: Iterator[str], start: int) -> None:
        self._source = ((number, line) for number, line in enumerate(f, 1)
                        if number > start and line.strip()
                        and not line.strip().startswith("#"))
        self._again: list[tuple[int, str]] = []  # put back, in reverse order
        self.record: list[tuple[int, str]] = []
        self.at_end = False

    def __iter__(self) -> _DataLines:
        return self

    def __next__(self) -> str:
        if self._again:
            item = self._again.pop()
        else:
            try:
                item = next(self._source)
            except StopIteration:
                self.at_end = True
                raise
        self.record.append(item)
        return item[1]

    def again(self, items: list[tuple[int, str]]) -> None:
        """Read ``items`` again, before any line not read yet."""
        self._again.extend(reversed(items))
        self.at_end = False


_WS = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())  # what str.strip strips
_COMMENT_OR_BLANK = re.compile(rb"(?:^|\n)[ \t\r\x0b\x0c]*(?:#|\n|$)")
_QUOTE_AFTER_SPACE = re.compile(rb",[ \t]+\"")


def _arrow_columns(path: Path, start: int, width: int) -> tuple[list[pa.Array], int] | None:
    """The data rows as string columns with pyarrow, and the first data line's number.

    Only for the plain shape: no comment or blank line among the rows (a trailing
    ``# END`` banner is fine), no value quoted after a space, no newline in a quoted
    value, valid UTF-8, every row as wide as the header. Anything else: None (the
    ``csv`` module reads it, row by row).
    """
    with open_binary(path) as f:
        data = f.read()
    pos = 0
    for _ in range(start):
        pos = data.find(b"\n", pos) + 1
        if pos == 0:
            return None
    body = data[pos:]
    m = _COMMENT_OR_BLANK.search(body)
    if m is not None:  # only comments and blank lines may follow
        tail = body[m.start():]
        if any(line.strip() and not line.strip().startswith(b"#")
               for line in tail.splitlines()):
            return None
        body = body[:m.start()]
    if not body.strip() or _QUOTE_AFTER_SPACE.search(body):
        return None
    try:
        table = pacsv.read_csv(
            pa.py_buffer(body),
            read_options=pacsv.ReadOptions(column_names=[f"c{i}" for i in range(width)],
                                           use_threads=True),
            parse_options=pacsv.ParseOptions(newlines_in_values=False,
                                              ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types={f"c{i}": pa.string() for i in range(width)},
                strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, ValueError):
        return None
    if table.num_rows != body.count(b"\n") + (not body.endswith(b"\n")):
        return None  # a line pyarrow did not take as one row
    columns = [table.column(i).combine_chunks() for i in range(width)]
    if b", " in body:  # csv's skipinitialspace
        columns = [pc.utf8_ltrim(c, characters=" ") for c in columns]
    return columns, pos and start + 1


def _csv_columns(path: Path, start: int, header: list[str], problems: list[tuple[int, str,
                                                                                   str | None]]
                 ) -> tuple[list[pa.Array], np.ndarray]:
    """The data rows with the ``csv`` module (comments, quoted newlines ...) and their lines.

    A row's line is the line it starts on. A quote that runs over lines and never closes,
    or closes into a row of the wrong width, or makes a value over the ``csv`` field limit,
    is a stray quote: that row is a problem named by the line the quote opened on, and
    the lines after it are read again as rows of their own (nothing is silently lost).
    """
    width = len(header)
    cols: list[list[str]] = [[] for _ in range(width)]
    lines: list[int] = []
    with text_lines(path) as f:
        data = _DataLines(f, start)
        done = False
        while not done:
            done = True
            reader = csv.reader(data, skipinitialspace=True)
            while True:
                try:
                    fields = next(reader)
                except StopIteration:
                    break
                except csv.Error as e:  # a value over the field limit: a stray quote
                    fields, error = [], str(e)
                else:
                    error = None
                record, data.record = data.record, []
                number = record[0][0]
                if len(record) > 1 and (error or data.at_end or len(fields) != width
                                        or _swallows_rows(record, width)):
                    problems.append((number, _stray_quote(record, fields, width, error,
                                                          at_end=data.at_end),
                                     record[0][1].strip()))
                    data.again(record[1:])
                    done = False
                    break  # a new reader: this one may have seen the end of the file
                if len(fields) != width:
                    problems.append((number, f"expected {width} fields as the header has, got "
                                     f"{len(fields)}; quote values that hold commas",
                                     ",".join(fields)))
                    continue
                lines.append(number)
                for c, v in zip(cols, fields, strict=True):
                    c.append(v)
    return [pa.array(c, type=pa.string()) for c in cols], np.array(lines, dtype=np.int64)


def _swallows_rows(record: list[tuple[int, str]], width: int) -> bool:
    """A line after the first that is a row of the header's width on its own: the quote
    that joined it was a stray one closed by another (a value's own newlines seldom are)."""
    return any(len(_parse(line)) == width for _, line in record[1:])


def _stray_quote(record: list[tuple[int, str]], fields: list[str], width: int,
                 error: str | None, *, at_end: bool) -> str:
    """Why a row that a quote stretched over several lines is not used."""
    last = record[-1][0]
    if at_end:
        what = (f"a quote opened on this line is never closed (the row would run to the "
                f"end of the file, line {last})")
    elif error:
        what = f"a quote opened on this line runs on to line {last} ({error})"
    elif len(fields) == width:
        what = (f"a quote opened on this line closes on line {last}, joining lines that "
                "are rows of their own")
    else:
        what = (f"a quote opened on this line closes on line {last}, making a row of "
                f"{len(fields)} fields where the header has {width}")
    return (f"{what}; this row is skipped, the {len(record) - 1:,} line(s) after it are "
            "read as rows of their own")


def _per_unique(col: pa.Array, fn: Callable[[str], Any], typ: pa.DataType
                ) -> pa.Array:
    """``fn`` of every distinct value, taken back to the rows (few distinct values)."""
    enc = col.dictionary_encode()
    results = [fn(v) for v in enc.dictionary.to_pylist()]
    return pa.array(results, type=typ).take(enc.indices)


def _strip(col: pa.Array) -> pa.Array:
    return pc.utf8_trim(col, characters=_WS)


def _nonempty(col: pa.Array) -> pa.Array:
    """Stripped text, null where empty."""
    text = _strip(col)
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def _confidence(text: str) -> int | str | None:
    if _key(text) in _EMPTY:
        return None
    try:
        confidence = round(float(text))
    except ValueError:
        confidence = -1
    if not 0 <= confidence <= 100:
        return f"confidence is not a number 0..100: {text!r}"
    return confidence


def _severity(text: str) -> str | None:
    if _key(text) in _EMPTY:
        return None
    severity = SEVERITY_ALIASES.get(_key(text))
    if severity is None:
        return f"!unknown severity {text!r}; use one of {', '.join(SEVERITIES)}"
    return severity


def _port(text: str) -> int | str | None:
    value = text.strip()
    if not value:
        return None
    if not value.isdigit() or int(value) > 65535:
        return f"port is not a number 0..65535: {value!r}"
    return int(value)


def _time(name: str) -> Callable[[str], Any]:
    def one(text: str) -> Any:
        if _key(text) in _EMPTY:
            return None
        try:
            return parse_time(text, end=name == "valid_until")
        except ValueError:
            return f"{name} is not an ISO 8601 time: {text!r}"
    return one


def _tags(joined: str) -> list[str] | None:
    tags = [t.strip() for cell in joined.split("\x00") for t in _TAG_SPLIT.split(cell)
            if t.strip().lower() not in _EMPTY]
    return list(dict.fromkeys(tags)) or None


def _split_int_or_error(values: list[Any]) -> tuple[list[Any], list[str | None]]:
    """Per-unique results that are a value or a message string -> values, messages."""
    out: list[Any] = []
    errs: list[str | None] = []
    for v in values:
        if isinstance(v, str):
            out.append(None)
            errs.append(v)
        else:
            out.append(v)
            errs.append(None)
    return out, errs


def _checked(col: pa.Array, fn: Callable[[str], Any], typ: pa.DataType
             ) -> tuple[pa.Array, pa.Array]:
    """``fn`` per distinct value: a typed value or an error message; both back per row."""
    enc = col.dictionary_encode()
    vals, errs = _split_int_or_error([fn(v) for v in enc.dictionary.to_pylist()])
    return (pa.array(vals, type=typ).take(enc.indices),
            pa.array(errs, type=pa.string()).take(enc.indices))


def load(path: Path, *, options: FeedOptions) -> LoadResult:
    """Every data row an indicator or a problem; comment and blank lines are not entries.

    Plain CSV files are read by ``pyarrow.csv`` and normalised a column at a time
    (``normalize_column``); other shapes are read by the ``csv`` module, then the same.
    """
    rows = FeedRows(path, options)
    with text_lines(path) as f:
        head = [line for _, line in zip(range(400), f, strict=False)]
    found = find_header(head, options.column)
    if found is None:
        what = (f"a column named {options.column!r}" if options.column
                else f"one of the known value columns ({', '.join(VALUE_COLUMNS)})")
        rows.problem(None, f"no CSV header with {what} in the first lines; "
                           "name the value column with FeedOptions.column")
        return rows.result()
    header, start = found
    keys = [_key(h) for h in header]
    width = len(keys)
    if options.column is not None:
        vi = keys.index(options.column.lower())
    else:
        vi = next(i for i, k in enumerate(keys) if k in VALUE_COLUMNS)
    ti = _column(keys, TYPE_COLUMNS)
    column_kind = options.kind or VALUE_COLUMNS.get(keys[vi])
    if options.kind is None and ti is None and column_kind is None:
        column_kind = TYPE_ALIASES.get(keys[vi])
    pi = _column(keys, PORT_COLUMNS)
    si = _column(keys, ("source",))
    ci = _column(keys, CONFIDENCE_COLUMNS)
    sevi = _column(keys, ("severity",))
    tag_cols = [keys.index(k) for k in TAG_COLUMNS if k in keys]
    di = _column(keys, DESCRIPTION_COLUMNS)
    vfi = _column(keys, ("valid_from",))
    vui = _column(keys, ("valid_until",))

    problems: list[tuple[int, str, str | None]] = []
    fast = _arrow_columns(path, start, width)
    if fast is not None:
        cols, first = fast
        lines = np.arange(first, first + len(cols[0]), dtype=np.int64)
    else:
        cols, lines = _csv_columns(path, start, header, problems)
    n = len(lines)
    raw = _strip(cols[vi])
    bad = pa.nulls(n, pa.string())  # the first problem of each row, null where none

    def flag(cond: pa.Array, message: pa.Array | str) -> None:
        nonlocal bad
        cond = pc.and_(pc.fill_null(cond, False), pc.is_null(bad))
        bad = pc.if_else(cond, message, bad)

    flag(pc.equal(raw, ""), f"empty value in column {header[vi]!r}")
    if ti is not None and options.kind is None:
        kinds = _per_unique(cols[ti], lambda t: TYPE_ALIASES.get(t.strip().lower()),
                            pa.string())
        unknown = _per_unique(cols[ti], lambda t: f"unknown indicator type {t!r}; use one of "
                              f"{', '.join(INDICATOR_TYPES)}", pa.string())
        flag(pc.is_null(kinds), unknown)
    else:
        kinds = pa.array(np.full(n, column_kind, dtype=object), type=pa.string())
    port: pa.Array = pa.nulls(n, pa.int64())
    if pi is not None:
        port, err = _checked(cols[pi], _port, pa.int64())
        flag(pc.is_valid(err), err)
    # host:port in the value column (ThreatFox's ip:port, Feodo's ip with a port)
    splittable = pc.and_(
        pc.and_(pc.or_(pc.is_null(kinds), pc.is_in(kinds, pa.array(["ip:port", "ip", "domain"]))),
                pc.match_substring(raw, ":")),
        pc.invert(pc.match_substring(raw, "/")))
    splittable = pc.and_(splittable, pc.is_null(bad))
    split_idx = np.flatnonzero(pc.fill_null(splittable, False).to_numpy(zero_copy_only=False))
    if len(split_idx):
        raw_l = raw.to_pylist()
        kinds_l = kinds.to_pylist()
        port_l = port.to_pylist()
        for i in split_idx:
            host, split_port = split_host_port(raw_l[i])
            if split_port is not None:
                raw_l[i], port_l[i] = host, split_port
                kinds_l[i] = "ip" if kinds_l[i] == "ip:port" else kinds_l[i]
        raw = pa.array(raw_l, type=pa.string())
        kinds = pa.array(kinds_l, type=pa.string())
        port = pa.array(port_l, type=pa.int64())
    kinds = pc.if_else(pc.equal(kinds, "ip:port"), "ip", kinds)
    extra: dict[str, pa.Array] = {}
    if si is not None:
        extra["source"] = _nonempty(cols[si])
    if ci is not None:
        extra["confidence"], err = _checked(cols[ci], _confidence, pa.int16())
        flag(pc.is_valid(err), err)
    if sevi is not None:
        severity = _per_unique(cols[sevi], _severity, pa.string())
        is_err = pc.starts_with(severity, "!")
        flag(is_err, pc.utf8_slice_codeunits(severity, 1))
        extra["severity"] = pc.if_else(is_err, pa.scalar(None, pa.string()), severity)
    if tag_cols:
        joined = (cols[tag_cols[0]] if len(tag_cols) == 1 else
                  pc.binary_join_element_wise(*[cols[c] for c in tag_cols], "\x00"))
        extra["tags"] = _per_unique(joined, _tags, pa.list_(pa.string()))
    if di is not None:
        extra["description"] = _nonempty(cols[di])
    for name, idx in (("valid_from", vfi), ("valid_until", vui)):
        if idx is not None:
            extra[name], err = _checked(cols[idx], _time(name), TIMESTAMP)
            flag(pc.is_valid(err), err)

    # normalise, a column at a time per kind, rows without a problem so far
    types = pa.nulls(n, pa.string())
    values = pa.nulls(n, pa.string())
    todo = pc.is_null(bad)
    for kind in pc.unique(pc.filter(kinds, todo)).to_pylist():
        sel = pc.and_(todo, pc.equal(kinds, kind) if kind is not None else pc.is_null(kinds))
        sel = pc.fill_null(sel, False)
        idx = np.flatnonzero(sel.to_numpy(zero_copy_only=False))
        sub = raw.take(pa.array(idx))
        t, v, e = infer_column(sub) if kind is None else normalize_column(kind, sub)
        order = np.full(n, -1, dtype=np.int64)
        order[idx] = np.arange(len(idx))
        take = pa.array(order, mask=order < 0)
        types = pc.coalesce(types, t.take(take))
        values = pc.coalesce(values, v.take(take))
        flag(sel, e.take(take))
    has_port = pc.is_valid(port)
    port_ok = pc.is_in(types, pa.array(["ip", "domain"]))
    wrong = pc.and_(pc.and_(has_port, pc.is_valid(types)), pc.invert(port_ok))
    flag(wrong, pc.binary_join_element_wise(
        "a port only goes with an ip or a domain, not a ", types, ": ",
        _per_unique(raw, repr, pa.string()), ""))

    bad_idx = np.flatnonzero(pc.is_valid(bad).to_numpy(zero_copy_only=False))
    if len(bad_idx):
        reasons = bad.take(pa.array(bad_idx)).to_pylist()
        raws = raw.take(pa.array(bad_idx)).to_pylist()
        for i, reason, value in zip(bad_idx, reasons, raws, strict=True):
            empty = reason.startswith("empty value in column ")
            problems.append((int(lines[i]), reason, None if empty else value))
    for number, reason, value in sorted(problems, key=lambda p: p[0]):
        rows.problem(number, reason, value)
    keep = pa.array(pc.is_null(bad).to_numpy(zero_copy_only=False))
    return table_result(rows, types.filter(keep), values.filter(keep), lines[keep.to_numpy(
        zero_copy_only=False)], {"port": port.filter(keep),
                                 **{k: v.filter(keep) for k, v in extra.items()}})


def table_result(rows: FeedRows, types: pa.Array, values: pa.Array, lines: np.ndarray,
                 extra: dict[str, pa.Array]) -> LoadResult:
    """``rows.result()`` for one group of rows given as columns (no per-row Python).

    ``rows`` holds the problems and skipped counts; its own rows are not used.
    """
    n = len(values)
    if n == 0:
        return LoadResult(empty_indicators(), rows.problems, dict(rows.skipped))
    options = rows.options

    def col(name: str, fallback: Any = None) -> pa.Array:
        typ = INDICATOR_SCHEMA.field(name).type
        out = extra[name].cast(typ) if name in extra else pa.nulls(n, typ)
        if fallback is not None:
            out = pc.coalesce(out, pa.scalar(fallback, type=typ))
        return out

    origin = pc.binary_join_element_wise(
        f"{rows.origin}:", pc.cast(pa.array(lines, type=pa.int64()), pa.string()), "")
    columns = {
        "type": types, "value": values, "port": col("port"),
        "source": col("source", rows.source),
        "confidence": col("confidence", options.confidence),
        "severity": col("severity", options.severity),
        "tags": col("tags"), "valid_from": col("valid_from"),
        "valid_until": col("valid_until"), "to_ids": col("to_ids"),
        "description": col("description"), "origin": origin,
    }
    table = pa.Table.from_arrays([columns[f.name] for f in INDICATOR_SCHEMA],
                                 schema=INDICATOR_SCHEMA)
    return LoadResult(table, rows.problems, dict(rows.skipped))
