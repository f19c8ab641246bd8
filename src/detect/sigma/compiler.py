"""Compile a pySigma rule's condition tree into a mask function over canonical batches.

The walk follows pySigma's backend pattern (``sigma.conversion.base.Backend``): one
function per condition node type (``or``, ``and``, ``not``, field = value, keyword
value) and, under field = value, one per value type (string, cased string, number,
bool, regex, cidr, comparison, field reference, null, exists). Each compiled node is a
function ``BatchView -> numpy bool mask`` (one entry per row, never null): leaves are
pyarrow.compute kernels, the boolean structure is numpy. No per-row Python.

Semantics (Sigma specification 2.1, see ``/work/shared/ANCHORS.md`` section 1):

* strings compare case-insensitively (``utf8_lower`` of both sides, Unicode aware)
  unless ``|cased``; plain values are whole-value equality; ``*``/``?`` wildcards;
* ``re`` is an unanchored search, case-sensitive unless ``i``; RE2 syntax (patterns RE2
  rejects make the rule unsupported);
* ``cidr`` compares the 16-byte IPv4-mapped form (``*.ip_bin`` for source/destination
  ip, text parsed with :func:`detect.enrich.ip_to_bin` elsewhere);
* a canonical batch has every column, so ``exists: true`` means "not null";
* ``not`` is two-valued: a row whose field is null does not match ``f: v``, so it does
  match ``not f: v``;
* list-typed columns (``dns.answers.data``, ...) match when any element matches;
* dictionary columns are evaluated on the dictionary, then mapped to rows.

Anything else raises :class:`UnsupportedError` with a reason; the engine reports it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.modifiers import modifier_mapping
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
)

from detect.enrich import ip_to_bin
from detect.schema import CANONICAL_SCHEMA, COLUMNS, IP_BIN_COLUMNS

Mask = np.ndarray
MaskFn = Callable[["BatchView"], Mask]

# Modifiers this slice does not implement: a rule using one is reported, not run.
UNSUPPORTED_MODIFIERS: tuple[str, ...] = (
    "base64offset",
    "windash",
    "wide",
    "utf16",
    "utf16be",
    "expand",
    "minute",
    "hour",
    "day",
    "week",
    "month",
    "year",
)
_UNSUPPORTED_MODIFIER_CLASSES = {
    modifier_mapping[name]: name for name in UNSUPPORTED_MODIFIERS if name in modifier_mapping
}
_BIN_OF_TEXT = {text: binary for binary, text in IP_BIN_COLUMNS.items()}
_RE2_META = frozenset("\\.+*?()|[]{}^$")
_NUMERIC_TEXT = r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$"


class UnsupportedError(Exception):
    """The rule uses a feature this engine does not implement (the message says which)."""


def _is_string_type(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _value_type(t: pa.DataType) -> pa.DataType:
    """The type of the values a predicate sees: list elements, dictionary values."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return t.value_type
    if pa.types.is_dictionary(t):
        return t.value_type
    return t


STRING_COLUMNS: tuple[str, ...] = tuple(
    f.name for f in CANONICAL_SCHEMA if _is_string_type(_value_type(f.type))
)


def _to_numpy(mask: pa.Array | pa.ChunkedArray) -> Mask:
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks()
    return mask.fill_null(False).to_numpy(zero_copy_only=False)


@dataclass
class _Values:
    """The values of one column a predicate runs on, and how to map a mask back to rows."""

    values: pa.Array
    n: int
    indices: pa.Array | None = None  # dictionary indices
    parents: np.ndarray | None = None  # list element -> row

    def lift(self, value_mask: pa.Array | Mask) -> Mask:
        m = value_mask if isinstance(value_mask, np.ndarray) else _to_numpy(value_mask)
        if self.indices is not None:
            valid = _to_numpy(pc.is_valid(self.indices))
            idx = self.indices.fill_null(0).to_numpy(zero_copy_only=False)
            return m[idx] & valid if len(m) else np.zeros(self.n, dtype=np.bool_)
        if self.parents is not None:
            out = np.zeros(self.n, dtype=np.bool_)
            out[self.parents[m]] = True
            return out
        return m


