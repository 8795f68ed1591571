"""When is a difference in epoch duration more than noise? The statistics of the summary.

Each cell's repeats are a handful of epoch durations from a machine whose noise has any shape
(skewed, with occasional slow outliers). So nothing here assumes a distribution:

* **Is a speed-up real?** The Mann-Whitney U test of the cell's repeats against its
  ``num_workers=0`` baseline's (``scipy.stats.mannwhitneyu``, exact): under "no difference"
  every assignment of the pooled durations to the two cells is equally likely, whatever the
  noise looks like, so its p-value is exact at any number of repeats. Its price is honesty
  about small samples: with ``n`` repeats on each side no p-value can be smaller than
  ``2 / C(2n, n)`` (1/3 at 2 repeats, 1/10 at 3), so too few repeats can never support a
  claim; :func:`repeats_needed` says how many can.
* **Across the grid**: a run makes many comparisons, so the p-values go through Holm's
  step-down correction, which keeps the chance that *any* "beyond noise" claim of the run is
  false at or below ``ALPHA`` (the family-wise error rate), whatever the dependence between the
  comparisons (they share baselines). statsmodels' ``multipletests(method="holm")`` computes
  the same; it is four lines of numpy here rather than a dependency.
* **How large?** The speed-up's interval is the Hodges-Lehmann interval of the shift between
  the log durations (the distribution-free interval that inverts the same test): the order
  statistics of all pairwise log ratios picked by the exact null distribution of U. It covers
  the true ratio with at least 95% probability when the two cells' durations differ by a
  factor (a shift in log time); it needs 4 repeats on each side.
* **A cell's median**: the order-statistic interval of the median (``scipy.stats.quantile_test``),
  distribution-free, from 6 repeats; and median +- MAD, with pyperf's warning when the spread
  is more than 10% of the median ("may be unstable").
* **A change too small to matter**: like criterion.rs's noise threshold, a significant
  difference whose interval lies within +-2% is reported as within the noise threshold, not
  as faster or slower.

``tests/test_statistics.py`` checks all of it by simulation on null data of several shapes.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import stats as scipy_stats

ALPHA = 0.05  # family-wise error rate of the run's "beyond noise" claims; 1 - interval level
NOISE_THRESHOLD = 0.02  # a real difference smaller than this is "within the noise threshold"
UNSTABLE = 0.10  # pyperf's warning: spread (MAD, scaled to a standard deviation) > 10%
CORRECTION = "Holm"

# Verdicts of a speed-up (summary column ``speedup_verdict``).
FASTER, SLOWER = "faster", "slower"
NO_CLEAR = "within noise"  # the test could have found a difference and did not
TOO_FEW = "too few repeats"  # no outcome of this many repeats could have been called
SMALL = "within noise threshold"  # real, but smaller than NOISE_THRESHOLD
SINGLE = "one run"  # a side has a single run: nothing to test


def min_p_value(n1: int, n2: int) -> float:
    """The smallest two-sided p-value the exact Mann-Whitney test can give at these sizes."""
    return min(1.0, 2.0 / math.comb(n1 + n2, n1))


def repeats_needed(comparisons: int, alpha: float = ALPHA) -> int:
    """Repeats per cell (equal on both sides) with which even the strictest of Holm's steps
    over ``comparisons`` can be passed: 2 / C(2n, n) <= alpha / comparisons."""
    n = 2
    while min_p_value(n, n) > alpha / max(1, comparisons):
        n += 1
    return n


@lru_cache(maxsize=None)
def _u_null_cdf(n1: int, n2: int) -> np.ndarray:
    """P(U <= u) for u = 0..n1*n2 under "no difference" (no ties): the textbook recursion
    c(n1, n2, u) = c(n1 - 1, n2, u - n2) + c(n1, n2 - 1, u) over arrangements."""
    counts = {}

    def count(a: int, b: int) -> np.ndarray:
        if (a, b) not in counts:
            if a == 0 or b == 0:
                counts[(a, b)] = np.ones(1, dtype=object)  # U = 0 in the one arrangement
            else:
                out = np.zeros(a * b + 1, dtype=object)
                left, right = count(a - 1, b), count(a, b - 1)
                out[b:b + len(left)] += left
                out[:len(right)] += right
                counts[(a, b)] = out
        return counts[(a, b)]

    c = count(n1, n2)
    return np.cumsum(c).astype(float) / float(sum(c))


def log_ratio_interval(base: np.ndarray, cell: np.ndarray,
                       level: float = 1 - ALPHA) -> tuple[float, float]:
    """Hodges-Lehmann interval of the speed-up ``base / cell`` (time ratio), or (nan, nan)
    when the sizes cannot reach ``level``. Vectorized over leading axes."""
    base, cell = np.asarray(base, float), np.asarray(cell, float)
    n1, n2 = base.shape[-1], cell.shape[-1]
    cdf = _u_null_cdf(n1, n2)
    # k: the largest with P(U <= k - 1) <= (1 - level) / 2; the interval is [d_(k), d_(N+1-k)].
    k = int(np.searchsorted(cdf, (1 - level) / 2 + 1e-12, side="right"))
    shape = base.shape[:-1]
    if k < 1:
        nan = np.full(shape, np.nan)
        return (nan, nan) if shape else (math.nan, math.nan)
    d = np.log(base)[..., :, None] - np.log(cell)[..., None, :]
    d = np.sort(d.reshape(*shape, n1 * n2), axis=-1)
    low, high = np.exp(d[..., k - 1]), np.exp(d[..., n1 * n2 - k])
    return (low, high) if shape else (float(low), float(high))


def p_value(base: np.ndarray, cell: np.ndarray) -> np.ndarray | float:
    """Exact two-sided Mann-Whitney p-value of "the two cells' durations have one
    distribution"; vectorized over leading axes."""
    result = scipy_stats.mannwhitneyu(np.asarray(base, float), np.asarray(cell, float),
                                      alternative="two-sided", method="exact", axis=-1)
    return result.pvalue


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (compare with ALPHA); vectorized over rows."""
    p = np.atleast_2d(np.asarray(p_values, float))
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=-1) * (m - np.arange(m))
    ranked = np.minimum(1.0, np.maximum.accumulate(ranked, axis=-1))
    adjusted = np.empty_like(p)
    np.put_along_axis(adjusted, order, ranked, axis=-1)
    return adjusted if np.ndim(p_values) > 1 else adjusted[0]


def decide(raw: np.ndarray, floors: np.ndarray, speedup: np.ndarray, low: np.ndarray,
           high: np.ndarray, alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Holm-adjusted p-values and verdicts of one family of comparisons (the last axis; any
    leading axes are independent families, as in a simulation).

    ``raw``: exact p-values; ``floors``: the smallest p-value each comparison's sizes allow;
    ``speedup``, ``low``, ``high``: point estimate and interval (nan: none).
    """
    raw = np.asarray(raw, float)
    adjusted = holm(raw)
    m = raw.shape[-1]
    # Could comparison j have been called at all, had its two cells been perfectly apart
    # (every cell run faster than every baseline run)? Holm again, with p_j at its floor.
    best = np.repeat(raw[..., None, :], m, axis=-2)  # [..., j, :]
    idx = np.arange(m)
    best[..., idx, idx] = np.broadcast_to(floors, raw.shape)
    callable_ = holm(best.reshape(-1, m)).reshape(best.shape)[..., idx, idx] <= alpha
    with np.errstate(invalid="ignore"):
        small = (1 - NOISE_THRESHOLD <= low) & (high <= 1 + NOISE_THRESHOLD)
    called = adjusted <= alpha
    verdict = np.where(called, np.where(small, SMALL, np.where(speedup > 1, FASTER, SLOWER)),
                       np.where(callable_, NO_CLEAR, TOO_FEW))
    return adjusted, verdict


