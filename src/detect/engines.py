"""Which detection engines a run uses, built from the configured rules and feeds.

The indicator index (issue: indicator matching) and the Sigma compiler (issue: Sigma
rules) plug in here. Until they land, rule and feed files are found and counted,
and the run record says plainly that they were not evaluated.
"""

from __future__ import annotations

from pathlib import Path

from detect.config import Settings
from detect.errors import ConfigError, InputError
from detect.hits import EngineSet
from detect.readers import expand_inputs

RULE_SUFFIXES = (".yml", ".yaml")


def rule_files(specs: tuple[str, ...]) -> list[Path]:
    """Sigma rule files named by paths, folders and globs.

    A file named explicitly is always taken; in a folder, YAML under a ``tests``
    folder is not (a rule pack keeps its test events there, as ``rules/sigma`` does).
    """
    files, _ = expand_inputs(list(specs))
    found = [f.path for f in files if f.path.suffix in RULE_SUFFIXES and f.explicit]
    # expand_inputs skips YAML in folders (it looks for telemetry); walk them here
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            found.extend(q for q in sorted(p.rglob("*")) if q.suffix in RULE_SUFFIXES
                         and "tests" not in q.relative_to(p).parts[:-1])
    return sorted(set(found))


MAX_LISTED_PROBLEMS = 20


def load_engines(settings: Settings) -> EngineSet:
    """The engines for ``settings``; notes say what was loaded and what was not evaluated."""
    engines = EngineSet()
    rules = rule_files(settings.rules_or_default())
    if rules:
        engines.notes.append(
            f"{len(rules)} Sigma rule file(s) found; the Sigma engine is not built yet, "
            "so they were not evaluated"
        )
    if settings.indicators_or_default():
        try:
            _add_indicators(engines, settings)
        except InputError as e:
            # a feed that cannot be read is a configuration problem: nothing ran yet
            raise ConfigError(str(e)) from e
    return engines


def _add_indicators(engines: EngineSet, settings: Settings) -> None:
    from detect.indicators.engine import IndicatorEngine, load_index

    index = load_index(settings)
    engines.compile_seconds += index.seconds
    engines.indicator_index = index
    if index.indicators.num_rows:
        engines.engines = [*engines.engines,
                           IndicatorEngine(index, retro_hunt=settings.retro_hunt,
                                           threads=settings.threads)]
    how = "from cache" if index.from_cache else "built"
    engines.notes.append(
        f"{index.indicators.num_rows:,} indicators ({index.suppressed.num_rows:,} suppressed by "
        f"allowlists) {how} in {index.seconds:.2f} s"
    )
    if index.problems:
        shown = index.problems[:MAX_LISTED_PROBLEMS]
        more = len(index.problems) - len(shown)
        engines.problems.append(
            f"{len(index.problems):,} feed entries could not be used (see 'detect indicators "
            "validate')" + (f"; first: {shown[0]}" if shown else "") + (
                f" (and {more:,} more)" if more > 0 else "")
        )