@dataclass
class BatchView:
    """One canonical batch plus per-batch caches shared by every rule (lowered strings...)."""

    batch: pa.RecordBatch
    _cache: dict[tuple[str, str], _Values] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.batch.num_rows

    def column(self, name: str) -> pa.Array:
        return self.batch.column(name)

    def values(self, name: str) -> _Values:
        key = (name, "raw")
        if key not in self._cache:
            arr = self.column(name)
            if pa.types.is_dictionary(arr.type):
                v = _Values(arr.dictionary, self.n, indices=arr.indices)
            elif pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
                parents = pc.list_parent_indices(arr).to_numpy(zero_copy_only=False)
                v = _Values(pc.list_flatten(arr), self.n, parents=parents.astype(np.int64))
            else:
                v = _Values(arr, self.n)
            self._cache[key] = v
        return self._cache[key]

    def strings(self, name: str, *, cased: bool) -> _Values:
        key = (name, "cased" if cased else "lower")
        if key not in self._cache:
            raw = self.values(name)
            vals = raw.values
            if not _is_string_type(vals.type):
                if (
                    pa.types.is_timestamp(vals.type)
                    or pa.types.is_binary(vals.type)
                    or (pa.types.is_fixed_size_binary(vals.type))
                ):
                    msg = f"string matching on {vals.type} column {name!r}"
                    raise UnsupportedError(msg)
                vals = pc.cast(vals, pa.string())
            if not cased:
                vals = pc.utf8_lower(vals)
            self._cache[key] = _Values(vals, raw.n, raw.indices, raw.parents)
        return self._cache[key]

    def ip_bin(self, name: str) -> _Values:
        key = (name, "ip_bin")
        if key not in self._cache:
            if name in _BIN_OF_TEXT:
                self._cache[key] = _Values(self.column(_BIN_OF_TEXT[name]), self.n)
            elif name in IP_BIN_COLUMNS:
                self._cache[key] = _Values(self.column(name), self.n)
            else:
                raw = self.strings(name, cased=True)
                self._cache[key] = _Values(ip_to_bin(raw.values), raw.n, raw.indices, raw.parents)
        return self._cache[key]


def _lower(s: str) -> str:
    """Lower-case with the same kernel the columns go through (utf8proc, not Python)."""
    return pc.utf8_lower(pa.scalar(s, pa.string())).as_py()


# ---------------------------------------------------------------------------------------
# Strings and wildcards


def _re2_escape(s: str) -> str:
    return "".join("\\" + c if c in _RE2_META else c for c in s)


def _parts(value: SigmaString, *, cased: bool) -> list[str | SpecialChars]:
    out: list[str | SpecialChars] = []
    for part in value.s:
        if isinstance(part, Placeholder):
            msg = f"placeholder %{part.name}% (needs expand and a placeholder config)"
            raise UnsupportedError(msg)
        if isinstance(part, str):
            out.append(part if cased else _lower(part))
        else:
            out.append(part)
    return out


def _string_predicate(value: SigmaString, *, cased: bool) -> Callable[[pa.Array], pa.Array]:
    """A kernel over (lowered unless cased) string values for one Sigma string value."""
    parts = _parts(value, cased=cased)
    if not parts:
        return lambda vals: pc.equal(vals, "")
    specials = [p for p in parts if not isinstance(p, str)]
    if not specials:
        literal = "".join(parts)  # type: ignore[arg-type]
        return lambda vals: pc.equal(vals, literal)
    star = SpecialChars.WILDCARD_MULTI
    inner = parts[1:] if parts[0] == star else parts
    inner = inner[:-1] if inner and inner[-1] == star else inner
    if all(isinstance(p, str) for p in inner):
        literal = "".join(inner)  # type: ignore[arg-type]
        lead, trail = parts[0] == star, len(parts) > 1 and parts[-1] == star
        if (lead and trail) or (lead and not inner):
            return lambda vals: pc.match_substring(vals, literal)
        if trail:
            return lambda vals: pc.starts_with(vals, literal)
        return lambda vals: pc.ends_with(vals, literal)
    pattern = (
        "(?s)^"
        + "".join(
            _re2_escape(p) if isinstance(p, str) else (".*" if p == star else ".") for p in parts
        )
        + "$"
    )
    return lambda vals: pc.match_substring_regex(vals, pattern)


def _literal(value: SigmaString) -> str | None:
    """The plain text of a string without wildcards or placeholders, else None."""
    if all(isinstance(p, str) for p in value.s):
        return "".join(value.s)  # type: ignore[arg-type]
    return None


# ---------------------------------------------------------------------------------------
# The compiler


@dataclass
class CompiledRule:
    mask: MaskFn
    fields: tuple[str, ...]  # fields of non-negated leaves, in order (the hit's "field")


