"""Plain indicator lists: one value a line, the type inferred per line.

Covers the lists people actually download: IPsum (``IP<TAB>score``), FireHOL
``.netset``/``.ipset`` (IPs and CIDRs), ThreatFox's IP list, domain lists, hash
lists, and hosts files (``0.0.0.0 evil.com``). Comments start a line with ``#`` or
``;``, or follow a value after whitespace (``1.2.3.4 # scanner``).

IPsum's score is the number of blocklists that carry the IP; it becomes
``confidence = min(100, 25 * score)``: one list 25 (below 30, so merge lowers the
alert one level), two 50, three 75 (IPsum's own advice is to block from three
lists up), four or more 100.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from detect.indicators.csv_feed import table_result
from detect.indicators.feeds import FeedRows
from detect.indicators.model import FeedOptions, LoadResult
from detect.indicators.normalize import NormalizeError, infer, infer_column, normalize_column
from detect.readers.source import text_lines

SCORE_CONFIDENCE_STEP = 25
_HOSTS_ADDRESSES = frozenset({"0.0.0.0", "127.0.0.1", "::", "::1", "0"})
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "local", "broadcasthost",
                          "ip6-localhost", "ip6-loopback", "0.0.0.0"})
_SNIFF_LINES = 200


def strip_comment(line: str) -> str:
    """The entry of a line without a leading or trailing (whitespace-separated) comment."""
    text = line.strip()
    if not text or text[0] in "#;":
        return ""
    for marker in ("#", ";"):
        at = text.find(marker)
        while at > 0:
            if text[at - 1] in " \t":
                text = text[:at].rstrip()
                break
            at = text.find(marker, at + 1)
    return text


def score_confidence(score: int) -> int:
    """IPsum's blocklist count as a confidence, 0..100 (see the module docstring)."""
    return max(0, min(100, SCORE_CONFIDENCE_STEP * score))


def _split(entry: str) -> tuple[str, int | None, bool] | str:
    """``(value, score, is_hosts_line)``, or a problem message."""
    tokens = entry.split()
    if len(tokens) == 1:
        return tokens[0], None, False
    if len(tokens) == 2:
        first, second = tokens
        if second.isdigit():
            return first, int(second), False
        if first in _HOSTS_ADDRESSES:
            return second, None, True
    return (f"expected one value a line, 'value score' or a hosts-file line, got "
            f"{len(tokens)} fields: {entry!r}; write one indicator a line")


def sniff(head: bytes, path: Path) -> bool:
    """Most of the first lines that are not comments are values ``infer`` accepts."""
    del path
    text = head.decode("utf-8", errors="replace")
    lines = text.splitlines()
    if len(head) >= 65_536 and lines:
        lines = lines[:-1]  # the last line may be cut
    seen = good = 0
    for line in lines:
        entry = strip_comment(line)
        if not entry:
            continue
        seen += 1
        parts = _split(entry)
        if not isinstance(parts, str):
            try:
                infer(parts[0])
                good += 1
            except NormalizeError:
                pass
        if seen >= _SNIFF_LINES:
            break
    return seen > 0 and good >= 0.8 * seen


def load(path: Path, *, options: FeedOptions) -> LoadResult:
    """Every line a value (typed by ``options.kind``, else inferred), a comment or a problem.

    Lines are split in Python; the values are normalised a column at a time
    (``infer_column`` / ``normalize_column``).
    """
    rows = FeedRows(path, options)
    kind = options.kind
    values: list[str] = []
    lines: list[int] = []
    scores: list[int | None] = []
    hosts_rows: list[int] = []
    problems: list[tuple[int, str, str | None]] = []
    with text_lines(path) as f:
        for number, line in enumerate(f, 1):
            entry = strip_comment(line)
            if not entry:
                continue
            parts = _split(entry)
            if isinstance(parts, str):
                problems.append((number, parts, line.rstrip("\r\n")))
                continue
            value, score, hosts = parts
            if hosts and value.lower() in _LOCAL_NAMES:
                rows.skip("hosts-file entry for the local host")
                continue
            if hosts and kind is None:
                hosts_rows.append(len(values))
            values.append(value)
            lines.append(number)
            scores.append(None if score is None else score_confidence(score))
    n = len(values)
    text = pa.array(values, type=pa.string())
    row_kind = np.zeros(n, dtype=bool)
    row_kind[hosts_rows] = True  # hosts-file lines are domains
    types = pa.nulls(n, pa.string())
    vals = pa.nulls(n, pa.string())
    errs = pa.nulls(n, pa.string())
    for is_hosts in (False, True):
        idx = np.flatnonzero(row_kind == is_hosts)
        if not len(idx):
            continue
        sub = text.take(pa.array(idx))
        want = "domain" if is_hosts else kind
        t, v, e = infer_column(sub) if want is None else normalize_column(want, sub)
        order = np.full(n, -1, dtype=np.int64)
        order[idx] = np.arange(len(idx))
        take = pa.array(order, mask=order < 0)
        types = pc.coalesce(types, t.take(take))
        vals = pc.coalesce(vals, v.take(take))
        errs = pc.coalesce(errs, e.take(take))
    line_arr = np.array(lines, dtype=np.int64)
    bad = np.flatnonzero(pc.is_valid(errs).to_numpy(zero_copy_only=False))
    for i, reason in zip(bad, errs.take(pa.array(bad)).to_pylist(), strict=True):
        problems.append((lines[i], reason, values[i]))
    for number, reason, raw in sorted(problems, key=lambda p: p[0]):
        rows.problem(number, reason, raw)
    keep = pc.is_null(errs)
    keep_np = keep.to_numpy(zero_copy_only=False)
    return table_result(rows, types.filter(keep), vals.filter(keep), line_arr[keep_np],
                        {"confidence": pa.array(scores, type=pa.int16()).filter(keep)})
