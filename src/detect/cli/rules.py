"""``detect rules``: which Sigma rules load and run, and why a rule matches an event."""

from __future__ import annotations

import csv
import difflib
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from detect.cli._common import CONTEXT_SETTINGS, obj, output_options

_FORMATS = click.Choice(["table", "json", "csv"])
_LIST_COLUMNS = ("id", "title", "level", "logsource", "status", "file", "supported", "why")
_FILTER_DOC = re.compile(r"^filter\s*:", re.MULTILINE)
_EVENT_COLUMNS = ("@timestamp", "event.dataset", "source.ip", "destination.ip")


@click.group("rules", context_settings=CONTEXT_SETTINGS)
def command() -> None:
    """Inspect Sigma rules: what loads, what runs, and why a rule matches an event.

    \b
    Examples:
      detect rules list
      detect rules list --rules my-rules/ -f json
      detect rules test proxy_executable_download.yml data/samples
    """


# ---------------------------------------------------------------------------------------
# detect rules list


def _logsource(rule: object) -> str:
    ls = getattr(rule, "logsource", None)
    if ls is None:
        return ""
    parts = [(k, getattr(ls, k, None)) for k in ("category", "product", "service")]
    return " ".join(f"{k}:{v}" for k, v in parts if v)


def _enum_name(value: object) -> str:
    name = getattr(value, "name", None)
    return str(name).lower() if name else ("" if value is None else str(value))


def catalogue(specs: tuple[str, ...]) -> list[dict[str, str]]:
    """One row per rule under ``specs`` (and per file or rule that did not parse)."""
    from detect.engines import correlations, rule_files
    from detect.sigma import SigmaEngine, parse_rules
    from detect.sigma.engine import rule_key

    files = rule_files(specs)
    loaded, errors = parse_rules(files)
    engine = SigmaEngine(loaded)
    correlations(engine, files)  # correlation rules run as a detector: reasons of their own
    reasons = {(u.rule_id, u.file): u.reason for u in engine.unsupported}
    rows = []
    for index, item in enumerate(loaded):
        rule = item.rule
        rid = rule_key(rule, item.file, index)
        why = reasons.get((rid, item.file))
        rows.append(
            {
                "id": rid,
                "title": getattr(rule, "title", "") or "",
                "level": _enum_name(getattr(rule, "level", None)),
                "logsource": _logsource(rule),
                "status": _enum_name(getattr(rule, "status", None)),
                "file": item.file or "",
                "supported": "no" if why else "yes",
                "why": why or "",
            }
        )
    rows.extend(
        {
            "id": "",
            "title": "",
            "level": "",
            "logsource": "",
            "status": "",
            "file": e.file or "",
            "supported": "no",
            "why": f"parse error: {e.message}",
        }
        for e in errors
    )
    return sorted(rows, key=lambda r: (r["file"], r["id"]))


