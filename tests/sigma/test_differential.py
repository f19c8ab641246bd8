"""Differential tests: the Sigma engine against pysigma-backend-sqlite (issue 4, section 7).

The backend turns a rule into SQL independently of our compiler; SQLite runs it over the
same events (``tests/sigma/sqlite_reference.py``). Where the backend is a faithful
reference the hit sets must be equal; where it is not, a ``test_divergence_*`` test
below shows what the backend does and asserts what the Sigma specification asks of us.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from sigma.collection import SigmaCollection

from detect.sigma import SigmaEngine
from detect.sigma.logsource import datasets
from tests.sigma.sqlite_reference import NotRepresentableError, run_queries, to_sql
from tests.sigma.strategies import Case, cases
from tests.sigma.test_engine import batch_of

# Engine bug (reported to the lead, pinned by test_engine_bug_glob_leaf_without_hits):
# a batch in which a glob leaf (``?`` or an inner ``*``) hits no row, and no other string
# leaf on that column hits either, raises IndexError in the executor. While it stands the
# generated test discards such examples instead of failing on every run; set this to
# False once the strict xfail below passes.
KNOWN_GLOB_CRASH = True


class EngineGlobCrashError(Exception):
    """The known executor crash (see ``KNOWN_GLOB_CRASH``)."""


def engine_rows(rule: dict[str, Any], events: list[dict[str, Any]]) -> set[int]:
    engine = SigmaEngine(SigmaCollection.from_dicts([rule]).rules)
    assert engine.plans, engine.unsupported
    try:
        table = engine.match(batch_of(events))
    except IndexError as e:
        if KNOWN_GLOB_CRASH and "out of bounds for axis 0 with size 0" in str(e):
            raise EngineGlobCrashError from e
        raise
    return set(table.column("event_index").to_pylist())


def reference_rows(rule: dict[str, Any], events: list[dict[str, Any]]) -> set[int]:
    """The backend's hits, restricted to the rows the rule's logsource selects."""
    rows = run_queries(to_sql(rule), events)
    selected = datasets(SigmaCollection.from_dicts([rule]).rules[0].logsource)
    if selected is None:
        return rows
    return {i for i in rows if events[i].get("event.dataset") in selected}


# ---------------------------------------------------------------------------------------
# 1. Generated rules over generated events


@settings(
    # DETECT_DIFF_EXAMPLES=5000 for a longer exploration; the default keeps the test < 30 s.
    max_examples=int(os.environ.get("DETECT_DIFF_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
@given(cases())
def test_generated_rules_agree_with_sqlite_backend(case: Case) -> None:
    try:
        ours = engine_rows(case.rule, case.events)
    except EngineGlobCrashError:
        assume(False)
    reference = reference_rows(case.rule, case.events)
    share = "none" if not reference else "all" if len(reference) == len(case.events) else "some"
    event(f"reference hit rows: {share}")
    assert ours == reference, (
        f"rule detection {case.rule['detection']}\nlogsource {case.rule['logsource']}\n"
        f"SQL {to_sql(case.rule)}\nengine {sorted(ours)} vs sqlite {sorted(reference)}\n"
        f"events {case.events}"
    )


# ---------------------------------------------------------------------------------------
# Engine bugs found by the generated test (strict xfail until the lead fixes them)


@pytest.mark.xfail(
    strict=True,
    raises=IndexError,
    reason="executor: a glob leaf with no hit row (and no other hit on its column) "
    "raises IndexError at owners[np.r_[0, bounds]] (src/detect/sigma/executor.py)",
)
def test_engine_bug_glob_leaf_without_hits() -> None:
    rule = {
        "title": "glob",
        "logsource": {"category": "dns"},
        "detection": {"sel": {"dns.question.name": "a?c"}, "condition": "sel"},
    }
    events = [{"event.dataset": "dns", "dns.question.name": "abd"}]
    engine = SigmaEngine(SigmaCollection.from_dicts([rule]).rules)
    assert engine.match(batch_of(events)).num_rows == 0


# ---------------------------------------------------------------------------------------
# Divergences of the reference: what the backend does, and what the specification (and
# so the engine) does instead. The generated space above stays clear of each of them.


def _rule(detection: dict[str, Any], category: str = "proxy") -> dict[str, Any]:
    return {"title": "divergence", "logsource": {"category": category}, "detection": detection}


def test_divergence_ascii_case_folding() -> None:
    """SQLite's NOCASE and LIKE fold A-Z only; Sigma strings are case-insensitive, all of them."""
    rule = _rule(
        {
            "sel_eq": {"url.path": "/ÄRGER"},
            "sel_like": {"user_agent.original|contains": "ÉCOLE"},
            "condition": "1 of sel_*",
        }
    )
    events = [
        {"event.dataset": "http", "url.path": "/ärger"},
        {"event.dataset": "http", "user_agent.original": "x école y"},
        {"event.dataset": "http", "url.path": "/ÄRGER"},
    ]
    assert reference_rows(rule, events) == {2}
    assert engine_rows(rule, events) == {0, 1, 2}