def verdicts(pairs: list[tuple[np.ndarray, np.ndarray]], alpha: float = ALPHA) -> list[dict]:
    """One verdict per (baseline durations, cell durations) comparison of one run's family.

    Each dict: ``p`` (raw), ``p_holm``, ``ci_low``/``ci_high`` (speed-up interval, nan when
    the sizes cannot give one), ``verdict`` (FASTER, SLOWER, SMALL, NO_CLEAR, TOO_FEW or
    SINGLE) and ``comparisons`` (the family's size: the comparisons with 2 or more runs on
    each side).
    """
    out = [{"p": math.nan, "p_holm": math.nan, "ci_low": math.nan, "ci_high": math.nan,
            "verdict": SINGLE, "comparisons": 0} for _ in pairs]
    tested = [i for i, (b, c) in enumerate(pairs) if len(b) >= 2 and len(c) >= 2]
    if not tested:
        return out
    raw = np.array([float(p_value(*pairs[i])) for i in tested])
    floors = np.array([min_p_value(len(pairs[i][0]), len(pairs[i][1])) for i in tested])
    speedup = np.array([np.median(pairs[i][0]) / np.median(pairs[i][1]) for i in tested])
    low, high = np.array([log_ratio_interval(*pairs[i]) for i in tested]).T
    adjusted, verdict = decide(raw, floors, speedup, low, high, alpha)
    for j, i in enumerate(tested):
        out[i].update(p=float(raw[j]), p_holm=float(adjusted[j]), ci_low=float(low[j]),
                      ci_high=float(high[j]), verdict=str(verdict[j]), comparisons=len(tested))
    return out


def median_interval(values: np.ndarray, level: float = 1 - ALPHA) -> tuple[float, float]:
    """Distribution-free interval of the median (order statistics), nan below 6 values."""
    values = np.asarray(values, float)
    if len(values) < 2:
        return math.nan, math.nan
    ci = scipy_stats.quantile_test(values, q=float(np.median(values)),
                                   p=0.5).confidence_interval(level)
    return float(ci.low), float(ci.high)


def spread(values: np.ndarray) -> float:
    """Median absolute deviation, scaled to a normal standard deviation (nan below 2)."""
    values = np.asarray(values, float)
    if len(values) < 2:
        return math.nan
    return float(scipy_stats.median_abs_deviation(values, scale="normal"))
