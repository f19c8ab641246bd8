"""``detect run``: detect over inputs and keep the alerts in DuckDB."""

from __future__ import annotations

import click

from detect.cli._common import CONTEXT_SETTINGS, obj, output_options, require_local_engine
from detect.cli._progress import file_progress
from detect.cli._summary import print_summary
from detect.config import SEVERITIES
from detect.errors import DetectError


@click.command("run", context_settings=CONTEXT_SETTINGS)
@click.argument("inputs", nargs=-1, required=True)
@click.option("--db", type=click.Path(dir_okay=False),
              help="DuckDB file. [default: alerts.duckdb]")
@click.option("--rules", multiple=True, help="Sigma rules: file, folder or glob (repeatable). "
              "Default: the bundled rules/.")
@click.option("--indicators", multiple=True, help="Indicator feeds: file, folder or glob "
              "(repeatable). Default: feeds in detect.toml, else the bundled samples.")
@click.option("--allowlist", "allowlists", multiple=True,
              help="MISP warninglists (list.json, folders) or plain allowlists: indicators "
                   "they list are suppressed (repeatable).")
@click.option("--retro-hunt", is_flag=True, default=None,
              help="Ignore indicators' valid_from: sweep old logs with new intel.")
@click.option("--include-context", "indicator_context", is_flag=True, default=None,
              help="Also match MISP attributes with to_ids off (as informational).")
@click.option("--batch-size", type=int, help="Events per batch; memory grows with it. "
              "[default: 65536]")
@click.option("--threads", type=int, help="Worker threads for the kernels. [default: 1]")
@click.option("--engine", type=click.Choice(["local", "spark"]), help="Where to run. "
              "[default: local]")
@click.option("--reprocess", is_flag=True, default=None,
              help="Process inputs again even when the database has seen their content.")
@click.option("--close-windows", is_flag=True, default=None,
              help="Score anomaly-detector windows still open at the end (a one-off run "
                   "over old logs). Cron jobs leave it off: windows close as time passes.")
@click.option("--fail-on", type=click.Choice(SEVERITIES),
              help="Exit 1 when this run raises alerts at or above this severity.")
@click.option("--alert-window", type=int, help="Seconds per alert window. [default: 3600]")
@click.option("--organization", help="organization.name for events that carry none.")
@click.option("--observer", help="observer.name (sensor) for events that carry none.")
@click.option("--metrics-textfile", type=click.Path(dir_okay=False),
              help="Write Prometheus metrics of this run to this file (node_exporter textfile).")
@output_options
@click.pass_context
def command(ctx: click.Context, inputs: tuple[str, ...], **flags: object) -> int:
    """Detect over INPUTS (files, folders, globs) and store alerts in DuckDB.

    Each file's format is recognised by its content (gzip is looked through). Files
    the database has already seen (same content) are skipped, so a cron job can
    pass the same folder every few minutes. Bad lines go to <db>.rejects.ndjson;
    a file that cannot be read is reported and the others still run (exit 3).

    \b
    Examples:
      detect run data/samples
      detect run /var/log/zeek/2026-11-27 --db hub.duckdb --fail-on high
      detect run 'logs/**/*.json.gz' --organization org-de --log-format json
      detect run old-logs/ --close-windows          # score every detector window now
    """
    from detect.metrics import check_textfile, write_run_metrics
    from detect.runner import run

    out = obj(ctx)
    settings = out.settings(**flags)
    require_local_engine(settings)
    if settings.metrics_textfile:
        check_textfile(settings.metrics_textfile)  # before the run, not after its commit
    with file_progress(out) as progress:
        summary = run(list(inputs), settings, progress=progress)
    print_summary(out, summary, settings, what="run")
    if summary.exit_code == 1:
        out.log("fail_on", f"{summary.alerts_at_fail_on} alert(s) at or above "
                f"{settings.fail_on}", level="warning", settings=settings)
    if settings.metrics_textfile:
        try:
            write_run_metrics(settings.metrics_textfile, summary)
        except DetectError as e:
            # The run is committed; say so, and exit 2 (configuration) unless worse happened.
            out.log("metrics_error", f"{e} (the run itself was stored)", level="error",
                    settings=settings, path=str(settings.metrics_textfile))
            return max(summary.exit_code, e.exit_code)
    return summary.exit_code