def test_divergence_keyword_search_is_substring_of_event_text() -> None:
    """Keywords: the backend matches ``LIKE '%value%'`` over the whole event's text.

    The engine matches a keyword as a whole string value (wildcards allowed) against every
    string column, case-insensitively. The specification says only "searching for keywords
    across an entire event"; both readings agree on a keyword that is a whole field value
    or is written with ``*`` around it, which is how the generated test stays clear of it.
    """
    rule = _rule({"keywords": ["evil"], "condition": "keywords"})
    events = [
        {"event.dataset": "http", "url.path": "evil"},
        {"event.dataset": "http", "url.path": "/an/evil/path"},
        {"event.dataset": "http", "user_agent.original": "EVIL"},
    ]
    assert reference_rows(rule, events) == {0, 1, 2}
    assert engine_rows(rule, events) == {0, 2}
    starred = _rule({"keywords": ["*evil*"], "condition": "keywords"})
    assert engine_rows(starred, events) == reference_rows(starred, events) == {0, 1, 2}


def test_divergence_cidr_is_a_text_prefix() -> None:
    """The backend expands ``cidr`` into ``LIKE`` prefixes of the canonical text form.

    So a non-address that starts like one matches, and an address written another way
    (leading zeros, IPv4-mapped IPv6) does not. The engine compares 16-byte addresses.
    """
    rule = _rule(
        {"sel": {"destination.ip|cidr": ["10.0.0.0/8", "2001:db8::/32"]}, "condition": "sel"}
    )
    assert to_sql(rule)[0].count("LIKE") == 2
    events = [
        {"event.dataset": "http", "destination.ip": "10.1.2.3"},
        {"event.dataset": "http", "destination.ip": "2001:db8::1"},
        {"event.dataset": "http", "destination.ip": "2001:0db8::1"},  # same address
        {"event.dataset": "http", "destination.ip": "::ffff:10.0.0.1"},  # 10.0.0.1 mapped
        {"event.dataset": "http", "destination.ip": "10.0.0.256"},  # not an address
    ]
    assert reference_rows(rule, events) == {0, 1, 4}
    assert engine_rows(rule, events) == {0, 1, 2, 3}


def test_divergence_list_columns() -> None:
    """A list-typed column (``dns.answers.data``) has no SQL column form.

    Stored as JSON text, equality and ``LIKE`` see the brackets and quotes. The engine
    matches when any element matches (``detect.sigma.compiler``); the generated test only
    uses one-element lists, which the reference stores as the element.
    """
    rule = _rule(
        {
            "sel_eq": {"dns.answers.data": "10.0.0.1"},
            "sel_end": {"dns.answers.data|endswith": ".evil.org"},
            "condition": "1 of sel_*",
        },
        "dns",
    )
    events = [
        {"event.dataset": "dns", "dns.answers.data": ["cdn.example.org", "10.0.0.1"]},
        {"event.dataset": "dns", "dns.answers.data": ["a.evil.org", "10.9.9.9"]},
        {"event.dataset": "dns", "dns.answers.data": ["10.0.0.1"]},
    ]
    with pytest.raises(NotRepresentableError):
        reference_rows(rule, events)
    as_json = [{**e, "dns.answers.data": json.dumps(e["dns.answers.data"])} for e in events]
    assert reference_rows(rule, as_json) == set()
    assert reference_rows(rule, events[2:]) == {0}
    assert engine_rows(rule, events) == {0, 1, 2}


def test_divergence_number_written_as_string() -> None:
    """``destination.port: '80'`` (quoted) is a string in pySigma; SQLite compares it as text
    with the integer column and never matches. Sigma compares values as strings (ANCHORS
    1.1: coerce, numeric when both sides parse), so the engine matches 80.
    """
    rule = _rule({"sel": {"destination.port": "80"}, "condition": "sel"})
    events = [{"event.dataset": "http", "destination.port": 80}]
    assert to_sql(rule) == ["SELECT * FROM logs WHERE `destination.port`='80'"]
    assert reference_rows(rule, events) == set()
    assert engine_rows(rule, events) == {0}


@pytest.mark.xfail(
    strict=True,
    reason="engine regexes are RE2: '$' matches only at the very end, while the Sigma "
    "regex flavour is PCRE, where '$' also matches before a final newline (Python re "
    "too). Minor: reported to the lead, who decides whether to rewrite '$' to '(?:\\n?\\z)'.",
)
def test_divergence_regex_dollar_before_final_newline() -> None:
    """The reference runs ``|re`` with Python's :mod:`re` (SQLite ``REGEXP``), like PCRE."""
    rule = _rule({"sel": {"url.path|re": "a$"}, "condition": "sel"})
    events = [
        {"event.dataset": "http", "url.path": "a\n"},
        {"event.dataset": "http", "url.path": "a"},
    ]
    assert reference_rows(rule, events) == {0, 1}
    assert engine_rows(rule, events) == {0, 1}
