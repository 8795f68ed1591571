"""Whole races, simulated through the race's own decision code (:mod:`speedlimit.results.race`).

A simulated run has ``groups`` groups of the same settings with known true epoch durations;
each round runs every cell still in the race once, in a random order over the whole run, and
the machine misbehaves as a scenario says: noise per run, heavy tails (one run in ten 30%
slow), drift (the machine's speed ramping over the race) and a busy neighbour (a stretch of
consecutive runs slowed together). After each round :meth:`race.Group.add_round` and
:meth:`race.Group.decide` run exactly as in the pipeline (vectorized over the simulated runs),
and the runs that are decided stop.

:func:`simulate` reports, over many runs: how often *any* claim of a run was false (the
family-wise error the findings promise to keep at or below ALPHA), how often any interval
missed its truth, how often every group was decided and on the right side of its claims
(power), and how many runs a race took. ``tests/test_race.py`` asserts the error rates;
``benchmarks/race_simulation.py`` prints the table. numpy only; seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from speedlimit.results import race


@dataclass(frozen=True)
class Scenario:
    name: str
    speedups: tuple[float, ...]  # true speed-up of each setting over setting 0 (num_workers=0)
    noise: float = 0.03  # log-normal spread of one run
    tail: float = 0.0  # share of runs 30% slow
    drift: float = 0.0  # the machine's epochs lengthen by this much over the race
    neighbour: float = 0.0  # chance per round that a busy neighbour slows a third of it by 30%


# Six settings, as the seed's num_workers 0, 1, 2, 4, 8, 16 (setting 0 is num_workers=0).
SCENARIOS = {
    "null": Scenario("no true difference", (1, 1, 1, 1, 1, 1)),
    "5%/15%": Scenario("one 5% and one 15% faster", (1, 1.05, 1.15, 1, 1, 1)),
    "heavy tails": Scenario("5%/15%, one run in ten 30% slow", (1, 1.05, 1.15, 1, 1, 1),
                            tail=0.1),
    "drift": Scenario("5%/15%, machine 20% slower by the end", (1, 1.05, 1.15, 1, 1, 1),
                      drift=0.2),
    "neighbour": Scenario("5%/15%, a busy neighbour in one round in five",
                          (1, 1.05, 1.15, 1, 1, 1), neighbour=0.2),
    "null, heavy tails": Scenario("no difference, one run in ten 30% slow", (1,) * 6,
                                  tail=0.1),
    "null, drift": Scenario("no difference, machine 20% slower by the end", (1,) * 6,
                            drift=0.2),
}


@dataclass
class Result:
    scenario: Scenario
    runs: int  # simulated runs of the pipeline
    false_claim: float  # share of runs with any false claim
    missed: float  # share of runs where any final interval missed its truth
    decided: float  # share of runs where every group was decided
    correct: float  # share decided with every recommendation acceptable
    mean_runs: float  # runs of cells per simulated pipeline run
    mean_rounds: float  # rounds until every group was decided (or the cap)
    recommended: np.ndarray  # share of groups recommending each setting (last: undecided)


def _noise(s: Scenario, rng, shape, round_, rounds, order):
    eps = rng.normal(0.0, s.noise, shape)
    if s.tail:
        eps += np.where(rng.random(shape) < s.tail, math.log(1.3), 0.0)
    if s.drift:
        eps += np.log1p(s.drift * (round_ + order) / rounds)
    if s.neighbour:  # a third of the round, a contiguous stretch of its order, slowed
        start = rng.random(shape[:1])[:, None, None]
        hit = (rng.random(shape[:1]) < s.neighbour)[:, None, None]
        inside = (order >= start) & (order < start + 1 / 3)
        eps += np.where(hit & inside, math.log(1.3), 0.0)
    return eps


def false_claims(low, high, base, decision, truth, design: race.Design) -> np.ndarray:
    """Which runs made a false claim: a setting shown slower than another when it is not
    (by more than the threshold); the recommendation shown as fast as a setting it is more
    than the margin slower than, or faster than its baseline when it is not."""
    slow, fast = math.log1p(design.threshold), math.log1p(design.margin)
    out_false = ((low > slow) & (truth <= slow)).any(axis=(-1, -2))
    k = truth.shape[-1]
    c = np.maximum(decision.candidate, 0)[..., None]
    c_high = np.take_along_axis(high, c[..., None].repeat(k, -1), axis=-2)[..., 0, :]
    c_truth = truth[np.maximum(decision.candidate, 0)]  # [.., k]: log(t_c / t_j)
    alive = ~decision.out
    fast_false = (decision.decided[..., None] & alive & (c_high <= fast) & (c_truth > fast)
                  ).any(axis=-1)
    b = np.asarray(base)[np.maximum(decision.candidate, 0)]
    gain_low = np.take_along_axis(-c_high, b[..., None], axis=-1)[..., 0]  # low of log(t_b/t_c)
    gain_truth = -np.take_along_axis(c_truth, b[..., None], axis=-1)[..., 0]
    gain_false = decision.decided & (b != decision.candidate) & (gain_low > slow) & (
        gain_truth <= slow)
    return out_false | fast_false | gain_false


def acceptable(decision, truth, design: race.Design) -> np.ndarray:
    """Whether each decided recommendation is one the rule allows given the truth: within the
    margin of the fastest, and gaining more than the threshold over num_workers=0 where the
    fastest does (an indifference zone in between: either way is no false claim)."""
    fast = math.log1p(design.margin)
    c = np.maximum(decision.candidate, 0)
    within = truth[c].max(axis=-1) <= fast  # truth[i, j] = log(t_i / t_j)
    return decision.decided & within


def _truth(scenario: Scenario) -> tuple[int, np.ndarray, np.ndarray]:
    """(settings, each one's log epoch duration, truth[i, j] = log(t_i / t_j))."""
    mu = np.log(1 / np.asarray(scenario.speedups, float))
    return len(mu), mu, mu[:, None] - mu[None, :]


def simulate(scenario: Scenario, runs: int = 1000, groups: int = 3, rounds: int = 40,
             seed: int = 0, anytime: bool = True, corrected: bool = True) -> Result:
    """``runs`` simulated pipeline runs of ``groups`` groups each. ``anytime=False`` is a
    negative control: fixed-sample intervals looked at after every round, as ordinary tests
    would be; ``corrected=False`` another: no correction for the run's many pairs."""
    rng = np.random.default_rng(seed)
    k, mu, truth = _truth(scenario)
    base = [0] * k
    design = race.Design(pairs=groups * k * (k - 1) // 2 if corrected else 1,
                         anytime=anytime)
    group = race.Group(k, base, design, batch=(runs, groups))
    running = np.ones((runs, groups, k), bool)
    spent = np.zeros(runs)
    done_at = np.full((runs, groups), -1)
    ever_false = np.zeros(runs, bool)
    for r in range(rounds):
        order = rng.random((runs, groups, k))  # each run's place in its round, in [0, 1)
        eps = _noise(scenario, rng, (runs, groups, k), r, rounds, order)
        durations = np.where(running, np.exp(mu + eps), np.nan)
        spent += running.sum(axis=(-1, -2))
        group.add_round(durations)
        decision = group.decide()
        low, high = group.bounds()
        ever_false |= false_claims(low, high, base, decision, truth, design).any(axis=-1)
        done_at[decision.decided & (done_at < 0)] = r
        running = decision.running
        if not running.any():
            break
    low, high = group.bounds()
    missed = ((low > truth) | (high < truth)).any(axis=(-1, -2)).any(axis=-1)
    decided = (done_at >= 0).all(axis=-1)
    good = acceptable(decision, truth, design).all(axis=-1)
    picks = np.where(decision.decided, decision.candidate, k).ravel()
    return Result(scenario, runs, float(ever_false.mean()), float(missed.mean()),
                  float(decided.mean()), float((decided & good & ~ever_false).mean()),
                  float(spent.mean()),
                  float(np.where(decided, done_at.max(axis=-1) + 1, rounds).mean()),
                  np.bincount(picks, minlength=k + 1) / picks.size)


def fixed(scenario: Scenario, n: int, runs: int = 1000, groups: int = 3,
          seed: int = 0, pairs: int | None = None) -> tuple[float, float]:
    """A fixed design of ``n`` runs per cell (one look, fixed-sample intervals, the same
    decision rule): (the share of runs deciding every group acceptably without a false claim,
    the share of runs with a false claim). ``pairs``: the family's size, when the run has more
    groups than are simulated."""
    rng = np.random.default_rng(seed)
    k, mu, truth = _truth(scenario)
    design = race.Design(pairs=pairs or groups * k * (k - 1) // 2, anytime=False)
    group = race.Group(k, [0] * k, design, batch=(runs, groups))
    for r in range(n):
        order = rng.random((runs, groups, k))
        eps = _noise(scenario, rng, (runs, groups, k), r, n, order)
        group.add_round(np.exp(mu + eps))
    decision = group.decide()
    low, high = group.bounds()
    bad = false_claims(low, high, [0] * k, decision, truth, design).any(axis=-1)
    good = acceptable(decision, truth, design).all(axis=-1) & ~bad
    return float(good.mean()), float(bad.mean())


def fixed_runs_for(scenario: Scenario, power: float, groups: int = 3, runs: int = 1000,
                   seed: int = 0, cap: int = 200) -> int | None:
    """The fewest runs per cell a fixed design needs to match ``power`` (None: not by
    ``cap``)."""
    for n in range(2, cap + 1):
        if fixed(scenario, n, runs, groups, seed)[0] >= power:
            return n
    return None
