"""Which detection engines a run uses, built from the configured rules and feeds.

The Sigma engine and the indicator engine are built here; what could not be loaded
(unsupported rule features, unusable feed entries) goes into the run record's notes
and problems, never silently away.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import TYPE_CHECKING

from detect.config import Settings
from detect.errors import ConfigError
from detect.hits import EngineSet
from detect.readers import expand_inputs

if TYPE_CHECKING:
    from detect.anomaly.correlation import CorrelationDetector
    from detect.anomaly.engine import FindingInfo
    from detect.sigma.engine import LoadedRule, SigmaEngine

RULE_SUFFIXES = (".yml", ".yaml")
# folders of a rules tree that hold no Sigma rules: a pack's test events, detector configs
NOT_SIGMA_DIRS = frozenset({"tests", "anomaly"})


def rule_files(specs: tuple[str, ...]) -> list[Path]:
    """Sigma rule files named by paths, folders and globs.

    A file named explicitly is always taken; in a folder, YAML under a ``tests``
    folder is not (a rule pack keeps its test events there, as ``rules/sigma`` does),
    nor under ``anomaly`` (detector configurations, see :mod:`detect.anomaly.config`).
    A path that does not exist is a configuration error (a typo must not run without
    rules); a glob matching nothing is not.
    """
    files, _ = expand_inputs(list(specs))
    missing = [
        str(spec) for spec in specs if not glob.has_magic(str(spec)) and not Path(spec).exists()
    ]
    if missing:
        msg = (
            f"no such rule file or folder: {', '.join(missing)} (--rules, or rules in detect.toml)"
        )
        raise ConfigError(msg)
    found = [f.path for f in files if f.path.suffix in RULE_SUFFIXES and f.explicit]
    # expand_inputs skips YAML in folders (it looks for telemetry); walk them here
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            found.extend(
                q
                for q in sorted(p.rglob("*"))
                if q.suffix in RULE_SUFFIXES
                and not set(q.relative_to(p).parts[:-1]) & NOT_SIGMA_DIRS
            )
    return sorted(set(found))


MAX_LISTED_PROBLEMS = 20


def load_engines(settings: Settings) -> EngineSet:
    """The engines for ``settings``; notes say what was loaded and what was skipped."""
    engines = EngineSet()
    rules = rule_files(settings.rules_or_default())
    if rules:
        _add_sigma(engines, rules, settings)
    _add_anomaly(engines, settings)
    if settings.indicators_or_default():
        _add_indicators(engines, settings)  # an unreadable feed: ConfigError (exit 2)
    else:
        engines.notes.append("no indicator feeds (--indicators, or indicators in detect.toml)")
    if not engines.engines and engines.anomaly is None:
        # inputs would be recorded as done with nothing looked for: a later run with rules
        # would skip them as unchanged
        problems = "; ".join(engines.problems[:3])
        msg = (
            "nothing to detect with: no Sigma rule, indicator or anomaly detector was loaded "
            f"(rules: {', '.join(settings.rules_or_default()) or 'none bundled here'}; "
            "pass --rules and --indicators, or set rules and indicators in detect.toml)"
            + (f"; problems: {problems}" if problems else "")
        )
        raise ConfigError(msg)
    return engines


def load_placeholders(path: Path | None) -> dict[str, list[str]]:
    """Sigma ``|expand`` placeholder values from a YAML mapping (name: [values])."""
    if path is None:
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        msg = f"{path}: cannot read placeholders: {e}"
        raise ConfigError(msg) from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        msg = f"{path}{where}: not valid YAML: {' '.join(str(e).split())}"
        raise ConfigError(msg) from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        msg = f"{path}: placeholders must be a mapping of name to a list of values"
        raise ConfigError(msg)
    out: dict[str, list[str]] = {}
    for name, values in data.items():
        items = values if isinstance(values, list) else [values]
        if not all(isinstance(v, str | int | float) for v in items):
            msg = f"{path}: placeholder {name!r}: values must be strings"
            raise ConfigError(msg)
        out[str(name)] = [str(v) for v in items]
    return out


def _add_sigma(engines: EngineSet, rules: list[Path], settings: Settings) -> None:
    """Compile the Sigma rules; unsupported and broken ones are counted, never silent."""
    import time

    from detect.sigma import load_sigma

    t0 = time.perf_counter()
    engine = load_sigma(
        rules,
        placeholders=load_placeholders(settings.placeholders),
        cache_dir=settings.cache_dir_or_default(),
    )
    engines.compile_seconds += time.perf_counter() - t0
    t0 = time.perf_counter()
    _add_correlations(engines, engine, rules, settings)
    engines.compile_seconds += time.perf_counter() - t0
    if engine.plans:
        engines.engines = [*engines.engines, engine]
    engines.notes.append(
        f"{len(engine.plans):,} Sigma rule(s) "
        f"{'loaded from the plan cache' if engine.from_cache else 'compiled'} "
        f"from {len(rules):,} file(s); "
        f"{len(engine.unsupported):,} use features not supported yet (skipped, see "
        f"'detect validate'), {len(engine.errors):,} parse error(s) in "
        f"{len({e.file for e in engine.errors}):,} file(s)"
    )
    for error in engine.errors[:MAX_LISTED_PROBLEMS]:
        engines.problems.append(str(error))
    if len(engine.errors) > MAX_LISTED_PROBLEMS:
        more = len(engine.errors) - MAX_LISTED_PROBLEMS
        engines.problems.append(f"... and {more:,} more rule problem(s) (see 'detect validate')")


def correlations(
    sigma: SigmaEngine,
    rules: list[Path],
    placeholders: dict | None = None,
    *,
    cache_dir: Path | None = None,
) -> tuple[CorrelationDetector, dict[str, FindingInfo]] | None:
    """The Sigma correlation rules among ``rules`` as a detector, with alert metadata of
    every rule it parsed by id (None when there are none).

    Correlations the detector runs leave the Sigma engine's unsupported list (their
    reasons, if any, replace them); base rules of ``generate: false`` correlations are
    silenced in ``sigma`` (the correlation evaluates them itself). With ``cache_dir`` the
    detector is kept beside the Sigma plan (parsing every rule again for it took half a
    second of each start), under a key of the same rule files and its own code.
    """
    if not any("SigmaCorrelationRule" in u.reason for u in sigma.unsupported):
        return None
    found = _load_correlations(rules, placeholders, cache_dir)
    detector = found[0]
    handled = {p.rule_id for p in detector.plans} | {u.rule_id for u in detector.unsupported}
    sigma.unsupported = [
        u
        for u in sigma.unsupported
        if not ("SigmaCorrelationRule" in u.reason and u.rule_id in handled)
    ] + list(detector.unsupported)
    sigma.silence(detector.suppressed_base_rules)
    return found


def _load_correlations(
    rules: list[Path], placeholders: dict | None, cache_dir: Path | None
) -> tuple[CorrelationDetector, dict[str, FindingInfo]]:
    import hashlib

    import detect.anomaly.correlation as correlation_module
    from detect.anomaly.correlation import CorrelationDetector, parse_correlation_rules
    from detect.sigma.cache import load_plan, plan_key, save_plan

    key = ""
    if cache_dir is not None:
        h = hashlib.sha256(plan_key(rules, placeholders).encode())
        h.update(Path(correlation_module.__file__).read_bytes())
        key = "correlations-" + h.hexdigest()[:32]
        cached = load_plan(cache_dir, key)
        if isinstance(cached, tuple) and isinstance(cached[0], CorrelationDetector):
            return cached
    loaded, _ = parse_correlation_rules(rules)
    found = (CorrelationDetector(loaded, placeholders=placeholders), _finding_infos(loaded))
    if cache_dir is not None:
        save_plan(found, cache_dir, key)
    return found


def _finding_infos(loaded: list[LoadedRule]) -> dict[str, FindingInfo]:
    """Alert metadata (title, ATT&CK, author, references) of parsed rules, by rule id."""
    from detect.anomaly.engine import FindingInfo
    from detect.sigma.engine import rule_info

    by_id = {}
    for item in loaded:
        rule = item.rule
        rid = str(getattr(rule, "id", None) or getattr(rule, "name", None) or "")
        if rid and hasattr(rule, "title"):
            info = rule_info(rule, rid) if hasattr(rule, "tags") else None
            by_id[rid] = FindingInfo(
                rule.title,
                info.attack if info else (),
                info.author if info else None,
                info.references if info else (),
            )
    return by_id


def _add_correlations(
    engines: EngineSet, sigma: SigmaEngine, rules: list[Path], settings: Settings
) -> None:
    """Sigma correlation rules run as a stateful detector beside the anomaly ones."""
    from detect.anomaly.engine import AnomalyEngine, FindingInfo

    found = correlations(
        sigma,
        rules,
        load_placeholders(settings.placeholders),
        cache_dir=settings.cache_dir_or_default(),
    )
    if found is None or not found[0].plans:
        return
    detector, by_id = found
    if engines.anomaly is None:
        engines.anomaly = AnomalyEngine(flush_rows=settings.detector_rows)
    engines.anomaly.add(
        "correlation",
        detector,
        kind="correlation",
        info={p.rule_id: by_id.get(p.rule_id, FindingInfo(p.title)) for p in detector.plans},
        fingerprint=[
            [p.rule_id, p.type, p.timespan_us, list(p.group_by), p.condition, p.lag_us]
            for p in detector.plans
        ],
    )
    engines.notes.append(f"{len(detector.plans)} Sigma correlation rule(s)")


def _add_anomaly(engines: EngineSet, settings: Settings) -> None:
    """The statistical detectors configured under the rules paths (``anomaly/*.yml``)."""
    from detect.anomaly.config import load_detector_configs

    configs = load_detector_configs(settings.rules_or_default())
    if not configs:
        return
    from detect.anomaly.engine import AnomalyEngine

    anomaly = AnomalyEngine(configs, flush_rows=settings.detector_rows)
    if engines.anomaly is not None:  # correlations came first
        for slot in engines.anomaly.slots:
            anomaly.slots.append(slot)
        anomaly.info.update(engines.anomaly.info)
    engines.anomaly = anomaly
    engines.notes.append(
        f"{len(configs)} anomaly detector(s): {', '.join(c.key for c in configs)}"
        + ("; open windows closed at the end" if settings.close_windows else "")
    )


def _add_indicators(engines: EngineSet, settings: Settings) -> None:
    from detect.indicators.engine import IndicatorEngine, load_index

    index = load_index(settings)
    engines.compile_seconds += index.seconds
    engines.indicator_index = index
    if index.indicators.num_rows:
        engines.engines = [
            *engines.engines,
            IndicatorEngine(index, retro_hunt=settings.retro_hunt, threads=settings.threads),
        ]
    how = "from cache" if index.from_cache else "built"
    engines.notes.append(
        f"{index.indicators.num_rows:,} indicators ({index.suppressed.num_rows:,} suppressed by "
        f"allowlists) {how} in {index.seconds:.2f} s"
    )
    if index.problems:
        more = len(index.problems) - 1
        engines.problems.append(
            f"{len(index.problems):,} feed entries could not be used (see 'detect indicators "
            f"validate'); first: {index.problems[0]}"
            + (f" (and {more:,} more)" if more > 0 else "")
        )
