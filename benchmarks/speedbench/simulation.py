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

from speedlimit.config import lever_defaults
from speedlimit.groups import family_size
from speedlimit.results import blocks, forecast, race

LEVERS = lever_defaults()  # train.threshold and train.margin, as the schema defaults them


@dataclass(frozen=True)
class Scenario:
    name: str
    speedups: tuple[float, ...]  # true speed-up of each setting over setting 0 (num_workers=0)
    noise: float = 0.03  # spread (log) of one run
    df: float | None = None  # Student's t noise with these degrees of freedom (heavy tails)
    tail: float = 0.0  # share of runs 30% slow
    drift: float = 0.0  # the machine's epochs lengthen by this much over the race
    neighbour: float = 0.0  # chance per round that a busy neighbour slows a third of it by 30%
    start: float = 0.0  # share of the race after which drift and the neighbour begin
    spreads: tuple[float, ...] | None = None  # each setting's noise, times ``noise``


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

# This machine, as the race's own rounds measure it here (the seed's grid raced on this 2-core
# VM, 2026-12-07, docs/benchmarks.md): the additive model's residual spread of one run is
# 0.02-0.04 for most settings of a group and about four times that for one (many workers on
# two cores: num_workers=16 at batch size 1,000, num_workers=0 at 100), with heavy tails
# (Student's t, 3 degrees of freedom, and one run in a hundred 30% slow); the "turning" rows
# switch on, half-way through the race, a drift of the machine (20% slower by the end) and a
# busy neighbour slowing a third of one round in four. Settings as near each other as
# measured here: num_workers=0 10-16% slower than the rest, which lie within a few percent
# of each other (near-ties: the hardest case for "as fast").
MACHINE_SPEEDUPS = (1, 1.15, 1.16, 1.13, 1.12, 1.10)
NOISIER = (1, 1, 1, 1, 1, 4)  # each setting's spread: num_workers=16 four times the rest's
_MACHINE = dict(noise=0.03, df=3, tail=0.01)
MACHINE = {
    "this machine": Scenario("this VM, fitted: 3% t(3) noise, num_workers=16 4x noisier",
                             MACHINE_SPEEDUPS, spreads=NOISIER, **_MACHINE),
    "this machine, turning": Scenario(
        "this VM, fitted; from half-way: 20% drift and a busy neighbour in one round in four",
        MACHINE_SPEEDUPS, spreads=NOISIER, drift=0.2, neighbour=0.25, start=0.5, **_MACHINE),
    "this machine, null, turning": Scenario(
        "no difference, this VM's noise, num_workers=0 4x noisier; from half-way: drift and "
        "a busy neighbour", (1,) * 6, spreads=(4, 1, 1, 1, 1, 1), drift=0.2, neighbour=0.25,
        start=0.5, **_MACHINE),
    "this machine, one spread": Scenario(
        "this VM's noise, every setting the same spread", MACHINE_SPEEDUPS, **_MACHINE),
}

# The guard's negative control: no true difference, one setting eight times noisier than the
# rest; pooling every setting's spread (guard=None) makes false claims in far more than 5% of
# runs, the guard keeps them below.
NOISIER_CONTROL = Scenario("no difference, num_workers=16 8x noisier", (1,) * 6,
                           spreads=(1, 1, 1, 1, 1, 8))


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
    scale = s.noise * (np.asarray(s.spreads, float) if s.spreads else 1.0)
    if s.df:  # Student's t, scaled to the same spread
        eps = rng.standard_t(s.df, shape) * scale * math.sqrt((s.df - 2) / s.df)
    else:
        eps = rng.normal(0.0, 1.0, shape) * scale
    if s.tail:
        eps += np.where(rng.random(shape) < s.tail, math.log(1.3), 0.0)
    begin = s.start * rounds
    if s.drift:
        at = np.maximum(0.0, round_ + order - begin) / max(1e-9, rounds - begin)
        eps += np.log1p(s.drift * at)
    if s.neighbour and round_ >= begin:  # a third of the round, a stretch of its order
        start = rng.random(shape[:1])[:, None, None]
        hit = (rng.random(shape[:1]) < s.neighbour)[:, None, None]
        inside = (order >= start) & (order < start + 1 / 3)
        eps += np.where(hit & inside, math.log(1.3), 0.0)
    return eps


