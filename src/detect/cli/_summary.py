"""The end-of-run summary: a table for people, one JSON object for cron."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from detect.cli._common import Output

if TYPE_CHECKING:
    from detect.config import Settings
    from detect.runner import RunSummary


def print_summary(out: Output, summary: RunSummary, settings: Settings, *, what: str) -> None:
    """Errors always; the summary unless quiet; JSON when asked."""
    skipped = []
    for f in summary.files:
        if f.status == "error":
            out.log("input_error", f"{f.path}: {f.error}", level="error", settings=settings,
                    file=f.path)
        elif f.status == "not-telemetry":
            skipped.append(f.path)
            if out.json_logs(settings):
                out.log("skipped_file", f"skipped {f.path}: {f.error}", settings=settings,
                        file=f.path, reason=f.error)
    if skipped and not out.json_logs(settings):
        names = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5
                                          else "")
        out.log("skipped_files", f"skipped {len(skipped)} file(s) in folders that are not "
                f"telemetry: {names}", settings=settings)
    for note in summary.notes:
        out.log("note", note, settings=settings)
    for problem in summary.problems:
        out.log("problem", problem, level="warning", settings=settings)
    counts = summary.counts()
    fields = {
        "run_id": summary.run_id,
        "status": summary.status,
        "files_read": counts.get("ok", 0),
        "files_unchanged": counts.get("unchanged", 0),
        "files_failed": counts.get("error", 0),
        "files_skipped": counts.get("not-telemetry", 0),
        "events": summary.events,
        "rejects": summary.rejects,
        "hits": summary.hits,
        "alerts_new": summary.alerts_new,
        "alerts_updated": summary.alerts_updated,
        "seconds": round(summary.seconds.get("total", 0.0), 3),
        "rejects_file": summary.rejects_path,
        "exit_code": summary.exit_code,
    }
    if out.json_logs(settings):
        out.log(f"{what}_finished", f"{what} {summary.status}", settings=settings, **fields)
        return
    if settings.quiet:
        return
    table = Table(title=f"detect {what} {summary.run_id}: {summary.status}", show_header=False,
                  title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    rows = [
        ("files read", f"{fields['files_read']:,}"),
        ("files unchanged (already in the database)", f"{fields['files_unchanged']:,}"),
        ("files failed", f"{fields['files_failed']:,}"),
        ("files skipped (not telemetry)", f"{fields['files_skipped']:,}"),
        ("events", f"{summary.events:,}"),
        ("rejected lines/rows", f"{summary.rejects:,}"),
        ("hits", f"{summary.hits:,}"),
    ]
    if what == "run":
        rows += [("alerts new", f"{summary.alerts_new:,}"),
                 ("alerts updated", f"{summary.alerts_updated:,}")]
    total = summary.seconds.get("total", 0.0)
    compile_s = summary.seconds.get("compile", 0.0)
    work = total - compile_s  # throughput apart from rule/kernel compilation (DESIGN.md)
    rate = summary.events / work if work > 0 else 0.0
    rows.append(("seconds", f"{total:.2f} (of which compiling {compile_s:.2f})"))
    rows.append(("throughput, compiling apart", f"{rate:,.0f} events/s"))
    for label, value in rows:
        table.add_row(label, value)
    out.out.print(table)
    if summary.rejects_path:
        out.out.print(f"rejects: {summary.rejects_path}")
