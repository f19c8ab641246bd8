# ruff: noqa: N802  (the visitor methods must carry the ANTLR rule names)
"""STIX 2.1 feeds: bundles and single objects whose indicators carry STIX patterns.

Patterns are parsed with ``stix2-patterns`` (the OASIS grammar), never with regular
expressions, and compiled to disjunctive normal form: each OR operand that is an
equality on one value we can match (an IP or CIDR, a domain, a URL, a file or
certificate hash, an e-mail address, a user agent) becomes one indicator row.
Everything the index cannot express exactly (AND across objects, FOLLOWEDBY,
qualifiers, MATCHES/LIKE/ordering operators, unknown properties) becomes a
``FeedProblem`` naming the indicator id, so ``detect validate`` lists it; the OR
operands beside it still load, because each operand alone is a sufficient match.

Supported shapes (``<op>`` is ``=`` or ``IN (...)``, operands joined by OR in one
observation or across observations):

- ``ipv4-addr:value`` / ``ipv6-addr:value`` (an address or a CIDR) -> ip / cidr
- ``domain-name:value`` -> domain; ``url:value`` -> url; ``email-addr:value`` -> email
- ``file:hashes.MD5`` / ``'SHA-1'`` / ``'SHA-256'`` -> md5 / sha1 / sha256
- ``x509-certificate:hashes.'SHA-1'`` / ``'SHA-256'`` -> sha1 / sha256, tag ``x509``
- ``network-traffic:dst_ref.value`` / ``src_ref.value`` -> ip, optionally ANDed with
  ``*_ref.type`` and (for ``dst_ref``) ``dst_port``, which fills the ``port`` column
- ``network-traffic:extensions.'http-request-ext'.request_header.'User-Agent'`` -> user-agent
- hashes of one file ANDed together (each hash identifies the same file) -> one row each
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import product
from pathlib import Path
from typing import Any

from antlr4.error.Errors import ParseCancellationException
from stix2patterns.exceptions import ParseException
from stix2patterns.v21.grammars.STIXPatternParser import STIXPatternParser as P
from stix2patterns.v21.grammars.STIXPatternVisitor import STIXPatternVisitor
from stix2patterns.v21.pattern import Pattern

from detect.indicators.feeds import feed_source, first_lines
from detect.indicators.model import (
    FeedOptions,
    FeedProblem,
    LoadResult,
    indicator_table,
)
from detect.indicators.normalize import NormalizeError, normalize
from detect.readers.source import open_binary

__all__ = ["compile_pattern", "load", "sniff"]

_BUNDLE = re.compile(rb'"type"\s*:\s*"bundle"')
_STIX_ID = re.compile(rb'"id"\s*:\s*"[a-z0-9-]+--[0-9a-fA-F-]{36}"')
_ID_LINE = re.compile(r'"id"\s*:\s*"([a-z0-9-]+--[0-9a-fA-F-]{36})"')

# object type, property path -> indicator type
_VALUE_PATHS: dict[tuple[str, tuple[str, ...]], str] = {
    ("ipv4-addr", ("value",)): "ip",
    ("ipv6-addr", ("value",)): "ip",
    ("domain-name", ("value",)): "domain",
    ("url", ("value",)): "url",
    ("email-addr", ("value",)): "email",
    ("network-traffic", ("dst_ref", "value")): "ip",
    ("network-traffic", ("src_ref", "value")): "ip",
    ("network-traffic", ("extensions", "http-request-ext", "request_header", "User-Agent")):
        "user-agent",
}
# STIX hash names (spec vocabulary, spelling variants seen in feeds) -> indicator type
_HASH_NAMES = {"MD5": "md5", "SHA-1": "sha1", "SHA1": "sha1", "SHA-256": "sha256",
               "SHA256": "sha256"}
_HASHED_OBJECTS = {"file": ("md5", "sha1", "sha256"), "x509-certificate": ("sha1", "sha256")}
_NETWORK_TYPE_PATHS = {("dst_ref", "type"), ("src_ref", "type")}
_MAX_ALTERNATIVES = 10_000  # (a OR b) AND (c OR d) ... multiplies out; bound the blow-up

# The four TLP 2.0 marking definitions every STIX 2.1 producer references by fixed id.
_TLP_IDS = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": "tlp:white",
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": "tlp:green",
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": "tlp:amber",
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": "tlp:red",
}


@dataclass(frozen=True)
class Term:
    """One equality of a pattern: ``object:path = value`` (value as written, unquoted)."""

    obj: str
    path: tuple[str, ...]
    value: str


@dataclass(frozen=True)
class Unsupported:
    """A part of a pattern the index cannot express, with the reason and its text."""

    reason: str
    text: str


@dataclass(frozen=True)
class Operand:
    """One indicator row a pattern yields (value still as the feed wrote it)."""

    kind: str
    value: str
    port: int | None = None
    tag: str | None = None


# A pattern in disjunctive normal form: alternatives (OR) of conjunctions (AND).
Conjunction = tuple[Term | Unsupported, ...]
Dnf = list[Conjunction]


def sniff(head: bytes, path: Path) -> bool:
    """True for a STIX bundle or a single STIX object (JSON with a ``type--uuid`` id)."""
    del path  # content decides: STIX files come as .json like MISP and plain JSON
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text.startswith((b"{", b"[")):
        return False
    return bool(_BUNDLE.search(head)) or (
        b'"spec_version"' in head and bool(_STIX_ID.search(head)))


def load(path: Path, *, options: FeedOptions) -> LoadResult:
    """Indicator rows of a STIX 2.1 bundle (or one object); see the module docstring."""
    problems: list[FeedProblem] = []
    skipped: Counter[str] = Counter()
    try:
        with open_binary(path) as f:
            text = f.read().decode("utf-8", errors="replace")
        doc = json.loads(text)
    except (OSError, EOFError) as e:
        problems.append(FeedProblem(str(path), None, f"cannot read the file: {e}"))
        return LoadResult(indicator_table({"value": []}), problems, dict(skipped))
    except json.JSONDecodeError as e:
        problems.append(FeedProblem(str(path), e.lineno, f"not valid JSON: {e.msg}"))
        return LoadResult(indicator_table({"value": []}), problems, dict(skipped))

    if isinstance(doc, dict) and doc.get("type") == "bundle":
        objects = doc.get("objects") or []
    elif isinstance(doc, list):
        objects = doc
    else:
        objects = [doc]
    lines = first_lines(text, _ID_LINE)
    names, markings = _resolvers(objects)
    default_source = names.get(_producer(objects), feed_source(path, options))
    rows = _Rows()

    for obj in _newest_versions(objects, skipped):
        kind = obj.get("type")
        if kind != "indicator":
            skipped[f"not an indicator: {kind}"] += 1
            continue
        oid = str(obj.get("id", "indicator--?"))
        line = lines.get(oid)
        if obj.get("revoked") is True:
            skipped["revoked"] += 1
            continue
        pattern_type = obj.get("pattern_type", "stix")
        if pattern_type != "stix":
            skipped[f"pattern_type {pattern_type}"] += 1
            continue
        _load_indicator(obj, oid, path, line, options=options, names=names,
                        markings=markings, default_source=default_source, rows=rows,
                        problems=problems)
    return LoadResult(rows.table(), problems, dict(skipped))


def compile_pattern(pattern: str) -> Dnf:
    """The pattern in disjunctive normal form; raises ``ParseException`` on bad syntax."""
    parsed = Pattern(pattern)
    result: Dnf = parsed.visit(_DnfVisitor(pattern))
    return result


def operands(conjunction: Conjunction) -> list[Operand] | Unsupported:
    """Indicator rows one conjunction stands for, or why the index cannot express it."""
    for term in conjunction:
        if isinstance(term, Unsupported):
            return term
    terms: list[Term] = [t for t in conjunction if isinstance(t, Term)]
    objs = sorted({t.obj for t in terms})
    if len(objs) > 1:
        return Unsupported(f"AND within an observation on different objects ({', '.join(objs)})",
                           "")
    if len(terms) == 1:
        return _single(terms[0])
    if objs[0] == "network-traffic":
        return _network_traffic(terms)
    if objs[0] in _HASHED_OBJECTS:
        out: list[Operand] = []
        for term in terms:
            one = _single(term)
            if isinstance(one, Unsupported) or len(term.path) != 2:
                return Unsupported(f"AND of {objs[0]} properties other than hashes "
                                   "(only hashes of one object, each identifying it, can "
                                   "be ANDed)", "")
            out.extend(one)
        return out
    return Unsupported(f"AND of conditions on one {objs[0]} (the index matches single values)",
                       "")


def _single(term: Term) -> list[Operand] | Unsupported:
    kind = _VALUE_PATHS.get((term.obj, term.path))
    if kind is not None:
        return [Operand(kind, term.value)]
    if len(term.path) == 2 and term.path[0] == "hashes" and term.obj in _HASHED_OBJECTS:
        hash_kind = _HASH_NAMES.get(term.path[1].upper())
        if hash_kind in _HASHED_OBJECTS[term.obj]:
            tag = "x509" if term.obj == "x509-certificate" else None
            return [Operand(hash_kind, term.value, tag=tag)]
        return Unsupported(f"hash {term.path[1]!r} of {term.obj} is not supported "
                           f"(use {', '.join(_HASHED_OBJECTS[term.obj])})", "")
    return Unsupported(f"property {term.obj}:{'.'.join(term.path)} is not supported "
                       "(see detect.indicators.stix for the supported shapes)", "")


def _network_traffic(terms: list[Term]) -> list[Operand] | Unsupported:
    """``dst_ref.value = ip [AND dst_ref.type = ...] [AND dst_port = n]``: one ip(:port) row."""
    refs = [t for t in terms if t.path in (("dst_ref", "value"), ("src_ref", "value"))]
    ports = [t for t in terms if t.path == ("dst_port",)]
    rest = [t for t in terms if t not in refs and t not in ports
            and t.path not in _NETWORK_TYPE_PATHS]
    if len(refs) != 1 or len(ports) > 1 or rest:
        return Unsupported("AND of network-traffic properties other than one address, its "
                           "type and dst_port", "")
    port = None
    if ports:
        if refs[0].path[0] != "dst_ref":
            return Unsupported("dst_port with src_ref.value (the port column is the "
                               "destination port)", "")
        try:
            port = int(ports[0].value)
        except ValueError:
            return Unsupported(f"dst_port is not a number: {ports[0].value!r}", "")
        if not 0 <= port <= 65535:
            return Unsupported(f"dst_port out of range: {port}", "")
    return [Operand("ip", refs[0].value, port=port)]


class _DnfVisitor(STIXPatternVisitor):  # type: ignore[misc]
    """Turns the parse tree into DNF; unsupported nodes become ``Unsupported`` leaves."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def _text(self, ctx: Any) -> str:
        return str(self.pattern[ctx.start.start:ctx.stop.stop + 1])

    def _no(self, ctx: Any, reason: str) -> Dnf:
        return [(Unsupported(reason, self._text(ctx)),)]

    def visitPattern(self, ctx: Any) -> Dnf:
        return self.visit(ctx.observationExpressions())  # type: ignore[no-any-return]

    def visitObservationExpressions(self, ctx: Any) -> Dnf:
        if ctx.FOLLOWEDBY():
            return self._no(ctx, "FOLLOWEDBY (a sequence of observations) is not supported")
        return self.visit(ctx.observationExpressionOr())  # type: ignore[no-any-return]

    def visitObservationExpressionOr(self, ctx: Any) -> Dnf:
        if ctx.OR():
            return [c for sub in ctx.observationExpressionOr() for c in self.visit(sub)]
        return self.visit(ctx.observationExpressionAnd())  # type: ignore[no-any-return]

    def visitObservationExpressionAnd(self, ctx: Any) -> Dnf:
        if ctx.AND():
            return self._no(ctx, "AND across observations is not supported")
        return self.visit(ctx.observationExpression())  # type: ignore[no-any-return]

    def visitObservationExpressionSimple(self, ctx: Any) -> Dnf:
        return self.visit(ctx.comparisonExpression())  # type: ignore[no-any-return]

    def visitObservationExpressionCompound(self, ctx: Any) -> Dnf:
        return self.visit(ctx.observationExpressions())  # type: ignore[no-any-return]

    def visitObservationExpressionWithin(self, ctx: Any) -> Dnf:
        return self._no(ctx, "qualifier WITHIN is not supported")

    def visitObservationExpressionRepeated(self, ctx: Any) -> Dnf:
        return self._no(ctx, "qualifier REPEATS is not supported")

    def visitObservationExpressionStartStop(self, ctx: Any) -> Dnf:
        return self._no(ctx, "qualifier START/STOP is not supported")

    def visitComparisonExpression(self, ctx: Any) -> Dnf:
        if ctx.OR():
            return [c for sub in ctx.comparisonExpression() for c in self.visit(sub)]
        return self.visit(ctx.comparisonExpressionAnd())  # type: ignore[no-any-return]

    def visitComparisonExpressionAnd(self, ctx: Any) -> Dnf:
        if ctx.AND():
            left, right = (self.visit(sub) for sub in ctx.comparisonExpressionAnd())
            if len(left) * len(right) > _MAX_ALTERNATIVES:
                return self._no(ctx, "AND of ORs expands to more than "
                                f"{_MAX_ALTERNATIVES} alternatives")
            return [a + b for a, b in product(left, right)]
        return self.visit(ctx.propTest())  # type: ignore[no-any-return]

    def visitPropTestParen(self, ctx: Any) -> Dnf:
        return self.visit(ctx.comparisonExpression())  # type: ignore[no-any-return]

    def visitPropTestEqual(self, ctx: Any) -> Dnf:
        if ctx.NOT() or ctx.NEQ():
            return self._no(ctx, "negated comparison (NOT =, !=) is not supported")
        obj, path = _object_path(ctx.objectPath())
        value = _literal(ctx.primitiveLiteral())
        if value is None:
            return self._no(ctx, "only string, integer and hex literals are supported")
        return [(Term(obj, path, value),)]

    def visitPropTestSet(self, ctx: Any) -> Dnf:
        if ctx.NOT():
            return self._no(ctx, "NOT IN is not supported")
        obj, path = _object_path(ctx.objectPath())
        out: Dnf = []
        for lit in ctx.setLiteral().primitiveLiteral():
            value = _literal(lit)
            if value is None:
                return self._no(ctx, "only string, integer and hex literals are supported")
            out.append((Term(obj, path, value),))
        return out

    def _operator(self, ctx: Any, name: str) -> Dnf:
        return self._no(ctx, f"operator {name} is not supported (only = and IN)")

    def visitPropTestOrder(self, ctx: Any) -> Dnf:
        op = ctx.GT() or ctx.LT() or ctx.GE() or ctx.LE()
        return self._operator(ctx, op.getText())

    def visitPropTestLike(self, ctx: Any) -> Dnf:
        return self._operator(ctx, "LIKE")

    def visitPropTestRegex(self, ctx: Any) -> Dnf:
        return self._operator(ctx, "MATCHES")

    def visitPropTestIsSubset(self, ctx: Any) -> Dnf:
        return self._operator(ctx, "ISSUBSET")

    def visitPropTestIsSuperset(self, ctx: Any) -> Dnf:
        return self._operator(ctx, "ISSUPERSET")

    def visitPropTestExists(self, ctx: Any) -> Dnf:
        return self._operator(ctx, "EXISTS")


