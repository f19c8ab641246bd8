"""Sigma correlation rules (meta rules) over sliding windows, as a detector.

Rules are parsed by pySigma (:class:`sigma.correlations.SigmaCorrelationRule`): type,
referenced rules (resolved by id or name through a :class:`sigma.collection.SigmaCollection`
of every loaded rule, across files), ``group-by``, ``timespan``, ``condition``, ``aliases``
and ``generate``. The referenced base rules run in the detector's own
:class:`detect.sigma.engine.SigmaEngine` (same compiler, same taxonomy pipeline), ``select``
keeps one compact row per matching event and correlation, and ``run`` finds the windows.

Supported types: ``event_count``, ``value_count`` (distinct non-null values of
``condition.field``), ``temporal``, ``temporal_ordered``, ``value_sum``, ``value_avg``,
``value_percentile`` (``condition.percentile``, linear interpolation as numpy and pySigma's
SQL backend) and pySigma's ``value_median``. Conditions ``gt/gte/lt/lte/eq/neq``; a range
(several operators, AND) needs :func:`parse_correlation_rules` because pySigma 2.0.1 accepts
exactly one operator per condition (see there). Rules that cannot run (extended temporal
conditions, a group-by / value field that is not a canonical column, e.g. Windows fields,
an unknown reference, ``value_*`` over another correlation...) land in ``unsupported`` with
the reason, never an exception.

Semantics
---------
**Windows.** A window is the half-open interval ``[s, s + timespan)``; two events are in one
window when their times differ by *less* than the timespan (10:00:00 and 10:05:00 are not
"within 5m", 10:04:59.999999 is). Candidate windows start at each event time of a group
(every event at that time included): for conditions that only grow with the window
(``gt``/``gte`` on counts, temporal types) this is exactly "some window of length timespan
satisfies the condition" — sliding, not fixed buckets. For ``lt/lte/eq/neq``, sums of
signed values, averages and percentiles it reads "the timespan that starts at some event".

**Metrics.** ``event_count``: events (an event matching several referenced rules counts
once, for the first of them in ``rules``); ``value_count``: distinct non-null values;
``value_sum`` / ``value_avg``: over the non-null numeric values (float64: exact for
integers below 2**53); ``value_percentile``: of the non-null values (no value: never
fires). ``temporal``: distinct referenced rules seen in the window (an event matching two
rules counts for both); ``temporal_ordered``: how many of ``rules``, in their order, occur
at strictly increasing times (greedy, exact; simultaneous events are not ordered). Without
a condition pySigma sets ``gte: len(rules)``: all of them (in order).

**Groups.** ``group-by`` fields are taken per referenced rule: an alias maps to that rule's
field, a taxonomy name is mapped like the engine does (``detect.sigma.pipelines.MAPPINGS``
for the rule's log source), the result must be a canonical column. Events with a null
group value are left out (as ``stats ... by`` does). No ``group-by``: one group (``*``).

**Episodes.** Windows are tried in start order per group; the first satisfying one fires;
the next candidate must start at or after that window's end (non-overlapping episodes),
so a brute force that lasts one timespan is one finding. A finding reports the window
(``window_start = s``, ``window_end = s + timespan``), the first / last event in it, the
number of events, ``score`` 1.0 (a rule match: ``severity`` = the rule's ``level``,
``medium`` when unset) and evidence (group values, metric, condition, distinct values,
base rules seen, the crossing time).

**Chains.** A correlation referencing another one sees each of its fired windows as one
event at the *crossing time* (the first event of the window at which the running metric
satisfies the condition, e.g. the 10th failed login), carrying its group-by values; the
outer ``group-by`` must name fields (or aliases) of the inner ``group-by``.

**Generate.** ``generate: false`` (the default) means the referenced rules do not produce
their own alerts: :attr:`CorrelationDetector.suppressed_base_rules` holds the ids of base
rules referenced by at least one correlation with ``generate: false`` (pySigma's
``disable_output`` rule: one non-generating reference is enough), for the runner to drop
their Sigma hits; a referenced correlation in that case reports no findings of its own
(:attr:`suppressed_correlations`) but still feeds the outer one.

**Runs.** A window is decided when every event that could be in it has arrived:
``s + timespan + lag <= watermark`` (``lag`` = the inner correlations' timespans along the
longest chain; the watermark = latest event time minus ``lateness``, carried in the state).
The state keeps the rows of undecided windows (the last ``timespan + lag + lateness``), the
inner correlations' events still needed and each group's episode end, so split runs give
the findings of one run. Rows older than the watermark are ``late`` (counted, dropped).
``final=True`` decides every window holding data.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml
from numba import njit
from sigma.collection import SigmaCollection
from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationRule,
    SigmaCorrelationType,
    SigmaExtendedCorrelationCondition,
)
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule
from sigma.rule.attributes import SigmaRuleLocation

from detect.anomaly.base import TS, RunOutput, empty_findings
from detect.anomaly.keys import (
    US,
    encode_values,
    findings_table,
    iso_us,
    make_state,
    state_part,
    state_watermark,
    ts_us,
    watermark_is_held,
)
from detect.kernels.dns_features import intern_strings
from detect.kernels.sort_keys import dense_group_ts_order
from detect.schema import CANONICAL_SCHEMA
from detect.sigma.engine import (
    LoadedRule,
    RuleError,
    SigmaEngine,
    UnsupportedRule,
    parse_rules,
    rule_key,
)
from detect.sigma.pipelines import MAPPINGS

__all__ = [
    "RANGE_ATTRIBUTE",
    "ROW_SCHEMA",
    "CorrelationDetector",
    "CorrelationPlan",
    "parse_correlation_rules",
]

RANGE_ATTRIBUTE = "x-detect-condition-range"  # custom attribute set by parse_correlation_rules
SEP = "\x1f"  # between group values in the compact rows' "group" text
TYPES = {
    SigmaCorrelationType.EVENT_COUNT: 0,
    SigmaCorrelationType.VALUE_COUNT: 1,
    SigmaCorrelationType.TEMPORAL: 2,
    SigmaCorrelationType.TEMPORAL_ORDERED: 3,
    SigmaCorrelationType.VALUE_SUM: 4,
    SigmaCorrelationType.VALUE_AVG: 5,
    SigmaCorrelationType.VALUE_PERCENTILE: 6,
    SigmaCorrelationType.VALUE_MEDIAN: 6,
}
_VALUE_TYPES = {1, 4, 5, 6}
_NUMERIC_TYPES = {4, 5, 6}
_TEMPORAL_TYPES = {2, 3}
OPS = {"lt": 0, "lte": 1, "gt": 2, "gte": 3, "eq": 4, "neq": 5}
_METRIC = {0: "count", 1: "distinct", 2: "rules", 3: "rules_in_order", 4: "sum", 5: "avg"}

# One compact row schema for the selected rows and every kind of state row:
# kind 1 = selected event rows, 2 = a group's episode end, 3 = an inner correlation's events.
ROW_SCHEMA = pa.schema(
    [
        pa.field("@timestamp", TS),
        pa.field("corr", pa.int32()),  # index into CorrelationDetector.plans
        pa.field("slot", pa.int32()),  # position in the correlation's ``rules``
        pa.field("rule", pa.int32()),  # index into CorrelationDetector.base_rule_ids
        pa.field("group", pa.string()),  # group-by values joined by SEP
        pa.field("value", pa.string()),  # value_count field as text
        pa.field("num", pa.float64()),  # value_sum/avg/percentile field
    ]
)
_STATE_SCHEMA = pa.schema([*ROW_SCHEMA, pa.field("until", pa.int64())])


# ----------------------------------------------------------------------------- loading


def _condition_ops(cond: dict[str, object]) -> list[str]:
    return [k for k in cond if k in OPS]


def parse_correlation_rules(
    paths: Iterable[str | Path], *, skip_dirs: Sequence[str] = ("tests",)
) -> tuple[list[LoadedRule], list[RuleError]]:
    """:func:`detect.sigma.engine.parse_rules`, plus what correlations need from pySigma 2.0.1.

    - references across files: ``parse_rules`` parses one file per collection, so a
      correlation naming a rule of another file fails there (``SigmaRuleNotFoundError``);
      here such files are parsed again without resolving references (the detector resolves
      them over every loaded rule);
    - ranges: pySigma accepts exactly one operator per correlation condition, the spec a
      range (``gt: 100`` and ``lte: 200`` = AND). Each range is parsed by pySigma one
      operator at a time: the rule gets the first, the others are kept as the custom
      attribute ``x-detect-condition-range`` (one single-operator condition each), which
      :class:`CorrelationDetector` parses with ``SigmaCorrelationCondition.from_dict`` and
      ANDs.
    """
    loaded, errors = parse_rules(paths, skip_dirs=skip_dirs)
    redo = {
        e.file
        for e in errors
        if e.file is not None
        and ("SigmaRuleNotFoundError" in e.message or "exactly one condition item" in e.message)
    }
    if not redo:
        return loaded, errors
    loaded = [r for r in loaded if r.file not in redo]
    errors = [e for e in errors if e.file not in redo]
    for f in sorted(redo):
        try:
            docs = [d for d in yaml.safe_load_all(Path(f).read_text(encoding="utf-8")) if d]
            docs = [_split_range(d) for d in docs]
            coll = SigmaCollection.from_dicts(
                docs,
                collect_errors=True,
                source=SigmaRuleLocation(Path(f)),
                resolve_references=False,
            )
        except (OSError, yaml.YAMLError, SigmaError) as e:
            errors.append(RuleError(f, f"{type(e).__name__}: {e}"))
            continue
        loaded.extend(LoadedRule(flt, f) for flt in coll.filters)
        for rule in coll.rules:
            if rule.errors:
                errors.extend(RuleError(f, f"{type(e).__name__}: {e}") for e in rule.errors)
            else:
                loaded.append(LoadedRule(rule, f))
        errors.extend(RuleError(f, f"{type(e).__name__}: {e}") for e in coll.errors)
    return loaded, errors


def _split_range(doc: object) -> object:
    if not isinstance(doc, dict) or not isinstance(doc.get("correlation"), dict):
        return doc
    cond = doc["correlation"].get("condition")
    if not isinstance(cond, dict) or len(_condition_ops(cond)) < 2:
        return doc
    ops = _condition_ops(cond)
    rest = {k: v for k, v in cond.items() if k not in OPS}
    doc = copy.deepcopy(doc)
    doc["correlation"]["condition"] = {**rest, ops[0]: cond[ops[0]]}
    doc[RANGE_ATTRIBUTE] = [{**rest, op: cond[op]} for op in ops[1:]]
    return doc


# ----------------------------------------------------------------------------- plans


class _UnsupportedError(Exception):
    pass


@dataclass
class _Input:
    """One entry of a correlation's ``rules``: a base rule or another correlation."""

    ref: str
    base: int | None  # index into base_rule_ids
    child: int | None  # index into plans
    group_cols: tuple[str, ...] = ()  # base: canonical columns per group-by field
    group_pick: tuple[int, ...] = ()  # child: positions in the child's group values
    value_col: str | None = None


