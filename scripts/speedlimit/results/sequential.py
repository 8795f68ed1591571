"""Confidence intervals for paired log-ratios that hold however often the data are looked at.

The race reads each pair's *median* sequence (:func:`sign_bounds`) beside the group's pooled
intervals (:mod:`speedlimit.results.blocks`); the pair's mean sequence (:func:`t_factor`,
:func:`bounds`, :class:`Running`) is the ``pairwise`` construction the simulation compares
with, and the fixed-repeats warning's arithmetic (:func:`repeats_needed`).

A race (:mod:`speedlimit.results.race`) runs every setting still in it once per *round*, in a
random order, and after each round asks of every pair of settings whether one is slower. What
it compares is the pair's *paired* log-ratios: ``d_r = log t_i,r - log t_j,r``, one per round
both ran in, so that a drift of the machine between rounds cancels. Looking after every round
and stopping as soon as something is shown would spend the error rate many times over with
ordinary tests. Here every interval is a *confidence sequence*: with probability at least
``1 - alpha`` it covers the truth at every round at once, so a decision read off it at any
round, for any reason, is as sure as its level says (Ville's inequality; Howard, Ramdas,
McAuliffe and Sekhon 2021, "Time-uniform, nonparametric, nonasymptotic confidence sequences").

Two sequences, each at half the error rate, and the interval is their intersection:

* **Mean** (:func:`t_factor`): the t-test martingale of Lai (1976), for normal data of unknown
  spread: the Bayes factor of "mean ``mu``" against a normal mixture of alternatives, with the
  right-Haar prior on the spread (Pérez-Ortiz, Lardy, de Heide and Grünwald 2024,
  "E-statistics, group invariance and anytime-valid testing"; Wang and Ramdas 2025,
  "Anytime-valid t-tests and confidence sequences for Gaussian means with unknown variance")::

      E_n(mu) = sqrt(rho / (n + rho)) * (1 - S^2 / ((n + rho) V))^(-n / 2)

  with ``S = sum(d - mu)`` and ``V = sum((d - mu)^2)``. ``{mu : E_n(mu) < 1 / alpha}`` is the
  interval ``mean +- s * sqrt(c / (n - c))`` (``s`` the spread with divisor n), in closed form.
  It decides large differences in few rounds on a quiet machine.
* **Median** (:func:`sign_k`): the sign test's mixture martingale. If ``m`` is the median of
  every round's ``d`` (true whenever each round's two runs are exchangeable up to the shift:
  random order within the round makes them so, drift or not), the signs of ``d - m`` are fair
  coin flips, and ``E_n = 2^n B(a + k, a + n - k) / B(a, a)`` (``k`` of ``n`` above ``m``) is
  a test martingale. Its interval is between two order statistics of the ``d``, so one wild
  run (a busy neighbour, a slow second of the host) moves it by one place at most: it decides
  on heavy-tailed machines, where the mean's interval is wide.

With ``anytime=False`` the same construction gives the fixed-sample intervals for one look
(a fixed number of repeats): the t interval and the exact sign-test (binomial) interval, each at
half the error rate.

No library here implements these (``confseq`` is a compiled package for bounded data); each is
a few lines of numpy/scipy, checked in ``tests/test_sequential.py`` against a direct evaluation
of its martingale and, by simulation, for coverage at every round.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
# scipy.special, not scipy.stats: the workflow imports this module while it builds the DAG
# (the repeats warning), and scipy.stats takes a second longer to import.
from scipy import special

RHO = 0.1  # the mean's mixture: alternatives ~ N(0, spread^2 / RHO): wide, as clear
# differences decide early (fewest rounds for them; a few percent wider from round 20 on)
SIGN_A = 0.5  # the median's mixture: P(d > m) ~ Beta(SIGN_A, SIGN_A)


def t_factor(n, alpha: float, rho: float | None = None, anytime: bool = True):
    """Half-width of the mean's interval in units of ``s`` (the spread with divisor ``n``) at
    ``n`` observations: ``inf`` where no interval exists yet. Vectorized over ``n``."""
    n = np.asarray(n, float)
    rho = RHO if rho is None else rho
    with np.errstate(divide="ignore", invalid="ignore"):
        if not anytime:  # t interval: mean +- t(n-1) * s_(n-1) / sqrt(n) = t * s / sqrt(n-1)
            t = special.stdtrit(np.maximum(n - 1, 1), 1 - alpha / 2)  # Student's t quantile
            return np.where(n >= 2, t / np.sqrt(np.maximum(n - 1, 1)), np.inf)
        # E_n >= 1/alpha  <=>  S^2 >= c V,  c = (n + rho) (1 - K^(-2/n)),
        # K = sqrt((n + rho) / rho) / alpha   <=>  |mean - mu| >= s sqrt(c / (n - c)).
        log_k = 0.5 * np.log((n + rho) / rho) - np.log(alpha)
        c = (n + rho) * -np.expm1(-2.0 * log_k / np.maximum(n, 1))
        return np.where((n >= 2) & (n > c), np.sqrt(c / (n - c)), np.inf)


def t_evalue(d, mu: float, rho: float = RHO) -> float:
    """The mean's e-value ``E_n(mu)`` for observations ``d`` (for tests and the docs)."""
    d = np.asarray(d, float) - mu
    n, s, v = len(d), float(d.sum()), float((d * d).sum())
    return float(np.sqrt(rho / (n + rho)) * (1 - s * s / ((n + rho) * v)) ** (-n / 2))