def _unquote(token: Any) -> str:
    text = token.getText()
    return str(text[1:-1].replace("\\'", "'").replace("\\\\", "\\"))


def _object_path(ctx: P.ObjectPathContext) -> tuple[str, tuple[str, ...]]:
    """``(object type, path)``, quoted keys unquoted: ``hashes.'SHA-256'`` -> hashes, SHA-256."""
    obj = ctx.objectType().getText()
    first = ctx.firstPathComponent()
    path = [_unquote(first.StringLiteral()) if first.StringLiteral() else first.getText()]
    comp = ctx.objectPathComponent()
    stack = [comp] if comp is not None else []
    steps: list[Any] = []
    while stack:  # PathStep nests left-recursively; flatten in order
        node = stack.pop()
        if isinstance(node, P.PathStepContext):
            stack.extend(reversed(node.objectPathComponent()))
        else:
            steps.append(node)
    for step in steps:
        if isinstance(step, P.KeyPathStepContext):
            lit = step.StringLiteral()
            path.append(_unquote(lit) if lit else step.IdentifierWithoutHyphen().getText())
        else:
            path.append(step.getText())  # [*] or [n]: never one of the supported paths
    return obj, tuple(path)


def _literal(ctx: P.PrimitiveLiteralContext) -> str | None:
    """Text of a string, integer or hex literal; None for the other literal kinds."""
    orderable = ctx.orderableLiteral()
    if orderable is None:
        return None
    if orderable.StringLiteral():
        return _unquote(orderable.StringLiteral())
    if orderable.IntPosLiteral():
        return str(orderable.IntPosLiteral().getText())
    if orderable.HexLiteral():
        return str(orderable.HexLiteral().getText()[2:-1])
    return None