def _write_csv(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


@command.command("list", context_settings=CONTEXT_SETTINGS)
@click.option(
    "--rules",
    multiple=True,
    help="Rule files, folders or globs (repeatable). Default: detect.toml, else "
    "the bundled rules/.",
)
@click.option("-f", "--format", "fmt", type=_FORMATS, default="table", show_default=True)
@output_options
@click.pass_context
def list_rules(ctx: click.Context, rules: tuple[str, ...], fmt: str) -> int:
    """One row per rule: id, title, level, logsource, status, file, and whether it runs.

    A rule the engine cannot run says why (the feature it uses); a file pySigma
    cannot parse is listed with the parse error. Exit 0, or 2 when a rule could not
    be parsed (a configuration problem, as in 'detect validate').

    \b
    Examples:
      detect rules list
      detect rules list --rules my-rules/ -f json | jq '.[] | select(.supported == "no")'
      detect rules list -f csv > rules.csv
    """
    out = obj(ctx)
    settings = out.settings(rules=rules)
    rows = catalogue(settings.rules_or_default())
    broken = sum(r["why"].startswith("parse error") for r in rows)
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
    elif fmt == "csv":
        _write_csv(rows, _LIST_COLUMNS)
    else:
        table = Table(
            title=f"{len(rows)} rule(s), "
            f"{sum(r['supported'] == 'yes' for r in rows)} run, "
            f"{sum(r['supported'] == 'no' for r in rows) - broken} not "
            f"supported, {broken} parse error(s)",
            title_justify="left",
        )
        for name in ("id", "title", "level", "logsource", "status", "file", "runs", "why"):
            table.add_column(name, overflow="fold")
        for r in rows:
            table.add_row(
                r["id"],
                r["title"],
                r["level"],
                r["logsource"],
                r["status"],
                _short(r["file"]),
                r["supported"],
                r["why"],
            )
        out.out.print(table)
    return 2 if broken else 0


def _short(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


# ---------------------------------------------------------------------------------------
# detect rules test


def find_rule(spec: str, rule_specs: tuple[str, ...]) -> Any:
    """The rule named by ``spec``: a rule file, else an id or title among ``rule_specs``.

    Raises :class:`~detect.errors.ConfigError` naming near matches when none fits.
    """
    from detect.engines import rule_files
    from detect.errors import ConfigError
    from detect.sigma import parse_rules

    path = Path(spec)
    if path.is_file():
        loaded, errors = parse_rules([path])
        if not loaded:
            detail = "; ".join(e.message for e in errors) or "no rule in the file"
            msg = f"{spec}: cannot parse the rule: {detail}"
            raise ConfigError(msg)
        if len(loaded) > 1:
            ids = ", ".join(str(getattr(r.rule, "id", None) or r.rule.title) for r in loaded)
            msg = f"{spec} holds {len(loaded)} rules ({ids}); name one by id with --rules {spec}"
            raise ConfigError(msg)
        return loaded[0]
    files = rule_files(rule_specs)
    loaded, errors = parse_rules(files)
    wanted = spec.strip().casefold()
    for test in (
        lambda r: str(getattr(r.rule, "id", "") or "").casefold() == wanted,
        lambda r: (getattr(r.rule, "title", "") or "").casefold() == wanted,
        lambda r: getattr(r.rule, "name", None) and str(r.rule.name).casefold() == wanted,
        lambda r: r.file and Path(r.file).stem.casefold() == wanted.removesuffix(".yml"),
        lambda r: (
            len(wanted) >= 4 and str(getattr(r.rule, "id", "") or "").casefold().startswith(wanted)
        ),
    ):
        found = [r for r in loaded if test(r)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            names = ", ".join(f"{r.rule.id} ({r.file})" for r in found[:5])
            msg = f"{spec!r} names {len(found)} rules: {names}; give the rule's id or file"
            raise ConfigError(msg)
    labels = {str(getattr(r.rule, "id", "")): r for r in loaded}
    labels.update({getattr(r.rule, "title", "") or "": r for r in loaded})
    near = difflib.get_close_matches(spec, list(labels), n=5, cutoff=0.5)
    near += [t for t in labels if wanted in t.casefold() and t not in near]
    hint = (
        (
            "; did you mean: "
            + "; ".join(f"{labels[n].rule.id} ({labels[n].rule.title})" for n in near[:5])
        )
        if near
        else ""
    )
    broken = f" ({len(errors)} rule problem(s): see 'detect rules list')" if errors else ""
    msg = (
        f"no rule {spec!r} among {len(loaded)} rule(s) from "
        f"{', '.join(rule_specs) or 'nothing'}{broken}{hint}"
    )
    raise ConfigError(msg)


@dataclass
class FileRead:
    """One input of ``rules test``: how many events, and why it stopped if it did."""

    path: str
    format: str | None = None
    events: int = 0
    rejects: int = 0
    error: str | None = None


@dataclass
class TestReport:
    """What ``detect rules test`` found: counts, and the explained hits it shows."""

    rule: dict[str, Any]
    events: int = 0
    in_logsource: int = 0
    matched: int = 0
    hits: list[dict[str, Any]] = field(default_factory=list)
    files: list[FileRead] = field(default_factory=list)


def _plain(value: object) -> object:
    """A value as JSON can hold it (IPs stay text; bytes as hex; times ISO)."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _batches(inputs: tuple[str, ...], settings: Any, report: TestReport) -> Iterator[tuple]:
    """(file, batch) for every input file, reading errors recorded in ``report.files``."""
    from detect.errors import InputError, NotTelemetryError
    from detect.pipeline import FileReport, Timer, expand, iter_file_batches

    files, failed = expand(list(inputs))
    report.files.extend(FileRead(f.path, error=f.error) for f in failed)
    for item in files:
        fr = FileReport(path=str(item.path))
        read = FileRead(str(item.path))
        try:
            for batch in iter_file_batches(item, fr, settings, lambda _r: None, Timer()):
                yield read, batch
        except InputError as e:
            if isinstance(e, NotTelemetryError) and not item.explicit:
                continue
            read.error = e.msg
        read.format, read.events, read.rejects = fr.format, fr.events, fr.rejects
        report.files.append(read)


def run_test(loaded: Any, inputs: tuple[str, ...], settings: Any, limit: int) -> TestReport:
    """Run one rule over ``inputs``; explain up to ``limit`` hits."""
    from detect.sigma.explain import RuleExplainer

    rule = loaded.rule
    explainer = RuleExplainer(rule)
    report = TestReport(
        rule={
            "id": str(rule.id or ""),
            "title": rule.title,
            "level": _enum_name(rule.level),
            "file": loaded.file,
            "logsource": _logsource(rule),
            "condition": [str(c) for c in rule.detection.condition],
            "datasets": sorted(explainer.datasets) if explainer.datasets is not None else None,
            "unexplained": explainer.unexplained,
        }
    )
    offset = 0
    for read, batch in _batches(inputs, settings, report):
        start_in_file = read.events
        read.events += batch.num_rows
        rows = explainer.hits(batch)
        report.events += batch.num_rows
        report.matched += len(rows)
        report.in_logsource += int(explainer.in_logsource(batch).sum())
        need = max(0, limit - len(report.hits))
        if need and len(rows):
            shown = rows[:need]
            context = batch.select(list(_EVENT_COLUMNS)).take(shown).to_pylist()
            for ex, ctx_row in zip(explainer.explain(batch, shown), context, strict=True):
                report.hits.append(
                    {
                        "file": read.path,
                        "event": start_in_file + ex.row + 1,
                        "event_index": offset + ex.row,
                        "event_fields": {k: _plain(v) for k, v in ctx_row.items() if v is not None},
                        "detections": [
                            {
                                "name": d.name,
                                "fields": [
                                    {"field": f.field, "value": _plain(f.value), "test": f.test}
                                    for f in d.fields
                                ],
                            }
                            for d in ex.detections
                        ],
                    }
                )
        offset += batch.num_rows
    return report


def _print_test(out: Any, report: TestReport, limit: int) -> None:
    rule = report.rule
    p = out.out.print
    p(f"rule {rule['id']}: {rule['title']} ({rule['level']})", markup=False, highlight=False)
    where = f"logsource {rule['logsource'] or '(none)'}"
    if rule["datasets"] is not None:
        where += f" -> event.dataset in {', '.join(rule['datasets'])}"
    p(f"  condition: {' | '.join(rule['condition'])}; {where}", markup=False, highlight=False)
    for name, reason in rule["unexplained"].items():
        p(f"  (detection {name} cannot be shown on its own: {reason})", markup=False)
    for hit in report.hits:
        ev = hit["event_fields"]
        who = " ".join(str(ev[k]) for k in ("@timestamp", "event.dataset") if k in ev)
        if "source.ip" in ev or "destination.ip" in ev:
            who += f" {ev.get('source.ip', '?')} -> {ev.get('destination.ip', '?')}"
        p("", markup=False)
        p(
            f"{_short(hit['file'])} event {hit['event']} (event_index {hit['event_index']}): {who}",
            markup=False,
            highlight=False,
        )
        if not hit["detections"]:
            p("  (no detection is true: the condition holds through a 'not')", markup=False)
        for d in hit["detections"]:
            if not d["fields"]:
                p(f"  {d['name']}", markup=False, highlight=False)
            for f in d["fields"]:
                p(
                    f"  {d['name']}: {f['field']} = {f['value']!r}  [{f['test']}]",
                    markup=False,
                    highlight=False,
                )
    p("", markup=False)
    for f in report.files:
        if f.error:
            out.log("input_error", f"{f.path}: {f.error}", level="error", file=f.path)
    more = report.matched - len(report.hits)
    line = (
        f"{report.events:,} event(s) read, {report.in_logsource:,} in the rule's logsource, "
        f"{report.matched:,} matched"
    )
    if more > 0:
        line += f" ({len(report.hits)} shown, --limit {limit}; raise it to see more)"
    p(line, markup=False, highlight=False)


def _csv_rows(report: TestReport) -> Iterator[dict[str, Any]]:
    for hit in report.hits:
        for d in hit["detections"]:
            for f in d["fields"] or [{"field": "", "value": "", "test": ""}]:
                value = f["value"]
                yield {
                    "file": hit["file"],
                    "event": hit["event"],
                    "event_index": hit["event_index"],
                    "detection": d["name"],
                    "field": f["field"],
                    "test": f["test"],
                    "value": json.dumps(value) if isinstance(value, list) else value,
                }


@command.command("test", context_settings=CONTEXT_SETTINGS)
@click.argument("rule")
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--rules",
    multiple=True,
    help="Where to look RULE up by id or title (repeatable). Default: detect.toml, "
    "else the bundled rules/.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Hits to explain (all are counted).",
)
@click.option("--batch-size", type=int, help="Events per batch while reading.")
@click.option("-f", "--format", "fmt", type=_FORMATS, default="table", show_default=True)
@output_options
@click.pass_context
def test_rule(
    ctx: click.Context,
    rule: str,
    inputs: tuple[str, ...],
    rules: tuple[str, ...],
    limit: int,
    batch_size: int | None,
    fmt: str,
) -> int:
    """Run one RULE over INPUTS and show which events hit and why.

    RULE is a rule file, or a rule's id (or its first characters), title, name or
    file stem among --rules. Per hit: the file and event number (1-based, rejected
    lines not counted), event_index (as in 'detect match' output), and each detection
    that was true with the field, the event's value and what was tested. The counts of
    events read, in the rule's logsource and matched close the output.

    Exit 0; 2 when RULE is unknown or cannot run (the reason is printed); 3 when an
    input could not be read.

    \b
    Examples:
      detect rules test rules/sigma/proxy_executable_download.yml data/samples
      detect rules test 8a3cf890 proxy.ndjson --limit 5
      detect rules test "Executable or Script File Downloaded Over HTTP" logs/ -f json
    """
    from detect.errors import ConfigError
    from detect.sigma import SigmaEngine

    out = obj(ctx)
    settings = out.settings(rules=rules, batch_size=batch_size)
    loaded = find_rule(rule, settings.rules_or_default())
    if type(loaded.rule).__name__ == "SigmaCorrelationRule":
        refs = ", ".join(str(r.reference) for r in getattr(loaded.rule, "rules", []) or [])
        msg = (
            f"rule {getattr(loaded.rule, 'id', None) or rule} ({loaded.rule.title}) is a "
            "correlation rule: it judges windows of many events and runs in 'detect run' "
            f"(findings as alerts of kind correlation); test its base rules here: {refs}"
        )
        raise ConfigError(msg)
    engine = SigmaEngine([loaded])
    if engine.unsupported:
        u = engine.unsupported[0]
        title = getattr(loaded.rule, "title", "")
        msg = f"rule {u.rule_id} ({title}) cannot run: {u.reason}"
        raise ConfigError(msg)
    report = run_test(loaded, inputs, settings, limit)
    if fmt == "json":
        sys.stdout.write(json.dumps(asdict(report), default=str) + "\n")
    elif fmt == "csv":
        _write_csv(
            list(_csv_rows(report)),
            ("file", "event", "event_index", "detection", "field", "value", "test"),
        )
        out.log(
            "rules_test",
            f"{report.events:,} event(s) read, {report.matched:,} matched",
            events=report.events,
            matched=report.matched,
        )
    else:
        _print_test(out, report, limit)
    return 3 if any(f.error for f in report.files) else 0
