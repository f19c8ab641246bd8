"""Which detection engines a run uses, built from the configured rules and feeds.

The indicator index (issue: indicator matching) and the Sigma compiler (issue: Sigma
rules) plug in here. Until they land, rule and feed files are found and counted,
and the run record says plainly that they were not evaluated.
"""

from __future__ import annotations

from pathlib import Path

from detect.config import Settings
from detect.hits import EngineSet
from detect.readers import expand_inputs

RULE_SUFFIXES = (".yml", ".yaml")


def rule_files(specs: tuple[str, ...]) -> list[Path]:
    """Sigma rule files named by paths, folders and globs."""
    files, _ = expand_inputs(list(specs))
    found = [f.path for f in files if f.path.suffix in RULE_SUFFIXES]
    # expand_inputs skips YAML in folders (it looks for telemetry); walk them here
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            found.extend(sorted(q for q in p.rglob("*") if q.suffix in RULE_SUFFIXES))
    return sorted(set(found))


def feed_files(specs: tuple[str, ...]) -> list[Path]:
    """Indicator feed files named by paths, folders and globs."""
    out: list[Path] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.is_file() and not q.name.startswith(".")
                              and q.suffix != ".md"))
        elif p.is_file():
            out.append(p)
        else:
            files, _ = expand_inputs([spec])
            out.extend(f.path for f in files)
    return out


def load_engines(settings: Settings) -> EngineSet:
    """The engines for ``settings``; notes say what was configured but not evaluated."""
    engines = EngineSet()
    rules = rule_files(settings.rules_or_default())
    feeds = feed_files(settings.indicators_or_default())
    if rules:
        engines.notes.append(
            f"{len(rules)} Sigma rule file(s) found; the Sigma engine is not built yet, "
            "so they were not evaluated"
        )
    if feeds:
        engines.notes.append(
            f"{len(feeds)} indicator feed file(s) found; indicator matching is not built yet, "
            "so they were not evaluated"
        )
    return engines
