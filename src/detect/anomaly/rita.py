"""RITA's bucketed threat score and its severity categories, shared by the detectors.

DETECTORS.md d.1 (activecm/rita ``config/config.go``, ``calculateBucketedScore``): a value
``v`` is scored against four thresholds ``(base, low, med, high)`` into 0 (below base) or
0.2 .. 0.8, the category values none 0.2, low 0.4, medium 0.6, high 0.8; RITA's
modifiers (which we do not apply) can lift a final score above 0.8, "critical".

>>> bucketed_score(99, 100, 500, 800, 1000), bucketed_score(300, 100, 500, 800, 1000)
(0.0, 0.3)
>>> [severity_of(s) for s in (0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9)]
['informational', 'informational', 'low', 'medium', 'medium', 'high', 'critical']
"""

from __future__ import annotations

__all__ = ["bucketed_score", "severity_of"]


def bucketed_score(v: float, base: float, low: float, med: float, high: float) -> float:
    """``B(v; base, low, med, high)``: 0 below ``base``, then 0.2 .. 0.8 (3 decimals)."""
    if v < base:
        return 0.0
    if v < low:
        pct = 20 + 20 * (v - base) / (low - base)
    elif v < med:
        pct = 40 + 20 * (v - low) / (med - low)
    else:
        pct = 60 + 20 * (min(v, high) - med) / (high - med)
    return round(pct / 100, 3)


def severity_of(score: float) -> str:
    """The category a threat score reaches (its value is the category's lower bound)."""
    if score > 0.8:
        return "critical"
    if score >= 0.8:
        return "high"
    if score >= 0.6:
        return "medium"
    if score >= 0.4:
        return "low"
    return "informational"
