"""``detect alerts``: read alerts back out of the database."""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from rich.table import Table

from detect.cli._common import CONTEXT_SETTINGS, obj, output_options
from detect.config import SEVERITIES
from detect.errors import ConfigError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str | None, flag: str = "--since") -> datetime | None:
    """ISO 8601 (UTC when no offset) or a relative ``15m``/``24h``/``7d`` before now.

    ``flag`` names the option in error messages.
    """
    if text is None:
        return None
    t = text.strip()
    if t and t[-1] in _UNITS and t[:-1].isascii() and t[:-1].isdigit():
        try:
            return datetime.now(UTC) - timedelta(seconds=int(t[:-1]) * _UNITS[t[-1]])
        except OverflowError:
            msg = f"{flag}: {text!r} is out of range (it reaches before the year 1)"
            raise ConfigError(msg) from None
    try:
        value = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        msg = (f"{flag}: not a time: {text!r}; use ISO 8601 (2026-11-27T10:00:00Z) "
               "or 15m, 24h, 7d")
        raise ConfigError(msg) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@click.command("alerts", context_settings=CONTEXT_SETTINGS)
@click.option("--db", type=click.Path(dir_okay=False), help="DuckDB file. [default: alerts.duckdb]")
@click.option("--since", help="Alerts last seen at or after this time (ISO 8601, or 24h, 7d).")
@click.option("--until", help="Alerts first seen before this time.")
@click.option("--severity", type=click.Choice(SEVERITIES), help="Minimum severity.")
@click.option("--rule", help="Only this rule id (exact), or a prefix ending in '*'.")
@click.option("--limit", type=click.IntRange(min=0), default=100, show_default=True,
              help="At most this many; 0 = all.")
@click.option("-f", "--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True, help="table for people; json (one object per line) or csv.")
@output_options
@click.pass_context
def command(ctx: click.Context, db: str | None, since: str | None, until: str | None,
            severity: str | None, rule: str | None, limit: int, fmt: str) -> int:
    """List alerts from the database, newest first.

    \b
    Examples:
      detect alerts --severity high --since 24h
      detect alerts --rule 'ioc:*' -f json | jq .entity
      detect alerts --db hub.duckdb -f csv --limit 0 > alerts.csv
    """
    from detect.store import open_store

    out = obj(ctx)
    settings = out.settings(db=db)
    since_at, until_at = parse_time(since, "--since"), parse_time(until, "--until")
    path = Path(settings.db)
    if not path.exists():
        msg = f"no database at {path}; run 'detect run INPUT...' first or pass --db"
        raise ConfigError(msg)
    store = open_store(path, read_only=True)
    try:
        table = store.query_alerts(
            since=since_at, until=until_at, min_severity=severity,
            rule=rule, limit=limit or None,
        )
    finally:
        store.close()
    rows = table.to_pylist()
    if fmt == "json":
        for row in rows:
            sys.stdout.write(json.dumps(row, default=str) + "\n")
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(table.column_names)
        for row in rows:
            writer.writerow([json.dumps(v, default=str) if isinstance(v, list | dict) else v
                             for v in row.values()])
    else:
        view = Table(title=f"{len(rows)} alert(s) in {path}", title_justify="left")
        for name in ("last_seen", "severity", "rule_id", "title", "entity", "event_count"):
            view.add_column(name, overflow="fold")
        for row in rows:
            view.add_row(str(row["last_seen"])[:19], row["severity"], row["rule_id"],
                         row.get("title") or "", row["entity"], str(row["event_count"]))
        out.out.print(view)
    return 0
