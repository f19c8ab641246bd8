"""Sigma taxonomy field names -> canonical columns, as pySigma processing pipelines (issue 4, §2).

Rules written with canonical (ECS) column names run as they are. Rules from the wild use the
Sigma taxonomy's names: W3C names for ``category: proxy`` / ``webserver`` (``c-uri``,
``cs-host``, ``sc-status``), ``query`` / ``answer`` / ``record_type`` for ``category: dns``,
``src_ip`` / ``dst_port`` for ``category: firewall``, Zeek's own log field names for
``product: zeek`` (``id.orig_h``, ``qtype_name``, ``server_name``) and EVE JSON paths for
``product: suricata`` (``dest_ip``, ``http.hostname``, ``tls.sni``).

:data:`MAPPINGS` is the one table (rendered in ``docs/sigma-field-mapping.md`` by
:func:`markdown`). Each row is a rename that keeps the value semantics, checked against what
the readers put in that column for that dataset. Fields whose values would need rewriting
(Zeek ``qtype`` numbers, ``duration`` in seconds, W3C ``cs-version`` ``HTTP/1.1``) are listed in
:data:`NOT_MAPPED` with the reason and stay unmapped, so the engine reports the rule
(``field 'x' is not a canonical column``) instead of running it with wrong values.

One refinement is not a plain rename: a field holding "path and query as logged" (Zeek
``uri``, Suricata ``http.url``, webserver ``cs-uri-query``) has no canonical column of its own;
it is a suffix of ``url.full`` (``http://`` + host + uri). It is mapped to ``url.full`` only in
detection items whose every value starts with a wildcard (``|contains``, ``|endswith``), where
matching ``url.full`` is matching the logged value; ``|startswith``, exact values and regexes
stay unmapped and the rule is reported.

Use from the engine, before compiling each rule::

    rule = apply_pipeline(rule)     # a mapped copy; the rule passed in is not changed
    compiled = compile_rule(rule)
    selected = datasets(rule.logsource)

The pipeline never changes the log source, so :func:`detect.sigma.logsource.datasets` gives
the same answer before and after.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Literal

from sigma.processing.conditions import LogsourceCondition, MatchStringCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import FieldMappingTransformation
from sigma.rule import SigmaLogSource, SigmaRule

__all__ = [
    "MAPPINGS",
    "NOT_MAPPED",
    "FieldMap",
    "NotMapped",
    "Source",
    "apply_pipeline",
    "markdown",
    "network_pipeline",
    "pipeline_for",
]

PIPELINE_NAME = "detect: Sigma taxonomy -> canonical ECS columns"
# A detection item's values all start with a wildcard (|contains, |endswith, '*x').
_UNANCHORED = r"^\*"


@dataclass(frozen=True)
class Source:
    """A Sigma log source pattern; unset attributes match anything (pySigma's containment)."""

    category: str | None = None
    product: str | None = None
    service: str | None = None

    @property
    def logsource(self) -> SigmaLogSource:
        return SigmaLogSource(self.category, self.product, self.service)

    def condition(self) -> LogsourceCondition:
        return LogsourceCondition(
            category=self.category, product=self.product, service=self.service
        )

    def matches(self, logsource: SigmaLogSource | None) -> bool:
        return logsource is not None and logsource in self.logsource

    @property
    def label(self) -> str:
        parts = [
            f"{k}: {v}"
            for k, v in (
                ("category", self.category),
                ("product", self.product),
                ("service", self.service),
            )
            if v is not None
        ]
        return ", ".join(parts)

    @property
    def ident(self) -> str:
        return "_".join(v for v in (self.category, self.product, self.service) if v)


Match = Literal["any", "unanchored"]


@dataclass(frozen=True)
class FieldMap:
    """Sigma ``field`` under ``source`` is canonical ``column``.

    ``match="unanchored"``: only detection items whose values all start with a wildcard.
    """

    source: Source
    field: str
    column: str
    match: Match = "any"
    note: str = ""


@dataclass(frozen=True)
class NotMapped:
    """A taxonomy field deliberately left unmapped, and why (documented, reported by the engine)."""

    source: Source
    field: str
    reason: str


# --------------------------------------------------------------------------------- sources

PROXY = Source(category="proxy")
WEBSERVER = Source(category="webserver")
FIREWALL = Source(category="firewall")
DNS = Source(category="dns")
ZEEK = Source(product="zeek")
SURICATA = Source(product="suricata")


def zeek(service: str) -> Source:
    return Source(product="zeek", service=service)


# --------------------------------------------------------------------------------- notes

_PORT_STRIPPED = "port stripped: url.domain holds the host name only"
_PATH_QUERY = "path and query as logged: url.full ends with it; |contains / |endswith values only"
_LIST_ANY = "list column: matches when any element matches"
_FIRST = "first element only (the reader keeps element 0 of the set)"

Row = tuple[str, str] | tuple[str, str, Match] | tuple[str, str, Match, str]


def _rows(source: Source, rows: Iterable[Row]) -> list[FieldMap]:
    """``(field, column[, match[, note]])`` rows of one log source."""
    return [FieldMap(source, *row) for row in rows]


def _w3c(uri: Match, uri_note: str) -> list[Row]:
    """W3C extended log names shared by proxy, webserver and Zeek http rules.

    ``uri`` says how ``c-uri`` / ``cs-uri`` map: a proxy logs the absolute URL (rules test
    ``c-uri|startswith: 'http'``), a web server the path and query.
    """
    return [
        ("c-uri", "url.full", uri, uri_note),
        ("cs-uri", "url.full", uri, uri_note),
        ("c-uri-stem", "url.path", "any", "W3C uri-stem: the path"),
        ("cs-uri-stem", "url.path", "any", "W3C uri-stem: the path"),
        (
            "c-uri-query",
            "url.full",
            "unanchored",
            "W3C says query, the taxonomy says path, SigmaHQ rules put path and query in it: "
            "url.full holds both; |contains / |endswith values only",
        ),
        (
            "cs-uri-query",
            "url.full",
            "unanchored",
            "W3C says query, SigmaHQ rules put path and query in it (cs-uri-query|contains|all: "
            "['/geoserver/ows', 'CQL_FILTER=']): url.full holds both; |contains / |endswith "
            "values only",
        ),
        ("c-useragent", "user_agent.original"),
        ("cs-user-agent", "user_agent.original"),
        ("cs-host", "url.domain", "any", _PORT_STRIPPED),
        ("r-dns", "url.domain", "any", "taxonomy: the domain requested, as cs-host"),
        ("cs-method", "http.request.method"),
        ("cs-referrer", "http.request.referrer"),
        ("cs-referer", "http.request.referrer", "any", "spelling used by SigmaHQ rules"),
        ("sc-status", "http.response.status_code"),
        ("c-ip", "source.ip"),
        ("src_ip", "source.ip"),
        ("s-ip", "destination.ip"),
        ("dst_ip", "destination.ip"),
        ("s-port", "destination.port"),
    ]


_ABSOLUTE = "the URL requested, absolute as a proxy logs it"
_ZEEK_COMMON: list[Row] = [
    ("id.orig_h", "source.ip"),
    ("id.orig_p", "source.port"),
    ("id.resp_h", "destination.ip"),
    ("id.resp_p", "destination.port"),
    ("proto", "network.transport"),
    ("uid", "event.id"),
    ("community_id", "network.community_id"),
]

MAPPINGS: tuple[FieldMap, ...] = (
    *_rows(PROXY, _w3c("any", _ABSOLUTE)),
    *_rows(WEBSERVER, _w3c("unanchored", _PATH_QUERY)),
    *_rows(
        FIREWALL,
        [
            ("src_ip", "source.ip"),
            ("src_port", "source.port"),
            ("dst_ip", "destination.ip"),
            ("dst_port", "destination.port"),
        ],
    ),
    *_rows(
        DNS,
        [
            ("query", "dns.question.name"),
            ("answer", "dns.answers.data", "any", _LIST_ANY + " (record data)"),
            ("record_type", "dns.question.type", "any", "type mnemonic: A, TXT, ..."),
        ],
    ),
    # Zeek: every log path has the conn id; then one table per path (as the reader maps it)
    *_rows(ZEEK, _ZEEK_COMMON),
    *_rows(
        zeek("conn"),
        [
            ("service", "network.protocol", "any", "as logged: ssl, dns, gssapi,smb,krb"),
            ("orig_bytes", "source.bytes"),
            ("resp_bytes", "destination.bytes"),
            ("orig_pkts", "source.packets"),
            ("resp_pkts", "destination.packets"),
            ("conn_state", "network.connection.state"),
            ("orig_l2_addr", "source.mac"),
            ("resp_l2_addr", "destination.mac"),
        ],
    ),
    *_rows(
        zeek("dns"),
        [
            ("query", "dns.question.name"),
            ("qtype_name", "dns.question.type"),
            ("qclass_name", "dns.question.class"),
            ("rcode_name", "dns.response_code"),
            ("answers", "dns.answers.data", "any", _LIST_ANY),
            ("TTLs", "dns.answers.ttl", "any", _LIST_ANY + "; seconds"),
            ("trans_id", "dns.id"),
        ],
    ),
    *_rows(
        zeek("http"),
        [
            ("method", "http.request.method"),
            ("host", "url.domain", "any", _PORT_STRIPPED),
            ("uri", "url.full", "unanchored", _PATH_QUERY),
            ("referrer", "http.request.referrer"),
            ("user_agent", "user_agent.original"),
            ("status_code", "http.response.status_code"),
            ("request_body_len", "http.request.body.bytes"),
            ("response_body_len", "http.response.body.bytes"),
            ("version", "http.version", "any", "1.1, as ECS"),
            ("resp_mime_types", "http.response.mime_type", "any", _FIRST),
            # W3C names, as some SigmaHQ Zeek http rules use them (c-useragent, c-uri)
            *_w3c("unanchored", _PATH_QUERY),
        ],
    ),
    *_rows(
        zeek("ssl"),
        [
            ("version", "tls.version", "any", "as Zeek logs it: TLSv12"),
            ("cipher", "tls.cipher"),
            ("server_name", "tls.server.name"),
            ("established", "tls.established"),
            ("ja3", "tls.client.ja3"),
            ("ja3s", "tls.server.ja3s"),
            ("subject", "tls.server.subject"),
            ("issuer", "tls.server.issuer"),
            ("cert_chain_fps", "tls.server.hash.sha256", "any", _FIRST + ": the leaf"),
            ("resp_certificate_sha1", "tls.server.hash.sha1"),
        ],
    ),
    *_rows(
        zeek("files"),
        [
            ("filename", "file.name"),
            ("mime_type", "file.mime_type"),
            ("md5", "file.hash.md5"),
            ("sha1", "file.hash.sha1"),
            ("sha256", "file.hash.sha256"),
        ],
    ),
    *_rows(
        zeek("x509"),
        [
            ("certificate.subject", "file.x509.subject.distinguished_name"),
            ("certificate.issuer", "file.x509.issuer.distinguished_name"),
            ("certificate.serial", "file.x509.serial_number"),
            ("san.dns", "file.x509.alternative_names", "any", _LIST_ANY),
            (
                "fingerprint",
                "file.hash.sha256",
                "any",
                "Zeek's default X509::hash_function is SHA-256",
            ),
        ],
    ),
    *_rows(
        zeek("smtp"),
        [
            ("mailfrom", "email.from.address"),
            ("rcptto", "email.to.address", "any", _LIST_ANY),
            ("subject", "email.subject"),
        ],
    ),
    *_rows(
        zeek("notice"),
        [
            ("note", "rule.name"),
            ("src", "source.ip", "any", "Zeek copies id.orig_h here when there is a conn"),
            ("dst", "destination.ip", "any", "as src"),
            ("p", "destination.port", "any", "as src"),
        ],
    ),
    *_rows(zeek("weird"), [("name", "rule.name")]),
    # Suricata EVE: JSON paths are unique across event types, so one table for all
    *_rows(
        SURICATA,
        [
            ("src_ip", "source.ip"),
            ("src_port", "source.port"),
            ("dest_ip", "destination.ip"),
            ("dest_port", "destination.port"),
            ("proto", "network.transport", "any", "lowercased by the reader"),
            ("app_proto", "network.protocol", "any", "'failed' is null"),
            ("community_id", "network.community_id"),
            ("flow_id", "event.id", "any", "as text"),
            ("flow.state", "network.connection.state"),
            ("flow.bytes_toserver", "source.bytes"),
            ("flow.bytes_toclient", "destination.bytes"),
            ("flow.pkts_toserver", "source.packets"),
            ("flow.pkts_toclient", "destination.packets"),
            ("dns.rrname", "dns.question.name"),
            ("dns.rrtype", "dns.question.type"),
            ("dns.rcode", "dns.response_code"),
            ("http.hostname", "url.domain"),
            ("http.url", "url.full", "unanchored", _PATH_QUERY),
            ("http.http_method", "http.request.method"),
            ("http.http_user_agent", "user_agent.original"),
            ("http.http_refer", "http.request.referrer"),
            ("http.status", "http.response.status_code"),
            ("http.http_content_type", "http.response.mime_type"),
            ("http.length", "http.response.body.bytes"),
            ("tls.sni", "tls.server.name"),
            ("tls.subject", "tls.server.subject"),
            ("tls.issuerdn", "tls.server.issuer"),
            ("tls.ja3.hash", "tls.client.ja3"),
            ("tls.ja3s.hash", "tls.server.ja3s"),
            ("fileinfo.filename", "file.name"),
            ("fileinfo.md5", "file.hash.md5"),
            ("fileinfo.sha1", "file.hash.sha1"),
            ("fileinfo.sha256", "file.hash.sha256"),
            ("fileinfo.size", "file.size"),
            ("alert.signature", "rule.name"),
            ("alert.signature_id", "rule.id", "any", "as text"),
            ("alert.category", "rule.category"),
            ("alert.severity", "event.severity"),
            ("alert.action", "event.action"),
        ],
    ),
)

_VALUE = "values would need rewriting"
_NO_COLUMN = "no canonical column"

NOT_MAPPED: tuple[NotMapped, ...] = tuple(
    NotMapped(source, field, reason)
    for source, rows in (
        (
            PROXY,
            [
                ("c-uri-extension", _NO_COLUMN + " (url.extension)"),
                ("cs-cookie", _NO_COLUMN),
                ("cs-bytes", "request bytes on the wire, not http.request.body.bytes"),
                ("sc-bytes", "response bytes on the wire, not http.response.body.bytes"),
                ("cs-version", _VALUE + ": HTTP/1.1 vs http.version 1.1"),
            ],
        ),
        (
            WEBSERVER,
            [
                ("cs-username", _NO_COLUMN),
                ("cs-content-type", _NO_COLUMN + " (request content type)"),
                ("cs-cookie", _NO_COLUMN),
                ("cs-bytes", "request bytes on the wire, not http.request.body.bytes"),
                ("sc-bytes", "response bytes on the wire, not http.response.body.bytes"),
                ("cs-version", _VALUE + ": HTTP/1.1 vs http.version 1.1"),
                ("time-taken", _VALUE + ": milliseconds vs event.duration nanoseconds"),
            ],
        ),
        (
            FIREWALL,
            [
                ("username", _NO_COLUMN),
                ("action", "firewall verdicts; event.action holds the Suricata alert action"),
            ],
        ),
        (ZEEK, [("ts", _VALUE + ": epoch seconds vs @timestamp")]),
        (zeek("conn"), [("duration", _VALUE + ": seconds vs event.duration nanoseconds")]),
        (
            zeek("dns"),
            [
                ("qtype", _VALUE + ": numeric code vs mnemonic in dns.question.type"),
                ("qclass", _VALUE + ": numeric code vs mnemonic in dns.question.class"),
                ("rcode", _VALUE + ": numeric code vs mnemonic in dns.response_code"),
                ("rtt", _NO_COLUMN),
                ("AA, TC, RD, RA, Z, rejected", _NO_COLUMN),
            ],
        ),
        (
            zeek("http"),
            [("client_header_names, orig_mime_types, username, password", _NO_COLUMN)],
        ),
        (zeek("files"), [("total_bytes", "file.size is total_bytes or else seen_bytes")]),
        (
            zeek("x509"),
            [
                (
                    "certificate.not_valid_before, certificate.not_valid_after",
                    _VALUE + ": epoch seconds vs timestamps",
                )
            ],
        ),
        (zeek("dce_rpc"), [("endpoint, named_pipe, operation", _NO_COLUMN)]),
        (zeek("kerberos"), [("request_type, cipher, service, client", _NO_COLUMN)]),
        (zeek("smb_files"), [("path, name, action", "the reader maps no smb_files fields")]),
        (
            SURICATA,
            [
                (
                    "tls.version",
                    "already a canonical name, but the reader rewrites the values "
                    "(TLS 1.2 -> 1.2): a rule must use the 1.2 form",
                ),
                ("tls.fingerprint", _VALUE + ": aa:bb:.. vs hex in tls.server.hash.sha1"),
                ("http.protocol", _VALUE + ": HTTP/1.1 vs http.version 1.1"),
                ("event_type", "selected by the log source (service), see logsource.py"),
            ],
        ),
    )
    for field, reason in rows
)


# --------------------------------------------------------------------------------- pipelines


def _items(mappings: Iterable[FieldMap]) -> list[ProcessingItem]:
    """One field-mapping item per (log source, match mode), in table order."""
    groups: dict[tuple[Source, Match], dict[str | None, str | list[str]]] = {}
    for m in mappings:
        groups.setdefault((m.source, m.match), {})[m.field] = m.column
    items: list[ProcessingItem] = []
    for (source, match), mapping in groups.items():
        if match == "unanchored":
            items.append(
                ProcessingItem(
                    identifier=f"detect_{source.ident}_unanchored_fields",
                    transformation=FieldMappingTransformation(mapping),
                    rule_conditions=[source.condition()],
                    detection_item_conditions=[
                        MatchStringCondition(cond="all", pattern=_UNANCHORED)
                    ],
                )
            )
        else:
            items.append(
                ProcessingItem(
                    identifier=f"detect_{source.ident}_fields",
                    transformation=FieldMappingTransformation(mapping),
                    rule_conditions=[source.condition()],
                )
            )
    return items


def network_pipeline() -> ProcessingPipeline:
    """Every mapping of :data:`MAPPINGS`, each item guarded by its log source condition."""
    return ProcessingPipeline(name=PIPELINE_NAME, priority=20, items=_items(MAPPINGS))


def pipeline_for(logsource: SigmaLogSource | None) -> ProcessingPipeline | None:
    """The mappings that apply to rules with ``logsource``; ``None`` when none does."""
    selected = [m for m in MAPPINGS if m.source.matches(logsource)]
    if not selected:
        return None
    return ProcessingPipeline(name=PIPELINE_NAME, priority=20, items=_items(selected))


@cache
def _shared_pipeline() -> ProcessingPipeline:
    return network_pipeline()


def apply_pipeline(rule: SigmaRule) -> SigmaRule:
    """A copy of ``rule`` with taxonomy field names mapped to canonical columns.

    Fields without a canonical counterpart are left as written, so compiling the rule
    reports them. Correlation rules are returned unchanged (not supported by the engine yet).
    The rule passed in is not modified.
    """
    if not isinstance(rule, SigmaRule):
        return rule
    mapped = copy.deepcopy(rule)
    _shared_pipeline().apply(mapped)
    return mapped


# --------------------------------------------------------------------------------- docs


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown() -> str:
    """The two tables of ``docs/sigma-field-mapping.md`` (kept equal by a test)."""
    lines = [
        "| logsource | Sigma field | canonical column | notes |",
        "| --- | --- | --- | --- |",
    ]
    for m in MAPPINGS:
        lines.append(f"| {m.source.label} | `{m.field}` | `{m.column}` | {_cell(m.note)} |")
    lines += [
        "",
        "Not mapped (left as written; the engine reports a rule whose field is not canonical):",
        "",
        "| logsource | Sigma field | reason |",
        "| --- | --- | --- |",
    ]
    for n in NOT_MAPPED:
        fields = ", ".join(f"`{f.strip()}`" for f in n.field.split(","))
        lines.append(f"| {n.source.label} | {fields} | {_cell(n.reason)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m detect.sigma.pipelines: print the tables
    print(markdown(), end="")
