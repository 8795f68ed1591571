"""The race's intervals from the whole group's rounds (speedlimit.results.blocks): the pooled
spread is the additive model's, the guard flags a setting that spreads more than the rest and
not one wild run, the looks spend at most the error rate, and the intervals cover as often as
their level says (by simulation; the guard's negative control in tests/test_race.py)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats as scipy_stats

from speedlimit.results import blocks


def table(k: int = 5, rounds: int = 6, noise: float = 0.03, seed: int = 0,
          spreads=None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    level = np.linspace(0.0, 0.2, k)[:, None]
    speed = rng.normal(0.0, 0.2, (1, rounds))  # the machine's speed, shared by a round
    scale = noise * (np.asarray(spreads, float)[:, None] if spreads is not None else 1.0)
    return level + speed + rng.normal(0.0, 1.0, (k, rounds)) * scale


def additive_residual_variance(logs: np.ndarray) -> tuple[float, int]:
    """The two-way model's residual variance and degrees of freedom, by least squares on
    its design matrix (what the pooled spread must equal on a full table)."""
    k, r = logs.shape
    rows, y = [], []
    for s in range(k):
        for t in range(r):
            if np.isnan(logs[s, t]):
                continue
            x = np.zeros(k + r)
            x[s], x[k + t] = 1.0, 1.0
            rows.append(x)
            y.append(logs[s, t])
    x, y = np.array(rows), np.array(y)
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    dof = len(y) - np.linalg.matrix_rank(x)
    return float(((y - x @ beta) ** 2).sum() / dof), dof


def test_the_pooled_spread_is_the_additive_models_with_its_degrees_of_freedom():
    logs = table()
    var, dof = additive_residual_variance(logs)
    assert dof == (6 - 1) * (5 - 1)
    low, high, mean, flagged = blocks.intervals(logs, 0.05, guard=None)
    i, j = np.triu_indices(5, 1)
    t = special.stdtrit(dof, 0.975)
    assert not flagged.any()
    # every pair: its paired mean +- t(dof) * sqrt(2 var / rounds)
    assert mean == pytest.approx((logs[i] - logs[j]).mean(axis=-1))
    assert high - mean == pytest.approx(np.full(len(i), t * np.sqrt(2 * var / 6)))
    assert mean - low == pytest.approx(high - mean)


def test_a_ragged_table_counts_the_models_degrees_of_freedom():
    logs = table(rounds=8)
    logs[3, 4:] = np.nan  # a setting that left the race after round 4
    logs[4, 6:] = np.nan
    _, dof = additive_residual_variance(logs)
    present = ~np.isnan(logs)
    assert blocks._model_dof(present, np.ones(5, bool)) == dof


def test_two_settings_give_the_paired_t_interval():
    logs = table(k=2, rounds=5)
    low, high, _, _ = blocks.intervals(logs, 0.05)
    ci = scipy_stats.ttest_1samp(logs[0] - logs[1], 0.0).confidence_interval(0.95)
    assert (low[0], high[0]) == pytest.approx((ci.low, ci.high))


def test_the_guard_flags_a_setting_four_times_noisier_far_more_often_than_one_wild_run():
    hits = wild = 0
    for seed in range(50):
        noisy = table(k=6, rounds=6, seed=seed, spreads=(1, 1, 1, 1, 1, 4))
        hits += bool(blocks.noisier(noisy, blocks.GUARD)[5])
        quiet = table(k=6, rounds=6, seed=seed)
        quiet[2, 3] += np.log(1.3)  # one run 30% slow (a busy second of the host)
        wild += bool(blocks.noisier(quiet, blocks.GUARD)[2])
    # (a flag costs width; a noisy setting missed costs false claims: the guard errs on the
    # side of flagging; unwinsorized, the wild run flags its setting in 50 of 50)
    assert hits >= 43 and wild <= 35, (hits, wild)


def test_a_flagged_setting_is_compared_by_its_own_spread():
    logs = table(k=6, rounds=8, seed=3, spreads=(1, 1, 1, 1, 1, 4))
    low, high, _, flagged = blocks.intervals(logs, 0.05)
    pooled_low, pooled_high, _, _ = blocks.intervals(logs, 0.05, guard=None)
    assert flagged.tolist() == [False] * 5 + [True]
    i, j = np.triu_indices(6, 1)
    with_noisy = (i == 5) | (j == 5)
    # wider where the noisy setting is in the pair, narrower where it is not (its noise no
    # longer inflates the quiet settings' pooled spread)
    assert ((high - low)[with_noisy] > (pooled_high - pooled_low)[with_noisy]).all()
    assert ((high - low)[~with_noisy] < (pooled_high - pooled_low)[~with_noisy]).all()


def test_the_looks_spend_at_most_the_error_rate():
    n = np.arange(0, 5000)
    shares = blocks.spend(n)
    assert shares.sum() <= 1.0 and (shares >= 0).all()
    assert shares[: blocks.LOOKS[0]].sum() == 0.0  # no look before the first
    assert set(np.flatnonzero(shares[: blocks.LOOKS[-1] + 1])) == set(blocks.LOOKS)


@pytest.mark.parametrize("guard", [blocks.GUARD, None])
def test_one_looks_intervals_cover_at_their_level(guard):
    """Simultaneous over the 15 pairs of 6 settings at 5% / 15 each: all cover in at least
    95% of tables, the normal case (the guard's false flags cost width, not coverage)."""
    rng = np.random.default_rng(1)
    trials, k = 2000, 6
    level = np.linspace(0.0, 0.1, k)
    logs = level[None, :, None] + rng.normal(0, 0.2, (trials, 1, 5)) \
        + rng.normal(0, 0.03, (trials, k, 5))
    low, high, _, _ = blocks.intervals(logs, 0.05 / 15, guard)
    i, j = np.triu_indices(k, 1)
    truth = level[i] - level[j]
    covered = ((low <= truth) & (truth <= high)).all(axis=-1)
    assert covered.mean() >= 0.95 - 3 * np.sqrt(0.05 * 0.95 / trials), covered.mean()