@dataclass
class CorrelationPlan:
    """A correlation rule ready to run (see the module docstring)."""

    rule_id: str
    title: str
    type: str  # pySigma's type name (event_count, ...)
    kind: int
    inputs: list[_Input]
    group_by: tuple[str, ...]
    timespan_us: int
    ops: np.ndarray  # int64 op codes (OPS)
    thresholds: np.ndarray  # float64
    condition: dict[str, object]
    percentile: float
    severity: str
    generate: bool
    file: str | None
    lag_us: int = 0  # inner correlations' timespans along the longest chain
    output: bool = True  # reports findings (not a suppressed inner correlation)
    parents: list[int] = field(default_factory=list)


_CANONICAL = frozenset(CANONICAL_SCHEMA.names)


def _canonical(field_name: str, rule: SigmaRule) -> str:
    """The canonical column a field of ``rule``'s events lives in (engine's mapping)."""
    if field_name in _CANONICAL:
        return field_name
    for m in MAPPINGS:
        if m.match == "any" and m.field == field_name and m.source.matches(rule.logsource):
            return m.column
    msg = f"field '{field_name}' is not a canonical column"
    raise _UnsupportedError(msg)


def _conditions(rule: SigmaCorrelationRule) -> list[SigmaCorrelationCondition]:
    cond = rule.condition
    if isinstance(cond, SigmaExtendedCorrelationCondition):
        msg = f"extended temporal condition '{cond.expression}' (not supported)"
        raise _UnsupportedError(msg)
    conds = [cond]
    for extra in rule.custom_attributes.get(RANGE_ATTRIBUTE) or ():
        conds.append(SigmaCorrelationCondition.from_dict(extra, source=rule.source))
    return conds


