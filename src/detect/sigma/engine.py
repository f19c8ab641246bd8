"""The Sigma engine: pySigma-parsed rules, compiled to pyarrow kernels, run per batch.

>>> engine = load_sigma(["rules/sigma"])            # doctest: +SKIP
>>> hits = engine.match(batch)                      # doctest: +SKIP
>>> engine.unsupported                               # doctest: +SKIP
[UnsupportedRule(rule_id=..., file=..., reason="modifier 'base64offset' (url.query)")]
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml
from sigma.collection import SigmaCollection
from sigma.filters import SigmaFilter
from sigma.rule import SigmaRule
from sigma.rule.attributes import SigmaRuleLocation

from detect.hits import HITS_SCHEMA, RuleInfo, empty_hits
from detect.sigma import rowsets as rs
from detect.sigma.cache import load_plan, plan_key, save_plan
from detect.sigma.compiler import (
    LeafBuilder,
    UnsupportedError,
    compile_rule,
    native_stderr_silenced,
)
from detect.sigma.executor import BatchRun, Executor
from detect.sigma.logsource import datasets
from detect.sigma.pipelines import apply_pipeline
from detect.sigma.plan import Leaf, RulePlan, StringLeaf, positive_leaves, trigger

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
    """A rule (or document) pySigma could not parse, and where."""

    file: str | None
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        return f"{where}: {self.message}"


def rule_key(rule: object, file: str | None, index: int) -> str:
    """A rule's id, else its name, else ``<file stem>#<position>``: how hits name it."""
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

    A rule with errors is reported with its file and line, not loaded; the others still
    load. Directories named in ``skip_dirs`` (the pack's ``tests/`` events) are not
    rule files.
    """
    loaded: list[LoadedRule] = []
    errors: list[RuleError] = []
    for f in _rule_files(paths, skip_dirs):
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            errors.append(RuleError(str(f), f"cannot read: {e}"))
            continue
        try:
            with native_stderr_silenced():  # pySigma's RE2 check logs what it raises
                collection = SigmaCollection.from_yaml(
                    text, collect_errors=True, source=SigmaRuleLocation(f)
                )
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            errors.append(RuleError(str(f), f"invalid YAML: {_first_line(e)}", line))
            continue
        except Exception as e:  # noqa: BLE001 - a broken file never stops the load
            errors.append(RuleError(str(f), f"{type(e).__name__}: {e}"))
            continue
        # pySigma applies a filter to the rules of its own file; other files' rules get
        # it in SigmaEngine (filters are kept as LoadedRules for that).
        loaded.extend(LoadedRule(flt, str(f)) for flt in getattr(collection, "filters", ()))
        starts = _document_lines(text)
        reported: set[str] = set()
        for i, rule in enumerate(collection.rules):
            rule_errors = getattr(rule, "errors", None)
            if not rule_errors:
                loaded.append(LoadedRule(rule, str(f)))
                continue
            doc = starts[i] if i < len(starts) else (1, len(text.splitlines()))
            for err in rule_errors:
                message = _error_text(err, rule)
                reported.add(str(err))
                errors.append(RuleError(str(f), message, _error_line(text, doc, str(err))))
        for err in collection.errors:
            if str(err) not in reported:
                line = _error_line(text, (1, len(text.splitlines())), str(err))
                errors.append(RuleError(str(f), _error_text(err, None), line))
    return loaded, errors


def _first_line(e: Exception) -> str:
    return " ".join(str(e).split())


def _document_lines(text: str) -> list[tuple[int, int]]:
    """(first, last) line of each YAML document in ``text``, 1-based."""
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        return []
    return [(n.start_mark.line + 1, n.end_mark.line + 1) for n in nodes if n is not None]


def _error_line(text: str, doc: tuple[int, int], message: str) -> int:
    """The line of the document the error names (a quoted token), else its first line."""
    lines = text.splitlines()
    first, last = doc
    for token in re.findall(r"'([^']{2,})'", message):
        for number in range(first, min(last, len(lines)) + 1):
            if token in lines[number - 1]:
                return number
    return first


def _error_text(err: Exception, rule: object | None) -> str:
    title = getattr(rule, "title", None)
    prefix = f"{title}: " if title else ""
    return f"{prefix}{type(err).__name__}: {err}"


class SigmaEngine:
    """Engine protocol (:mod:`detect.hits`) over compiled Sigma rules.

    Rules are compiled into one shared leaf table (see :mod:`detect.sigma.plan`); the
    executor evaluates every leaf once per batch, string leaves fused per column.
    """

    kind = KIND

    def __init__(
        self,
        rules: Iterable[SigmaRule | LoadedRule] = (),
        *,
        placeholders: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.plans: list[RulePlan] = []
        self.unsupported: list[UnsupportedRule] = []
        self.errors: list[RuleError] = []
        self.leaves: tuple[Leaf, ...] = ()
        self._info: dict[str, RuleInfo] = {}
        self._builder = LeafBuilder()
        self._placeholders = placeholders
        self._executor: Executor | None = None
        self.from_cache = False
        self.silenced: list[str] = []  # rule ids whose hits are not emitted (see silence)
        items = [i if isinstance(i, LoadedRule) else LoadedRule(i, None) for i in rules]
        self.filters = [i for i in items if isinstance(i.rule, SigmaFilter)]  # meta filters
        for index, loaded in enumerate(items):
            if not isinstance(loaded.rule, SigmaFilter):
                self._add(self._filtered(loaded), index)
        self._finish()

    def _filtered(self, loaded: LoadedRule) -> LoadedRule:
        """The rule with every Sigma filter (meta filter rule) that targets it applied."""
        rule = loaded.rule
        targeting = [
            f.rule
            for f in self.filters
            if isinstance(rule, SigmaRule)
            and (f.file is None or f.file != loaded.file)  # same file: pySigma applied it
            and f.rule._should_apply_on_rule(rule)
        ]
        if not targeting:
            return loaded
        rule = copy.deepcopy(rule)
        for sigma_filter in targeting:
            rule = sigma_filter.apply_on_rule(rule)
        return LoadedRule(rule, loaded.file)

    def _add(self, loaded: LoadedRule, index: int) -> None:
        rule, file = loaded.rule, loaded.file
        rid = rule_key(rule, file, index)
        if not isinstance(rule, SigmaRule):
            kind = type(rule).__name__
            self.unsupported.append(UnsupportedRule(rid, file, f"{kind} (not supported yet)"))
            return
        if rid in self._info:
            self.unsupported.append(UnsupportedRule(rid, file, "duplicate rule id"))
            return
        try:
            rule = apply_pipeline(rule)  # taxonomy field names -> canonical columns
            tree = compile_rule(rule, self._builder, self._placeholders)
        except UnsupportedError as e:
            self.unsupported.append(UnsupportedRule(rid, file, str(e)))
            return
        except Exception as e:  # noqa: BLE001 - never crash on a rule
            reason = f"cannot compile: {type(e).__name__}: {e}"
            self.unsupported.append(UnsupportedRule(rid, file, reason))
            return
        info = rule_info(rule, rid)
        self._info[rid] = info
        self.plans.append(
            RulePlan(rid, tree, datasets(rule.logsource), info, None, tuple(positive_leaves(tree)))
        )

    def _finish(self) -> None:
        """Freeze the leaf table and work out each rule's trigger leaves."""
        self.leaves = tuple(self._builder.leaves)
        cheap = frozenset(i for i, leaf in enumerate(self.leaves) if isinstance(leaf, StringLeaf))
        self.plans = [replace(p, trigger=trigger(p.tree, cheap)) for p in self.plans]
        self._executor = None

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["_builder"] = None  # compile-time only
        return state

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            self._executor = Executor(self.leaves)
        return self._executor

    def silence(self, rule_ids: Iterable[str]) -> None:
        """Stop emitting hits of ``rule_ids`` (base rules of ``generate: false``
        correlations: the correlation evaluates them itself)."""
        silent = set(rule_ids)
        if silent:
            self.plans = [p for p in self.plans if p.rule_id not in silent]
            self.silenced = sorted(silent | set(self.silenced))

    @property
    def rule_ids(self) -> list[str]:
        return [p.rule_id for p in self.plans]

    def rule(self, rule_id: str) -> RuleInfo:
        return self._info[rule_id]

    def _rows(self, plan: RulePlan, run: BatchRun) -> np.ndarray:
        if plan.trigger is not None and not run.any_nonempty(plan.trigger):
            return _NO_ROWS
        rows = run.tree(plan.tree)
        if plan.datasets is not None:
            if rows.empty:
                return _NO_ROWS
            rows = rs.and_([rows, rs.dense(run.datasets(plan.datasets))], run.n)
        return rs.to_rows(rows, run.n)

    def _prepared(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """``batch`` with ``network.community_id`` filled when a rule tests it: ingest does
        not compute it (see :mod:`detect.enrich`), and a rule must not see only nulls."""
        i = batch.schema.get_field_index(_COMMUNITY_ID)
        if i < 0 or not any(getattr(leaf, "column", None) == _COMMUNITY_ID for leaf in self.leaves):
            return batch
        from detect.enrich import community_id  # keeps the ids the source had

        return batch.set_column(i, batch.schema.field(i), community_id(batch))

    def masks(self, batch: pa.RecordBatch) -> dict[str, np.ndarray]:
        """Per-rule boolean row masks, logsource filter applied."""
        run = self.executor.start(self._prepared(batch))
        out = {}
        for plan in self.plans:
            mask = np.zeros(batch.num_rows, dtype=np.bool_)
            mask[self._rows(plan, run)] = True
            out[plan.rule_id] = mask
        return out

    def match(self, batch: pa.RecordBatch) -> pa.Table:
        """Hits (``HITS_SCHEMA``); ``field`` is the column the hit matched on, null when its
        matched leaves are on several columns (DESIGN.md)."""
        if batch.num_rows == 0 or not self.plans:
            return empty_hits()
        run = self.executor.start(self._prepared(batch))
        indices: list[np.ndarray] = []
        rule_idx: list[int] = []
        field_ids: list[np.ndarray] = []
        for k, plan in enumerate(self.plans):
            rows = self._rows(plan, run)
            if len(rows):
                indices.append(rows)
                rule_idx.append(k)
                field_ids.append(self._fields(plan, run, rows))
        if not indices:
            return empty_hits()
        counts = [len(r) for r in indices]
        reps = pa.array(np.repeat(np.arange(len(counts)), counts))
        columns = pa.array([leaf.column for leaf in self.leaves] + [None], pa.string())
        fields = np.concatenate(field_ids)
        total = int(sum(counts))
        rule_ids = pa.array([self.plans[k].rule_id for k in rule_idx], pa.string())
        return pa.Table.from_arrays(
            [
                pa.array(np.concatenate(indices), pa.int64()),
                pc.take(rule_ids, reps),
                pa.repeat(pa.scalar(KIND, pa.string()), total),
                pc.take(columns, pa.array(fields)),
            ],
            schema=HITS_SCHEMA,
        )

    def _fields(self, plan: RulePlan, run: BatchRun, rows: np.ndarray) -> np.ndarray:
        """Per hit row, a leaf id whose column it matched on; ``len(leaves)`` (null) when
        none did, or when leaves on two columns did: the hit spans several fields, and
        DESIGN.md's hit contract gives those a null ``field``."""
        none = len(self.leaves)
        out = np.full(len(rows), none, dtype=np.int64)
        column_of = np.full(len(rows), -1, dtype=np.int64)  # first matched column, by id
        several = np.zeros(len(rows), dtype=np.bool_)
        columns: dict[str | None, int] = {}
        for leaf_id in plan.field_leaves:
            hit = rs.contains(run.leaf(leaf_id), rows)
            col = columns.setdefault(getattr(self.leaves[leaf_id], "column", None), len(columns))
            first = hit & (column_of < 0)
            out[first] = leaf_id
            column_of[first] = col
            several |= hit & (column_of != col)
        out[several] = none
        return out


_NO_ROWS = np.zeros(0, dtype=np.int64)
_COMMUNITY_ID = "network.community_id"


def load_sigma(
    paths: Iterable[str | Path],
    *,
    placeholders: Mapping[str, Sequence[str]] | None = None,
    cache_dir: Path | None = None,
) -> SigmaEngine:
    """Parse and compile every rule under ``paths`` (files or folders).

    Parse errors land in ``engine.errors``, unsupported rules in ``engine.unsupported``.
    With ``cache_dir`` the compiled engine is saved under a hash of the rule files'
    content (see :mod:`detect.sigma.cache`) and loaded from there while nothing changed;
    ``engine.from_cache`` says which happened.
    """
    files = _rule_files(paths, ("tests",))
    key = plan_key(files, placeholders) if cache_dir is not None else ""
    if cache_dir is not None:
        cached = load_plan(cache_dir, key)
        if isinstance(cached, SigmaEngine):
            cached.from_cache = True
            return cached
    loaded, errors = parse_rules(files)
    engine = SigmaEngine(loaded, placeholders=placeholders)
    engine.errors.extend(errors)
    if cache_dir is not None:
        _ = engine.executor  # build the fused pattern sets once, cache them too
        save_plan(engine, cache_dir, key)
    return engine