def behind(truth: np.ndarray) -> np.ndarray:
    """The truth of each setting's comparison with the best: log(t_i / min over j != i)."""
    k = truth.shape[-1]
    return np.where(np.eye(k, dtype=bool), -np.inf, truth).max(axis=-1)


def false_claims(low, high, base, decision, truth, design: race.Design) -> np.ndarray:
    """Which runs made a false claim: a setting shown slower than the fastest when it is not
    (by more than the threshold); the recommendation shown as fast as the fastest when it is
    more than the margin slower, or faster than its baseline when it is not."""
    slow, fast = math.log1p(design.threshold), math.log1p(design.margin)
    gap = behind(truth)  # [k]
    out_false = (decision.out & (gap <= slow)).any(axis=-1)
    c = np.maximum(decision.candidate, 0)
    fast_false = decision.decided & (gap[c] > fast)
    b = np.asarray(base)[c]
    gain_low = np.take_along_axis(low, b[..., None, None].repeat(low.shape[-1], -1), axis=-2
                                  )[..., 0, :]  # [.., j] = low[.., b, j]
    gain_low = np.take_along_axis(gain_low, c[..., None], axis=-1)[..., 0]
    gain_truth = truth[b, c]
    gain_false = decision.decided & (b != c) & (gain_low > slow) & (gain_truth <= slow)
    return out_false | fast_false | gain_false


def missed_truth(low, high, base, decision, truth) -> np.ndarray:
    """Which runs have a family interval that misses its truth: a setting's against the
    fastest of the others, or a setting's against its num_workers=0."""
    gap = behind(truth)
    best = (decision.best_low > gap + 1e-12) | (decision.best_high < gap - 1e-12)
    k = truth.shape[-1]
    idx = np.arange(k)
    b = np.asarray(base)
    has = (b >= 0) & (b != idx)
    bb = np.where(has, b, idx)
    gain = (low[..., bb, idx] > truth[bb, idx]) | (high[..., bb, idx] < truth[bb, idx])
    return (best | (gain & has)).any(axis=-1)


def acceptable(decision, truth, design: race.Design) -> np.ndarray:
    """Whether each decided recommendation is one the rule allows given the truth: within the
    margin of the fastest, and gaining more than the threshold over num_workers=0 where the
    fastest does (an indifference zone in between: either way is no false claim)."""
    fast = math.log1p(design.margin)
    c = np.maximum(decision.candidate, 0)
    within = behind(truth)[c] <= fast
    return decision.decided & within


def _truth(scenario: Scenario) -> tuple[int, np.ndarray, np.ndarray]:
    """(settings, each one's log epoch duration, truth[i, j] = log(t_i / t_j))."""
    mu = np.log(1 / np.asarray(scenario.speedups, float))
    return len(mu), mu, mu[:, None] - mu[None, :]


