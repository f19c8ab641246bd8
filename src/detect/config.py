"""Settings, resolved in one order: ``detect.toml`` < ``DETECT_*`` environment < flags.

Relative paths in a settings file are relative to that file, so a cron job can run
from any directory. Without a settings file, ``./detect.toml`` is used when present.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from detect.errors import ConfigError

SEVERITIES = ("informational", "low", "medium", "high", "critical")
ENV_PREFIX = "DETECT_"
DEFAULT_CONFIG = Path("detect.toml")
PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parents[1]  # a source checkout: src/detect/config.py


def bundled(*parts: str) -> Path | None:
    """A path shipped with the package (the rule pack, ``rules/``) or with a source
    checkout (``data/samples``), when present."""
    for base in (PACKAGE_DIR, PROJECT_ROOT):
        p = base.joinpath(*parts)
        if p.exists():
            return p
    return None


@dataclass(frozen=True)
class Settings:
    """Everything a command may be told: flags over environment over file."""

    db: Path = Path("alerts.duckdb")
    rules: tuple[str, ...] = ()
    indicators: tuple[str, ...] = ()
    allowlists: tuple[str, ...] = ()  # MISP warninglists and plain allowlists
    retro_hunt: bool = False  # ignore indicators' valid_from (sweep old logs with new intel)
    indicator_context: bool = False  # also load MISP attributes with to_ids off
    cache_dir: Path | None = None  # compiled indicator index and Sigma plan cache (XDG default)
    placeholders: Path | None = None  # YAML: Sigma |expand placeholder name -> values
    batch_size: int = 65_536
    threads: int = 1
    engine: str = "local"
    spark_master: str | None = None
    metrics_textfile: Path | None = None
    fail_on: str | None = None
    reprocess: bool = False
    close_windows: bool = False  # score detector windows still open at the end of the run
    detector_rows: int = 5_000_000  # rows a detector holds before it runs (bounds memory)
    alert_window: int = 3600
    organization: str | None = None
    observer: str | None = None
    quiet: bool = False
    log_format: str = "text"
    progress: bool = True
    source: Mapping[str, str] = field(default_factory=dict)  # setting -> where it came from

    def validate(self) -> Settings:
        """Reject impossible values with a message that names the setting."""
        if self.batch_size < 1 or self.batch_size > 50_000_000:
            msg = f"batch_size must be between 1 and 50,000,000, got {self.batch_size}"
            raise ConfigError(msg)
        if self.threads < 1:
            msg = f"threads must be at least 1, got {self.threads}"
            raise ConfigError(msg)
        if self.engine not in ("local", "spark"):
            msg = f"engine must be 'local' or 'spark', got {self.engine!r}"
            raise ConfigError(msg)
        if self.fail_on is not None and self.fail_on not in SEVERITIES:
            msg = f"fail_on must be one of {', '.join(SEVERITIES)}, got {self.fail_on!r}"
            raise ConfigError(msg)
        if self.log_format not in ("text", "json"):
            msg = f"log_format must be 'text' or 'json', got {self.log_format!r}"
            raise ConfigError(msg)
        if self.detector_rows < 1:
            msg = f"detector_rows must be at least 1, got {self.detector_rows}"
            raise ConfigError(msg)
        if self.alert_window < 1:
            msg = f"alert_window must be a positive number of seconds, got {self.alert_window}"
            raise ConfigError(msg)
        return self

    def rules_or_default(self) -> tuple[str, ...]:
        """Rules to load: those configured, else the bundled ``rules/``."""
        if self.rules:
            return self.rules
        default = bundled("rules")
        return (str(default),) if default else ()

    def cache_dir_or_default(self) -> Path:
        """Where compiled indexes and plans are kept: ``cache_dir``, else the XDG cache."""
        if self.cache_dir is not None:
            return self.cache_dir
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "detect"

    def indicators_or_default(self) -> tuple[str, ...]:
        """Feeds to load: those configured, else the bundled sample feeds."""
        if self.indicators:
            return self.indicators
        default = bundled("data", "samples", "indicators")
        return (str(default),) if default else ()


_FIELD_TYPES = {f.name: f.type for f in fields(Settings) if f.name != "source"}


def _coerce(name: str, value: Any, origin: str, base: Path | None) -> Any:
    kind = _FIELD_TYPES[name]
    try:
        if kind in ("Path", "Path | None"):
            if value is None or value == "":
                return None
            p = Path(str(value)).expanduser()
            return base / p if base is not None and not p.is_absolute() else p
        if kind == "tuple[str, ...]":
            items = value if isinstance(value, list | tuple) else str(value).split(os.pathsep)
            out = []
            for item in items:
                if not str(item):
                    continue
                p = Path(str(item)).expanduser()
                out.append(str(base / p) if base is not None and not p.is_absolute() else str(p))
            return tuple(out)
        if kind == "int":
            return int(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(text)
        if value is None:
            return None
        return str(value)
    except (TypeError, ValueError) as e:
        msg = f"{origin}: setting {name!r} has a bad value {value!r} ({kind} expected)"
        raise ConfigError(msg) from e


def load_settings(
    *,
    config: Path | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Resolve settings from the file, the environment and the flags (later wins).

    Examples
    --------
    >>> s = load_settings(environ={"DETECT_BATCH_SIZE": "1000"}, flags={"threads": 2})
    >>> (s.batch_size, s.threads)
    (1000, 2)
    """
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    path = config
    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            msg = f"config file not found: {path}"
            raise ConfigError(msg) from None
        except (OSError, UnicodeDecodeError) as e:
            msg = f"cannot read config file {path}: {e}"
            raise ConfigError(msg) from e
        except tomllib.TOMLDecodeError as e:
            msg = f"{path}: invalid TOML: {e}"
            raise ConfigError(msg) from e
        section = data.get("detect", data)
        for key, value in section.items():
            name = key.replace("-", "_")
            if isinstance(value, dict):
                continue  # other sections belong to later features
            if name not in _FIELD_TYPES:
                msg = f"{path}: unknown setting {key!r}; known: {', '.join(sorted(_FIELD_TYPES))}"
                raise ConfigError(msg)
            values[name] = _coerce(name, value, str(path), path.resolve().parent)
            source[name] = str(path)
    env = os.environ if environ is None else environ
    for name in _FIELD_TYPES:
        key = ENV_PREFIX + name.upper()
        if key in env:
            values[name] = _coerce(name, env[key], f"environment {key}", None)
            source[name] = f"${key}"
    for name, value in (flags or {}).items():
        if value is None or (isinstance(value, tuple) and not value):
            continue
        values[name] = _coerce(name, value, f"flag --{name.replace('_', '-')}", None)
        source[name] = "flag"
    return replace(Settings(**values), source=source).validate()
