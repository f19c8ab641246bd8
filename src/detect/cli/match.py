"""``detect match``: hits per event to a Parquet file, no database."""

from __future__ import annotations

from pathlib import Path

import click

from detect.cli._common import CONTEXT_SETTINGS, obj, output_options, require_local_engine
from detect.cli._progress import file_progress
from detect.cli._summary import print_summary
from detect.errors import ConfigError


@click.command("match", context_settings=CONTEXT_SETTINGS)
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Hits file; Parquet, so its name ends in .parquet.")
@click.option("--rules", multiple=True, help="Sigma rules: file, folder or glob (repeatable).")
@click.option("--indicators", multiple=True, help="Indicator feeds: file, folder or glob.")
@click.option("--allowlist", "allowlists", multiple=True,
              help="MISP warninglists (list.json, folders) or plain allowlists: indicators "
                   "they list are suppressed (repeatable).")
@click.option("--retro-hunt", is_flag=True, default=None,
              help="Ignore indicators' valid_from: sweep old logs with new intel.")
@click.option("--include-context", "indicator_context", is_flag=True, default=None,
              help="Also match MISP attributes with to_ids off (as informational).")
@click.option("--batch-size", type=int, help="Events per batch. [default: 65536]")
@click.option("--threads", type=int, help="Worker threads for the kernels. [default: 1]")
@click.option("--engine", type=click.Choice(["local", "spark"]), help="[default: local]")
@click.option("--spark-master", help="Spark master URL (with --engine spark).")
@output_options
@click.pass_context
def command(ctx: click.Context, inputs: tuple[str, ...], output: str, **flags: object) -> int:
    """Match INPUTS against rules and indicators; write one row per (event, rule) hit.

    The hits file has event_index (0-based position of the event in read order,
    rejects not counted), rule_id, rule_kind (sigma | indicator | correlation |
    anomaly) and field (the canonical column that matched). Sigma detection rules
    and indicators match single events; correlation rules and anomaly detectors
    judge windows of many events and keep state across runs, so they run in
    'detect run', where their findings become alerts.

    \b
    Examples:
      detect match data/samples -o hits.parquet
      detect match conn.log.gz --indicators feeds/ -o hits.parquet
    """
    from detect.runner import match

    if Path(output).suffix.lower() != ".parquet":
        msg = f"hits are written as Parquet: name the output file *.parquet, not {output}"
        raise ConfigError(msg)
    out = obj(ctx)
    settings = out.settings(**flags)
    if flags.get("spark_master") and settings.engine != "spark":
        msg = "--spark-master needs --engine spark"
        raise ConfigError(msg)
    require_local_engine(settings)
    with file_progress(out) as progress:
        summary = match(list(inputs), Path(output), settings, progress=progress)
    print_summary(out, summary, settings, what="match")
    return summary.exit_code
