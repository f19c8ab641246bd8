"""Compile a pySigma rule's condition tree into a plan tree over shared leaves.

The walk follows pySigma's backend pattern (``sigma.conversion.base.Backend``): one
method per condition node type (``or``, ``and``, ``not``, field = value, keyword value)
and, under field = value, one per value type (string, cased string, number, bool,
regex, cidr, comparison, field reference, null, exists, timestamp part, expansion).
The result is plain data (:mod:`detect.sigma.plan`); :mod:`detect.sigma.executor`
runs it.

Semantics (Sigma specification 2.x, see ``../shared/ANCHORS.md`` section 1):

* strings compare case-insensitively with full Unicode case folding (``str.casefold``)
  unless ``|cased``; plain values are whole-value equality; ``*``/``?`` wildcards
  with ``\\`` escapes;
* ``re`` is an unanchored search, case-sensitive unless ``i``; RE2 syntax (patterns
  RE2 rejects make the rule unsupported);
* ``cidr`` compares the 16-byte IPv4-mapped form (``*.ip_bin`` for source/destination
  ip, text parsed with :func:`detect.enrich.ip_to_bin` elsewhere);
* ``base64``/``base64offset``/``wide``/``utf16*``/``windash`` are value transformations
  pySigma applies while parsing (an expansion is an OR of its values); ``expand``
  placeholders take their values from the placeholder settings;
* a canonical batch has every column, so ``exists: true`` means "not null";
* ``not`` is two-valued: a row whose field is null does not match ``f: v``, so it does
  match ``not f: v``;
* list-typed columns (``dns.answers.data``, ...) match when any element matches;
* keywords (field-less values) are a full-text search: found anywhere in any string
  column (wildcards keep their meaning inside the keyword).

Anything else raises :class:`UnsupportedError` with a reason; the engine reports it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
from collections.abc import Iterator, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.rule import SigmaRule
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

from detect.kernels.casefold import casefold_str
from detect.schema import CANONICAL_SCHEMA, COLUMNS
from detect.sigma.plan import (
    CONTAINS,
    ENDSWITH,
    EQUALS,
    STARTSWITH,
    BoolLeaf,
    CidrLeaf,
    CompareLeaf,
    FieldRefLeaf,
    Leaf,
    NullLeaf,
    RegexLeaf,
    StringLeaf,
    TimePartLeaf,
    Tree,
)

_RE2_META = frozenset("\\.+*?()|[]{}^$")
_FALSE: Tree = ("const", False)
_TRUE: Tree = ("const", True)


class UnsupportedError(Exception):
    """The rule uses a feature this engine does not implement (the message says which)."""


def is_string_type(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def value_type(t: pa.DataType) -> pa.DataType:
    """The type of the values a predicate sees: list elements, dictionary values."""
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_dictionary(t):
        return t.value_type
    return t


STRING_COLUMNS: tuple[str, ...] = tuple(
    f.name for f in CANONICAL_SCHEMA if is_string_type(value_type(f.type))
)


def column_type(name: str) -> pa.DataType:
    return value_type(CANONICAL_SCHEMA.field(name).type)


def fold(s: str) -> str:
    """Case-fold a literal the way string columns are folded per batch (full Unicode)."""
    return casefold_str(s)


class LeafBuilder:
    """Deduplicates leaves across every rule of a plan (two rules, one leaf).

    While a rule compiles its tree holds the leaves themselves (``("leaf", leaf)``);
    :meth:`intern` swaps them for ids once the whole rule compiled, so a rule that
    turns out unsupported leaves nothing behind.
    """

    def __init__(self) -> None:
        self.leaves: list[Leaf] = []
        self._ids: dict[Leaf, int] = {}

    @staticmethod
    def add(leaf: Leaf) -> Tree:
        return ("leaf", leaf)

    def intern(self, tree: Tree) -> Tree:
        kind = tree[0]
        if kind == "leaf":
            leaf = tree[1]
            if leaf not in self._ids:
                self._ids[leaf] = len(self.leaves)
                self.leaves.append(leaf)
            return ("leaf", self._ids[leaf])
        if kind == "not":
            return ("not", self.intern(tree[1]))
        if kind in ("and", "or"):
            return (kind, tuple(self.intern(t) for t in tree[1]))
        return tree


# ---------------------------------------------------------------------------------------
# Strings and wildcards


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 pointed at /dev/null: native libraries (RE2 through Arrow) print
    errors there that the caller reports itself (a rule's problem, once, with its file)."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _re2_escape(s: str) -> str:
    return "".join("\\" + c if c in _RE2_META else c for c in s)


def _folded_parts(
    value: SigmaString, *, cased: bool, placeholders: Mapping[str, Sequence[str]]
) -> list[list[str | SpecialChars]]:
    """The string's parts, placeholders expanded (one list per combination), folded."""
    combos: list[list[str | SpecialChars]] = [[]]
    for part in value.s:
        if isinstance(part, Placeholder):
            if part.name not in placeholders:
                msg = (
                    f"placeholder %{part.name}% has no values "
                    "(name it in the YAML file of the 'placeholders' setting)"
                )
                raise UnsupportedError(msg)
            values = [_pattern_parts(v, cased=cased) for v in placeholders[part.name]]
            combos = [[*c, *v] for c in combos for v in values]
        elif isinstance(part, str):
            text = part if cased else fold(part)
            combos = [[*c, text] for c in combos]
        else:
            combos = [[*c, part] for c in combos]
    return [_merge_text(c) for c in combos]


