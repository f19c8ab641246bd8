"""The Sigma engine: pySigma-parsed rules, compiled to pyarrow kernels, run per batch.

>>> engine = load_sigma(["rules/sigma"])            # doctest: +SKIP
>>> hits = engine.match(batch)                      # doctest: +SKIP
>>> engine.unsupported                               # doctest: +SKIP
[UnsupportedRule(rule_id=..., file=..., reason="modifier 'base64offset' (url.query)")]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sigma.collection import SigmaCollection
from sigma.rule import SigmaRule
from sigma.rule.attributes import SigmaRuleLocation

from detect.hits import HITS_SCHEMA, RuleInfo, empty_hits
from detect.sigma.compiler import BatchView, CompiledRule, UnsupportedError, compile_rule
from detect.sigma.logsource import datasets

KIND = "sigma"
_TECHNIQUE = re.compile(r"^t\d{4}(\.\d{3})?$", re.IGNORECASE)


@dataclass(frozen=True)
class LoadedRule:
    """A parsed rule and where it came from."""

    rule: object  # SigmaRule, or a correlation/filter rule (reported unsupported)
    file: str | None


@dataclass(frozen=True)
class UnsupportedRule:
    """A rule that was parsed but will not run, and why."""

    rule_id: str
    file: str | None
    reason: str


@dataclass(frozen=True)
class RuleError:
    """A rule (or document) pySigma could not parse."""

    file: str | None
    message: str


@dataclass(frozen=True)
class _Plan:
    rule_id: str
    compiled: CompiledRule
    datasets: frozenset[str] | None
    info: RuleInfo


def _rule_id(rule: object, file: str | None, index: int) -> str:
    rid = getattr(rule, "id", None)
    if rid is not None:
        return str(rid)
    name = getattr(rule, "name", None)
    if name:
        return str(name)
    return f"{Path(file).stem if file else 'rule'}#{index}"


def rule_info(rule: SigmaRule, rule_id: str) -> RuleInfo:
    attack = tuple(
        t.name.upper()
        for t in rule.tags
        if t.namespace.lower() == "attack" and _TECHNIQUE.match(t.name)
    )
    return RuleInfo(
        rule_id=rule_id,
        kind=KIND,
        title=rule.title,
        severity=rule.level.name.lower() if rule.level is not None else "medium",
        attack=attack,
        author=rule.author,
        references=tuple(rule.references or ()),
        entity="source.ip",
    )


def _rule_files(paths: Iterable[str | Path], skip_dirs: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(
                sorted(
                    f
                    for f in p.rglob("*")
                    if f.suffix in (".yml", ".yaml")
                    and f.is_file()
                    and not set(f.relative_to(p).parts[:-1]) & set(skip_dirs)
                )
            )
        else:
            files.append(p)
    return files


def parse_rules(
    paths: Iterable[str | Path], *, skip_dirs: Sequence[str] = ("tests",)
) -> tuple[list[LoadedRule], list[RuleError]]:
    """Parse every YAML file under ``paths`` with pySigma in collect-errors mode.

    A rule with errors is reported, not loaded; the others still load. Directories
    named in ``skip_dirs`` (the pack's ``tests/`` events) are not rule files.
    """
    loaded: list[LoadedRule] = []
    errors: list[RuleError] = []
    for f in _rule_files(paths, skip_dirs):
        try:
            text = f.read_text(encoding="utf-8")
            collection = SigmaCollection.from_yaml(
                text, collect_errors=True, source=SigmaRuleLocation(f)
            )
        except Exception as e:  # noqa: BLE001 - a broken file never stops the load
            errors.append(RuleError(str(f), f"{type(e).__name__}: {e}"))
            continue
        bad = set()
        for rule in collection.rules:
            rule_errors = getattr(rule, "errors", None)
            if rule_errors:
                bad.add(id(rule))
                for err in rule_errors:
                    errors.append(RuleError(str(f), _error_text(err, rule)))
            else:
                loaded.append(LoadedRule(rule, str(f)))
        seen = {_error_text(err, r) for r in collection.rules if id(r) in bad for err in r.errors}
        for err in collection.errors:
            text_err = _error_text(err, None)
            if text_err not in seen and not any(text_err in s for s in seen):
                errors.append(RuleError(str(f), text_err))
    return loaded, errors


def _error_text(err: Exception, rule: object | None) -> str:
    title = getattr(rule, "title", None)
    prefix = f"{title}: " if title else ""
    return f"{prefix}{type(err).__name__}: {err}"


class SigmaEngine:
    """Engine protocol (:mod:`detect.hits`) over compiled Sigma rules."""

    kind = KIND

    def __init__(self, rules: Iterable[SigmaRule | LoadedRule]) -> None:
        self.plans: list[_Plan] = []
        self.unsupported: list[UnsupportedRule] = []
        self.errors: list[RuleError] = []
        self._info: dict[str, RuleInfo] = {}
        for index, item in enumerate(rules):
            loaded = item if isinstance(item, LoadedRule) else LoadedRule(item, None)
            self._add(loaded, index)

    def _add(self, loaded: LoadedRule, index: int) -> None:
        rule, file = loaded.rule, loaded.file
        rid = _rule_id(rule, file, index)
        if not isinstance(rule, SigmaRule):
            kind = type(rule).__name__
            self.unsupported.append(UnsupportedRule(rid, file, f"{kind} (not supported yet)"))
            return
        try:
            compiled = compile_rule(rule)
        except UnsupportedError as e:
            self.unsupported.append(UnsupportedRule(rid, file, str(e)))
            return
        except Exception as e:  # noqa: BLE001 - never crash on a rule
            reason = f"cannot compile: {type(e).__name__}: {e}"
            self.unsupported.append(UnsupportedRule(rid, file, reason))
            return
        info = rule_info(rule, rid)
        if rid in self._info:
            self.unsupported.append(UnsupportedRule(rid, file, "duplicate rule id"))
            return
        self._info[rid] = info
        self.plans.append(_Plan(rid, compiled, datasets(rule.logsource), info))

    @property
    def rule_ids(self) -> list[str]:
        return [p.rule_id for p in self.plans]

    def rule(self, rule_id: str) -> RuleInfo:
        return self._info[rule_id]

    def masks(self, batch: pa.RecordBatch) -> dict[str, np.ndarray]:
        """Per-rule boolean row masks, logsource filter applied."""
        view, ds_cache = BatchView(batch), {}
        return {p.rule_id: self._mask(p, view, ds_cache) for p in self.plans}

    @staticmethod
    def _mask(
        plan: _Plan, view: BatchView, ds_cache: dict[frozenset[str], np.ndarray]
    ) -> np.ndarray:
        mask = plan.compiled.mask(view)
        if plan.datasets is not None:
            if plan.datasets not in ds_cache:
                ds = view.strings("event.dataset", cased=False)
                value_set = pa.array(sorted(plan.datasets), pa.string())
                ds_cache[plan.datasets] = ds.lift(pc.is_in(ds.values, value_set=value_set))
            mask = mask & ds_cache[plan.datasets]
        return mask

    def match(self, batch: pa.RecordBatch) -> pa.Table:
        """Hits (``HITS_SCHEMA``); ``field`` is the rule's first non-negated field."""
        if batch.num_rows == 0 or not self.plans:
            return empty_hits()
        view, ds_cache = BatchView(batch), {}
        indices: list[np.ndarray] = []
        rule_ids: list[str] = []
        fields: list[str | None] = []
        counts: list[int] = []
        for plan in self.plans:
            rows = np.flatnonzero(self._mask(plan, view, ds_cache))
            if len(rows):
                indices.append(rows.astype(np.int64))
                rule_ids.append(plan.rule_id)
                fields.append(plan.compiled.fields[0] if plan.compiled.fields else None)
                counts.append(len(rows))
        if not indices:
            return empty_hits()
        reps = pa.array(np.repeat(np.arange(len(counts)), counts))
        total = int(sum(counts))
        return pa.Table.from_arrays(
            [
                pa.array(np.concatenate(indices), pa.int64()),
                pc.take(pa.array(rule_ids, pa.string()), reps),
                pa.repeat(pa.scalar(KIND, pa.string()), total),
                pc.take(pa.array(fields, pa.string()), reps),
            ],
            schema=HITS_SCHEMA,
        )


def load_sigma(paths: Iterable[str | Path]) -> SigmaEngine:
    """Parse and compile every rule under ``paths`` (files or folders).

    Parse errors land in ``engine.errors``, unsupported rules in ``engine.unsupported``.
    """
    loaded, errors = parse_rules(paths)
    engine = SigmaEngine(loaded)
    engine.errors.extend(errors)
    return engine
