"""Suricata IP reputation files: ``ip_or_cidr,category,score`` lines.

Suricata's score is a confidence 1..127 (0 means "no data"). It becomes
``confidence = round(score * 100 / 127)`` (127 -> 100, 64 -> 50, 1 -> 1); a
score of 0 is skipped and counted. The category id becomes a tag: its short name
from a categories file (``id,short name,description``: Suricata's
``reputation-categories-file``) in the same folder when there is one, else the id
as text; the category description becomes the indicator's description.
"""

from __future__ import annotations

import re
from pathlib import Path

from detect.indicators.feeds import FeedRows
from detect.indicators.model import FeedOptions, LoadResult
from detect.indicators.plain import strip_comment
from detect.readers.source import read_head, text_lines

MAX_SCORE = 127
MAX_CATEGORY = 60
_REP_LINE = re.compile(r"^\s*[0-9A-Fa-f:.]+(?:/\d{1,3})?\s*,\s*\d+\s*,\s*\d+\s*$")
_CATEGORY_LINE = re.compile(r"^\s*(\d+)\s*,\s*([^,]+?)\s*,(.*)$")
_SNIFF_LINES = 50


def sniff(head: bytes, path: Path) -> bool:
    """Every one of the first entries is ``address,number,number``."""
    del path
    lines = [strip_comment(x) for x in head.decode("utf-8", errors="replace").splitlines()]
    entries = [x for x in lines if x][:_SNIFF_LINES]
    if len(head) >= 65_536 and len(entries) > 1:
        entries = entries[:-1]
    return bool(entries) and all(_REP_LINE.match(x) for x in entries)


def score_confidence(score: int) -> int:
    """Suricata's 1..127 reputation score as a confidence 0..100."""
    return round(score * 100 / MAX_SCORE)


def is_categories_file(path: Path) -> bool:
    """``id,short name,description`` lines only (Suricata's categories file)."""
    lines = [strip_comment(x) for x in
             read_head(path, 16_384).decode("utf-8", errors="replace").splitlines()]
    entries = [x for x in lines if x]
    return bool(entries) and all(_CATEGORY_LINE.match(x) and not _REP_LINE.match(x)
                                 for x in entries)


def find_categories(path: Path) -> Path | None:
    """A categories file beside the reputation file (``categories.txt`` first)."""
    folder = path.parent
    preferred = [folder / n for n in ("categories.txt", "categories.csv", "categories")]
    others = sorted(p for p in folder.iterdir() if "categor" in p.name.lower())
    for candidate in [*preferred, *others]:
        if candidate.is_file() and candidate != path and is_categories_file(candidate):
            return candidate
    return None


def read_categories(path: Path) -> dict[int, tuple[str, str]]:
    """Category id -> (short name, description)."""
    out: dict[int, tuple[str, str]] = {}
    with text_lines(path) as f:
        for line in f:
            m = _CATEGORY_LINE.match(strip_comment(line))
            if m:
                out[int(m.group(1))] = (m.group(2), m.group(3).strip())
    return out


def load(path: Path, *, options: FeedOptions) -> LoadResult:
    """Every reputation line an ip/cidr indicator, a counted score-0 skip, or a problem."""
    rows = FeedRows(path, options)
    categories_file = find_categories(path)
    categories = read_categories(categories_file) if categories_file else {}
    with text_lines(path) as f:
        for number, line in enumerate(f, 1):
            entry = strip_comment(line)
            if not entry:
                continue
            parts = [p.strip() for p in entry.split(",")]
            if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
                rows.problem(number, "expected 'ip_or_cidr,category,score' with a numeric "
                             f"category and score, got {entry!r}", line.rstrip("\r\n"))
                continue
            address, category, score = parts[0], int(parts[1]), int(parts[2])
            if score > MAX_SCORE:
                rows.problem(number, f"reputation score {score} is above {MAX_SCORE}; Suricata "
                             "scores run 1..127", entry)
                continue
            if score == 0:
                rows.skip("suricata iprep score 0 (no reputation data)")
                continue
            short, description = categories.get(category, (str(category), None))
            rows.add_value("ip", address, number, confidence=score_confidence(score),
                           tags=[short], description=description or None)
    return rows.result()