def _pattern_parts(value: str, *, cased: bool) -> list[str | SpecialChars]:
    """A placeholder value is a Sigma pattern: ``*``/``?`` wildcards, ``\\`` escapes."""
    parts: list[str | SpecialChars] = []
    for part in SigmaString(value).s:
        if isinstance(part, str):
            parts.append(part if cased else fold(part))
        elif not isinstance(part, Placeholder):
            parts.append(part)
    return parts


def _merge_text(parts: list[str | SpecialChars]) -> list[str | SpecialChars]:
    out: list[str | SpecialChars] = []
    for p in parts:
        if p == SpecialChars.WILDCARD_MULTI and out and out[-1] == p:
            continue  # "**" is "*"
        if isinstance(p, str) and out and isinstance(out[-1], str):
            out[-1] = out[-1] + p
        elif not (isinstance(p, str) and not p):
            out.append(p)
    return out


def string_matcher(parts: list[str | SpecialChars]) -> tuple[int, str] | str:
    """``(anchor, literal)`` when a literal pattern expresses ``parts``, else an RE2 glob."""
    star = SpecialChars.WILDCARD_MULTI
    if not parts:
        return (EQUALS, "")
    lead, trail = parts[0] == star, len(parts) > 1 and parts[-1] == star
    inner = parts[1 if lead else 0 : len(parts) - 1 if trail else len(parts)]
    if all(isinstance(p, str) for p in inner):
        literal = "".join(inner)  # type: ignore[arg-type]
        if lead and (trail or not inner):
            return (CONTAINS, literal)
        if lead:
            return (ENDSWITH, literal)
        if trail:
            return (STARTSWITH, literal)
        return (EQUALS, literal)
    body = "".join(
        _re2_escape(p) if isinstance(p, str) else (".*" if p == star else ".") for p in parts
    )
    return "(?s)^" + body + "$"


# ---------------------------------------------------------------------------------------
# The compiler


