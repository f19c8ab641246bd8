"""``detect indicators``: what the configured feeds hold, why a value matches or not."""

from __future__ import annotations

import json
import sys

import click
from rich.table import Table

from detect.cli._common import CONTEXT_SETTINGS, obj, output_options

_FEED_OPTIONS = [
    click.option("--indicators", multiple=True,
                 help="Feeds: file, folder or glob (repeatable). Default: detect.toml, else "
                      "the bundled samples."),
    click.option("--allowlist", "allowlists", multiple=True,
                 help="MISP warninglists (list.json, folders) or plain allowlists (repeatable)."),
    click.option("--include-context", "indicator_context", is_flag=True, default=None,
                 help="Also load MISP attributes with to_ids off (as informational)."),
]


def feed_options(command):
    """The options that say which feeds and lists make up the indicator set."""
    for option in reversed(_FEED_OPTIONS):
        command = option(command)
    return command


@click.group("indicators", context_settings=CONTEXT_SETTINGS)
def command() -> None:
    """Inspect the indicator feeds: counts, problems, and why a value matches.

    \b
    Examples:
      detect indicators stats --indicators feeds/
      detect indicators explain 8.8.8.8 --indicators feeds/ --allowlist warninglists/lists
      detect indicators validate --indicators feeds/
    """


@command.command("stats", context_settings=CONTEXT_SETTINGS)
@feed_options
@click.option("-f", "--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@output_options
@click.pass_context
def stats(ctx: click.Context, fmt: str, **flags: object) -> int:
    """Indicators per feed and type, after merging and suppression.

    \b
    Examples:
      detect indicators stats
      detect indicators stats --indicators feeds/ --allowlist lists/ -f json
    """
    from detect.indicators.engine import load_index

    out = obj(ctx)
    settings = out.settings(**flags)
    index = load_index(settings)
    summary = {
        "index_hash": index.index_hash,
        "from_cache": index.from_cache,
        "seconds": round(index.seconds, 3),
        "indicators": index.indicators.num_rows,
        "by_type": index.by_type(),
        "suppressed": index.suppressed.num_rows,
        "problems": len(index.problems),
        "feeds": index.feeds,
    }
    if fmt == "json":
        sys.stdout.write(json.dumps(summary, default=str) + "\n")
        return 0
    table = Table(title=f"{summary['indicators']:,} indicators "
                        f"({summary['suppressed']:,} suppressed, {summary['problems']:,} "
                        f"problems; index {index.index_hash[:12]}"
                        f"{', from cache' if index.from_cache else ''})", title_justify="left")
    table.add_column("feed")
    table.add_column("indicators", justify="right")
    table.add_column("by type")
    for feed in index.feeds:
        if "by_type" in feed:
            kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(feed["by_type"].items()))
            table.add_row(feed["source"], f"{feed['indicators']:,}", kinds)
        else:
            kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(feed.get("skipped", {}).items()))
            table.add_row("(skipped)", "", kinds)
    out.out.print(table)
    return 0


@command.command("explain", context_settings=CONTEXT_SETTINGS)
@click.argument("value")
@feed_options
@click.option("--type", "kind", help="Indicator type of VALUE (default: inferred).")
@output_options
@click.pass_context
def explain(ctx: click.Context, value: str, kind: str | None, **flags: object) -> int:
    """Which feeds carry VALUE, which list suppresses it, what an event with it would hit.

    \b
    Examples:
      detect indicators explain evil.example.com
      detect indicators explain 10.1.2.3 --allowlist warninglists/lists/rfc1918
    """
    from detect.indicators.engine import explain_value

    out = obj(ctx)
    settings = out.settings(**flags)
    report = explain_value(value, settings, kind=kind)
    for line in report.lines():
        out.out.print(line, markup=False, highlight=False)
    return 2 if report.error else 0


@command.command("validate", context_settings=CONTEXT_SETTINGS)
@feed_options
@click.option("--show", type=int, default=20, show_default=True, help="Problems to list.")
@output_options
@click.pass_context
def validate(ctx: click.Context, show: int, **flags: object) -> int:
    """Load every feed and list every entry that could not be used (exit 2 if any).

    \b
    Examples:
      detect indicators validate --indicators feeds/stix/
    """
    from detect.indicators.engine import load_index

    out = obj(ctx)
    settings = out.settings(**flags)
    index = load_index(settings, use_cache=False)
    for problem in index.problems[:show]:
        out.log("feed_problem", problem, level="error")
    if len(index.problems) > show:
        out.log("feed_problem", f"... and {len(index.problems) - show} more", level="error")
    out.out.print(f"{index.indicators.num_rows:,} indicators, {index.suppressed.num_rows:,} "
                  f"suppressed, {len(index.problems):,} problem(s)", markup=False)
    return 2 if index.problems else 0
