"""One root for every error a user can cause, so the CLI can print them without a traceback.

Each error carries where it happened (file, line, column) when that is known, the
way pySigma's ``SigmaError`` carries a rule location.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where in an input a problem was found; any part may be unknown."""

    path: str | None = None
    line: int | None = None
    column: str | None = None

    def __str__(self) -> str:
        parts = [self.path or "<input>"]
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.column is not None:
            parts.append(f"column {self.column!r}")
        return ", ".join(parts)


class DetectError(Exception):
    """Root of every error the user can cause or fix; the CLI prints these and exits."""

    exit_code = 2

    def __init__(self, msg: str, *, location: Location | None = None) -> None:
        self.msg = msg
        self.location = location
        super().__init__(f"{location}: {msg}" if location else msg)


class ConfigError(DetectError):
    """Bad flag, setting or configuration file (exit 2)."""

    exit_code = 2


class InputError(DetectError):
    """An input file that cannot be read or mapped; stops that file (exit 3)."""

    exit_code = 3


class NotTelemetryError(InputError):
    """A file that is not telemetry at all (unknown format, no event time).

    Named explicitly it is an input error; met while walking a folder (a Zeek log
    directory holds ``conn-summary`` reports, say) it is skipped and listed.
    """


class LockHeldError(DetectError):
    """Another run holds the database lock (exit 4)."""

    exit_code = 4


class StoreError(DetectError):
    """The DuckDB store cannot be opened or migrated."""

    exit_code = 2
