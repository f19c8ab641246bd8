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

from detect.indicators.feeds import FeedRows
from detect.indicators.model import FeedOptions, LoadResult
from detect.indicators.normalize import NormalizeError, infer
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
    """Every line a value (typed by ``options.kind``, else inferred), a comment or a problem."""
    rows = FeedRows(path, options)
    kind = options.kind
    with text_lines(path) as f:
        for number, line in enumerate(f, 1):
            entry = strip_comment(line)
            if not entry:
                continue
            parts = _split(entry)
            if isinstance(parts, str):
                rows.problem(number, parts, line.rstrip("\r\n"))
                continue
            value, score, hosts = parts
            if hosts and value.lower() in _LOCAL_NAMES:
                rows.skip("hosts-file entry for the local host")
                continue
            confidence = None if score is None else score_confidence(score)
            rows.add_value("domain" if hosts and kind is None else kind, value, number,
                           confidence=confidence)
    return rows.result()
