"""The summary's statistics: verdicts read off intervals, and a cell's median and spread.

Each cell's runs are a handful of epoch durations from a machine whose noise has any shape
(skewed, with occasional slow outliers), so nothing here assumes a distribution:

* **Comparisons** of two settings are intervals for the ratio of their epoch durations
  (:mod:`speedlimit.results.race`, from :mod:`speedlimit.results.sequential`: paired by round,
  simultaneous over every pair of the run, valid at every round of a race). A verdict is read
  straight off its interval (:func:`verdict`), as criterion.rs does with its noise threshold:
  *faster* or *slower* only where the whole interval lies beyond the noise threshold
  (``train.threshold``, passed to each verdict), *within
  the noise threshold* where it lies wholly inside it, and *not told apart* otherwise. So a
  verdict and the interval printed beside it always say the same thing.
* **A cell's median**: the order-statistic interval of the median (``scipy.stats.quantile_test``),
  distribution-free, from 6 repeats; and median +- MAD, with pyperf's warning when the spread
  is more than 10% of the median ("may be unstable").
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as scipy_stats

ALPHA = 0.05  # family-wise error rate of the run's claims: every interval is 1 - ALPHA jointly
UNSTABLE = 0.10  # pyperf's warning: spread (MAD, scaled to a standard deviation) > 10%

# Verdicts of a ratio of speeds (summary columns ``speedup_verdict``, ``vs_fastest_verdict``).
FASTER, SLOWER = "faster", "slower"
NO_CLEAR = "not told apart"  # the interval reaches both sides of the noise threshold
TOO_FEW = "too few repeats"  # no interval yet at this many runs
SMALL = "within noise threshold"  # the interval lies wholly within +-the threshold
SINGLE = "one run"  # a side has a single run: nothing to compare


def verdict(low: float, high: float, runs: int, threshold: float) -> str:
    """The verdict of a speed ratio (``t_other / t_cell``: above 1, the cell is faster) read
    off its interval ``[low, high]``; ``runs``: the fewer runs of the two sides;
    ``threshold``: the noise threshold (``train.threshold``)."""
    if runs < 2:
        return SINGLE
    if not (math.isfinite(low) and math.isfinite(high)):
        return TOO_FEW
    if low > 1 + threshold:
        return FASTER
    if high < 1 / (1 + threshold):
        return SLOWER
    if low >= 1 / (1 + threshold) and high <= 1 + threshold:
        return SMALL
    return NO_CLEAR


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
