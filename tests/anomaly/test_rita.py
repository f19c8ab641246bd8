"""RITA's bucketed threat score and severity categories (DETECTORS.md d.1)."""

from __future__ import annotations

from detect.anomaly.rita import bucketed_score, severity_of


def test_bucketed_score_is_ritas() -> None:
    b = (100, 500, 800, 1000)
    assert [bucketed_score(v, *b) for v in (0, 99, 100, 500, 650, 800, 900, 1000, 10**6)] == [
        0.0, 0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.8,
    ]  # fmt: skip
    # long connections' buckets (seconds): 1 h, 4 h, 8 h, 12 h
    assert [bucketed_score(h * 3600, 3600, 14400, 28800, 43200) for h in (1, 4, 8, 12, 20)] == [
        0.2, 0.4, 0.6, 0.8, 0.8,
    ]  # fmt: skip


def test_severity_is_the_category_whose_value_the_score_reaches() -> None:
    # category values: none 0.2, low 0.4, medium 0.6, high 0.8; above 0.8 only with modifiers
    assert [severity_of(s) for s in (0.0, 0.2, 0.39, 0.4, 0.6, 0.79, 0.8, 0.81)] == [
        "informational", "informational", "informational", "low", "medium", "medium", "high",
        "critical",
    ]  # fmt: skip
