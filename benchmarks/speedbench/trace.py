"""What a trace of training steps says about the machine's noise (``benchmarks/noise.py``).

A *trace* is the moment each training step ended and its samples, for one setting running
steadily in one process. Cut into consecutive *windows* of at least a given length, it gives
the spread of a setting's rate against the length of the timed stretch; pairs of windows a
given *lag* apart give how much of that spread they share (what a comparison of two windows
that far apart cancels): ``share = 1 - var(x_j - x_i) / (2 var(x))`` for log rates ``x``, the
lag's autocorrelation. Kalibera and Jones (ISMM 2013) choose where to repeat from these: at the
level where the variance is and the cost is low.

Torch-free and pure: the benchmark measures, this module computes, the tests check it on
simulated traces with a known answer.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import numpy as np

MAD_SD = 1.4826  # a normal's sd per median absolute deviation


@dataclass(frozen=True)
class Windows:
    """Consecutive windows of a trace: their starts, lengths (s) and samples."""

    starts: np.ndarray
    seconds: np.ndarray
    samples: np.ndarray

    @property
    def log_rates(self) -> np.ndarray:
        """log(seconds per sample) of each window."""
        return np.log(self.seconds / self.samples)

    def __len__(self) -> int:
        return len(self.starts)


def cut(start: float, marks, sizes, length: float) -> Windows:
    """Cut one stretch of steps (``start``: the moment before its first step; ``marks``: each
    step's end; ``sizes``: its samples) into consecutive windows of at least ``length``
    seconds of whole steps (the last, shorter one dropped)."""
    starts, seconds, samples = [], [], []
    begin, count = start, 0
    for mark, size in zip(marks, sizes):
        count += size
        if mark - begin >= length:
            starts.append(begin)
            seconds.append(mark - begin)
            samples.append(count)
            begin, count = mark, 0
    return Windows(np.array(starts), np.array(seconds), np.array(samples))


def spread(values) -> dict:
    """The spread of log rates: sd, the MAD's robust sd, and the slowest over the fastest."""
    values = np.asarray(values, float)
    if len(values) < 2:
        return {"n": int(len(values)), "sd": None, "robust_sd": None, "range_ratio": None}
    median = float(np.median(values))
    return {"n": int(len(values)), "sd": float(np.std(values, ddof=1)),
            "robust_sd": MAD_SD * float(np.median(np.abs(values - median))),
            "range_ratio": math.exp(float(values.max() - values.min()))}


def lag_pairs(starts, lag: float, tolerance: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) of windows whose starts lie ``lag`` apart (within ``tolerance`` of
    the lag; each window's nearest partner later in the trace)."""
    starts = np.asarray(starts, float)
    target = starts + lag
    j = np.searchsorted(starts, target)
    i = np.arange(len(starts))
    best = []
    for cand in (j - 1, j):
        ok = (cand > i) & (cand < len(starts))
        best.append(np.where(ok, cand, -1))
    left, right = best
    dl = np.where(left >= 0, np.abs(starts[np.maximum(left, 0)] - target), np.inf)
    dr = np.where(right >= 0, np.abs(starts[np.minimum(np.maximum(right, 0), len(starts) - 1)]
                                     - target), np.inf)
    partner = np.where(dl <= dr, left, right)
    gap = np.minimum(dl, dr)
    keep = (partner >= 0) & (gap <= tolerance * lag)
    return i[keep], partner[keep]


def shared(windows: Windows, lag: float) -> dict:
    """How much of the windows' spread is shared by two windows ``lag`` seconds apart: the sd
    of their paired log-ratio, and ``share = 1 - var(paired) / (2 var(single))``."""
    x = windows.log_rates
    i, j = lag_pairs(windows.starts, lag)
    if len(i) < 3 or len(x) < 3:
        return {"lag": lag, "pairs": int(len(i)), "paired_sd": None, "share": None}
    d = x[j] - x[i]
    var = float(np.var(x, ddof=1))
    paired = float(np.var(d, ddof=1))
    return {"lag": lag, "pairs": int(len(i)), "paired_sd": math.sqrt(paired),
            "share": 1 - paired / (2 * var) if var > 0 else None}


def between_within(groups: list[list[float]]) -> dict:
    """Kalibera and Jones's two levels: the spread of log rates between processes (of their
    medians) and within them (of their windows), and the share of the variance that lies
    between processes (the part repeating within one process cannot average away)."""
    medians = [statistics.median(g) for g in groups if g]
    within = [x - statistics.median(g) for g in groups if len(g) > 1 for x in g]
    sd_between = statistics.stdev(medians) if len(medians) > 1 else None
    sd_within = statistics.stdev(within) if len(within) > 1 else None
    share = None
    if sd_between is not None and sd_within is not None:
        per = statistics.median(len(g) for g in groups)  # the medians' own within-noise
        between_var = max(0.0, sd_between ** 2 - (math.pi / 2) * sd_within ** 2 / per)
        total = between_var + sd_within ** 2
        share = between_var / total if total > 0 else None
    return {"processes": len(medians), "sd_between": sd_between, "sd_within": sd_within,
            "between_share": share}
