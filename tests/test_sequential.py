"""The race's intervals (speedlimit.results.sequential): each closed form against a direct
evaluation of its martingale or of scipy, and coverage *at every round at once* by
simulation, with a negative control (fixed-sample intervals looked at after every round) that
must fail the same check."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from speedlimit.results import sequential

TRIALS = 2000
ROUNDS = 40


def tolerance(rate: float, trials: int) -> float:
    return 3 * math.sqrt(rate * (1 - rate) / trials)


@pytest.mark.parametrize("n", [6, 9, 15, 30])
def test_the_mean_interval_is_where_its_e_value_crosses_one_over_alpha(n):
    rng = np.random.default_rng(n)
    d = rng.normal(0.1, 0.05, n)
    alpha = 0.01
    half = sequential.t_factor(n, alpha) * d.std()
    assert math.isfinite(half)
    for mu, inside in ((d.mean() - 0.999 * half, True), (d.mean() + 0.999 * half, True),
                       (d.mean() - 1.001 * half, False), (d.mean() + 1.001 * half, False)):
        e = sequential.t_evalue(d, mu)
        assert (e < 1 / alpha) == inside, (mu, e)


def test_the_mean_interval_is_unbounded_until_its_e_value_can_reach_one_over_alpha():
    alpha = 0.001
    # With c >= n no data can reject: the interval is the whole line.
    assert math.isinf(sequential.t_factor(1, alpha))
    assert math.isinf(sequential.t_factor(3, alpha))
    d = np.array([0.1, 0.1001, 0.0999])  # nearly identical: still nothing at n = 3
    assert sequential.t_evalue(d, 0.0) < 1 / alpha


@pytest.mark.parametrize("n", [13, 20, 31])
def test_the_median_interval_counts_match_the_sign_e_value(n):
    alpha = 0.01
    k = int(sequential.sign_k(n, alpha))
    assert k >= 0
    assert sequential.sign_evalue(n, k) >= 1 / alpha
    assert sequential.sign_evalue(n, k + 1) < 1 / alpha
    assert sequential.sign_evalue(n, n - k) >= 1 / alpha  # symmetric


def test_fixed_sample_intervals_are_scipys_t_interval_and_the_exact_sign_test():
    rng = np.random.default_rng(3)
    d = rng.normal(0.05, 0.04, 12)
    alpha = 0.02
    t = scipy.stats.ttest_1samp(d, 0.0).confidence_interval(1 - alpha)
    half = sequential.t_factor(len(d), alpha, anytime=False) * d.std()
    assert d.mean() - half == pytest.approx(t.low)
    assert d.mean() + half == pytest.approx(t.high)
    # The sign interval by brute force: every m whose two-sided exact sign test keeps it.
    k = int(sequential.sign_k(len(d), alpha, anytime=False))
    ordered = np.sort(d)
    for m in np.linspace(ordered[0] - 0.01, ordered[-1] + 0.01, 400):
        above = int((d > m).sum())
        p = scipy.stats.binomtest(above, len(d), 0.5).pvalue
        inside = ordered[k] <= m < ordered[len(d) - k - 1]
        if not np.isclose(m, ordered).any():
            assert (p > alpha) == inside, (m, p)


def _sequences(shape_name: str, rng, truth: float):
    noise = rng.normal(0.0, 0.04, (TRIALS, ROUNDS))
    if shape_name == "heavy tails":  # one run in ten 30% slow, on either side of the pair
        noise += np.where(rng.random((TRIALS, ROUNDS)) < 0.1, math.log(1.3), 0.0)
        noise -= np.where(rng.random((TRIALS, ROUNDS)) < 0.1, math.log(1.3), 0.0)
    if shape_name == "drifting spread":  # the machine gets noisier over the race
        noise *= np.linspace(0.5, 3.0, ROUNDS)
    return truth + noise


def _misses_at_any_round(d, alpha, anytime, truth):
    running = sequential.Running((TRIALS,), alpha, anytime)
    missed = np.zeros(TRIALS, bool)
    for r in range(1, ROUNDS + 1):
        running.update(d[:, :r])
        missed |= (running.low > truth) | (running.high < truth)
    return missed.mean()


@pytest.mark.parametrize("shape_name", ["normal", "heavy tails", "drifting spread"])
def test_the_confidence_sequence_covers_the_truth_at_every_round_at_once(shape_name):
    rng = np.random.default_rng(7)
    alpha = 0.05
    d = _sequences(shape_name, rng, truth=0.05)
    miss = _misses_at_any_round(d, alpha, anytime=True, truth=0.05)
    assert miss <= alpha + tolerance(alpha, TRIALS), miss


def test_fixed_sample_intervals_looked_at_after_every_round_miss_far_more_often():
    """The negative control: every look spends error rate. The same check as above fails."""
    rng = np.random.default_rng(7)
    alpha = 0.05
    d = _sequences("normal", rng, truth=0.05)
    miss = _misses_at_any_round(d, alpha, anytime=False, truth=0.05)
    assert miss > alpha + tolerance(alpha, TRIALS), miss
