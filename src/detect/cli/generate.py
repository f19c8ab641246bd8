"""``detect generate``: synthetic telemetry with planted, labelled attacks."""

from __future__ import annotations

from pathlib import Path

import click

from detect.cli._common import CONTEXT_SETTINGS, obj, output_options


@click.command("generate", context_settings=CONTEXT_SETTINGS)
@click.option("--events", type=int, default=100_000, show_default=True,
              help="Events to write (1,000 to 10,000,000,000).")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Same seed, same data (0 or more).")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Folder for the Parquet files and ground truth.")
@click.option("--days", type=float, default=1.0, show_default=True, help="Time span covered.")
@click.option("--organizations", type=int, default=3, show_default=True,
              help="Member organisations contributing telemetry.")
@output_options
@click.pass_context
def command(ctx: click.Context, events: int, seed: int, output: str, days: float,
            organizations: int) -> int:
    """Write deterministic synthetic conn, dns, http, tls and files telemetry to Parquet.

    Benign traffic has many hosts, Zipf-popular domains and a daily rhythm; planted
    attacks (IOC contacts, beacons, DNS tunnels, scans, exfiltration) are listed in
    ground_truth.json, and the indicators they touch in indicators.csv. Memory stays
    flat whatever --events is.

    \b
    Examples:
      detect generate --events 1000000 --seed 7 -o gen/
      detect run gen/ --indicators gen/indicators.csv
    """
    from detect.synthetic import generate

    out = obj(ctx)
    written = [0]

    def progress(n: int) -> None:
        written[0] = n

    if out.interactive():
        from rich.progress import Progress

        with Progress(console=out.err, transient=True) as bar:
            task = bar.add_task("generating", total=events)

            def progress(n: int) -> None:
                bar.update(task, completed=n)

            result = generate(Path(output), events=events, seed=seed, days=days,
                              organizations=organizations, progress=progress)
    else:
        result = generate(Path(output), events=events, seed=seed, days=days,
                          organizations=organizations, progress=progress)
    out.log("generated", f"wrote {result.events:,} events to {output} "
            f"in {result.seconds:.1f} s ({result.activities} planted activities, "
            f"{result.planted_events:,} planted events in ground_truth.json)",
            events=result.events)
    return 0