class Compiler:
    """Walks pySigma condition trees into plan trees (one method per node type)."""

    def __init__(
        self,
        builder: LeafBuilder | None = None,
        placeholders: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.builder = builder or LeafBuilder()
        self.placeholders = dict(placeholders or {})

    # -- entry ----------------------------------------------------------------------
    def compile_rule(self, rule: SigmaRule) -> Tree:
        """The rule's tree; raises :class:`UnsupportedError` with the reason."""
        trees = [self.node(cond.parsed) for cond in rule.detection.parsed_condition]
        return self.builder.intern(_or(trees))

    def node(self, node: object) -> Tree:
        if isinstance(node, ConditionOR):
            return self.node_or(node)
        if isinstance(node, ConditionAND):
            return _and([self.node(arg) for arg in node.args])
        if isinstance(node, ConditionNOT):
            return _not(self.node(node.args[0]))
        if isinstance(node, ConditionFieldEqualsValueExpression):
            return self.field_value(node.field, node.value)
        if isinstance(node, ConditionValueExpression):
            return self.keyword(node.value)
        if node is None:
            msg = "empty detection"
            raise UnsupportedError(msg)
        msg = f"condition node {type(node).__name__}"
        raise UnsupportedError(msg)

    def node_or(self, node: ConditionOR) -> Tree:
        """OR; string (cidr) alternatives on one column merge into one leaf, one pass."""
        trees: list[Tree] = []
        strings: dict[tuple[str, bool], list[StringLeaf]] = {}
        cidrs: dict[str, list[CidrLeaf]] = {}
        for arg in node.args:
            tree = self.node(arg)
            leaf = tree[1] if tree[0] == "leaf" else None
            if isinstance(leaf, StringLeaf):
                strings.setdefault((leaf.column, leaf.cased), []).append(leaf)
            elif isinstance(leaf, CidrLeaf):
                cidrs.setdefault(leaf.column, []).append(leaf)
            else:
                trees.append(tree)
        for (column, cased), leaves in strings.items():
            patterns = tuple(dict.fromkeys(p for leaf in leaves for p in leaf.patterns))
            globs = tuple(dict.fromkeys(g for leaf in leaves for g in leaf.globs))
            trees.append(self.builder.add(StringLeaf(column, cased, patterns, globs)))
        for column, cidr_leaves in cidrs.items():
            ranges = tuple(dict.fromkeys(r for leaf in cidr_leaves for r in leaf.ranges))
            trees.append(self.builder.add(CidrLeaf(column, ranges)))
        return _or(trees)

    # -- field = value ----------------------------------------------------------------
    def _check_field(self, name: str) -> None:
        if name not in COLUMNS:
            msg = f"field {name!r} is not a canonical column"
            raise UnsupportedError(msg)

    def field_value(self, name: str, value: object) -> Tree:
        self._check_field(name)
        if isinstance(value, SigmaExpansion):
            return _or([self.field_value(name, v) for v in value.values])
        if isinstance(value, SigmaTimestampPart):
            return self.value_timestamp_part(name, value)
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
            return self.builder.add(NullLeaf(name, is_null=True))
        if isinstance(value, SigmaExists):
            return self.builder.add(NullLeaf(name, is_null=not bool(value.exists)))
        msg = f"value type {type(value).__name__} ({name})"
        raise UnsupportedError(msg)

    def value_string(self, name: str, value: SigmaString, *, keyword: bool = False) -> Tree:
        t = column_type(name)
        cased = isinstance(value, SigmaCasedString)
        if pa.types.is_timestamp(t) or pa.types.is_fixed_size_binary(t):
            msg = f"string value on {t} column {name!r}"
            raise UnsupportedError(msg)
        combos = _folded_parts(value, cased=cased, placeholders=self.placeholders)
        if keyword:  # a keyword is searched for anywhere in a value (full-text search)
            star = SpecialChars.WILDCARD_MULTI
            combos = [_merge_text([star, *parts, star]) for parts in combos]
        if (pa.types.is_integer(t) or pa.types.is_floating(t)) and all(
            all(isinstance(p, str) for p in parts) for parts in combos
        ):
            return _or([self._number_text(name, parts) for parts in combos])
        if pa.types.is_boolean(t):
            return _or([self._bool_text(name, parts) for parts in combos])
        patterns: list[tuple[int, str]] = []
        globs: list[str] = []
        for parts in combos:
            m = string_matcher(parts)
            (globs if isinstance(m, str) else patterns).append(m)  # type: ignore[arg-type]
        leaf = StringLeaf(name, cased, tuple(dict.fromkeys(patterns)), tuple(dict.fromkeys(globs)))
        return self.builder.add(leaf)

    def _number_text(self, name: str, parts: list[str | SpecialChars]) -> Tree:
        """A plain value on a numeric column: numeric equality (wildcards match the text).

        Only a decimal number in ASCII parses (``443``, ``-1``, ``0.5``, ``4e2``): Python's
        ``int``/``float`` also take ``4_43``, other scripts' digits, ``inf`` and spaces,
        none of which a log's number is written as.
        """
        text = str(parts[0]) if parts else ""
        if not _DECIMAL.fullmatch(text):
            return _FALSE
        number: int | float = int(text) if _INTEGER.fullmatch(text) else float(text)
        return self.builder.add(CompareLeaf(name, "equal", number))

    def _bool_text(self, name: str, parts: list[str | SpecialChars]) -> Tree:
        text = str(parts[0]).lower() if len(parts) == 1 else ""
        if text not in ("true", "false"):
            return _FALSE
        return self.builder.add(BoolLeaf(name, text == "true"))

    def value_bool(self, name: str, value: SigmaBool) -> Tree:
        b = bool(value.boolean)
        if pa.types.is_boolean(column_type(name)):
            return self.builder.add(BoolLeaf(name, b))
        return self.value_string(name, SigmaString(str(b).lower()))

    def value_number(self, name: str, value: SigmaNumber) -> Tree:
        t = column_type(name)
        if pa.types.is_integer(t) or pa.types.is_floating(t):
            return self.builder.add(CompareLeaf(name, "equal", value.number))
        return self.value_string(name, SigmaString(str(value.number)))

    def value_compare(self, name: str, value: SigmaCompareExpression) -> Tree:
        ops = {
            CompareOperators.LT: "less",
            CompareOperators.LTE: "less_equal",
            CompareOperators.GT: "greater",
            CompareOperators.GTE: "greater_equal",
            CompareOperators.NEQ: "not_equal",
        }
        if isinstance(value.number, SigmaTimestampPart):
            return self.value_timestamp_part(name, value.number, ops[value.op])
        t = column_type(name)
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or is_string_type(t)):
            msg = f"numeric comparison on {t} column {name!r}"
            raise UnsupportedError(msg)
        return self.builder.add(CompareLeaf(name, ops[value.op], value.number.number))

    def value_regex(self, name: str, value: SigmaRegularExpression) -> Tree:
        t = column_type(name)
        if not (is_string_type(t) or pa.types.is_integer(t)):
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
        if "m" not in flags:
            raw = pcre_dollar(raw)
        pattern = (f"(?{flags})" if flags else "") + raw
        try:
            with native_stderr_silenced():  # RE2 logs its own error lines to fd 2
                pc.match_substring_regex(pa.array([""], pa.string()), pattern)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            msg = f"regex not supported by RE2 ({name}): {str(e).splitlines()[0]}"
            raise UnsupportedError(msg) from e
        return self.builder.add(RegexLeaf(name, pattern))

    def value_cidr(self, name: str, value: SigmaCIDRExpression) -> Tree:
        t = column_type(name)
        if not (is_string_type(t) or pa.types.is_fixed_size_binary(t)):
            msg = f"cidr on {t} column {name!r}"
            raise UnsupportedError(msg)
        return self.builder.add(CidrLeaf(name, network_ranges(value.network)))

    def value_fieldref(self, name: str, value: SigmaFieldReference) -> Tree:
        other = value.field
        self._check_field(other)
        types = [CANONICAL_SCHEMA.field(f).type for f in (name, other)]
        if any(pa.types.is_list(x) for x in types):
            msg = f"fieldref on a list column ({name}, {other})"
            raise UnsupportedError(msg)
        anchor = (
            CONTAINS
            if value.starts_with and value.ends_with
            else STARTSWITH
            if value.starts_with
            else ENDSWITH
            if value.ends_with
            else EQUALS
        )
        return self.builder.add(FieldRefLeaf(name, other, anchor))

    def value_timestamp_part(self, name: str, value: SigmaTimestampPart, op: str = "equal") -> Tree:
        if not pa.types.is_timestamp(column_type(name)):
            msg = f"timestamp part modifier on non-timestamp column {name!r}"
            raise UnsupportedError(msg)
        part = value.timestamp_part.name.lower()
        return self.builder.add(TimePartLeaf(name, part, op, int(value.number)))

    # -- keywords ---------------------------------------------------------------------
    def keyword(self, value: object) -> Tree:
        if isinstance(value, SigmaExpansion):
            return _or([self.keyword(v) for v in value.values])
        if isinstance(value, SigmaNumber) and not isinstance(value, SigmaTimestampPart):
            value = SigmaString(str(value.number))
        if not isinstance(value, SigmaString):
            msg = f"keyword value of type {type(value).__name__}"
            raise UnsupportedError(msg)
        return _or([self.value_string(name, value, keyword=True) for name in STRING_COLUMNS])


