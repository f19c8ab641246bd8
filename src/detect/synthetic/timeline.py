"""When events happen: a diurnal, weekly rate turned into a quantile -> time map.

Benign events are numbered 0..N-1 in time order; event ``i`` lives at quantile
``i / N`` of the cumulative rate. A chunk of consecutive event numbers therefore
owns a fixed slice of time, which is what lets the generator stream chunk by
chunk, stay sorted, and still draw the same events whatever the batch size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

US_PER_S = 1_000_000
_BIN_US = 60 * US_PER_S


def diurnal_rate(hour: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    """Relative event rate: low at night, a plateau 08-18 local time, quieter weekends."""
    rise = 1.0 / (1.0 + np.exp(-(hour - 7.5) * 2.0))
    fall = 1.0 / (1.0 + np.exp((hour - 18.0) * 1.5))
    rate = 0.12 + rise * fall
    return np.where(weekday >= 5, 0.35 * rate, rate)


@dataclass(frozen=True)
class Timeline:
    """Maps quantiles of the event rate to microsecond timestamps."""

    start_us: int
    end_us: int
    utc_offset_h: float
    edges: np.ndarray  # float64 offsets from start, us
    cdf: np.ndarray  # float64, same length as edges

    @classmethod
    def build(cls, start_us: int, days: float, *, utc_offset_h: float = 1.0) -> Timeline:
        """One-minute bins over ``days`` with the diurnal rate in local time."""
        span = round(days * 86400 * US_PER_S)
        nbins = max(1, int(np.ceil(span / _BIN_US)))
        edges = np.minimum(np.arange(nbins + 1, dtype=np.float64) * _BIN_US, span)
        mid = start_us + (edges[:-1] + edges[1:]) / 2
        local_h = mid / 3.6e9 + utc_offset_h
        hour = np.mod(local_h, 24.0)
        weekday = np.mod(np.floor(local_h / 24.0) + 3, 7)  # 1970-01-01 was a Thursday (3)
        mass = diurnal_rate(hour, weekday) * np.diff(edges)
        cdf = np.concatenate([[0.0], np.cumsum(mass)])
        cdf /= cdf[-1]
        return cls(start_us, start_us + span, utc_offset_h, edges, cdf)

    @property
    def span_us(self) -> int:
        """Length of the covered time, microseconds."""
        return self.end_us - self.start_us

    def at(self, q: np.ndarray) -> np.ndarray:
        """Timestamps (int64 us) at rate quantiles ``q`` in [0, 1]."""
        off = np.interp(q, self.cdf, self.edges)
        return np.minimum(self.start_us + off.astype(np.int64), self.end_us - 1)

    def local_hour(self, ts_us: np.ndarray) -> np.ndarray:
        """Local hour of day (float) of timestamps, for the diurnal test and attacks."""
        return np.mod(np.asarray(ts_us) / 3.6e9 + self.utc_offset_h, 24.0)
