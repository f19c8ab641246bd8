"""What every subcommand shares: settings from the group's options, and output.

Text goes to a terminal through rich; with ``--log-format json`` every log line is
one JSON object on stderr, so cron jobs and log shippers can parse it.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from detect.config import Settings, load_settings
from detect.errors import ConfigError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _console(*, stderr: bool) -> Console:
    """Rich on a terminal; long unwrapped lines when piped, so grep and logs see whole lines."""
    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty()
    return Console(stderr=stderr, highlight=False, soft_wrap=not tty,
                   width=None if tty else 200)


@dataclass
class Output:
    """Where a command writes: results to stdout, logs and progress to stderr."""

    config: str | None
    quiet: bool
    log_format: str | None
    err: Console = field(default_factory=lambda: _console(stderr=True))
    out: Console = field(default_factory=lambda: _console(stderr=False))

    @classmethod
    def create(cls, *, config: str | None, quiet: bool, log_format: str | None) -> Output:
        return cls(config=config, quiet=quiet, log_format=log_format)

    def settings(self, **flags: Any) -> Settings:
        """Settings for this command: file < environment < these flags."""
        if self.quiet:
            flags["quiet"] = True
        if self.log_format:
            flags["log_format"] = self.log_format
        return load_settings(config=Path(self.config) if self.config else None, flags=flags)

    def json_logs(self, settings: Settings | None = None) -> bool:
        fmt = self.log_format or (settings.log_format if settings else None)
        return fmt == "json"

    def log(self, event: str, message: str, *, level: str = "info",
            settings: Settings | None = None, **fields: Any) -> None:
        """One log line: human text, or a JSON object with ``event`` and the fields."""
        if self.json_logs(settings):
            record = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                      "level": level, "event": event, "message": message, **fields}
            sys.stderr.write(json.dumps(record, default=str) + "\n")
            sys.stderr.flush()
            return
        if (self.quiet or (settings is not None and settings.quiet)) and level == "info":
            return
        style = {"error": "bold red", "warning": "yellow"}.get(level, "")
        prefix = {"error": "error: ", "warning": "warning: "}.get(level, "")
        self.err.print(f"{prefix}{message}", style=style or None, markup=False)

    def interactive(self) -> bool:
        """A progress bar only for a person at a terminal."""
        return (sys.stderr.isatty() and not self.quiet and not self.json_logs()
                and os.environ.get("CI") is None)


def require_local_engine(settings: Settings) -> None:
    """``--engine spark`` is part of the flag contract, but no Spark engine is built yet."""
    if settings.engine != "local":
        msg = f"the {settings.engine} engine is not available in this build; use --engine local"
        raise ConfigError(msg)


def obj(ctx: click.Context) -> Output:
    """The group's ``Output`` (created in the group callback)."""
    return ctx.find_object(Output) or Output.create(config=None, quiet=False, log_format=None)


def _set(attr: str):
    def callback(ctx: click.Context, _param: click.Parameter, value: object) -> None:
        if value is None or value is False:
            return
        out = ctx.find_object(Output)
        if out is None:
            out = Output.create(config=None, quiet=False, log_format=None)
            ctx.obj = out
        setattr(out, attr, value)

    return callback


def output_options(command):
    """``--config``, ``--quiet`` and ``--log-format`` also after the subcommand name."""
    options = [
        click.option("--config", type=click.Path(dir_okay=False), expose_value=False,
                     callback=_set("config"), help="Settings file (TOML)."),
        click.option("-q", "--quiet", is_flag=True, default=False, expose_value=False,
                     callback=_set("quiet"), help="Print only warnings and errors."),
        click.option("--log-format", type=click.Choice(["text", "json"]), expose_value=False,
                     callback=_set("log_format"),
                     help="Logs as text or as one JSON object per line (cron)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command