PCRE_DOLLAR = "(?:\\n?\\z)"


_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_FLAG_GROUP = re.compile(r"\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])")


def pcre_dollar(pattern: str) -> str:
    """``$`` as PCRE (the Sigma regex flavour) means it: end, or before a final newline.

    RE2's ``$`` without ``m`` is the very end only; rewrite each ``$`` that is an anchor
    where ``m`` is off to ``(?:\\n?\\z)``. Not anchors: escaped ``\\$``, ``$`` in a
    character class (POSIX classes like ``[[:alpha:]$]`` included) or in ``\\Q...\\E``.
    Where ``m`` is on, by an inline flag (``(?m)`` for the rest of its group, ``(?m:...)``
    within it, ``(?-m)`` off again), ``$`` already means end of line in both flavours.
    """
    out: list[str] = []
    multiline = [False]  # per open group: whether m is on
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("\\Q", i):  # literal up to \E (or the end)
            j = pattern.find("\\E", i + 2)
            j = n if j < 0 else j + 2
            out.append(pattern[i:j])
            i = j
            continue
        if c == "\\" and i + 1 < n:
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if c == "[":
            j = _class_end(pattern, i)
            out.append(pattern[i:j])
            i = j
            continue
        if c == "(":
            m = _FLAG_GROUP.match(pattern, i)
            on = multiline[-1]
            if m:
                on = (on or "m" in m.group(1)) and "m" not in (m.group(2) or "")
                if m.group(3) == ")":  # (?flags): the rest of the enclosing group
                    multiline[-1] = on
                    out.append(m.group(0))
                    i = m.end()
                    continue
            multiline.append(on)
        elif c == ")" and len(multiline) > 1:
            multiline.pop()
        elif c == "$" and not multiline[-1]:
            out.append(PCRE_DOLLAR)
            i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _class_end(pattern: str, i: int) -> int:
    """Index after the character class opening at ``pattern[i] == "["``."""
    j = i + 1
    if pattern[j : j + 1] == "^":
        j += 1
    if pattern[j : j + 1] == "]":  # "[]...]": a literal ] first
        j += 1
    while j < len(pattern):
        if pattern[j] == "\\":
            j += 2
            continue
        if pattern.startswith("[:", j):  # a POSIX class inside: [:alpha:]
            k = pattern.find(":]", j + 2)
            if k >= 0:
                j = k + 2
                continue
        if pattern[j] == "]":
            return j + 1
        j += 1
    return len(pattern)