# ----------------------------------------------------------------------------- kernel


@njit(cache=True)
def _cond(m, ops, thr):
    if math.isnan(m):
        return False
    for k in range(ops.shape[0]):
        o = ops[k]
        t = thr[k]
        if o == 0:
            ok = m < t
        elif o == 1:
            ok = m <= t
        elif o == 2:
            ok = m > t
        elif o == 3:
            ok = m >= t
        elif o == 4:
            ok = m == t
        else:
            ok = m != t
        if not ok:
            return False
    return True


@njit(cache=True)
def _percentile(buf, n, p):
    if n == 0:
        return np.nan
    x = np.sort(buf[:n])
    pos = (n - 1) * p / 100.0
    lo = int(pos)  # pos >= 0: truncation is floor
    if lo >= n - 1:
        return x[n - 1]
    return x[lo] + (x[lo + 1] - x[lo]) * (pos - lo)


@njit(cache=True)
def _ordered(slot, ts, a, b, n_slot):
    need = 0
    last = np.int64(-(2**62))
    for j in range(a, b):
        if slot[j] == need and ts[j] > last:
            need += 1
            last = ts[j]
            if need == n_slot:
                break
    return need


@njit(cache=True)
def _crossing(kind, slot, vid, num, ts, a, b, ops, thr, p, n_slot, stamp, stamp_s, tag):
    """First j in [a, b) where the metric over [a, j] satisfies the condition (else b - 1)."""
    d = 0
    ds = 0
    s = 0.0
    nn = 0
    need = 0
    last = np.int64(-(2**62))
    buf = np.empty(b - a, np.float64)
    for j in range(a, b):
        if vid[j] >= 0 and stamp[vid[j]] != tag:
            stamp[vid[j]] = tag
            d += 1
        if stamp_s[slot[j]] != tag:
            stamp_s[slot[j]] = tag
            ds += 1
        if not math.isnan(num[j]):
            buf[nn] = num[j]
            s += num[j]
            nn += 1
        if need < n_slot and slot[j] == need and ts[j] > last:
            need += 1
            last = ts[j]
        if kind == 0:
            m = float(j - a + 1)
        elif kind == 1:
            m = float(d)
        elif kind == 2:
            m = float(ds)
        elif kind == 3:
            m = float(need)
        elif kind == 4:
            m = s
        elif kind == 5:
            m = s / nn if nn else np.nan
        else:
            m = _percentile(buf, nn, p)
        if _cond(m, ops, thr):
            return j
    return b - 1


