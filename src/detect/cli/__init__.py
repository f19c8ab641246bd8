"""The ``detect`` command line: a click group, one module per subcommand, thin over the API.

User mistakes (``DetectError``) print one readable line and exit with the error's code
(2 usage/config, 3 input, 4 lock); tracebacks are for bugs only.
"""

from __future__ import annotations

import sys

import click

from detect import __version__
from detect.allocator import keep_freed_memory
from detect.cli._common import CONTEXT_SETTINGS, Output
from detect.errors import DetectError


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="detect")
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    envvar="DETECT_CONFIG",
    help="Settings file (TOML). Default: ./detect.toml when present.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only warnings and errors.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Log lines as text, or as one JSON object per line (for cron and log shippers).",
)
@click.pass_context
def cli(ctx: click.Context, config: str | None, quiet: bool, log_format: str | None) -> None:  # noqa: FBT001
    """Batch detection over pooled network telemetry.

    Reads Zeek, Suricata EVE, OCSF, Parquet, Arrow, CSV and NDJSON logs into one
    canonical (ECS) schema, matches them against indicators, Sigma rules and
    anomaly detectors, and keeps the alerts in DuckDB.

    \b
    Examples:
      detect run data/samples                  # alerts into ./alerts.duckdb
      detect alerts --severity high            # look at them
      detect generate --events 1000000 -o gen  # synthetic telemetry with planted attacks

    Exit codes: 0 ok; 1 alerts at or above --fail-on; 2 usage or configuration
    error; 3 an input could not be read; 4 another run holds the database lock.
    """
    ctx.obj = Output.create(config=config, quiet=quiet, log_format=log_format)


def _register() -> None:
    from detect.cli import alerts, generate, indicators, match, rules, run, validate

    for module in (run, match, alerts, validate, indicators, rules, generate):
        cli.add_command(module.command)


_register()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``detect`` console script."""
    keep_freed_memory()
    try:
        rv = cli.main(args=argv, prog_name="detect", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except DetectError as e:
        click.echo(f"detect: error: {e}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted: nothing was written", err=True)
        return 130
    except BrokenPipeError:
        return 0
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
