"""detect: batch detection over pooled network telemetry.

The Python API the ``detect`` command is a thin shell over:

- :func:`read` streams files of any supported format as canonical, enriched Arrow batches;
- :func:`run` detects over inputs and stores alerts in a DuckDB file;
- :func:`match` writes one row per (event, rule) hit to Parquet;
- :func:`load_rules` parses Sigma rules with pySigma, collecting every error;
- :func:`load_indicators` loads indicator feeds and allowlists into one normalised table;
- :func:`generate` writes synthetic telemetry with planted, labelled attacks.

Examples
--------
>>> import detect
>>> sum(b.num_rows for b in detect.read(["data/samples/zeek/conn.log"]))
8
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    import pyarrow as pa

    from detect.indicators.index import IndicatorIndex
    from detect.readers.base import Reject
    from detect.runner import RunSummary
    from detect.synthetic import GenerateResult
    from detect.validate import ValidationReport


def read(
    paths: list[str | Path],
    *,
    batch_size: int = 65_536,
    enrich: bool = True,
    on_reject: Callable[[Reject], None] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream files, folders or globs as canonical record batches (``detect.schema``).

    Each file's format is recognised by content. Bad lines go to ``on_reject``; a file
    that cannot be read raises :class:`detect.errors.InputError`. In a folder, files that
    are not telemetry (a report, an empty file) are skipped, as ``detect run`` skips them.

    Examples
    --------
    >>> import detect
    >>> for batch in detect.read(["data/samples/zeek/conn.log"]):
    ...     print(batch.num_rows, batch.schema.field("source.ip_bin").type)
    8 fixed_size_binary[16]
    """
    from detect.enrich import enrich as enrich_batch
    from detect.errors import NotTelemetryError
    from detect.readers import expand_inputs, read_file

    files, errors = expand_inputs(list(paths))
    if errors:
        raise errors[0]
    for f in files:
        batches = read_file(f.path, batch_size=batch_size, on_reject=on_reject)
        try:
            first = next(batches, None)  # format and schema are checked before any batch
        except NotTelemetryError:
            if f.explicit:
                raise
            continue
        if first is None:
            continue
        for batch in itertools.chain([first], batches):
            yield enrich_batch(batch) if enrich else batch


def run(inputs: list[str | Path], **settings: Any) -> RunSummary:
    """Detect over ``inputs`` and store alerts in ``db`` (default ``alerts.duckdb``).

    Keyword arguments are the settings of ``detect run`` (``db``, ``rules``,
    ``indicators``, ``batch_size``, ``reprocess``, ``fail_on``, ...), layered over
    ``detect.toml`` and ``DETECT_*`` variables like the command line.

    Examples
    --------
    >>> import detect, tempfile, pathlib
    >>> db = pathlib.Path(tempfile.mkdtemp()) / "alerts.duckdb"
    >>> summary = detect.run(["data/samples/zeek"], db=db)
    >>> summary.status, summary.events
    ('ok', 28)
    >>> detect.run(["data/samples/zeek"], db=db).events  # seen before: nothing to do
    0
    """
    from detect.config import load_settings
    from detect.runner import run as _run

    return _run([str(i) for i in inputs], load_settings(flags=settings))


def match(inputs: list[str | Path], output: str | Path, **settings: Any) -> RunSummary:
    """Write one row per (event, rule) hit of ``inputs`` to the Parquet file ``output``.

    Examples
    --------
    >>> import detect, tempfile, pathlib, pyarrow.parquet as pq
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "hits.parquet"
    >>> detect.match(["data/samples/zeek"], out).events
    28
    >>> pq.read_schema(out).names
    ['event_index', 'rule_id', 'rule_kind', 'field']
    """
    from detect.config import load_settings
    from detect.runner import match as _match

    return _match([str(i) for i in inputs], Path(output), load_settings(flags=settings))


def load_rules(paths: list[str | Path]) -> ValidationReport:
    """Parse Sigma rules (files, folders, globs) with pySigma, collecting every error.

    Examples
    --------
    >>> import detect, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "broken.yml").write_text("title: no detection\\n")
    >>> report = detect.load_rules([folder])
    >>> report.rules_checked, report.rules_ok, len(report.rule_problems) > 0
    (1, 0, True)
    """
    from detect.engines import rule_files
    from detect.validate import ValidationReport, check_rules

    report = ValidationReport()
    check_rules(rule_files(tuple(str(p) for p in paths)), report)
    return report


def load_indicators(
    feeds: list[str | Path], *, allowlists: Sequence[str | Path] = (), **settings: Any
) -> IndicatorIndex:
    """Load indicator feeds (files, folders, globs; format sniffed) and apply allowlists.

    ``.indicators`` is the merged, normalised table (type, value, sources, confidence,
    severity, tags, validity ...), ``.suppressed`` what the allowlists removed and why,
    ``.problems`` every entry that could not be used (file and line). Nothing is cached.

    Examples
    --------
    >>> import detect
    >>> index = detect.load_indicators(["data/samples/indicators/indicators.csv"])
    >>> index.indicators.num_rows > 0, index.problems
    (True, [])
    """
    from detect.config import load_settings
    from detect.indicators.engine import load_index

    flags = {**settings, "indicators": [str(f) for f in feeds],
             "allowlists": [str(a) for a in allowlists]}  # fmt: skip
    return load_index(load_settings(flags=flags), use_cache=False)


def generate(output: str | Path, *, events: int, seed: int = 1, **options: Any) -> GenerateResult:
    """Write synthetic telemetry with planted attacks and ground truth to ``output``.

    Examples
    --------
    >>> import detect, tempfile
    >>> result = detect.generate(tempfile.mkdtemp(), events=5000, seed=3)
    >>> result.events, sorted(result.counts)
    (5000, ['conn', 'dns', 'files', 'http', 'tls'])
    """
    from detect.synthetic import generate as _generate

    return _generate(Path(output), events=events, seed=seed, **options)


__all__ = ["__version__", "generate", "load_indicators", "load_rules", "match", "read", "run"]
