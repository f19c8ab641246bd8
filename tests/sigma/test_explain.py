"""``detect.sigma.explain``: which detections held for a hit, on which fields and values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from sigma.collection import SigmaCollection

from detect.sigma import LoadedRule, SigmaEngine, UnsupportedError, parse_rules
from detect.sigma.explain import DetectionMatch, FieldValue, RuleExplainer, explain
from tests.sigma.test_engine import PACK, RULE_FILES, batch_of, rule_yaml


def rule_of(detection: str, logsource: str = "category: dns"):
    return SigmaCollection.from_yaml(rule_yaml(detection, logsource)).rules[0]


def by_name(detections: tuple[DetectionMatch, ...]) -> dict[str, tuple[FieldValue, ...]]:
    return {d.name: d.fields for d in detections}


EVENTS = [
    {
        "event.dataset": "http",
        "url.path": "/x/Setup.EXE",
        "url.domain": "dl.example",
        "http.response.status_code": 200,
    },
    {
        "event.dataset": "http",
        "url.path": "/x/setup.exe",
        "url.domain": "a.microsoft.com",
        "http.response.status_code": 200,
    },
    {
        "event.dataset": "http",
        "url.path": "/index.html",
        "url.domain": "dl.example",
        "http.response.status_code": 200,
    },
    {
        "event.dataset": "dns",
        "url.path": "/x/Setup.EXE",
        "url.domain": "dl.example",
        "http.response.status_code": 200,
    },
]
DOWNLOAD = """
selection:
    url.path|endswith: ['.exe', '.dll']
    http.response.status_code: 200
filter:
    url.domain|endswith: '.microsoft.com'
condition: selection and not filter
"""


def test_hits_explained_with_detections_fields_values() -> None:
    rule = rule_of(DOWNLOAD, "category: proxy")
    batch = batch_of(EVENTS)
    explainer = RuleExplainer(rule)
    assert explainer.hits(batch).tolist() == [0]  # 1: filtered, 2: no .exe, 3: not http
    [hit] = explainer.explain(batch)
    assert hit.row == 0
    assert hit.hit
    assert by_name(hit.detections) == {
        "selection": (
            FieldValue("url.path", "/x/Setup.EXE", "endswith '.exe'"),
            FieldValue("http.response.status_code", 200, "= 200"),
        ),
    }


def test_misses_say_what_held() -> None:
    rule = rule_of(DOWNLOAD, "category: proxy")
    batch = batch_of(EVENTS)
    filtered, no_exe, wrong_source = explain(rule, batch, [1, 2, 3])
    assert not filtered.hit
    assert by_name(filtered.detections)["filter"] == (
        FieldValue("url.domain", "a.microsoft.com", "endswith '.microsoft.com'"),
    )
    assert not no_exe.hit
    assert no_exe.detections == ()  # the status code alone does not make the selection
    assert not wrong_source.hit  # selection holds, logsource does not
    assert [d.name for d in wrong_source.detections] == ["selection"]
    assert RuleExplainer(rule).in_logsource(batch).tolist() == [True, True, True, False]


def test_no_hits_no_explanations() -> None:
    rule = rule_of(DOWNLOAD, "category: proxy")
    assert explain(rule, batch_of(EVENTS[2:3])) == []


def test_one_of_keywords_lists_and_cidr() -> None:
    rule = rule_of("""
sel_name:
    dns.question.name|contains: 'evil'
sel_answer:
    dns.answers.data|cidr: '203.0.113.0/24'
keywords:
    - '*ZZTOP*'