def sign_evalue(n: int, k: int, a: float = SIGN_A) -> float:
    """The median's e-value with ``k`` of ``n`` observations above the median tested."""
    return float(np.exp(n * np.log(2) + special.betaln(a + k, a + n - k) - special.betaln(a, a)))


@lru_cache(maxsize=None)
def _sign_k(n: int, alpha: float, a: float, anytime: bool) -> int:
    if n < 1:
        return -1
    ks = np.arange(0, n // 2 + 1)
    if anytime:
        log_e = n * np.log(2) + special.betaln(a + ks, a + n - ks) - special.betaln(a, a)
        rejected = log_e >= -np.log(alpha)
    else:  # exact two-sided sign test
        rejected = 2 * special.bdtr(ks, n, 0.5) <= alpha  # the binomial CDF
    return int(ks[rejected].max()) if rejected.any() else -1


def sign_k(n, alpha: float, a: float | None = None, anytime: bool = True):
    """The largest count ``k`` such that "only ``k`` of ``n`` above (or below)" rejects a
    median; -1 where none does. The median's interval is then ``[d_(k+1), d_(n-k)]`` (order
    statistics, from 1). Vectorized over ``n``."""
    n = np.asarray(n, int)
    a = SIGN_A if a is None else a
    flat = np.array([_sign_k(int(v), float(alpha), float(a), bool(anytime))
                     for v in n.ravel()], dtype=int)
    return flat.reshape(n.shape)


def sign_bounds(d: np.ndarray, alpha: float, anytime: bool = True
                ) -> tuple[np.ndarray, np.ndarray]:
    """The median's interval at ``alpha`` from the paired log-ratios ``d`` (last axis:
    rounds; NaN where a round has no pair): between two order statistics of ``d``, so one
    wild run moves it by one place at most. ``(-inf, inf)`` where there is none yet."""
    d = np.asarray(d, float)
    present = ~np.isnan(d)
    n = present.sum(axis=-1)
    k = sign_k(n, alpha, anytime=anytime)
    ordered = np.sort(np.where(present, d, np.inf), axis=-1)  # absent rounds sort last
    size = d.shape[-1]
    lo_i = np.clip(k, 0, size - 1)
    hi_i = np.clip(n - k - 1, 0, size - 1)
    s_lo = np.take_along_axis(ordered, lo_i[..., None], axis=-1)[..., 0]
    s_hi = np.take_along_axis(ordered, hi_i[..., None], axis=-1)[..., 0]
    none = (k < 0) | (n < 1)
    return np.where(none, -np.inf, s_lo), np.where(none, np.inf, s_hi)


def bounds(d: np.ndarray, alpha: float, anytime: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The interval for the location of the paired log-ratios ``d`` (last axis: rounds; NaN
    where a round has no pair), from all of them at once: the intersection of the mean's and
    the median's, each at ``alpha / 2``. ``(-inf, inf)`` where there is no interval yet.

    For a confidence *sequence* intersect these over the rounds (:class:`Running`)."""
    d = np.asarray(d, float)
    present = ~np.isnan(d)
    n = present.sum(axis=-1)
    zeros = np.where(present, d, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = zeros.sum(axis=-1) / n
        var = np.where(present, (d - mean[..., None]) ** 2, 0.0).sum(axis=-1) / n
        half = t_factor(n, alpha / 2, anytime=anytime) * np.sqrt(var)
    t_lo = np.where(np.isfinite(half), mean - half, -np.inf)
    t_hi = np.where(np.isfinite(half), mean + half, np.inf)
    s_lo, s_hi = sign_bounds(d, alpha / 2, anytime)
    return np.maximum(t_lo, s_lo), np.minimum(t_hi, s_hi)


class Running:
    """A confidence sequence: the running intersection of :func:`bounds` over the rounds.

    ``update(d)`` takes every round so far (last axis) and intersects the interval of all of
    them with the one held; with ``anytime=False`` (one look) it is just the latest."""

    def __init__(self, shape=(), alpha: float = 0.05, anytime: bool = True):
        self.alpha, self.anytime = alpha, anytime
        self.low = np.full(shape, -np.inf)
        self.high = np.full(shape, np.inf)

    def update(self, d: np.ndarray, changed: np.ndarray | bool = True) -> None:
        """Intersect with the interval of ``d`` where ``changed`` (a round added a pair)."""
        low, high = bounds(d, self.alpha, self.anytime)
        if self.anytime:
            low, high = np.maximum(self.low, low), np.minimum(self.high, high)
        self.low = np.where(changed, low, self.low)
        self.high = np.where(changed, high, self.high)


NOISE = 0.03  # a quiet machine's run-to-run spread (log), for repeats_needed


def repeats_needed(comparisons: int, margin: float, alpha: float = 0.05,
                   anytime: bool = False, noise: float = NOISE, cap: int = 1000) -> int:
    """The fewest runs per setting at which a setting as fast as another is shown so (its
    interval of the epoch ratio ending below ``1 + margin``) in 9 runs of 10, among
    ``comparisons`` in the family, on a machine whose runs spread by ``noise``: with fewer,
    that claim is mostly out of reach there (and a noisier machine needs more)."""
    spread = noise * np.sqrt(2)  # of a paired log-ratio
    n = 2
    while n < cap:
        # the divisor-n spread of n paired log-ratios, at its 90th percentile
        s90 = spread * np.sqrt(special.chdtri(n - 1, 0.1) / n)  # chi2's 90th percentile
        if t_factor(n, alpha / max(1, comparisons) / 2, anytime=anytime) * s90 <= np.log1p(margin):
            return n
        n += 1
    return cap
