"""RITA v5 beacon kernel vs a naive pure-Python reference written from DETECTORS.md d.1.

The reference below is written from the text alone (not from the kernel): montanaflynn
quartiles (median excluded for odd n), MAD without scaling, Bowley with its guards, the
24-bin histogram (CV and bimodal fit), the wrapping longest run, the duration score and
the bucketed threat score; Go's ``math.Round`` (half away from zero) via ``decimal``.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from detect.kernels import beacon as k

DAY = 86_400
WS = 1_709_510_400  # 2024-03-04 00:00:00 UTC (seconds)
US = 1_000_000
PARAMS = (24, 4, 86_400, 0.05, 1, 11, 6, 12, 0.25, 0.25, 0.25, 0.25)


# ---- naive reference -------------------------------------------------------------------


def round3(x: float) -> float:
    """Go: math.Round(x*1000)/1000, rounding half away from zero, on the float x*1000."""
    return float(Decimal(x * 1000).quantize(Decimal(1), rounding=ROUND_HALF_UP)) / 1000


def ceil3(x: float) -> float:
    return math.ceil(x * 1000) / 1000


def median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    """montanaflynn/stats Quartile: halves exclude the median when n is odd."""
    s = sorted(xs)
    n = len(s)
    if n % 2 == 0:
        lower, upper = s[: n // 2], s[n // 2 :]
    else:
        lower, upper = s[: (n - 1) // 2], s[(n + 1) // 2 :]
    return median(lower), median(s), median(upper)


def mad(xs: list[float]) -> float:
    m = median(xs)
    return median([abs(x - m) for x in xs])


def bowley(xs: list[float]) -> float:
    q1, q2, q3 = quartiles(xs)
    if (q3 - q1) >= 10 and q2 not in (q1, q3):
        return (q1 + q3 - 2 * q2) / (q3 - q1)
    return 0.0


def stat_score(xs: list[float], d: float) -> dict[str, float]:
    skew_score = 1 - abs(bowley(xs))
    m = median(xs)
    mad_score = (m - mad(xs)) / m if m >= 1 else d
    if mad_score < 0 or math.isnan(mad_score):
        mad_score = 0.0
    return {"score": round3((skew_score + mad_score) / 2), "skew": bowley(xs),
            "mad": mad(xs), "mad_score": mad_score, "median": m}  # fmt: skip


def histogram(ts_s: list[int], ws: int, we: int, bins: int = 24) -> list[int]:
    step = (we - ws) / bins
    edges = [ws + i * step for i in range(bins)]
    h = [0] * bins
    for t in ts_s:
        h[min(max(bisect.bisect_right(edges, t) - 1, 0), bins - 1)] += 1
    return h


def longest_wrapping_run(h: list[int]) -> int:
    if all(v > 0 for v in h):
        return len(h)
    z = h.index(0)
    rot = h[z:] + h[:z]  # starts on an empty bin, so no run wraps
    best = cur = 0
    for v in rot:
        cur = cur + 1 if v > 0 else 0
        best = max(best, cur)
    return best


def reference(ts_us: list[int], nbytes: list[int], ws: int = WS, we: int = WS + DAY) -> dict:
    """All of d.1 for one pair; None when not eligible."""
    ts = sorted(t // US for t in ts_us)
    if len(set(ts)) < 4 or len(ts) >= 86_400:
        return None
    deltas = sorted(b - a for a, b in itertools.pairwise(ts) if b - a != 0)
    assert len(deltas) >= 3
    tss = stat_score([float(d) for d in deltas], 1.0)
    dss = stat_score([float(b) for b in sorted(nbytes)], 0.0)
    h = histogram(ts, ws, we)
    total_bars = sum(1 for v in h if v > 0)
    mu = sum(h) / 24
    sigma = math.sqrt(sum((v - mu) ** 2 for v in h) / 24)
    cv = sigma / mu
    cv_score = 0.0 if cv > 1 else min(1.0, round3(1 - cv))
    bin_size = math.ceil(max(h) * 0.05)
    buckets = Counter(math.floor(v / bin_size) * bin_size for v in h if v > 0)
    top = [*sorted(buckets.values(), reverse=True), 0, 0]
    fit = (top[0] + top[1]) / max(total_bars - 1, 1) if total_bars >= 11 else 0.0
    bimodal = min(1.0, round3(fit))
    hist_score = max(cv_score, bimodal)
    run = longest_wrapping_run(h)
    coverage = consistency = dur = 0.0
    if total_bars >= 6:
        coverage = min(1.0, ceil3((ts[-1] - ts[0]) / (we - ws)))
        consistency = min(1.0, ceil3(run / 12))
        dur = max(coverage, consistency)
    score = round3(0.25 * tss["score"] + 0.25 * dss["score"] + 0.25 * dur + 0.25 * hist_score)
    v = 100 * score
    if v < 50:
        threat = 0.0
    elif v < 70:
        threat = (20 + (v - 50) / 20 * 20) / 100
    elif v < 90:
        threat = (40 + (v - 70) / 20 * 20) / 100
    else:
        threat = (60 + (min(v, 100) - 90) / 10 * 20) / 100
    return {
        "period_s": tss["median"], "jitter_s": tss["mad"], "ts_skew": tss["skew"],
        "ts_mad_score": tss["mad_score"], "ts_score": tss["score"],
        "ds_median_bytes": dss["median"], "ds_mad_bytes": dss["mad"], "ds_skew": dss["skew"],
        "ds_mad_score": dss["mad_score"], "ds_score": dss["score"],
        "hist_cv_score": cv_score, "hist_bimodal_score": bimodal, "hist_score": hist_score,
        "dur_coverage": coverage, "dur_consistency": consistency, "dur_score": dur,
        "score": score, "threat_score": threat,
        "total_bars": total_bars, "longest_run": run, "histogram": h,
    }  # fmt: skip


# ---- kernel driver ---------------------------------------------------------------------


def kernel(groups: list[tuple[list[int], list[int]]], shuffle_seed: int = 0) -> list[dict]:
    """Run the kernel on several groups at once, rows shuffled across groups."""
    ts = np.array([t for g in groups for t in g[0]], dtype=np.int64)
    nb = np.array([b for g in groups for b in g[1]], dtype=np.float64)
    gid = np.repeat(np.arange(len(groups)), [len(g[0]) for g in groups]).astype(np.int64)
    order = np.random.default_rng(shuffle_seed).permutation(len(ts))
    ts, nb, gid = ts[order], nb[order], gid[order]
    perm, offsets = k.group_rows(gid, len(groups))
    ws = np.full(len(groups), WS, dtype=np.int64)
    fo, io = k.beacon_scores(ts, nb, perm, offsets, ws, ws + DAY, *PARAMS)
    out = []
    for g in range(len(groups)):
        if not io[g, k.I_ELIGIBLE]:
            out.append(None)
            continue
        d = {name: float(fo[g, i]) for i, name in enumerate(k.F_COLUMNS)}
        d["total_bars"] = int(io[g, k.I_TOTAL_BARS])
        d["longest_run"] = int(io[g, k.I_LONGEST_RUN])
        d["histogram"] = io[g, k.I_HIST :].tolist()
        out.append(d)
    return out


# ---- random pairs ----------------------------------------------------------------------


@st.composite
def pair(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    shape = draw(st.sampled_from(["random", "periodic", "dups", "equal", "zero", "tiny"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if shape == "tiny":  # around the eligibility edge: few, often repeated seconds
        secs = draw(st.lists(st.integers(0, 20), min_size=1, max_size=7))
        ts = [WS * US + s * US + draw(st.integers(0, US - 1)) for s in secs]
    elif shape == "random":
        n = draw(st.integers(1, 300))
        ts = (WS * US + rng.integers(0, DAY * US, n)).tolist()
    else:
        period = draw(st.sampled_from([1, 2, 7, 30, 60, 300, 301, 900, 3600, 7200]))
        n = draw(st.integers(3, min(400, DAY // period)))
        start = int(rng.integers(0, DAY - period * (n - 1))) if period * (n - 1) < DAY else 0
        base = (start + np.arange(n) * period) * US
        jit = draw(st.sampled_from([0.0, 0.01, 0.1, 0.5]))
        noise = (rng.uniform(-jit, jit, n) * period * US).astype(np.int64)
        base = np.clip(base + noise, 0, DAY * US - 1)
        if shape == "dups":
            base = np.concatenate([base, rng.choice(base, n // 2)])
        if shape == "zero":  # many connections in the same second
            base = np.repeat(base, rng.integers(1, 4, len(base)))
        ts = (WS * US + base).tolist()
    kind = draw(st.sampled_from(["const", "small", "wide", "zeros", "two"]))
    n = len(ts)
    if kind == "const":
        nb = [int(rng.integers(0, 2000))] * n
    elif kind == "small":
        nb = (300 + rng.integers(-8, 9, n)).tolist()
    elif kind == "wide":
        nb = rng.integers(0, 10**7, n).tolist()
    elif kind == "zeros":
        nb = rng.choice([0, 0, 0, 1, 40], n).tolist()
    else:
        nb = rng.choice([120, 4000], n).tolist()
    return ts, nb


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(groups=st.lists(pair(), min_size=1, max_size=4), seed=st.integers(0, 100))
@example(groups=[([WS * US + i * 60 * US for i in range(1440)], [300] * 1440)], seed=0)
@example(groups=[([WS * US] * 5 + [WS * US + 1], [1] * 6)], seed=0)  # 2 unique: not scored
@example(groups=[([(WS + s) * US for s in (0, 10, 20, 30)], [0, 0, 0, 0])], seed=0)
@example(groups=[([(WS + s) * US for s in (0, 1, 2, 3, DAY - 1)], [5, 5, 5, 9, 9])], seed=1)
def test_kernel_matches_reference(groups: list[tuple[list[int], list[int]]], seed: int) -> None:
    got = kernel(groups, seed)
    for (ts, nb), g in zip(groups, got, strict=True):
        want = reference(ts, nb)
        assert g == want, (ts[:20], nb[:20])


# ---- worked examples ---------------------------------------------------------------------


def test_montanaflynn_quartile_example() -> None:
    # montanaflynn/stats README: Quartile([7, 15, 36, 39, 40, 41]) = {15 37.5 40}
    assert quartiles([7, 15, 36, 39, 40, 41]) == (15, 37.5, 40)
    # odd n: the median is in neither half
    assert quartiles([1, 2, 3, 4, 5]) == (1.5, 3, 4.5)


def test_round3_is_half_away_from_zero() -> None:
    # Go's math.Round; numpy/Python round() would give 0.002 (half to even)
    assert round3(0.0025) == 0.003
    assert k._round3(0.0025) == 0.003
    assert k._round3(0.4995) == 0.5
    assert k._round3(0.0015) == round3(0.0015)


# RITA's own test vectors (activecm/rita analysis/beacons_test.go): (seconds, score, skew, MAD)
RITA_TS_CASES = {
    "closely valued": ([0, 98, 197, 296, 396, 496, 596, 697, 798, 900], 0.995, 0.0, 1.0),
    "bimodal": ([0, 98, 398, 496, 796, 894, 1194, 1292, 1592, 1690, 1990], 0.746, 0.0, 101.0),
    "random": ([0, 1, 300, 325, 5300, 5390, 5392, 5434, 5934, 7434], 0.083, 0.845, 89.0),
}


@pytest.mark.parametrize("name", sorted(RITA_TS_CASES))
def test_rita_timestamp_vectors(name: str) -> None:
    secs, score, skew, madv = RITA_TS_CASES[name]
    got = kernel([([(WS + s) * US for s in secs], [100] * len(secs))])[0]
    assert got["ts_score"] == score
    assert got["ts_skew"] == pytest.approx(skew, abs=1e-3)
    assert got["jitter_s"] == madv


def test_rita_data_size_vector() -> None:
    # beacons_test.go "Simple Number List": bytes 1..10 -> MAD 2.5, score 0.773
    secs = [0, 60, 120, 180, 240, 300, 360, 420, 480, 540]
    got = kernel([([(WS + s) * US for s in secs], list(range(1, 11)))])[0]
    assert (got["ds_mad_bytes"], got["ds_score"]) == (2.5, 0.773)


def test_perfect_60s_beacon_scores_one() -> None:
    ts = [(WS + 17 + 60 * i) * US for i in range(1440)]
    got = kernel([(ts, [310] * 1440)])[0]
    assert got["score"] == 1.0
    assert got["threat_score"] == pytest.approx(0.8)
    assert (got["period_s"], got["jitter_s"]) == (60.0, 0.0)
    assert got["histogram"] == [60] * 24


def test_poisson_traffic_scores_low() -> None:
    """Random traffic stays under the 0.7 default threshold (RITA category low or none).

    Worth knowing: RITA v5 rewards any all-day traffic through the duration (coverage ~1)
    and histogram (flat CV) sub-scores, so dense *homogeneous* Poisson traffic lands at
    0.6-0.7, just under the threshold; bursty (hour-varying) traffic scores lower.
    """
    rng = np.random.default_rng(7)
    homogeneous, bursty = [], []
    for _ in range(20):
        n = int(rng.integers(20, 400))
        ts = ((WS + np.cumsum(rng.exponential(DAY / n, n))) * US).astype(np.int64)
        ts = ts[ts < (WS + DAY) * US].tolist()
        nb = rng.lognormal(7, 1.5, len(ts)).astype(np.int64).tolist()
        homogeneous.append(kernel([(ts, nb)])[0]["score"])
        rates = rng.gamma(0.5, 1.0, 24)  # a random rate per hour
        hours = rng.choice(24, n, p=rates / rates.sum())
        ts = ((WS + hours * 3600 + rng.uniform(0, 3600, n)) * US).astype(np.int64).tolist()
        nb = rng.lognormal(7, 1.5, n).astype(np.int64).tolist()
        bursty.append(kernel([(ts, nb)])[0]["score"])
    assert max(homogeneous) < 0.7, homogeneous
    assert max(bursty) < 0.65, bursty
    assert np.median(bursty) < 0.6, bursty


def test_ineligible_pairs() -> None:
    base = WS * US
    three = [base, base + 60 * US, base + 120 * US, base + 120 * US + 5]  # 3 unique seconds
    strobe = [base + i * US for i in range(86_400)]
    got = kernel([(three, [1] * 4), (strobe, [1] * 86_400)])
    assert got == [None, None]


def test_quirk_bimodal_fit_rewards_sparse_traffic() -> None:
    """RITA quirk, kept: bars of height 1 all fall in one bimodal bucket.

    With max(h) < 20 the bucket size is 1, so any pair seen once an hour in >= 11 hours
    gets a perfect bimodal score (and hence histogram score 1), however irregular its
    minutes are. Such pairs need the other sub-scores to stay under the threshold.
    """
    rng = np.random.default_rng(3)
    hours = np.sort(rng.choice(24, 12, replace=False))
    ts = ((WS + hours * 3600 + rng.integers(0, 3600, 12)) * US).tolist()
    got = kernel([(ts, rng.integers(100, 5000, 12).tolist())])[0]
    assert got["hist_bimodal_score"] == 1.0
    assert got["hist_cv_score"] < 0.1
    assert got["hist_score"] == 1.0