def check_modifiers(rule: SigmaRule) -> None:
    """Raise UnsupportedError for modifiers this engine does not implement."""

    def walk(node: SigmaDetection | SigmaDetectionItem) -> None:
        if isinstance(node, SigmaDetectionItem):
            for mod in node.modifiers:
                if mod in _UNSUPPORTED_MODIFIER_CLASSES:
                    msg = f"modifier {_UNSUPPORTED_MODIFIER_CLASSES[mod]!r} ({node.field})"
                    raise UnsupportedError(msg)
            return
        for child in node.detection_items:
            walk(child)

    for detection in rule.detection.detections.values():
        walk(detection)


class Compiler:
    """Walks pySigma condition trees into mask functions (one method per node type)."""

    def __init__(self) -> None:
        self.fields: list[str] = []
        self._negated = 0

    # -- entry ----------------------------------------------------------------------
    def compile_rule(self, rule: SigmaRule) -> CompiledRule:
        check_modifiers(rule)
        self.fields = []
        trees = [cond.parsed for cond in rule.detection.parsed_condition]
        fns = [self.node(t) for t in trees]
        fields = tuple(dict.fromkeys(self.fields))
        if len(fns) == 1:
            return CompiledRule(fns[0], fields)
        return CompiledRule(_any(fns), fields)

    def node(self, node: object) -> MaskFn:
        if isinstance(node, ConditionOR):
            return self.node_or(node)
        if isinstance(node, ConditionAND):
            return self.node_and(node)
        if isinstance(node, ConditionNOT):
            return self.node_not(node)
        if isinstance(node, ConditionFieldEqualsValueExpression):
            return self.field_value(node.field, node.value)
        if isinstance(node, ConditionValueExpression):
            return self.keyword(node.value)
        if node is None:
            msg = "empty detection"
            raise UnsupportedError(msg)
        msg = f"condition node {type(node).__name__}"
        raise UnsupportedError(msg)

    # -- boolean nodes --------------------------------------------------------------
    def node_or(self, node: ConditionItem) -> MaskFn:
        fns: list[MaskFn] = []
        groups: dict[tuple[str, bool], list[str]] = {}
        for arg in node.args:
            key_lit = self._set_member(arg)
            if key_lit is None:
                fns.append(self.node(arg))
            else:
                groups.setdefault(key_lit[0], []).append(key_lit[1])
        for (name, cased), literals in groups.items():
            fns.append(self._in_set(name, literals, cased=cased))
        return fns[0] if len(fns) == 1 else _any(fns)

    def node_and(self, node: ConditionItem) -> MaskFn:
        fns = [self.node(arg) for arg in node.args]

        def run(view: BatchView) -> Mask:
            out = fns[0](view)
            for fn in fns[1:]:
                out = out & fn(view)
            return out

        return run

    def node_not(self, node: ConditionItem) -> MaskFn:
        self._negated += 1
        try:
            inner = self.node(node.args[0])
        finally:
            self._negated -= 1
        return lambda view: ~inner(view)

    # -- field = value ----------------------------------------------------------------
    def _check_field(self, name: str) -> None:
        if name not in COLUMNS:
            msg = f"field {name!r} is not a canonical column"
            raise UnsupportedError(msg)
        if not self._negated:
            self.fields.append(name)

    def _set_member(self, arg: object) -> tuple[tuple[str, bool], str] | None:
        """(field, cased), literal for a plain string equality on a string column."""
        if not isinstance(arg, ConditionFieldEqualsValueExpression):
            return None
        value = arg.value
        if not isinstance(value, SigmaString) or arg.field not in COLUMNS:
            return None
        if not _is_string_type(_value_type(CANONICAL_SCHEMA.field(arg.field).type)):
            return None
        literal = _literal(value)
        if literal is None:
            return None
        self._check_field(arg.field)
        cased = isinstance(value, SigmaCasedString)
        return (arg.field, cased), literal if cased else _lower(literal)

    def _in_set(self, name: str, literals: list[str], *, cased: bool) -> MaskFn:
        if len(literals) == 1:
            lit = literals[0]
            return lambda view: (v := view.strings(name, cased=cased)).lift(pc.equal(v.values, lit))
        value_set = pa.array(sorted(set(literals)), pa.string())

        def run(view: BatchView) -> Mask:
            v = view.strings(name, cased=cased)
            return v.lift(pc.is_in(v.values, value_set=value_set))

        return run

    def field_value(self, name: str, value: object) -> MaskFn:
        self._check_field(name)
        if isinstance(value, SigmaTimestampPart):
            msg = f"timestamp part modifier ({name})"
            raise UnsupportedError(msg)
        if isinstance(value, SigmaExpansion):
            msg = f"value expansion (base64offset/windash) ({name})"
            raise UnsupportedError(msg)
        if isinstance(value, SigmaString):
            return self.value_string(name, value)
        if isinstance(value, SigmaBool):
            return self.value_bool(name, value)
        if isinstance(value, SigmaNumber):
            return self.value_number(name, value)
        if isinstance(value, SigmaRegularExpression):
            return self.value_regex(name, value)
        if isinstance(value, SigmaCIDRExpression):
            return self.value_cidr(name, value)
        if isinstance(value, SigmaCompareExpression):
            return self.value_compare(name, value)
        if isinstance(value, SigmaFieldReference):
            return self.value_fieldref(name, value)
        if isinstance(value, SigmaNull):
            return lambda view: _to_numpy(pc.is_null(view.column(name)))
        if isinstance(value, SigmaExists):
            want = bool(value.exists)
            return lambda view: _to_numpy(
                pc.is_valid(view.column(name)) if want else pc.is_null(view.column(name))
            )
        msg = f"value type {type(value).__name__} ({name})"
        raise UnsupportedError(msg)

    def _column_kind(self, name: str) -> pa.DataType:
        return _value_type(CANONICAL_SCHEMA.field(name).type)

    def value_string(self, name: str, value: SigmaString) -> MaskFn:
        t = self._column_kind(name)
        cased = isinstance(value, SigmaCasedString)
        if pa.types.is_timestamp(t) or pa.types.is_fixed_size_binary(t):
            msg = f"string value on {t} column {name!r}"
            raise UnsupportedError(msg)
        literal = _literal(value)
        if (pa.types.is_integer(t) or pa.types.is_floating(t)) and literal is not None:
            try:
                number = (
                    float(literal) if not literal.strip().lstrip("+-").isdigit() else int(literal)
                )
            except ValueError:
                return lambda view: np.zeros(view.n, dtype=np.bool_)
            return self._numeric(name, "equal", number)
        pred = _string_predicate(value, cased=cased)

        def run(view: BatchView) -> Mask:
            v = view.strings(name, cased=cased)
            return v.lift(pred(v.values))

        return run

    def value_bool(self, name: str, value: SigmaBool) -> MaskFn:
        t = self._column_kind(name)
        b = bool(value.boolean)
        if pa.types.is_boolean(t):
            return lambda view: (v := view.values(name)).lift(pc.equal(v.values, b))
        return self.value_string(name, SigmaString(str(b).lower()))

    def value_number(self, name: str, value: SigmaNumber) -> MaskFn:
        t = self._column_kind(name)
        if pa.types.is_integer(t) or pa.types.is_floating(t):
            return self._numeric(name, "equal", value.number)
        return self.value_string(name, SigmaString(str(value.number)))

    def value_compare(self, name: str, value: SigmaCompareExpression) -> MaskFn:
        ops = {
            CompareOperators.LT: "less",
            CompareOperators.LTE: "less_equal",
            CompareOperators.GT: "greater",
            CompareOperators.GTE: "greater_equal",
            CompareOperators.NEQ: "not_equal",
        }
        return self._numeric(name, ops[value.op], value.number.number)

    def _numeric(self, name: str, op: str, number: float) -> MaskFn:
        t = self._column_kind(name)
        func = getattr(pc, op)
        if pa.types.is_integer(t) or pa.types.is_floating(t):
            scalar = pa.scalar(number, pa.float64() if isinstance(number, float) else pa.int64())

            def run(view: BatchView) -> Mask:
                v = view.values(name)
                vals = v.values
                if isinstance(number, float) or number < 0:
                    vals = pc.cast(vals, pa.float64())
                    s = pa.scalar(float(number))
                else:
                    s = scalar
                return v.lift(func(vals, s))

            return run
        if _is_string_type(t):

            def run_text(view: BatchView) -> Mask:
                v = view.strings(name, cased=True)
                trimmed = pc.utf8_trim_whitespace(v.values)
                ok = pc.match_substring_regex(trimmed, _NUMERIC_TEXT)
                nums = pc.cast(pc.if_else(ok, trimmed, "0"), pa.float64())
                return v.lift(pc.and_(ok, func(nums, pa.scalar(float(number)))))

            return run_text
        msg = f"numeric comparison on {t} column {name!r}"
        raise UnsupportedError(msg)

    def value_regex(self, name: str, value: SigmaRegularExpression) -> MaskFn:
        t = self._column_kind(name)
        if not (_is_string_type(t) or pa.types.is_integer(t)):
            msg = f"regex on {t} column {name!r}"
            raise UnsupportedError(msg)
        flags = "".join(
            f
            for flag, f in (
                (SigmaRegularExpressionFlag.IGNORECASE, "i"),
                (SigmaRegularExpressionFlag.MULTILINE, "m"),
                (SigmaRegularExpressionFlag.DOTALL, "s"),
            )
            if flag in value.flags
        )
        regexp = value.regexp
        raw = regexp.original if getattr(regexp, "original", None) else regexp.to_plain()
        pattern = (f"(?{flags})" if flags else "") + raw
        try:
            pc.match_substring_regex(pa.array([""], pa.string()), pattern)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            msg = f"regex not supported by RE2 ({name}): {str(e).splitlines()[0]}"
            raise UnsupportedError(msg) from e

        def run(view: BatchView) -> Mask:
            v = view.strings(name, cased=True)
            return v.lift(pc.match_substring_regex(v.values, pattern))

        return run

    def value_cidr(self, name: str, value: SigmaCIDRExpression) -> MaskFn:
        t = self._column_kind(name)
        if not (_is_string_type(t) or pa.types.is_fixed_size_binary(t)):
            msg = f"cidr on {t} column {name!r}"
            raise UnsupportedError(msg)
        lo, hi = _network_range(value.network)
        lo_s, hi_s = pa.scalar(lo, pa.binary(16)), pa.scalar(hi, pa.binary(16))

        def run(view: BatchView) -> Mask:
            v = view.ip_bin(name)
            return v.lift(pc.and_(pc.greater_equal(v.values, lo_s), pc.less_equal(v.values, hi_s)))

        return run

    def value_fieldref(self, name: str, value: SigmaFieldReference) -> MaskFn:
        other = value.field
        self._check_field(other)
        if value.starts_with or value.ends_with:
            msg = f"fieldref with startswith/endswith ({name})"
            raise UnsupportedError(msg)
        types = [CANONICAL_SCHEMA.field(f).type for f in (name, other)]
        if any(pa.types.is_list(x) for x in types):
            msg = f"fieldref on a list column ({name}, {other})"
            raise UnsupportedError(msg)
        numeric = all(pa.types.is_integer(x) or pa.types.is_floating(x) for x in types)

        def run(view: BatchView) -> Mask:
            if numeric:
                a, b = view.column(name), view.column(other)
                return _to_numpy(pc.equal(pc.cast(a, pa.float64()), pc.cast(b, pa.float64())))
            a, b = (_row_strings(view, f) for f in (name, other))
            return _to_numpy(pc.equal(a, b))

        return run

    # -- keywords ---------------------------------------------------------------------
    def keyword(self, value: object) -> MaskFn:
        if isinstance(value, SigmaNumber) and not isinstance(value, SigmaTimestampPart):
            value = SigmaString(str(value.number))
        if not isinstance(value, SigmaString):
            msg = f"keyword value of type {type(value).__name__}"
            raise UnsupportedError(msg)
        cased = isinstance(value, SigmaCasedString)
        pred = _string_predicate(value, cased=cased)

        def run(view: BatchView) -> Mask:
            out = np.zeros(view.n, dtype=np.bool_)
            for name in STRING_COLUMNS:
                if view.column(name).null_count == view.n:
                    continue
                v = view.strings(name, cased=cased)
                out |= v.lift(pred(v.values))
            return out

        return run


def _row_strings(view: BatchView, name: str) -> pa.Array:
    """One lowered string per row (dictionaries decoded), for row-wise comparisons."""
    arr = view.column(name)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if not _is_string_type(arr.type):
        arr = pc.cast(arr, pa.string())
    return pc.utf8_lower(arr)


def _network_range(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[bytes, bytes]:
    """First and last address of ``net`` in the 16-byte IPv4-mapped form of ``*.ip_bin``."""
    first, last = net.network_address.packed, net.broadcast_address.packed
    if net.version == 4:
        prefix = b"\x00" * 10 + b"\xff\xff"
        return prefix + first, prefix + last
    return first, last


def _any(fns: list[MaskFn]) -> MaskFn:
    def run(view: BatchView) -> Mask:
        out = fns[0](view)
        for fn in fns[1:]:
            out = out | fn(view)
        return out

    return run


def compile_rule(rule: SigmaRule) -> CompiledRule:
    """Compile one rule; raises :class:`UnsupportedError` with the reason."""
    return Compiler().compile_rule(rule)
