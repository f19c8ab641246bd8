"""Prometheus metrics of a run, for the node_exporter textfile collector.

Every run gets a fresh ``CollectorRegistry`` (never the process-global default) and
the file is replaced atomically, as the client_python docs ask of batch jobs.
``detect_last_success_timestamp_seconds`` is set only when the run succeeded.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from detect.errors import ConfigError

if TYPE_CHECKING:
    from detect.runner import RunSummary


def previous_success(path: Path) -> float | None:
    """The last-success time an earlier run wrote to ``path``, carried over on failure."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("detect_last_success_timestamp_seconds "):
            try:
                return float(line.split()[1])
            except (IndexError, ValueError):
                return None
    return None


def run_registry(summary: RunSummary, *, last_success: float | None = None) -> CollectorRegistry:
    """A registry holding this run's gauges."""
    reg = CollectorRegistry()
    Gauge("detect_run_events", "Events read by the last run", registry=reg).set(summary.events)
    Gauge("detect_run_rejects", "Lines or rows rejected by the last run",
          registry=reg).set(summary.rejects)
    Gauge("detect_run_input_bytes", "Bytes of input read by the last run",
          registry=reg).set(summary.bytes)
    Gauge("detect_run_hits", "Rule and indicator hits in the last run",
          registry=reg).set(summary.hits)
    Gauge("detect_run_alerts_new", "Alerts created by the last run",
          registry=reg).set(summary.alerts_new)
    Gauge("detect_run_alerts_updated", "Alerts updated by the last run",
          registry=reg).set(summary.alerts_updated)
    files = Gauge("detect_run_files", "Input files of the last run by outcome", ["status"],
                  registry=reg)
    for status in ("ok", "unchanged", "error", "not-telemetry"):
        files.labels(status).set(summary.counts().get(status, 0))
    stage = Gauge("detect_run_stage_seconds", "Seconds per pipeline stage in the last run",
                  ["stage"], registry=reg)
    for name, seconds in summary.seconds.items():
        stage.labels(name).set(seconds)
    Gauge("detect_detector_state_rows", "Rows of stateful detector state after the last run",
          registry=reg).set(summary.state_rows)
    Gauge("detect_run_late_events", "Events older than a closed detector window (not folded in)",
          registry=reg).set(summary.late_events)
    Gauge("detect_run_exit_code", "Exit code of the last run", registry=reg).set(summary.exit_code)
    Gauge("detect_last_run_timestamp_seconds", "When the last run finished",
          registry=reg).set(time.time())
    success = time.time() if summary.status == "ok" else last_success
    if success is not None:
        Gauge("detect_last_success_timestamp_seconds", "When a run last succeeded",
              registry=reg).set(success)
    return reg


def check_textfile(path: Path) -> None:
    """Raise ``ConfigError`` when the metrics file cannot be written (checked before a run).

    The file is written as a temporary file in the same folder and renamed over
    ``path``, so the folder must exist and be writable, and ``path`` must not be a folder.
    """
    path = Path(path)
    folder = path.parent
    problem = None
    if path.is_dir():
        problem = f"{path} is a folder"
    elif not folder.exists():
        problem = f"folder {folder} does not exist"
    elif not folder.is_dir():
        problem = f"{folder} is not a folder"
    elif not os.access(folder, os.W_OK | os.X_OK):
        problem = f"folder {folder} is not writable"
    if problem:
        msg = f"cannot write the metrics file {path}: {problem}"
        raise ConfigError(msg)


def write_run_metrics(path: Path, summary: RunSummary) -> None:
    """Write the run's metrics to ``path`` atomically (temp file + rename).

    A file system error (disk full, folder removed mid-run) is a ``ConfigError``
    naming the file, not a traceback.
    """
    try:
        write_to_textfile(str(path), run_registry(summary, last_success=previous_success(path)))
    except OSError as e:
        msg = f"cannot write the metrics file {path}: {e.strerror or e}"
        raise ConfigError(msg) from e
