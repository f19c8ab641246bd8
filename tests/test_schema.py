"""The canonical schema: conform casts, fills missing columns, rejects only bad rows."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import example, given
from hypothesis import strategies as st

from detect.schema import CANONICAL_SCHEMA, RowProblem, conform


def test_missing_columns_are_null_and_the_schema_is_exact() -> None:
    batch = conform({"source.ip": pa.array(["1.2.3.4", None])}, 2)
    assert batch.schema == CANONICAL_SCHEMA
    assert batch.column("destination.ip").null_count == 2


@given(st.lists(st.one_of(st.integers(-5, 70_000).map(str), st.text(max_size=3), st.none()),
                max_size=300))
@example(["\u0663", "+5", " 5", "-0", "65535", "65536", "", None])
def test_exactly_the_uncastable_rows_are_rejected(values: list[str | None]) -> None:
    problems: list[RowProblem] = []
    batch = conform({"source.port": pa.array(values, pa.string())}, len(values),
                    on_bad_rows=problems.extend)

    def fits(v: str | None) -> bool:
        if v is None:
            return True
        try:
            # Arrow's unsigned cast: ASCII digits only, no sign, no spaces
            return v.isascii() and v.isdigit() and int(v) <= 65535
        except ValueError:
            return False

    expected_bad = [i for i, v in enumerate(values) if not fits(v)]
    assert sorted(p.row for p in problems) == expected_bad
    kept = [int(v) if v is not None else None for i, v in enumerate(values)
            if i not in set(expected_bad)]
    assert batch.column("source.port").to_pylist() == kept