_V4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")


def network_ranges(
    net: ipaddress.IPv4Network | ipaddress.IPv6Network,
) -> tuple[tuple[bytes, bytes], ...]:
    """``net``'s addresses as ranges of the 16-byte form, IPv4 addresses left out of an
    IPv6 network that merely spans ``::ffff:0:0/96`` (``::/64`` holds no IPv4 address,
    though every IPv4 address is stored IPv4-mapped); one inside it names IPv4 and keeps it.
    """
    if net.version == 6 and net.prefixlen < _V4_MAPPED.prefixlen and net.supernet_of(_V4_MAPPED):
        first, last = network_range(net)
        below = (int(_V4_MAPPED.network_address) - 1).to_bytes(16, "big")
        above = (int(_V4_MAPPED.broadcast_address) + 1).to_bytes(16, "big")
        return tuple((lo, hi) for lo, hi in ((first, below), (above, last)) if lo <= hi)
    return (network_range(net),)


def network_range(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[bytes, bytes]:
    """First and last address of ``net`` in the 16-byte IPv4-mapped form of ``*.ip_bin``."""
    first, last = net.network_address.packed, net.broadcast_address.packed
    if net.version == 4:
        prefix = b"\x00" * 10 + b"\xff\xff"
        return prefix + first, prefix + last
    return first, last


def _or(trees: list[Tree]) -> Tree:
    trees = [t for t in trees if t != _FALSE]
    if any(t == _TRUE for t in trees):
        return _TRUE
    if not trees:
        return _FALSE
    return trees[0] if len(trees) == 1 else ("or", tuple(trees))


def _and(trees: list[Tree]) -> Tree:
    trees = [t for t in trees if t != _TRUE]
    if any(t == _FALSE for t in trees):
        return _FALSE
    if not trees:
        return _TRUE
    return trees[0] if len(trees) == 1 else ("and", tuple(trees))


def _not(tree: Tree) -> Tree:
    if tree[0] == "const":
        return ("const", not tree[1])
    if tree[0] == "not":
        return tree[1]
    return ("not", tree)


def compile_rule(
    rule: SigmaRule,
    builder: LeafBuilder | None = None,
    placeholders: Mapping[str, Sequence[str]] | None = None,
) -> Tree:
    """Compile one rule into ``builder``'s leaves; raises :class:`UnsupportedError`."""
    return Compiler(builder, placeholders).compile_rule(rule)
