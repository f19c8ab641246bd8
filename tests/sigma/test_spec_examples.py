r"""The Sigma specification's own detection examples, run by the engine.

Two sources (``../shared/datasets/sigma/sigma-specification``, spec v2.1.0):

* ``specification/sigma-rules-specification.md``: its YAML blocks with a ``detection``
  are parsed out of the markdown at test time. They use Windows field names (``Image``,
  ``EventID``, ...); a pySigma field-name mapping renames them onto canonical columns of
  the same kind (string, number) so the engine can run them unchanged otherwise.
* ``specification/sigma-appendix-modifiers.md`` has no YAML blocks; its modifiers are
  written out below as detections over canonical columns, each citing the section.

Every example runs on hand-made events that exercise the documented behaviour.
Correlation and filter examples are out of scope here.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from sigma.collection import SigmaCollection
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import FieldMappingTransformation

from detect.sigma import SigmaEngine
from tests.sigma.test_engine import batch_of

SPEC = Path("sigma") / "sigma-specification" / "specification"

# Spec field name -> canonical column of the same kind.
FIELD_MAP = {
    "Image": "url.path",
    "Description": "user_agent.original",
    "EventLog": "http.request.method",
    "EventID": "destination.port",
    "TicketOptions": "url.query",
    "TicketEncryption": "tls.version",
    "PasswordLastSet": "http.request.referrer",
    "FieldA": "dns.question.name",
    "FieldB": "url.domain",
}
MAPPING = ProcessingPipeline(
    name="spec fields -> canonical",
    items=[ProcessingItem(FieldMappingTransformation(FIELD_MAP))],
)


def _event(**fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"event.dataset": "http"}
    for name, value in fields.items():
        event[FIELD_MAP.get(name, name)] = value
    return event


def _engine(detection: str | dict[str, Any], *, placeholders: Any = None) -> SigmaEngine:
    if isinstance(detection, str):
        detection = yaml.safe_load(detection)
    rule = {"title": "spec example", "logsource": {"category": "proxy"}, "detection": detection}
    parsed = SigmaCollection.from_dicts([rule]).rules[0]
    MAPPING.apply(parsed)
    return SigmaEngine([parsed], placeholders=placeholders)


def _rows(engine: SigmaEngine, events: list[dict[str, Any]]) -> set[int]:
    assert engine.plans, engine.unsupported
    return set(engine.match(batch_of(events)).column("event_index").to_pylist())


# ---------------------------------------------------------------------------------------
# sigma-rules-specification.md, parsed from the markdown

# A distinctive line of each detection block -> (events, rows expected to hit).
RULES_SPEC_CASES: dict[str, tuple[list[dict[str, Any]], set[int]]] = {
    # Yaml File: the Whoami example (single backslashes are literal).
    "whoami.exe'": (
        [
            _event(Image="c:\\windows\\system32\\WHOAMI.EXE"),
            _event(Image="C:\\Windows\\System32\\whoami.exe.bak"),
            _event(Image="C:\\\\Windows\\\\System32\\\\whoami.exe"),
        ],
        {0},
    ),
    # Lists: list of strings = keywords, OR.
    "'svchost.exe -n evil'": (
        [
            _event(Description="evilservice"),
            _event(Image="SVCHOST.EXE -n evil"),
            _event(Description="goodservice"),
        ],
        {0, 1},
    ),
    # Lists: list of maps = OR of the maps; '\\example.exe' is one literal backslash.
    "Image|endswith: '\\\\example.exe'": (
        [
            _event(Image="C:\\tmp\\Example.exe"),
            _event(Description="a TEST EXECUTABLE indeed"),
            _event(Image="C:\\tmp\\xexample.exe"),
            _event(Image="C:\\tmp\\\\example.exe"),
        ],
        {0, 1, 3},
    ),
    # Maps: AND of the map, OR of the EventID list.
    "- 1102": (
        [
            _event(EventLog="security", EventID=1102),
            _event(EventLog="Security", EventID=517),
            _event(EventLog="Security", EventID=4624),
            _event(EventLog="System", EventID=517),
        ],
        {0, 1},
    ),
    "TicketEncryption: '0x17'": (
        [
            _event(
                EventLog="Security",
                EventID=4769,
                TicketOptions="0x40810000",
                TicketEncryption="0x17",
            ),
            _event(
                EventLog="Security",
                EventID=4769,
                TicketOptions="0x40810000",
                TicketEncryption="0x12",
            ),
        ],
        {0},
    ),
    # Special Field Values: not null through a negated null selection.
    "PasswordLastSet: null": (
        [
            _event(EventID=4738, PasswordLastSet="2024-01-01"),
            _event(EventID=4738),
            _event(EventID=4738, PasswordLastSet=""),
        ],
        {0, 2},
    ),
    # Special Field Values, valid example: '' and null in separate selections.
    "selection_main and 1 of selection_empty*": (
        [
            _event(FieldA="something", FieldB=""),
            _event(FieldA="SOMETHING"),
            _event(FieldA="something", FieldB="x"),
            _event(FieldA="other"),
        ],
        {0, 1},
    ),
    # Field Existence: present, even when empty.
    "PasswordLastSet|exists: true": (
        [
            _event(EventID=4738, PasswordLastSet=""),
            _event(EventID=4738),
            _event(EventID=4738, PasswordLastSet="x"),
        ],
        {0, 2},
    ),
    # Keywords search.
    "'event::drop'": (
        [_event(Description="EVENT::CLEAR"), _event(Image="event::drop"), _event(Image="x")],
        {0, 1},
    ),
    # Keywords with '|all': every keyword somewhere in the event.
    "'|all':": (
        [
            _event(Image="OabVirtualDirectory", Description=" -ExternalUrl "),
            _event(Image="OabVirtualDirectory"),
        ],
        {0},
    ),
}
# Blocks that are not runnable detections, and why.
RULES_SPEC_SKIPPED = {
    "{search-identifier} [optional]": "the rule structure outline, not YAML",
    "- ''\n            - null": "the specification's own *invalid* example (null in a list)",
}


def _spec_blocks(shared: Path) -> list[str]:
    text = (shared / SPEC / "sigma-rules-specification.md").read_text(encoding="utf-8")
    return [b for b in re.findall(r"```ya?ml\n(.*?)```", text, re.S) if "detection" in b]


def _detection(block: str) -> dict[str, Any]:
    data = yaml.safe_load(block)
    detection = dict(data["detection"])
    if "condition" not in detection:
        names = [k for k in detection if not k.startswith("_")]
        detection["condition"] = names[0] if len(names) == 1 else "1 of them"
    return detection


@pytest.mark.shared
def test_every_detection_block_of_the_rules_spec_is_covered(shared_datasets: Path) -> None:
    blocks = _spec_blocks(shared_datasets)
    assert len(blocks) >= 10
    for block in blocks:
        keys = [k for k in [*RULES_SPEC_CASES, *RULES_SPEC_SKIPPED] if k in block]
        assert len(keys) == 1, f"block matched by {keys}:\n{block}"
    for key in [*RULES_SPEC_CASES, *RULES_SPEC_SKIPPED]:
        assert sum(key in b for b in blocks) == 1, f"{key!r} found in no block"


@pytest.mark.shared
@pytest.mark.parametrize("key", list(RULES_SPEC_CASES))
def test_rules_spec_example(shared_datasets: Path, key: str) -> None:
    (block,) = [b for b in _spec_blocks(shared_datasets) if key in b]
    events, expected = RULES_SPEC_CASES[key]
    assert _rows(_engine(_detection(block)), events) == expected


# ---------------------------------------------------------------------------------------
# Text examples of sigma-rules-specification.md (String Wildcard, Escape Character,
# Condition): prose, not YAML blocks, so written out here.


def test_string_wildcard_examples() -> None:
    """String Wildcard: ``prog?.exe`` and ``antivirus_V*.exe``."""
    engine = _engine({"sel": {"url.path": ["prog?.exe", "antivirus_V*.exe"]}, "condition": "sel"})
    paths = ["progA.exe", "prog.exe", "progAB.exe", "ANTIVIRUS_v21.2.1.exe", "antivirus_V.exe"]
    assert _rows(engine, [_event(Image=p) for p in paths]) == {0, 3, 4}


@pytest.mark.parametrize(
    ("value", "matches", "misses"),
    [
        # plain backslash not followed by a wildcard: single or double, one backslash
        ("a\\b", ["a\\b"], ["a\\\\b"]),
        ("a\\\\b", ["a\\b"], ["a\\\\b"]),
        # escaped wildcard is a plain character
        ("a\\*", ["a*"], ["ab"]),
        ("a\\?", ["a?"], ["ab"]),
        # escaped backslash, then a wildcard
        ("a\\\\*", ["a\\", "a\\bc"], ["abc"]),
        # three backslashes: a backslash and a plain star
        ("a\\\\\\*", ["a\\*"], ["a\\b", "a\\\\*"]),
        # four backslashes: two plain backslashes
        ("a\\\\\\\\", ["a\\\\"], ["a\\"]),
    ],
)
def test_escape_character_examples(value: str, matches: list[str], misses: list[str]) -> None:
    """Escape Character: every case of the summary list."""
    engine = _engine({"sel": {"url.path": value}, "condition": "sel"})
    events = [_event(Image=v) for v in [*matches, *misses]]
    assert _rows(engine, events) == set(range(len(matches)))


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("keywords1 or keywords2", {0, 1, 3}),
        ("1 of them", {0, 1, 2, 3, 4}),
        ("all of them", set()),
        ("all of selection*", {2, 3}),
        ("1 of selection* and keywords1", {3}),
        ("1 of selection* and not 1 of filter*", {2}),
        ("keywords1 and not filters", {0, 3}),
        ("selection1 and (keywords1 or keywords2)", {3}),
        # precedence: or < and < not
        ("keywords2 or selection1 and keywords1", {1, 3}),
        ("not keywords1 and selection2", {2}),
        # 'them' leaves out identifiers starting with '_'
        ("1 of them and not _example", {0, 1, 2, 3}),
    ],
)
def test_condition_examples(condition: str, expected: set[int]) -> None:
    """Condition: the expressions the section lists, on five events."""
    detection = {
        "keywords1": {"url.path": "k1"},
        "keywords2": {"user_agent.original": "k2"},
        "selection1": {"dns.question.name": "s1"},
        "selection2": {"url.domain": "s2"},
        "filters": {"url.query": "f"},
        "filter_b": {"url.query": "fb"},
        "_example": {"url.full": "x"},
        "condition": condition,
    }
    events = [
        _event(**{"url.path": "k1"}),
        _event(**{"user_agent.original": "k2"}),
        _event(**{"dns.question.name": "s1", "url.domain": "s2"}),
        _event(
            **{"dns.question.name": "s1", "url.domain": "s2", "url.path": "k1", "url.query": "fb"}
        ),
        _event(**{"url.full": "x", "url.query": "f"}),
    ]
    assert _rows(_engine(detection), events) == expected


def test_condition_list_is_or_linked() -> None:
    """Condition: a list of conditions, OR-linked."""
    detection = {
        "a": {"url.path": "a"},
        "b": {"url.path": "b"},
        "condition": ["a", "b"],
    }
    events = [_event(Image=v) for v in ("a", "b", "c")]
    assert _rows(_engine(detection), events) == {0, 1}


def test_placeholders_need_expand_and_values() -> None:
    """Placeholders: only with ``expand``; a tool that cannot resolve them rejects the rule."""
    literal = _engine({"sel": {"url.domain": "%Servers%"}, "condition": "sel"})
    assert _rows(literal, [_event(FieldB="%servers%"), _event(FieldB="srv1")]) == {0}
    rejected = _engine({"sel": {"url.domain|expand": "%Servers%"}, "condition": "sel"})
    assert not rejected.plans and "Servers" in rejected.unsupported[0].reason
    expanded = _engine(
        {"sel": {"url.domain|expand": "%Servers%"}, "condition": "sel"},
        placeholders={"Servers": ["srv1", "dc1"]},
    )
    events = [_event(FieldB="SRV1"), _event(FieldB="dc1"), _event(FieldB="%Servers%")]
    assert _rows(expanded, events) == {0, 1}


def test_placeholder_value_is_a_pattern() -> None:
    """Placeholders: "%Servers% is replaced with the pattern srv*"."""
    engine = _engine(
        {"sel": {"url.domain|expand": "%Servers%"}, "condition": "sel"},
        placeholders={"Servers": ["srv*"]},
    )
    assert _rows(engine, [_event(FieldB="SRV1"), _event(FieldB="web1")]) == {0}


# ---------------------------------------------------------------------------------------
# sigma-appendix-modifiers.md, written out (section in each docstring)


def _b64_offsets(text: bytes) -> list[str]:
    return [base64.b64encode(b"x" * i + text + b"yz").decode() for i in range(3)]


MODIFIER_CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]], set[int]]] = [
    (
        "Generic: all (AND instead of OR)",
        {"url.query|contains|all": ["cmd=", "EXEC"]},
        [{"url.query": "x?cmd=exec"}, {"url.query": "cmd=ls"}, {"url.query": "exec"}],
        {0},
    ),
    (
        "Generic: startswith replaces 'adm*'",
        {"url.path|startswith": "adm"},
        [{"url.path": "ADMIN"}, {"url.path": "xadm"}, {"url.path": "adm"}],
        {0, 2},
    ),
    (
        "Generic: endswith replaces '*\\cmd.exe'",
        {"url.path|endswith": "\\cmd.exe"},
        [
            {"url.path": "C:\\x\\CMD.EXE"},
            {"url.path": "C:\\x\\cmd.exe.txt"},
            {"url.path": "xcmd.exe"},
        ],
        {0},
    ),
    (
        "Generic: contains",
        {"url.path|contains": "evil"},
        [{"url.path": "a/EVIL/b"}, {"url.path": "evi"}],
        {0},
    ),
    (
        "Generic: exists (presence, not value)",
        {"url.query|exists": True},
        [{"url.query": ""}, {"url.query": "x"}, {}],
        {0, 1},
    ),
    (
        "Generic: exists false",
        {"url.query|exists": False},
        [{"url.query": ""}, {}],
        {1},
    ),
    (
        "Generic: cased",
        {"url.path|cased|contains": "Evil"},
        [{"url.path": "xEvilx"}, {"url.path": "xevilx"}],
        {0},
    ),
    (
        "Generic: neq",
        {"url.path|neq": ["a", "b"]},
        [{"url.path": "A"}, {"url.path": "b"}, {"url.path": "c"}],
        {2},
    ),
    (
        "String: windash (-, /, en dash, em dash, horizontal bar)",
        {"url.query|windash|contains": " -exec"},
        [{"url.query": f"x {d}exec"} for d in "-/–—―"] + [{"url.query": "x +exec"}],
        {0, 1, 2, 3, 4},
    ),
    (
        "Regular Expression: case-sensitive by default",
        {"url.path|re": "^/Admin/"},
        [{"url.path": "/Admin/x"}, {"url.path": "/admin/x"}, {"url.path": "x/Admin/"}],
        {0},
    ),
    (
        "Regular Expression: i",
        {"url.path|re|i": "^/admin/(a|b)+[0-9]{1,2}$"},
        [{"url.path": "/ADMIN/ab12"}, {"url.path": "/admin/c1"}, {"url.path": "/admin/a123"}],
        {0},
    ),
    (
        "Regular Expression: m (^/$ at line ends)",
        {"url.query|re|m": "^b$"},
        [{"url.query": "a\nb\nc"}, {"url.query": "a\nbc"}],
        {0},
    ),
    (
        "Regular Expression: without m, ^ is the start of the value",
        {"url.query|re": "^b"},
        [{"url.query": "a\nb"}, {"url.query": "b"}],
        {1},
    ),
    (
        "Regular Expression: s (dot matches newline)",
        {"url.query|re|s": "a.b"},
        [{"url.query": "a\nb"}, {"url.query": "axb"}],
        {0, 1},
    ),
    (
        "Regular Expression: without s, dot does not match newline",
        {"url.query|re": "a.b"},
        [{"url.query": "a\nb"}, {"url.query": "axb"}],
        {1},
    ),
    (
        "Regular Expression: [^a-z] class, unanchored search",
        {"url.query|re": "id=[^a-z]"},
        [{"url.query": "x&id=1"}, {"url.query": "id=a"}],
        {0},
    ),
    (
        "Encoding: base64",
        {"url.query|base64": "cmd"},
        [{"url.query": base64.b64encode(b"cmd").decode()}, {"url.query": "cmd"}],
        {0},
    ),
    (
        "Encoding: base64offset|contains (three shifts)",
        {"url.query|base64offset|contains": "http://"},
        [{"url.query": v} for v in _b64_offsets(b"http://")]
        + [{"url.query": base64.b64encode(b"nothing here").decode()}],
        {0, 1, 2},
    ),
    (
        "Encoding: wide (utf16le)|base64offset|contains",
        {"url.query|wide|base64offset|contains": "cmd"},
        [{"url.query": v} for v in _b64_offsets("cmd".encode("utf-16-le"))]
        + [{"url.query": v} for v in _b64_offsets(b"cmd")],
        {0, 1, 2},
    ),
    (
        "Encoding: wide (alias of utf16le)|base64",
        {"url.query|wide|base64": "cmd"},
        [{"url.query": base64.b64encode("cmd".encode("utf-16-le")).decode()}],
        {0},
    ),
    (
        "Encoding: utf16be|base64",
        {"url.query|utf16be|base64": "cmd"},
        [
            {"url.query": base64.b64encode("cmd".encode("utf-16-be")).decode()},
            {"url.query": base64.b64encode("cmd".encode("utf-16-le")).decode()},
        ],
        {0},
    ),
    (
        "Encoding: utf16 (BOM, little endian)|base64",
        {"url.query|utf16|base64": "cmd"},
        [
            {"url.query": base64.b64encode(b"\xff\xfe" + "cmd".encode("utf-16-le")).decode()},
            {"url.query": base64.b64encode("cmd".encode("utf-16-le")).decode()},
        ],
        {0},
    ),
    (
        "Numeric: lt, lte, gt, gte",
        {
            "destination.port|gt": 1000,
            "destination.port|lte": 2000,
            "http.response.status_code|gte": 400,
            "http.response.status_code|lt": 500,
        },
        [
            {"destination.port": 2000, "http.response.status_code": 400},
            {"destination.port": 1000, "http.response.status_code": 404},
            {"destination.port": 1500, "http.response.status_code": 500},
            {"destination.port": 1001, "http.response.status_code": 499},
        ],
        {0, 3},
    ),
    (
        "Time: minute, hour, day, month, year",
        {
            "@timestamp|minute": 5,
            "@timestamp|hour": 3,
            "@timestamp|day": 31,
            "@timestamp|month": 12,
            "@timestamp|year": 2025,
        },
        [
            {"@timestamp": dt.datetime(2025, 12, 31, 3, 5, tzinfo=dt.UTC)},
            {"@timestamp": dt.datetime(2025, 12, 31, 4, 5, tzinfo=dt.UTC)},
            {"@timestamp": dt.datetime(2024, 12, 31, 3, 5, tzinfo=dt.UTC)},
        ],
        {0},
    ),
    (
        "IP: cidr (DestinationIp|cidr: 10.0.0.0/8), IPv4 and IPv6",
        {"destination.ip|cidr": ["10.0.0.0/8", "2001:db8::/32"]},
        [
            {"destination.ip": "10.255.0.1"},
            {"destination.ip": "11.0.0.1"},
            {"destination.ip": "2001:0DB8::1"},
            {"destination.ip": "2001:db9::1"},
        ],
        {0, 2},
    ),
    (
        "Specific: fieldref",
        {"tls.server.subject|fieldref": "tls.server.issuer"},
        [
            {"tls.server.subject": "CN=a", "tls.server.issuer": "cn=A"},
            {"tls.server.subject": "CN=a", "tls.server.issuer": "CN=b"},
            {"tls.server.subject": "CN=a"},
        ],
        {0},
    ),
    (
        "Specific: fieldref with neq",
        {"tls.server.subject|fieldref|neq": "tls.server.issuer"},
        [
            {"tls.server.subject": "CN=a", "tls.server.issuer": "CN=a"},
            {"tls.server.subject": "CN=a", "tls.server.issuer": "CN=b"},
        ],
        {1},
    ),
]


@pytest.mark.parametrize(
    ("section", "selection", "events", "expected"),
    MODIFIER_CASES,
    ids=[c[0] for c in MODIFIER_CASES],
)
def test_modifier_appendix(
    section: str, selection: dict[str, Any], events: list[dict[str, Any]], expected: set[int]
) -> None:
    del section
    engine = _engine({"sel": selection, "condition": "sel"})
    assert _rows(engine, [{"event.dataset": "http", **e} for e in events]) == expected


def test_utf16le_is_the_wide_modifier() -> None:
    """Encoding: the specification names ``utf16le`` (``wide`` its alias); pySigma 2.0.1 only
    registers ``wide``, so :mod:`detect.sigma` registers ``utf16le`` as the same modifier."""
    import base64

    engine = _engine({"sel": {"url.query|utf16le|base64": "cmd"}, "condition": "sel"})
    wide = _engine({"sel": {"url.query|wide|base64": "cmd"}, "condition": "sel"})
    encoded = base64.b64encode("cmd".encode("utf-16-le")).decode()
    events = [{"event.dataset": "http", "url.query": q} for q in (encoded, "cmd")]
    assert _rows(engine, events) == _rows(wide, events) == {0}


def test_all_on_a_single_value() -> None:
    """Generic: the specification disallows ``all`` on a single value; pySigma accepts it,
    and the engine then matches the value alone (AND of one value)."""
    engine = _engine({"sel": {"url.query|all": "x"}, "condition": "sel"})
    assert _rows(engine, [_event(TicketOptions="X"), _event(TicketOptions="y")]) == {0}
