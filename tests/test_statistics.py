"""The summary's statistics: verdicts read straight off their intervals (criterion.rs's rule),
the fixed design's error rate and power by simulation through the race's decision code, the
median's interval and the spread."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml

from speedlimit import config as config_module
from speedlimit import grid
from speedbench import simulation
from speedlimit.results import aggregate, sequential, stats

from conftest import ROOT
from decided import summarize

LEVERS = config_module.lever_defaults()
THRESHOLD, MARGIN = LEVERS["threshold"], LEVERS["margin"]
UP, DOWN = 1 + THRESHOLD, 1 / (1 + THRESHOLD)


def tolerance(rate: float, trials: int) -> float:
    return 3 * math.sqrt(rate * (1 - rate) / trials)


@pytest.mark.parametrize("low, high, verdict", [
    (1.03, 1.20, stats.FASTER),  # wholly beyond +2%
    (1.01, 1.07, stats.NO_CLEAR),  # significant, but reaches into the threshold: not claimed
    (0.80, 0.97, stats.SLOWER),
    (0.985, 1.019, stats.SMALL),  # wholly within +-2%
    (0.95, 1.01, stats.NO_CLEAR),
    (0.90, 1.20, stats.NO_CLEAR),
    (math.nan, math.nan, stats.TOO_FEW),
])
def test_a_verdict_is_read_straight_off_its_interval(low, high, verdict):
    assert stats.verdict(low, high, 5, THRESHOLD) == verdict
    assert stats.verdict(low, high, 1, THRESHOLD) == stats.SINGLE


def _criterion(low: float, high: float) -> str:
    """The rule, written out again independently of stats.verdict."""
    if np.isnan(low):
        return "none"
    if low > UP:
        return "faster"
    if high < DOWN:
        return "slower"
    if DOWN <= low and high <= UP:
        return "within"
    return "open"


def test_every_printed_verdict_agrees_with_the_interval_printed_beside_it(tmp_path):
    """Random seed-shaped runs (3 batch sizes x 6 num_workers, 7 runs each, true speed-ups
    between 0.90x and 1.15x, 3% noise) through aggregate.summarize: a reader who checks any
    verdict against its interval finds them agree (the old Holm verdicts beside uncorrected
    intervals disagreed in about one comparison in six). True speed-ups between 0.90x and
    1.40x, so that there are claims to check."""
    from test_aggregate import record, write

    g = {"num_workers": [0, 1, 2, 4, 8, 16], "batch_size": [100, 1000, 10000], "lr": [0.01],
         "torch_threads": [1], "pin_memory": [False], "persistent_workers": [False],
         "prefetch_factor": [None], "device": ["cpu"], "workload": ["fashionmnist"],
         "loader": ["dataloader"]}
    expected = grid.expand(g, 7)[0]
    rng = np.random.default_rng(3)
    truth = {(b, w): rng.uniform(0.90, 1.40) if w else 1.0 for b in g["batch_size"]
             for w in g["num_workers"]}
    recs = [record(c, math.exp(rng.normal(0, 0.03)) / truth[(c.batch_size, c.num_workers)])
            for c in expected]
    summary = summarize(aggregate.build_table(write(tmp_path, recs), expected))
    checked = 0
    words = {stats.FASTER: "faster", stats.SLOWER: "slower", stats.SMALL: "within",
             stats.NO_CLEAR: "open", stats.TOO_FEW: "none"}
    for prefix in ("speedup", "vs_fastest"):
        rows = summary.dropna(subset=[f"{prefix}_verdict"])
        for row in rows.itertuples():
            low, high = getattr(row, f"{prefix}_ci_low"), getattr(row, f"{prefix}_ci_high")
            assert words[getattr(row, f"{prefix}_verdict")] == _criterion(low, high)
            checked += 1
    assert checked >= 30
    assert summary["speedup_verdict"].isin([stats.FASTER, stats.SLOWER]).any()


@pytest.mark.parametrize("shape", ["normal", "heavy tails"])
@pytest.mark.parametrize("repeats", [5, 7, 10])
def test_fixed_repeats_make_a_false_claim_in_at_most_alpha_of_runs(shape, repeats):
    """Null data of the seed grid's shape (3 groups of 6 settings, 45 pairs), one look:
    every claim false. At these sizes claims *can* be made (the second check)."""
    null = simulation.Scenario("null", (1,) * 6, tail=0.1 if shape == "heavy tails" else 0)
    good, bad = simulation.fixed(null, repeats, runs=1000, seed=repeats)
    assert bad <= stats.ALPHA + tolerance(stats.ALPHA, 1000), bad
    clear = simulation.Scenario("clear", (1, 1.5, 1.5, 1, 1, 1),
                                tail=0.1 if shape == "heavy tails" else 0)
    group = simulation.fixed(clear, repeats, runs=200, seed=repeats)
    assert group[1] <= stats.ALPHA + tolerance(stats.ALPHA, 200)


def measure_grid() -> tuple[int, int]:
    """Repeats and comparisons of a run of configs/measure.yaml (on top of config.yaml)."""
    merged = yaml.safe_load((ROOT / "config.yaml").read_text())
    overlay = yaml.safe_load((ROOT / "configs" / "measure.yaml").read_text())
    for key, value in overlay.items():
        merged.setdefault(key, {}).update(value)
    config = config_module.validate(merged)
    cells, _ = grid.expand(config["grid"], 1)
    return config["train"]["repeats"], grid.comparisons(cells)


def test_measure_yaml_repeats_decide_a_quiet_machines_groups():
    """configs/measure.yaml's runs, 54 comparisons: with 3% noise, a group whose best settings
    are 15% faster than num_workers=0 (three of them as fast as each other: one more run than
    a single comparison needs) is decided right in at least 80% of runs, with no false claim
    beyond ALPHA; with 4 runs, in far fewer."""
    repeats, comparisons = measure_grid()
    assert (repeats, comparisons) == (sequential.repeats_needed(54, MARGIN) + 1, 54)
    scenario = simulation.Scenario("measure", (1, 1.15, 1.15, 1.15, 1.05, 1.0))
    power, bad = simulation.fixed(scenario, repeats, runs=400, groups=1,
                                  comparisons=comparisons, seed=1)
    assert power >= 0.80 and bad <= stats.ALPHA + tolerance(stats.ALPHA, 400), (power, bad)
    fewer, _ = simulation.fixed(scenario, 4, runs=400, groups=1, comparisons=comparisons,
                                seed=1)
    assert fewer < 0.60, fewer


def test_repeats_needed_grows_with_the_family():
    assert sequential.repeats_needed(1, MARGIN) < sequential.repeats_needed(45, MARGIN) \
        < sequential.repeats_needed(1000, MARGIN)
    assert sequential.repeats_needed(45, MARGIN, anytime=True) > \
        sequential.repeats_needed(45, MARGIN)


def test_the_interval_of_the_median_covers_it():
    rng = np.random.default_rng(7)
    for n in (2, 5, 6, 9):
        hits = given = 0
        for _ in range(400):
            x = rng.lognormal(0.0, 0.03, n)  # true median 1
            low, high = stats.median_interval(x)
            if not math.isnan(low):
                given += 1
                hits += low <= 1 <= high
        if n < 6:
            assert given == 0
        else:
            assert hits / given >= 0.95 - tolerance(0.05, given)


def test_unstable_cells_are_flagged_like_pyperf():
    assert stats.spread(np.array([1.0, 1.0, 1.0])) == 0
    assert stats.spread(np.array([1.0, 1.3, 0.8, 1.1])) > stats.UNSTABLE
    assert pd.isna(stats.spread(np.array([1.0])))
