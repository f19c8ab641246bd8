"""Checking inputs, rules and feeds without detecting: what ``detect validate`` lists.

Inputs are recognised and read in full by their reader (rejects counted and
sampled, nothing stored); Sigma rules are parsed by pySigma in collect-errors mode,
so one broken rule never hides the next; feeds are loaded by their loaders, and
every entry they cannot use (a STIX pattern with FOLLOWEDBY, say) is listed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from detect.config import Settings
from detect.engines import rule_files
from detect.errors import InputError
from detect.readers import ReadContext, detect_format, expand_inputs, read_file
from detect.readers.base import Reject

if TYPE_CHECKING:
    from detect.sigma.engine import LoadedRule

MAX_SAMPLES = 50


@dataclass
class InputCheck:
    """One input file: its format, how many events it gives and what was rejected."""

    path: str
    format: str | None = None
    events: int = 0
    rejects: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    samples: list[Reject] = field(default_factory=list)
    error: str | None = None


@dataclass
class ValidationReport:
    """Everything ``detect validate`` found."""

    inputs: list[InputCheck] = field(default_factory=list)
    rules_checked: int = 0
    rules_ok: int = 0
    rule_problems: list[str] = field(default_factory=list)
    rules_unsupported: list[str] = field(default_factory=list)
    feeds_checked: int = 0
    indicators: int = 0
    suppressed: int = 0
    feed_problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def check_input(path: Path, *, batch_size: int) -> InputCheck:
    """Read one file completely through its reader, counting events and rejects."""
    check = InputCheck(str(path))

    def reject(r: Reject) -> None:
        check.rejects += 1
        if len(check.samples) < MAX_SAMPLES:
            check.samples.append(r)

    try:
        check.format = detect_format(path)
        ctx = ReadContext(path, batch_size=batch_size, reject=reject, skipped=check.skipped)
        for batch in read_file(path, fmt=check.format, ctx=ctx):
            check.events += batch.num_rows
    except InputError as e:
        check.error = f"{e.location}: {e.msg}" if e.location else e.msg
    return check


def check_rules(paths: list[Path], report: ValidationReport) -> list[LoadedRule]:
    """Parse every rule file with pySigma; record each problem with its file and line."""
    from detect.sigma import parse_rules

    loaded, errors = parse_rules(paths)
    report.rules_checked += len(paths)
    report.rules_ok += len(loaded)
    report.rule_problems.extend(str(e) for e in errors)
    return loaded


def check_support(
    paths: list[Path], loaded: list[LoadedRule], report: ValidationReport, settings: Settings
) -> None:
    """Rules that parse but use a feature the engine does not support yet (skipped in runs)."""
    if not paths:
        return
    from detect.engines import correlations, load_placeholders
    from detect.sigma import SigmaEngine

    placeholders = load_placeholders(settings.placeholders)
    engine = SigmaEngine(loaded, placeholders=placeholders)
    correlations(engine, paths, placeholders)
    for u in engine.unsupported:
        report.rules_unsupported.append(
            f"{u.file}: rule {u.rule_id}: not supported yet: {u.reason} (skipped when detecting)"
        )


def check_feeds(settings: Settings, report: ValidationReport) -> None:
    """Load every configured feed and allowlist; every unusable entry is a problem."""
    from detect.errors import DetectError
    from detect.indicators.engine import load_index

    if not settings.indicators_or_default():
        return
    try:
        index = load_index(settings, use_cache=False)
    except DetectError as e:  # a feed that cannot be read at all: listed with the rest
        report.feed_problems.append(str(e))
        return
    report.feeds_checked = sum(1 for f in index.feeds if "by_type" in f)
    report.indicators = index.indicators.num_rows
    report.suppressed = index.suppressed.num_rows
    report.feed_problems.extend(index.problems)


def check_detectors(settings: Settings, report: ValidationReport) -> None:
    """Anomaly detector files (``anomaly/*.yml``): each problem with file, line and key."""
    from detect.anomaly.config import detector_files, parse_detector_file
    from detect.errors import ConfigError

    for path in detector_files(settings.rules_or_default()):
        report.rules_checked += 1
        try:
            parse_detector_file(path)
        except ConfigError as e:
            report.rule_problems.append(str(e))
        else:
            report.rules_ok += 1


def validate(inputs: list[str], settings: Settings) -> ValidationReport:
    """Check ``inputs``, the configured rules and the configured feeds."""
    report = ValidationReport()
    files, errors = expand_inputs(list(inputs))
    for e in errors:
        report.inputs.append(InputCheck(e.location.path if e.location else "?", error=e.msg))
    for f in files:
        report.inputs.append(check_input(f.path, batch_size=settings.batch_size))
    files = rule_files(settings.rules_or_default())
    loaded = check_rules(files, report)
    check_support(files, loaded, report, settings)
    check_detectors(settings, report)
    check_feeds(settings, report)
    return report