def simulate(scenario: Scenario, runs: int = 1000, groups: int = 3, rounds: int = 40,
             seed: int = 0, anytime: bool = True, corrected: bool = True,
             method: str = "blocks", guard: float | None = blocks.GUARD,
             levers: dict | None = None) -> Result:
    """``runs`` simulated pipeline runs of ``groups`` groups each, by the race's ``method``
    (``"blocks"``, the race's; ``"pairwise"``, each pair's own confidence sequence). Negative
    controls: ``anytime=False``, one look's intervals looked at after every round, as ordinary
    tests would be; ``corrected=False``, no correction for the run's many pairs;
    ``guard=None``, the blocks design pooling every setting's spread. ``levers``:
    ``train.threshold`` and ``train.margin`` (the schema's defaults unless given)."""
    rng = np.random.default_rng(seed)
    k, mu, truth = _truth(scenario)
    base = [0] * k
    size = family_size([[{"num_workers": 0}] + [{"num_workers": i} for i in
                                                      range(1, k)]] * groups)
    design = race.Design(comparisons=size if corrected else 1, anytime=anytime,
                         method=method, guard=guard, **(levers or LEVERS))
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
    missed = missed_truth(low, high, base, decision, truth).any(axis=-1)
    decided = (done_at >= 0).all(axis=-1)
    good = acceptable(decision, truth, design).all(axis=-1)
    picks = np.where(decision.decided, decision.candidate, k).ravel()
    return Result(scenario, runs, float(ever_false.mean()), float(missed.mean()),
                  float(decided.mean()), float((decided & good & ~ever_false).mean()),
                  float(spent.mean()),
                  float(np.where(decided, done_at.max(axis=-1) + 1, rounds).mean()),
                  np.bincount(picks, minlength=k + 1) / picks.size)


def fixed(scenario: Scenario, n: int, runs: int = 1000, groups: int = 3,
          seed: int = 0, comparisons: int | None = None) -> tuple[float, float]:
    """A fixed design of ``n`` runs per cell (one look, fixed-sample intervals, the same
    decision rule): (the share of runs deciding every group acceptably without a false claim,
    the share of runs with a false claim). ``comparisons``: the family's size, when the run has
    more groups than are simulated."""
    rng = np.random.default_rng(seed)
    k, mu, truth = _truth(scenario)
    design = race.Design(comparisons=comparisons or groups * 2 * (k - 1), anytime=False,
                         **LEVERS)
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


def forecast_calibration(scenario: Scenario, races: int = 100, at: int = 6, groups: int = 3,
                         cap: int = 150, seed: int = 0, noise_scale: float = 1.0) -> dict:
    """How right "about N more rounds" is: ``races`` single-group races of ``scenario`` run
    to ``at`` rounds, forecast there (:func:`forecast.forecast`), then run on to their decision.
    Returns the share of races decided later than the forecast's median (a right median:
    about half), later than its 90th percentile (about a tenth) and the medians of both.
    ``groups``: the family is a run's of that many groups; ``noise_scale``: the forecast's
    noise scaled (a negative control: a forecast that underrates the noise is late)."""
    rng = np.random.default_rng(seed)
    k, mu, truth = _truth(scenario)
    design = race.Design(comparisons=groups * 2 * (k - 1), **LEVERS)
    later, beyond, forecasts, actual = [], [], [], []
    for _ in range(races):
        group = race.Group(k, [0] * k, design)
        running = np.ones(k, bool)
        predicted = None
        for r in range(at + cap):
            order = rng.random((1, 1, k))
            eps = _noise(scenario, rng, (1, 1, k), r, at + cap, order)[0, 0]
            group.add_round(np.where(running, np.exp(mu + eps), np.nan))
            decision = group.decide()
            running = decision.running
            if bool(decision.decided):
                break
            if r + 1 == at:
                future = np.random.default_rng(int(rng.integers(1 << 31)))
                predicted = forecast.forecast(group, future, noise_scale=noise_scale)
        if predicted is None:  # decided before the forecast's round
            continue
        left = group.rounds - at if bool(decision.decided) else cap
        forecasts.append(float(np.median(predicted)))
        actual.append(left)
        later.append(left > np.median(predicted))
        beyond.append(left > np.percentile(predicted, 90))
    return {"races": len(actual), "later_than_median": float(np.mean(later)) if later else None,
            "later_than_p90": float(np.mean(beyond)) if beyond else None,
            "forecast_median": float(np.median(forecasts)) if forecasts else None,
            "actual_median": float(np.median(actual)) if actual else None}
