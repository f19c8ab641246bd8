"""A progress bar for people at a terminal; nothing at all for cron (not a TTY)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from detect.cli._common import Output

if TYPE_CHECKING:
    from detect.pipeline import FileReport
    from detect.pipeline import Progress as PipelineProgress


@contextmanager
def file_progress(out: Output, total_files: int | None = None) -> Iterator[PipelineProgress]:
    """Pipeline callbacks that drive a rich bar (files done, events so far)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from detect.pipeline import Progress as PipelineProgress

    if not out.interactive():
        yield PipelineProgress()
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files  {task.fields[events]:,} events"),
        TimeElapsedColumn(),
        console=out.err,
        transient=True,
    )
    task = bar.add_task("detect", total=total_files, events=0)
    events = [0]

    def start(f: FileReport) -> None:
        bar.update(task, description=f.path[-40:])

    def done(f: FileReport) -> None:
        events[0] += f.events
        bar.update(task, advance=1, events=events[0])

    with bar:
        yield PipelineProgress(on_file_start=start, on_file_done=done)