condition: 1 of sel_* or keywords
""")
    batch = batch_of(
        [
            {
                "event.dataset": "dns",
                "dns.question.name": "www.EVIL.example",
                "dns.answers.data": ["192.0.2.1", "203.0.113.9"],
            },
            {"event.dataset": "dns", "dns.question.name": "ok.example", "url.query": "a=zztop"},
            {"event.dataset": "dns", "dns.question.name": "ok.example"},
        ]
    )
    hits = RuleExplainer(rule).explain(batch)
    assert [h.row for h in hits] == [0, 1]
    first = by_name(hits[0].detections)
    assert first["sel_name"] == (
        FieldValue("dns.question.name", "www.EVIL.example", "contains 'evil'"),
    )
    assert first["sel_answer"] == (
        FieldValue("dns.answers.data", ["192.0.2.1", "203.0.113.9"], "cidr 203.0.113.0/24"),
    )
    assert by_name(hits[1].detections) == {
        "keywords": (FieldValue("url.query", "a=zztop", "contains 'zztop'"),),
    }


def test_fieldref_compare_null_and_regex_descriptions() -> None:
    rule = rule_of(
        """
sel_ref:
    url.full|fieldref|endswith: url.path
sel_num:
    source.bytes|gte: 1000
sel_null:
    user_agent.original: null
sel_re:
    url.path|re: '^/a+$'
condition: all of them
""",
        "category: proxy",
    )
    batch = batch_of(
        [
            {
                "event.dataset": "http",
                "url.full": "http://h/aa",
                "url.path": "/aa",
                "source.bytes": 4096,
            }
        ]
    )
    [hit] = explain(rule, batch)
    assert by_name(hit.detections) == {
        "sel_ref": (FieldValue("url.full", "http://h/aa", "ends with field url.path ('/aa')"),),
        "sel_num": (FieldValue("source.bytes", 4096, ">= 1000"),),
        "sel_null": (FieldValue("user_agent.original", None, "is null"),),
        "sel_re": (FieldValue("url.path", "/aa", "re '^/a+$'"),),
    }


def test_unsupported_rule_raises_with_the_engine_reason() -> None:
    rule = rule_of("sel: {Image: x}\ncondition: sel")
    with pytest.raises(UnsupportedError, match="not a canonical column"):
        RuleExplainer(rule)


def test_unused_detection_that_cannot_compile_is_listed_not_fatal() -> None:
    rule = rule_of("sel: {dns.question.name: x}\nunused: {Image: y}\ncondition: sel")
    explainer = RuleExplainer(rule)
    assert "not a canonical column" in explainer.unexplained["unused"]
    [hit] = explainer.explain(batch_of([{"event.dataset": "dns", "dns.question.name": "X"}]))
    assert [d.name for d in hit.detections] == ["sel"]


def test_detection_masks() -> None:
    rule = rule_of(DOWNLOAD, "category: proxy")
    masks = RuleExplainer(rule).detection_masks(batch_of(EVENTS))
    assert masks["selection"].tolist() == [True, True, False, True]
    assert masks["filter"].tolist() == [False, True, False, False]


@pytest.mark.parametrize("path", RULE_FILES, ids=[p.stem for p in RULE_FILES])
def test_pack_hits_agree_with_the_engine_and_every_hit_has_a_reason(path: Path) -> None:
    """On the pack's own test events, the explainer hits what the engine hits."""
    events = yaml.safe_load((PACK / "tests" / path.name).read_text())
    rows = events.get("positive", []) + events.get("negative", [])
    batch = batch_of(rows)
    [loaded], _ = parse_rules([path])
    expected = SigmaEngine([LoadedRule(loaded.rule, loaded.file)]).match(batch)
    explainer = RuleExplainer(loaded.rule)
    hits = explainer.hits(batch)
    assert hits.tolist() == sorted(expected.column("event_index").to_pylist())
    masks = explainer.detection_masks(batch)
    for ex in explainer.explain(batch):
        assert ex.hit
        assert ex.detections, f"hit {ex.row} without a detection"
        for d in ex.detections:
            assert masks[d.name][ex.row]
    assert np.array_equal(hits, np.flatnonzero(np.isin(np.arange(batch.num_rows), hits)))


def test_module_example_runs() -> None:
    import doctest

    import detect.sigma.explain

    result = doctest.testmod(detect.sigma.explain, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0
