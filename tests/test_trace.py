"""The noise benchmark's arithmetic (speedbench.trace), on simulated traces whose
answer is known: windows cut from step marks, the spread, the share at a lag, and the
between/within split of Kalibera and Jones."""

import math

import numpy as np
import pytest

from speedbench import trace


def test_cut_makes_consecutive_windows_of_whole_steps():
    marks = [0.04, 0.08, 0.12, 0.16, 0.20, 0.24, 0.28]  # steps of 40 ms, 10 samples each
    w = trace.cut(0.0, marks, [10] * 7, 0.1)
    assert len(w) == 2  # 0-0.12, 0.12-0.24; the last step (0.28) is a window too short
    assert w.starts.tolist() == [0.0, 0.12]
    assert np.allclose(w.seconds, [0.12, 0.12]) and w.samples.tolist() == [30, 30]
    assert np.allclose(w.log_rates, math.log(0.12 / 30))


def windows_of(x, step=0.1, samples=100):
    """Windows ``step`` s apart whose log seconds per sample are ``x``."""
    x = np.asarray(x)
    seconds = np.exp(x) * samples
    return trace.Windows(np.arange(len(x)) * step, seconds, np.full(len(x), samples))


def ar1(n, rho, sd, rng):
    x = np.empty(n)
    x[0] = rng.normal(0, sd)
    e = rng.normal(0, sd * math.sqrt(1 - rho**2), n)
    for t in range(1, n):
        x[t] = rho * x[t - 1] + e[t]
    return x


def test_the_share_at_a_lag_is_the_lags_autocorrelation():
    rng = np.random.default_rng(0)
    w = windows_of(ar1(200_000, 0.9, 0.1, rng) + math.log(1e-4))
    for lag, expected in [(0.1, 0.9), (1.0, 0.9**10), (3.0, 0.9**30)]:
        got = trace.shared(w, lag)
        assert got["share"] == pytest.approx(expected, abs=0.03), (lag, got)
        # paired sd = sqrt(2 (1 - share)) x the windows' sd
        assert got["paired_sd"] == pytest.approx(0.1 * math.sqrt(2 * (1 - expected)), rel=0.05)


def test_white_noise_shares_nothing_and_its_spread_is_its_sd():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.15, 20_000)
    w = windows_of(x)
    assert abs(trace.shared(w, 1.0)["share"]) < 0.03
    s = trace.spread(w.log_rates)
    assert s["sd"] == pytest.approx(0.15, rel=0.03)
    assert s["robust_sd"] == pytest.approx(0.15, rel=0.05)


def test_lag_pairs_keep_only_partners_near_the_lag():
    starts = np.array([0.0, 0.1, 0.2, 5.0, 5.1])
    i, j = trace.lag_pairs(starts, 0.1)
    assert list(zip(i, j)) == [(0, 1), (1, 2), (3, 4)]  # 0.2 -> 5.0 is no 0.1 s lag


def test_between_and_within_processes_recover_the_simulated_levels():
    rng = np.random.default_rng(2)
    groups = [list(rng.normal(0, 0.1) + rng.normal(0, 0.05, 30)) for _ in range(400)]
    got = trace.between_within(groups)
    assert got["sd_within"] == pytest.approx(0.05, rel=0.05)
    assert got["between_share"] == pytest.approx(0.01 / (0.01 + 0.0025), abs=0.05)