@njit(cache=True)
def _episodes(g, ts, slot, vid, num, n_vid, n_slot, kind, ops, thr, p, width, lo_av, hi_av, until):
    """Greedy non-overlapping windows [ts_i, ts_i + width) per group (rows sorted by g, ts).

    Decides windows with ``lo_av < s + width <= hi_av`` whose start is at or after the
    group's ``until`` (updated). Returns (start row, end row, crossing row, metric) per firing.
    """
    n = g.shape[0]
    o_a = np.empty(n, np.int64)
    o_b = np.empty(n, np.int64)
    o_c = np.empty(n, np.int64)
    o_m = np.empty(n, np.float64)
    k = 0
    cnt = np.zeros(max(n_vid, 1), np.int64)
    cnt_s = np.zeros(max(n_slot, 1), np.int64)
    stamp = np.full(max(n_vid, 1), -1, np.int64)
    stamp_s = np.full(max(n_slot, 1), -1, np.int64)
    buf = np.empty(n, np.float64)
    a = 0
    while a < n:
        b = a
        while b < n and g[b] == g[a]:
            b += 1
        gid = g[a]
        left = a
        hi = a
        d = 0
        ds = 0
        s = 0.0
        nn = 0
        for i in range(a, b):
            if i > a and ts[i] == ts[i - 1]:
                continue
            while left < i:  # drop rows before the anchor
                if vid[left] >= 0:
                    cnt[vid[left]] -= 1
                    if cnt[vid[left]] == 0:
                        d -= 1
                cnt_s[slot[left]] -= 1
                if cnt_s[slot[left]] == 0:
                    ds -= 1
                if not math.isnan(num[left]):
                    s -= num[left]
                    nn -= 1
                left += 1
            end = ts[i] + width
            if end > hi_av:
                break
            while hi < b and ts[hi] < end:
                if vid[hi] >= 0:
                    if cnt[vid[hi]] == 0:
                        d += 1
                    cnt[vid[hi]] += 1
                if cnt_s[slot[hi]] == 0:
                    ds += 1
                cnt_s[slot[hi]] += 1
                if not math.isnan(num[hi]):
                    s += num[hi]
                    nn += 1
                hi += 1
            if end <= lo_av or ts[i] < until[gid]:
                continue
            if kind == 0:
                m = float(hi - i)
            elif kind == 1:
                m = float(d)
            elif kind == 2:
                m = float(ds)
            elif kind == 3:
                m = float(_ordered(slot, ts, i, hi, n_slot))
            elif kind == 4:
                m = s
            elif kind == 5:
                m = s / nn if nn else np.nan
            else:
                c = 0
                for j in range(i, hi):
                    if not math.isnan(num[j]):
                        buf[c] = num[j]
                        c += 1
                m = _percentile(buf, c, p)
            if _cond(m, ops, thr):
                o_a[k] = i
                o_b[k] = hi
                o_c[k] = _crossing(
                    kind, slot, vid, num, ts, i, hi, ops, thr, p, n_slot, stamp, stamp_s, k
                )
                o_m[k] = m
                k += 1
                until[gid] = end
        # reset the counters of the rows still in the window
        for j in range(left, hi):
            if vid[j] >= 0:
                cnt[vid[j]] = 0
            cnt_s[slot[j]] = 0
        a = b
    return o_a[:k], o_b[:k], o_c[:k], o_m[:k]


# ----------------------------------------------------------------------------- detector