class _Rows:
    """Column lists for the indicator table, appended to row by row (linear)."""

    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {name: [] for name in (
            "type", "value", "port", "source", "confidence", "severity", "tags",
            "valid_from", "valid_until", "to_ids", "description", "origin")}

    def add(self, **row: Any) -> None:
        for name, col in self.cols.items():
            col.append(row.get(name))

    def table(self) -> Any:
        return indicator_table(self.cols)


def _load_indicator(obj: dict[str, Any], oid: str, path: Path, line: int | None, *,
                    options: FeedOptions, names: dict[str, str], markings: dict[str, str],
                    default_source: str, rows: _Rows, problems: list[FeedProblem]) -> None:
    """Rows of one indicator; its problems carry the indicator id."""
    pattern = obj.get("pattern")
    if not isinstance(pattern, str) or not pattern.strip():
        problems.append(FeedProblem(str(path), line, f"{oid}: indicator without a pattern"))
        return
    try:
        valid_from = _timestamp(obj.get("valid_from"))
        valid_until = _timestamp(obj.get("valid_until"))
        confidence = _confidence(obj.get("confidence"))
    except ValueError as e:
        problems.append(FeedProblem(str(path), line, f"{oid}: {e}", pattern))
        return
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        # STIX 2.1 (4.2 Indicator): valid_until MUST be greater than valid_from; as given,
        # the indicator is valid at no time and would never match
        problems.append(FeedProblem(
            str(path), line, f"{oid}: valid_until {obj.get('valid_until')} is not after "
            f"valid_from {obj.get('valid_from')} (STIX requires it): never valid, not loaded",
            pattern))  # fmt: skip
        return
    try:
        dnf = compile_pattern(pattern)
    except (ParseException, ParseCancellationException) as e:
        problems.append(FeedProblem(str(path), line, f"{oid}: not a valid STIX pattern: {e}",
                                    pattern))
        return

    tags = _tags(obj, markings)
    source = names.get(str(obj.get("created_by_ref")), default_source)
    description = " — ".join(str(obj[k]) for k in ("name", "description") if obj.get(k)) or None
    origin = f"{path}:{line}" if line is not None else f"{path}:{oid}"
    for conjunction in dnf:
        got = operands(conjunction)
        if isinstance(got, Unsupported):
            text = next((t.text for t in conjunction if isinstance(t, Unsupported)), "")
            problems.append(FeedProblem(str(path), line, f"{oid}: {got.reason}",
                                        text or _conjunction_text(conjunction) or pattern))
            continue
        for op in got:
            try:
                kind, value = normalize(op.kind, op.value)
            except NormalizeError as e:
                problems.append(FeedProblem(str(path), line, f"{oid}: {e}", pattern))
                continue
            rows.add(type=kind, value=value, port=op.port, source=source,
                     confidence=confidence if confidence is not None else options.confidence,
                     severity=options.severity,
                     tags=[*tags, op.tag] if op.tag and op.tag not in tags else tags,
                     valid_from=valid_from, valid_until=valid_until, to_ids=True,
                     description=description, origin=origin)


