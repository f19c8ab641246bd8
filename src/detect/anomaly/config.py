"""Detector configuration files (``rules/anomaly/*.yml``): schema, validation, loading.

One file configures one detector instance::

    # rules/anomaly/scan.yml
    detector: scan            # which detector (see DETECTORS below)
    id: scan                  # state key and finding prefix; default: the file name
    enabled: true             # default true
    description: Maltrail's port-scan and sweep thresholds
    params:                   # the detector's parameters; omitted ones keep defaults
      vertical_threshold: 10
      window: 30

Unknown keys, unknown detectors, unknown parameters and values of the wrong type are
refused with the file, line and key (``ConfigError``, exit 2), before anything runs.
Parameter names and types come from each detector's own parameter dataclass, so this
schema cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from detect.errors import ConfigError

# name -> (module, detector class, parameter dataclass)
DETECTORS: dict[str, tuple[str, str, str]] = {
    "beacon": ("detect.anomaly.beacon", "BeaconDetector", "BeaconParams"),
    "dns": ("detect.anomaly.dns_tunnel", "DnsTunnelDetector", "DnsTunnelParams"),
    "scan": ("detect.anomaly.scan", "ScanDetector", "ScanParams"),
    "long_conn": ("detect.anomaly.long_conn", "LongConnDetector", "LongConnParams"),
    "volume": ("detect.anomaly.volume", "VolumeDetector", "VolumeParams"),
    "first_seen": ("detect.anomaly.first_seen", "FirstSeenDetector", "FirstSeenParams"),
    "spread": ("detect.anomaly.spread", "SpreadDetector", "SpreadParams"),
}
TOP_KEYS = ("detector", "id", "enabled", "description", "params")


@dataclass(frozen=True)
class DetectorConfig:
    """One validated detector file."""

    key: str  # state key, unique across the configured detectors
    detector: str
    params: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    description: str = ""
    file: str | None = None

    def build(self) -> Any:
        """The configured detector instance."""
        cls, params_cls = detector_classes(self.detector)
        return cls(params_cls(**self.params))


def detector_classes(name: str) -> tuple[type, type]:
    module_name, cls_name, params_name = DETECTORS[name]
    module = importlib.import_module(module_name)
    return getattr(module, cls_name), getattr(module, params_name)


def _lines(text: str) -> dict[tuple[str, ...], int]:
    """1-based line of every mapping key path in a YAML document."""
    out: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = (*path, str(k.value))
                out[key] = k.start_mark.line + 1
                walk(v, key)

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return out
    if root is not None:
        walk(root, ())
    return out


def _type_ok(value: Any, hint: Any) -> bool:
    """Whether a YAML value fits a parameter's annotation (ints are floats too)."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (tuple, list, frozenset, set):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return isinstance(value, list) and all(
            any(_type_ok(v, a) for a in args) if args else True for v in value
        )
    if origin is dict:
        return isinstance(value, dict)
    return True  # a type we do not check (the detector validates it)


def _coerce(value: Any, hint: Any) -> Any:
    if isinstance(value, list):
        origin = typing.get_origin(hint)
        if origin in (tuple, frozenset, set) or any(
            typing.get_origin(h) in (tuple, frozenset, set) for h in typing.get_args(hint)
        ):
            return tuple(value)
    return value


def _type_name(hint: Any) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")


def parse_detector_file(path: Path) -> DetectorConfig:
    """Read and validate one detector file; ``ConfigError`` names file, line and key."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        msg = f"{path}: cannot read detector configuration: {e}"
        raise ConfigError(msg) from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        msg = f"{where}: not valid YAML: {' '.join(str(e).split())}"
        raise ConfigError(msg) from e
    lines = _lines(text)

    def fail(key: tuple[str, ...], message: str) -> ConfigError:
        line = lines.get(key)
        where = f"{path}:{line}" if line else str(path)
        return ConfigError(f"{where}: {'.'.join(key) or 'file'}: {message}")

    if not isinstance(data, dict):
        raise fail((), "expected a mapping with 'detector' and 'params'")
    for key in data:
        if key not in TOP_KEYS:
            raise fail((str(key),), f"unknown key; expected one of {', '.join(TOP_KEYS)}")
    name = data.get("detector")
    if name not in DETECTORS:
        known = ", ".join(sorted(DETECTORS))
        raise fail(("detector",), f"unknown detector {name!r}; known: {known}")
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise fail(("enabled",), f"expected true or false, got {enabled!r}")
    key = data.get("id", path.stem)
    if not isinstance(key, str) or not key:
        raise fail(("id",), f"expected a non-empty string, got {key!r}")
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise fail(("params",), "expected a mapping of parameter names to values")
    _, params_cls = detector_classes(name)
    hints = typing.get_type_hints(params_cls)
    fields = {f.name for f in dataclasses.fields(params_cls)}
    checked: dict[str, Any] = {}
    for pname, value in params.items():
        if pname not in fields:
            known = ", ".join(sorted(fields))
            raise fail(("params", str(pname)), f"unknown parameter of {name}; known: {known}")
        hint = hints.get(pname, Any)
        if not _type_ok(value, hint):
            raise fail(("params", str(pname)), f"expected {_type_name(hint)}, got {value!r}")
        checked[pname] = _coerce(value, hint)
    try:
        cls, _ = detector_classes(name)
        cls(params_cls(**checked))  # the detector's own checks (ranges, combinations)
    except (TypeError, ValueError, ConfigError) as e:
        raise fail(("params",), str(e)) from e
    description = data.get("description") or ""
    return DetectorConfig(key, name, checked, enabled, str(description), str(path))


def detector_files(specs: Iterable[str | Path]) -> list[Path]:
    """Detector files under ``specs`` (files, or folders searched for ``anomaly/*.yml``).

    A rules folder holding ``sigma/`` and ``anomaly/`` (the bundled ``rules/``) gives
    its ``anomaly/`` files; a folder of detector files gives its own.
    """
    out: list[Path] = []
    for spec in map(Path, specs):
        if spec.is_file() and spec.suffix in (".yml", ".yaml") and spec.parent.name == "anomaly":
            out.append(spec)
        elif spec.is_dir():
            if spec.name == "anomaly":
                out.extend(sorted(p for p in spec.glob("*.y*ml") if p.is_file()))
            else:
                out.extend(sorted(p for p in spec.glob("anomaly/*.y*ml") if p.is_file()))
    return sorted(set(out))


def load_detector_configs(specs: Iterable[str | Path]) -> list[DetectorConfig]:
    """Every enabled detector configured under ``specs``; duplicate ids are an error."""
    configs: list[DetectorConfig] = []
    seen: dict[str, str] = {}
    for path in detector_files(specs):
        config = parse_detector_file(path)
        if config.key in seen:
            msg = f"{path}: id {config.key!r} is already used by {seen[config.key]}"
            raise ConfigError(msg)
        seen[config.key] = str(path)
        if config.enabled:
            configs.append(config)
    return configs