class CorrelationDetector:
    """Sigma correlation rules as a detector; see the module docstring.

    ``CorrelationDetector(loaded_rules, lateness=600.0)`` with the ``LoadedRule`` list the
    Sigma engine gets (from :func:`parse_correlation_rules` for cross-file references and
    ranges). ``plans`` are the runnable correlations, ``unsupported`` the others with the
    reason, ``engine`` the base rules' engine, ``suppressed_base_rules`` /
    ``suppressed_correlations`` what ``generate: false`` silences.
    """

    name = "correlation"

    def __init__(
        self,
        loaded_rules: Iterable[LoadedRule | SigmaRule | SigmaCorrelationRule],
        *,
        lateness: float = 600.0,
        placeholders: Mapping[str, Sequence[str]] | None = None,
        max_sample: int = 20,
    ) -> None:
        items = [r if isinstance(r, LoadedRule) else LoadedRule(r, None) for r in loaded_rules]
        items = [r for r in items if isinstance(r.rule, (SigmaRule, SigmaCorrelationRule))]
        self.lateness = float(lateness)
        self.max_sample = max_sample
        self.unsupported: list[UnsupportedRule] = []
        self._all: list[CorrelationPlan] = []  # every built plan; ``plans``: the runnable
        self.base_rule_ids: list[str] = []
        self._collection = SigmaCollection([r.rule for r in items], resolve_references=False)
        self._file = {id(r.rule): r.file for r in items}
        self._key = {id(r.rule): rule_key(r.rule, r.file, i) for i, r in enumerate(items)}
        self._base: dict[int, int] = {}  # id(SigmaRule) -> index in base_rule_ids
        self._base_rules: list[LoadedRule] = []
        self._plan_of: dict[int, int | None] = {}  # id(correlation) -> plan index (None: bad)
        for r in items:
            if isinstance(r.rule, SigmaCorrelationRule):
                self._plan(r.rule, ())
        self.engine = SigmaEngine(self._base_rules, placeholders=placeholders)
        self._drop_failed_bases()
        self.suppressed_base_rules: frozenset[str] = frozenset(
            self.base_rule_ids[inp.base]
            for p in self.plans
            if not p.generate
            for inp in p.inputs
            if inp.base is not None
        )
        self.suppressed_correlations: frozenset[str] = frozenset(
            p.rule_id for p in self._all if not p.output
        )
        self._order = self._topo()

    # -------------------------------------------------------------- building

    def _plan(self, rule: SigmaCorrelationRule, stack: tuple[int, ...]) -> int | None:
        key = id(rule)
        if key in self._plan_of:
            return self._plan_of[key]
        rid = self._key[key]
        if key in stack:
            self.unsupported.append(
                UnsupportedRule(rid, self._file.get(key), "correlation references itself")
            )
            return None
        try:
            plan = self._build(rule, (*stack, key))
        except _UnsupportedError as e:
            self.unsupported.append(UnsupportedRule(rid, self._file.get(key), str(e)))
            self._plan_of[key] = None
            return None
        except Exception as e:  # noqa: BLE001 - never crash on a rule
            reason = f"cannot compile: {type(e).__name__}: {e}"
            self.unsupported.append(UnsupportedRule(rid, self._file.get(key), reason))
            self._plan_of[key] = None
            return None
        self._all.append(plan)
        idx = len(self._all) - 1
        self._plan_of[key] = idx
        for inp in plan.inputs:
            if inp.child is not None:
                self._all[inp.child].parents.append(idx)
        return idx

    def _lookup(self, ref: str) -> SigmaRule | SigmaCorrelationRule:
        try:
            return self._collection[ref]
        except (KeyError, SigmaError, ValueError):
            msg = f"referenced rule '{ref}' not found"
            raise _UnsupportedError(msg) from None

    def _build(self, rule: SigmaCorrelationRule, stack: tuple[int, ...]) -> CorrelationPlan:
        if rule.type not in TYPES:
            msg = f"correlation type '{rule.type}' (not supported)"
            raise _UnsupportedError(msg)
        kind = TYPES[rule.type]
        conds = _conditions(rule)
        refs = list(rule.rules or ())
        if not refs:
            msg = "correlation without rules"
            raise _UnsupportedError(msg)
        group_by = tuple(rule.group_by or ())
        aliases = {
            a.alias: {self._lookup_id(r.reference): f for r, f in a.mapping.items()}
            for a in rule.aliases
        }
        value_field = conds[0].fieldref if kind in _VALUE_TYPES else None
        if isinstance(value_field, list):
            if len(value_field) != 1:
                msg = "several condition fields (semantics unclear: sigma-specification #190)"
                raise _UnsupportedError(msg)
            value_field = value_field[0]
        percentile = 50.0
        if rule.type == SigmaCorrelationType.VALUE_PERCENTILE:
            if conds[0].percentile is None:
                msg = "value_percentile without condition.percentile"
                raise _UnsupportedError(msg)
            percentile = float(conds[0].percentile)
        inputs: list[_Input] = []
        for ref in refs:
            target = self._lookup(ref.reference)
            names = [aliases.get(g, {}).get(id(target), g) for g in group_by]
            if isinstance(target, SigmaCorrelationRule):
                child = self._plan(target, stack)
                if child is None:
                    msg = f"referenced correlation '{ref.reference}' is not supported"
                    raise _UnsupportedError(msg)
                if kind in _VALUE_TYPES:
                    msg = f"{rule.type} over correlation '{ref.reference}' (it has no fields)"
                    raise _UnsupportedError(msg)
                inner = self._all[child].group_by
                missing = [n for n in names if n not in inner]
                if missing:
                    msg = (
                        f"group-by {missing} not in the group-by of correlation "
                        f"'{ref.reference}' {list(inner)}"
                    )
                    raise _UnsupportedError(msg)
                inputs.append(
                    _Input(
                        ref.reference, None, child, group_pick=tuple(inner.index(n) for n in names)
                    )
                )
            else:
                cols = tuple(_canonical(n, target) for n in names)
                vcol = None
                if value_field is not None:
                    vname = aliases.get(value_field, {}).get(id(target), value_field)
                    vcol = _canonical(vname, target)
                inputs.append(
                    _Input(
                        ref.reference,
                        self._base_index(target),
                        None,
                        group_cols=cols,
                        value_col=vcol,
                    )
                )
        ops = np.array([OPS[c.op.name.lower()] for c in conds], np.int64)
        thr = np.array([float(c.count) for c in conds], np.float64)
        cond_text: dict[str, object] = {c.op.name.lower(): c.count for c in conds}
        if value_field is not None:
            cond_text["field"] = value_field
        if rule.type == SigmaCorrelationType.VALUE_PERCENTILE:
            cond_text["percentile"] = conds[0].percentile
        lag = max(
            (
                self._all[i.child].timespan_us + self._all[i.child].lag_us
                for i in inputs
                if i.child is not None
            ),
            default=0,
        )
        return CorrelationPlan(
            rule_id=self._key[id(rule)],
            title=rule.title,
            type=str(rule.type.name.lower()),
            kind=kind,
            inputs=inputs,
            group_by=group_by,
            timespan_us=int(rule.timespan.seconds) * US,
            ops=ops,
            thresholds=thr,
            condition=cond_text,
            percentile=percentile,
            severity=rule.level.name.lower() if rule.level is not None else "medium",
            generate=bool(rule.generate),
            file=self._file.get(id(rule)),
            lag_us=lag,
        )

    def _lookup_id(self, ref: str) -> int:
        return id(self._lookup(ref))

    def _base_index(self, rule: SigmaRule) -> int:
        key = id(rule)
        if key not in self._base:
            self._base[key] = len(self.base_rule_ids)
            self.base_rule_ids.append(self._key[key])
            self._base_rules.append(LoadedRule(rule, self._file.get(key)))
        return self._base[key]

    def _drop_failed_bases(self) -> None:
        """Correlations whose base rule the engine could not compile become unsupported."""
        why = {u.rule_id: u.reason for u in self.engine.unsupported}
        bad: set[int] = set()
        for i, p in enumerate(self._all):
            for inp in p.inputs:
                if inp.base is not None and self.base_rule_ids[inp.base] in why:
                    reason = f"base rule '{inp.ref}': {why[self.base_rule_ids[inp.base]]}"
                    self.unsupported.append(UnsupportedRule(p.rule_id, p.file, reason))
                    bad.add(i)
                    break
        changed = True
        while changed:  # a chain over a dropped correlation goes too
            changed = False
            for i, p in enumerate(self._all):
                if i not in bad and any(inp.child in bad for inp in p.inputs):
                    reason = "referenced correlation is not supported"
                    self.unsupported.append(UnsupportedRule(p.rule_id, p.file, reason))
                    bad.add(i)
                    changed = True
        self._active = [i not in bad for i in range(len(self._all))]
        for i, p in enumerate(self._all):
            p.output = self._active[i] and not any(
                not self._all[q].generate and self._active[q] for q in p.parents
            )

    def _topo(self) -> list[int]:
        order: list[int] = []
        seen: set[int] = set()

        def visit(i: int) -> None:
            if i in seen:
                return
            seen.add(i)
            for inp in self._all[i].inputs:
                if inp.child is not None:
                    visit(inp.child)
            order.append(i)

        for i in range(len(self._all)):
            if self._active[i]:
                visit(i)
        return order

    @property
    def plans(self) -> list[CorrelationPlan]:
        """The correlations that run (the others are in ``unsupported``)."""
        return [p for i, p in enumerate(self._all) if self._active[i]]

    @property
    def horizon_us(self) -> int:
        """The longest ``timespan + lag`` over the correlations (final flush distance)."""
        return max((p.timespan_us + p.lag_us for p in self.plans), default=0)

    # -------------------------------------------------------------- select

    def select(self, batch: pa.RecordBatch) -> pa.Table:
        """One row per (event, correlation input) matching a referenced base rule."""
        if batch.num_rows == 0 or not self._all or "@timestamp" not in batch.schema.names:
            return ROW_SCHEMA.empty_table()
        masks = self.engine.masks(batch)
        ts_ok = np.asarray(pc.is_valid(batch.column("@timestamp")).to_numpy(zero_copy_only=False))
        names = set(batch.schema.names)
        ts_col = batch.column("@timestamp").cast(TS)
        parts: list[pa.Table] = []
        for ci in self._order:
            p = self._all[ci]
            taken = np.zeros(batch.num_rows, np.bool_)
            for slot, inp in enumerate(p.inputs):
                if inp.base is None:
                    continue
                m = masks.get(self.base_rule_ids[inp.base])
                if m is None or any(c not in names for c in inp.group_cols):
                    continue
                m = m & ts_ok
                if p.kind not in _TEMPORAL_TYPES:
                    m = m & ~taken
                    taken |= m
                if inp.value_col is not None and inp.value_col not in names:
                    continue
                idx = np.flatnonzero(m)
                if not idx.size:
                    continue
                take = pa.array(idx)
                group = _group_text([batch.column(c).take(take) for c in inp.group_cols], idx.size)
                keep = pc.is_valid(group)
                n = idx.size
                if inp.value_col is not None:
                    raw = batch.column(inp.value_col).take(take)
                    if pa.types.is_dictionary(raw.type):
                        raw = raw.cast(raw.type.value_type)
                    value = _as_text(raw) if p.kind == 1 else pa.nulls(n, pa.string())
                    num = _as_num(raw) if p.kind in _NUMERIC_TYPES else pa.nulls(n, pa.float64())
                else:
                    value, num = pa.nulls(n, pa.string()), pa.nulls(n, pa.float64())
                t = pa.Table.from_arrays(
                    [
                        ts_col.take(take),
                        pa.array(np.full(n, ci, np.int32)),
                        pa.array(np.full(n, slot, np.int32)),
                        pa.array(np.full(n, inp.base, np.int32)),
                        group,
                        value,
                        num,
                    ],
                    schema=ROW_SCHEMA,
                )
                parts.append(t.filter(keep))
        return pa.concat_tables(parts) if parts else ROW_SCHEMA.empty_table()

    # -------------------------------------------------------------- run

    def run(self, rows: pa.Table, state: pa.Table | None, *, final: bool = False) -> RunOutput:
        """Findings of the windows decided in this run; see the module docstring."""
        rows = rows.select(ROW_SCHEMA.names).cast(ROW_SCHEMA)
        prev_wm = state_watermark(state)
        late = 0
        if prev_wm is not None and rows.num_rows:
            ok = ts_us(rows.column("@timestamp")) >= prev_wm
            late = int((~ok).sum())
            if late:
                rows = rows.filter(pa.array(ok))
        old = state_part(state, 1, ROW_SCHEMA.names)
        table = pa.concat_tables([old, rows]) if old is not None else rows
        table = table.combine_chunks()
        ts_all = ts_us(table.column("@timestamp")) if table.num_rows else np.zeros(0, np.int64)
        cands = [] if prev_wm is None else [prev_wm]
        if ts_all.size:
            max_ts = int(ts_all.max())
            cands.append(max_ts - int(self.lateness * US))
            if final:
                cands.append(max_ts + self.horizon_us)
        wm = prev_wm if watermark_is_held() else (max(cands) if cands else None)
        until_old = state_part(state, 2, ["corr", "group", "until"])
        derived_old = state_part(state, 3, ["corr", "group", "@timestamp"])
        until: dict[tuple[int, str], int] = {}
        if until_old is not None:
            for c, gr, u in zip(
                *(until_old.column(n).to_pylist() for n in ("corr", "group", "until")), strict=True
            ):
                until[(c, gr)] = u
        derived: dict[int, list[tuple[str, int]]] = {}
        if derived_old is not None:
            ts_d = ts_us(derived_old.column("@timestamp")).tolist()
            for c, gr, t in zip(
                derived_old.column("corr").to_pylist(),
                derived_old.column("group").to_pylist(),
                ts_d,
                strict=True,
            ):
                derived.setdefault(c, []).append((gr, t))
        corr_col = (
            table.column("corr").to_numpy(zero_copy_only=False)
            if table.num_rows
            else np.zeros(0, np.int32)
        )
        findings: list[dict[str, object]] = []
        kept: list[pa.Table] = []
        if wm is not None:
            for ci in self._order:
                p = self._all[ci]
                sel = np.flatnonzero(corr_col == ci)
                part = table.take(pa.array(sel)) if sel.size else ROW_SCHEMA.empty_table()
                part = self._with_derived(ci, part, derived)
                avail = wm - p.lag_us
                prev_avail = -(2**62) if prev_wm is None else prev_wm - p.lag_us
                new_events = self._decide(ci, part, prev_avail, avail, until, findings)
                derived.setdefault(ci, []).extend(new_events)
                t_part = (
                    ts_us(part.column("@timestamp")) if part.num_rows else np.zeros(0, np.int64)
                )
                keep_from = avail - p.timespan_us
                if part.num_rows:
                    is_row = np.asarray(
                        pc.is_valid(part.column("rule")).to_numpy(zero_copy_only=False), bool
                    )
                    kept.append(part.filter(pa.array((t_part > keep_from) & is_row)))
        if wm is None and table.num_rows:  # nothing decided yet (a held watermark): keep all
            kept.append(table)
        state_rows = self._state(kept, derived, until, wm)
        out = (
            findings_table(findings).sort_by(
                [("window_start", "ascending"), ("rule_id", "ascending"), ("entity", "ascending")]
            )
            if findings
            else empty_findings()
        )
        return RunOutput(out, state_rows, late)

    def _with_derived(
        self, ci: int, part: pa.Table, derived: dict[int, list[tuple[str, int]]]
    ) -> pa.Table:
        """Append the inner correlations' events (rule = null) to a correlation's rows."""
        p = self._all[ci]
        extra: list[tuple[int, int, str]] = []
        for slot, inp in enumerate(p.inputs):
            if inp.child is None:
                continue
            for gr, t in derived.get(inp.child, ()):
                vals = gr.split(SEP) if self._all[inp.child].group_by else []
                extra.append((t, slot, SEP.join(vals[k] for k in inp.group_pick)))
        if not extra:
            return part
        t = pa.Table.from_arrays(
            [
                pa.array([e[0] for e in extra], pa.int64()).cast(TS),
                pa.array([ci] * len(extra), pa.int32()),
                pa.array([e[1] for e in extra], pa.int32()),
                pa.nulls(len(extra), pa.int32()),
                pa.array([e[2] for e in extra], pa.string()),
                pa.nulls(len(extra), pa.string()),
                pa.nulls(len(extra), pa.float64()),
            ],
            schema=ROW_SCHEMA,
        )
        return pa.concat_tables([part, t]).combine_chunks()

    def _decide(
        self,
        ci: int,
        part: pa.Table,
        prev_avail: int,
        avail: int,
        until: dict[tuple[int, str], int],
        findings: list[dict[str, object]],
    ) -> list[tuple[str, int]]:
        """Run the episode kernel for one correlation; findings appended, its events returned."""
        p = self._all[ci]
        if part.num_rows == 0:
            return []
        gcol = part.column("group").combine_chunks().cast(pa.string())
        gids, first = intern_strings(gcol)  # dense, first appearance; strings stay in Arrow
        groups = gcol.take(pa.array(first, pa.int64()))
        if gcol.null_count:  # selection keeps grouped rows only; never expected
            gids[gids < 0] = len(first)
            groups = pa.concat_arrays([groups, pa.nulls(1, pa.string())])
        ts = ts_us(part.column("@timestamp"))
        order = dense_group_ts_order(gids, len(groups), ts)  # = np.lexsort((ts, gids))
        g_o, ts_o = gids[order], ts[order]
        slot_o = part.column("slot").to_numpy(zero_copy_only=False).astype(np.int64)[order]
        if p.kind == 1:
            vid, n_vid = encode_values(part.column("value"))
            vnull = pc.is_null(part.column("value")).to_numpy(zero_copy_only=False)
            vid = np.where(vnull, -1, vid).astype(np.int64)[order]
        else:
            vid, n_vid = np.full(part.num_rows, -1, np.int64), 1
        num = part.column("num").to_numpy(zero_copy_only=False).astype(np.float64)[order]
        # suppression marks of this correlation's groups: looked up in Arrow, not per group
        u = np.full(len(groups), -(2**62), np.int64)
        marked = [(gr, t) for (c, gr), t in until.items() if c == ci]
        if marked:
            at = pc.index_in(groups, value_set=pa.array([gr for gr, _ in marked], pa.string()))
            hit = np.flatnonzero(np.asarray(pc.is_valid(at)))
            pos = at.to_numpy(zero_copy_only=False)[hit].astype(np.int64)
            u[hit] = np.array([t for _, t in marked], np.int64)[pos]
        a, b, c, m = _episodes(
            g_o,
            ts_o,
            slot_o,
            vid,
            num,
            int(n_vid),
            len(p.inputs),
            p.kind,
            p.ops,
            p.thresholds,
            p.percentile,
            p.timespan_us,
            prev_avail,
            avail,
            u,
        )
        set_ = np.flatnonzero(u > -(2**62))
        for k, v in zip(set_.tolist(), groups.take(pa.array(set_)).to_pylist(), strict=True):
            until[(ci, v)] = int(u[k])
        events: list[tuple[str, int]] = []
        if not len(a):
            return events
        rule_col = part.column("rule").fill_null(-1).to_numpy(zero_copy_only=False)[order]
        value_col = part.column("value") if p.kind == 1 else None
        for i0, i1, ic, metric in zip(a.tolist(), b.tolist(), c.tolist(), m.tolist(), strict=True):
            gtext = groups[int(g_o[i0])].as_py()
            cross = int(ts_o[ic])
            events.append((gtext, cross))
            if not p.output:
                continue
            findings.append(
                self._finding(
                    p, gtext, i0, i1, cross, metric, ts_o, slot_o, rule_col, value_col, order
                )
            )
        return events

    def _finding(
        self,
        p: CorrelationPlan,
        gtext: str,
        i0: int,
        i1: int,
        cross: int,
        metric: float,
        ts_o: np.ndarray,
        slot_o: np.ndarray,
        rule_col: np.ndarray,
        value_col: pa.ChunkedArray | None,
        order: np.ndarray,
    ) -> dict[str, object]:
        vals = gtext.split(SEP) if p.group_by else []
        groups = dict(zip(p.group_by, vals, strict=True))
        if not p.group_by:
            entity = "*"
        elif len(vals) == 1:
            entity = vals[0]
        else:
            entity = ", ".join(f"{k}={v}" for k, v in groups.items())
        s = int(ts_o[i0])
        seen: dict[str, int] = {}
        for sl in slot_o[i0:i1].tolist():
            ref = p.inputs[sl].ref
            seen[ref] = seen.get(ref, 0) + 1
        ev: dict[str, object] = {
            "correlation": p.type,
            "title": p.title,
            "group": groups,
            "condition": p.condition,
            "timespan_s": p.timespan_us // US,
            "events": i1 - i0,
            "rules_seen": seen,
            "crossing": iso_us(cross),
        }
        key = _METRIC.get(p.kind, f"p{p.percentile:g}")
        ev[key] = int(metric) if p.kind in (0, 1, 2, 3) else float(metric)
        if value_col is not None:
            sample = value_col.take(pa.array(order[i0:i1])).unique().drop_null().to_pylist()
            ev["values"] = sorted(sample)[: self.max_sample]
        return {
            "rule_id": p.rule_id,
            "entity": entity,
            "window_start": s,
            "window_end": s + p.timespan_us,
            "first_seen": s,
            "last_seen": int(ts_o[i1 - 1]),
            "event_count": i1 - i0,
            "score": 1.0,
            "severity": p.severity,
            "evidence": json.dumps(ev, sort_keys=True, default=str),
        }

    def _state(
        self,
        kept: list[pa.Table],
        derived: dict[int, list[tuple[str, int]]],
        until: dict[tuple[int, str], int],
        wm: int | None,
    ) -> pa.Table:
        parts: dict[int, pa.Table] = {}
        if kept:
            parts[1] = pa.concat_tables(kept)
        if wm is not None:
            u_rows = [
                (c, gr, t)
                for (c, gr), t in until.items()
                if t > wm - self._all[c].lag_us - self._all[c].timespan_us
            ]
            if u_rows:
                parts[2] = pa.table(
                    {
                        "corr": pa.array([r[0] for r in u_rows], pa.int32()),
                        "group": pa.array([r[1] for r in u_rows], pa.string()),
                        "until": pa.array([r[2] for r in u_rows], pa.int64()),
                    }
                )
            d_rows = []
            for c, evs in derived.items():
                parents = self._all[c].parents
                if not parents:
                    continue
                lo = min(wm - self._all[q].lag_us - self._all[q].timespan_us for q in parents)
                d_rows += [(c, gr, t) for gr, t in evs if t > lo]
            if d_rows:
                parts[3] = pa.table(
                    {
                        "@timestamp": pa.array([r[2] for r in d_rows], pa.int64()).cast(TS),
                        "corr": pa.array([r[0] for r in d_rows], pa.int32()),
                        "group": pa.array([r[1] for r in d_rows], pa.string()),
                    }
                )
        return make_state(_STATE_SCHEMA, wm, parts)


# ----------------------------------------------------------------------------- helpers


def _text(col: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        col = pc.list_element(col, 0)
    if not pa.types.is_string(col.type):
        col = col.cast(pa.string())
    return col


def _group_text(cols: list[pa.Array | pa.ChunkedArray], n: int) -> pa.Array:
    if not cols:
        return pa.array([""] * n, pa.string())
    texts = [_text(c) for c in cols]
    out = texts[0] if len(texts) == 1 else pc.binary_join_element_wise(*texts, SEP)
    if isinstance(out, pa.ChunkedArray):
        out = out.combine_chunks()
    return out


def _as_text(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    out = _text(col)
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


def _as_num(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    if pa.types.is_timestamp(col.type):
        col = col.cast(pa.int64())
    try:
        out = col.cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        out = pa.array([_float(v) for v in col.to_pylist()], pa.float64())
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


def _float(v: object) -> float | None:
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
