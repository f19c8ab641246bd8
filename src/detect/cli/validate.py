"""``detect validate``: list problems in inputs, rules and feeds without detecting anything."""

from __future__ import annotations

import click

from detect.cli._common import CONTEXT_SETTINGS, obj, output_options


@click.command("validate", context_settings=CONTEXT_SETTINGS)
@click.argument("inputs", nargs=-1)
@click.option("--rules", multiple=True, help="Sigma rules to check (default: bundled rules/).")
@click.option("--indicators", multiple=True, help="Indicator feeds to check.")
@click.option("--allowlist", "allowlists", multiple=True,
              help="Warninglists or allowlists to check.")
@click.option("--batch-size", type=int, help="Events per batch while reading.")
@click.option("--show", type=int, default=5, show_default=True,
              help="Rejected lines to show per file.")
@output_options
@click.pass_context
def command(ctx: click.Context, inputs: tuple[str, ...], rules: tuple[str, ...],
            indicators: tuple[str, ...], allowlists: tuple[str, ...], batch_size: int | None,
            show: int) -> int:
    """Check INPUTS, rules and feeds; list every problem; write nothing.

    Each input is recognised and read in full (without detection): its format,
    events and rejected lines (with line numbers and reasons) are listed. Rules
    are parsed with pySigma, every broken rule reported with its file; feeds are
    loaded and every unusable entry listed with file and line. Exit 0 when
    all is well, 3 when an input has problems, 2 when a rule or feed has.

    \b
    Examples:
      detect validate /var/log/zeek/current
      detect validate --rules my-rules/ --indicators feeds/
    """
    from detect.validate import validate

    out = obj(ctx)
    settings = out.settings(rules=rules, indicators=indicators, allowlists=allowlists,
                            batch_size=batch_size)
    report = validate(list(inputs), settings)
    for f in report.inputs:
        if f.error:
            out.log("input_error", f"{f.path}: {f.error}", level="error", file=f.path)
            continue
        line = f"{f.path}: {f.format}, {f.events:,} events"
        if f.rejects:
            line += f", {f.rejects:,} rejected"
        if f.skipped:
            line += ", skipped " + ", ".join(f"{n:,} {k}" for k, n in sorted(f.skipped.items()))
        out.out.print(line, markup=False, highlight=False)
        for r in f.samples[:show]:
            out.out.print(f"  line {r.line}: {r.reason}", markup=False, highlight=False)
    for problem in report.rule_problems:
        out.log("rule_error", problem, level="error")
    for item in report.rules_unsupported:
        out.log("rule_unsupported", item, level="warning")
    for problem in report.feed_problems[:show * 4]:
        out.log("feed_error", problem, level="error")
    if len(report.feed_problems) > show * 4:
        out.log("feed_error", f"... and {len(report.feed_problems) - show * 4} more feed "
                "problems ('detect indicators validate --show N' lists more)", level="error")
    for note in report.notes:
        out.log("note", note)
    if report.rules_checked:
        out.out.print(f"rules: {report.rules_checked} file(s), {report.rules_ok} rule(s) parse, "
                      f"{len(report.rule_problems)} problem(s), "
                      f"{len(report.rules_unsupported)} not supported yet", markup=False)
    if report.feeds_checked:
        out.out.print(f"feeds: {report.feeds_checked} feed(s), {report.indicators:,} "
                      f"indicators, {report.suppressed:,} suppressed, "
                      f"{len(report.feed_problems)} problem(s)", markup=False)
    if any(f.error or f.rejects for f in report.inputs):
        return 3
    if report.rule_problems or report.feed_problems:
        return 2
    return 0