def _conjunction_text(conjunction: Conjunction) -> str:
    return " AND ".join(f"{t.obj}:{'.'.join(t.path)} = {t.value!r}" for t in conjunction
                        if isinstance(t, Term))


def _tags(obj: dict[str, Any], markings: dict[str, str]) -> list[str]:
    """``indicator_types``, ``labels`` and TLP markings, each once, in that order."""
    out: list[str] = []
    for key in ("indicator_types", "labels"):
        for tag in obj.get(key) or ():
            if isinstance(tag, str) and tag not in out:
                out.append(tag)
    for ref in obj.get("object_marking_refs") or ():
        tlp = markings.get(ref) or _TLP_IDS.get(ref)
        if tlp and tlp not in out:
            out.append(tlp)
    return out


def _resolvers(objects: list[Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Identity id -> name (the source) and TLP marking id -> ``tlp:<colour>`` of a bundle."""
    names: dict[str, str] = {}
    markings: dict[str, str] = {}
    for obj in objects:
        if not isinstance(obj, dict):
            continue
        if obj.get("type") == "identity" and obj.get("name"):
            names[str(obj.get("id"))] = str(obj["name"])
        elif obj.get("type") == "marking-definition":
            tlp = (obj.get("definition") or {}).get("tlp") or obj.get("name", "")
            if isinstance(tlp, str) and tlp:
                markings[str(obj.get("id"))] = "tlp:" + tlp.lower().removeprefix("tlp:")
    return names, markings


def _producer(objects: list[Any]) -> str:
    """The identity that made the bundle: the one ``created_by_ref`` of its reports
    (or groupings), else the one of all its objects; empty when there is none or several.

    STIX 2.1 bundles carry no ``created_by_ref`` themselves; a vendor's report bundle
    states its author on the report and leaves the indicators without one.
    """
    for types in (("report", "grouping"), None):
        refs = {str(o["created_by_ref"]) for o in objects
                if isinstance(o, dict) and o.get("created_by_ref")
                and (types is None or o.get("type") in types)}
        if len(refs) == 1:
            return refs.pop()
        if refs:
            return ""
    return ""


def _newest_versions(objects: list[Any], skipped: Counter[str]) -> list[dict[str, Any]]:
    """One object per id, the newest ``modified`` (STIX versioning); the rest counted."""
    newest: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for i, obj in enumerate(objects):
        if not isinstance(obj, dict):
            skipped["not a JSON object"] += 1
            continue
        oid = str(obj.get("id", f"#{i}"))
        seen = newest.get(oid)
        if seen is None:
            newest[oid] = obj
            order.append(oid)
            continue
        skipped["older version"] += 1
        if str(obj.get("modified", "")) > str(seen.get("modified", "")):
            newest[oid] = obj
    return [newest[oid] for oid in order]


def _timestamp(value: Any) -> datetime | None:
    """A STIX timestamp (RFC 3339, ``Z``) as an aware UTC datetime; ValueError when bad."""
    if value is None:
        return None
    if not isinstance(value, str):
        msg = f"timestamp is not a string: {value!r}"
        raise ValueError(msg)
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip())  # STIX allows ns; Python keeps us
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        msg = f"not an RFC 3339 timestamp: {value!r}"
        raise ValueError(msg) from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _confidence(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        msg = f"confidence must be an integer 0..100, got {value!r}"
        raise ValueError(msg)
    return value


