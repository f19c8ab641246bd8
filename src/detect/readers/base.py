"""What every reader shares: the reject record, the per-file read context, the reader protocol.

A reader turns one file into canonical record batches (``detect.schema``) of at most
``ctx.batch_size`` rows. A bad line or row is handed to ``ctx.reject`` and reading
goes on; a file that cannot be read at all raises ``detect.errors.InputError``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc

from detect.errors import InputError, Location
from detect.schema import RowProblem


@dataclass(frozen=True)
class Reject:
    """One input line or row that was not turned into an event, and why."""

    path: str
    line: int | None  # 1-based line of the decompressed text, or 1-based row of a table
    reason: str
    raw: str | None = None
    column: str | None = None


@dataclass
class ReadContext:
    """Per-file settings and sinks a reader needs."""

    path: Path
    batch_size: int = 65_536
    reject: Callable[[Reject], None] = lambda _r: None
    # events deliberately not turned into canonical rows (Suricata ``stats``, say), by reason
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def display(self) -> str:
        return str(self.path)

    def error(self, msg: str, *, line: int | None = None, column: str | None = None) -> InputError:
        """An ``InputError`` located in this file, to raise."""
        return InputError(msg, location=Location(self.display, line, column))

    def bad_rows(
        self,
        line_of: Callable[[int], int | None] | int | None,
        raw: Callable[[int], str | None] | None = None,
    ) -> Callable[[list[RowProblem]], None]:
        """A callback for ``schema.conform`` that sends bad rows to ``ctx.reject``.

        ``line_of`` is the line (or row) number of row 0 of the batch, or a function
        giving the line of row ``i``; ``raw(i)`` returns the original text of row ``i``
        when the reader still has it.
        """

        def line(row: int) -> int | None:
            if line_of is None:
                return None
            if isinstance(line_of, int):
                return line_of + row
            return line_of(row)

        def report(problems: list[RowProblem]) -> None:
            by_row: dict[int, list[RowProblem]] = {}
            for p in problems:
                by_row.setdefault(p.row, []).append(p)
            for row, ps in sorted(by_row.items()):
                reason = "; ".join(f"{p.column}: {p.reason} (value {p.value!r})" for p in ps)
                self.reject(
                    Reject(
                        self.display,
                        line(row),
                        reason,
                        raw(row) if raw else None,
                        ps[0].column,
                    )
                )

        return report


class Reader(Protocol):
    """A reader module: ``read_batches(path, ctx)`` yields canonical batches."""

    def __call__(self, ctx: ReadContext) -> Iterator[pa.RecordBatch]: ...


def ecs_tls_version(arr: pa.Array) -> pa.Array:
    """A sensor's TLS version text as ECS ``tls.version`` (``1.2``, ``1.0``, ``3.0`` for SSL 3).

    Suricata writes ``TLS 1.2`` / ``TLSv1`` / ``SSLv3``, Zeek ``TLSv12`` / ``TLSv10`` /
    ``TLSv13-draft23`` / ``SSLv3``; both give one value. Anything else (DTLS, unknown) is
    null: ECS puts the protocol apart, in ``tls.version_protocol``, which we do not carry.
    """
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    v = pc.replace_substring_regex(arr, r"^TLS ?v?(\d)\.?(\d)(-draft\d+)?$", r"\1.\2")
    v = pc.replace_substring_regex(v, r"^(?:TLS|SSL) ?v?(\d)$", r"\1.0")
    ok = pc.match_substring_regex(v, r"^\d\.\d$")
    return pc.if_else(ok, v, pa.nulls(len(v), v.type))
