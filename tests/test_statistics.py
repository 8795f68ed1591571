"""The summary's statistics, verified by simulation (numpy only, no training).

Null data: every cell of a family has the same distribution of epoch durations, so every
"faster"/"slower" label is false. Three shapes of machine noise: normal (3%), lognormal (3%),
and normal with occasional 30% slow outliers (one run in ten). At every repeats count the
schema allows in practice (2 to 10), the chance that a run makes *any* false claim must be at
most ALPHA = 5%, and every interval that is given must cover the truth at least 95% of the
time. Monte Carlo tolerance: 3 standard errors of the estimated rate (2000 families per
setting: 0.015 for a 5% rate; for coverage, over all intervals given).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import yaml

from speedlimit import config as config_module
from speedlimit import grid
from speedlimit.results import aggregate, stats

from conftest import ROOT

TRIALS = 2000
NOISE = 0.03


def normal(rng, shape):
    return rng.normal(1.0, NOISE, shape)


def lognormal(rng, shape):
    return rng.lognormal(0.0, NOISE, shape)


def outliers(rng, shape):
    slow = rng.random(shape) < 0.1
    return rng.normal(1.0, NOISE, shape) * np.where(slow, 1.3, 1.0)


SHAPES = {"normal": normal, "lognormal": lognormal, "outliers": outliers}


def tolerance(rate: float, trials: int) -> float:
    return 3 * math.sqrt(rate * (1 - rate) / trials)


def simulate(rng, draw, repeats: int, baselines: int, per_baseline: int, effect=None):
    """Families shaped like a grid: ``baselines`` num_workers=0 cells, each the baseline of
    ``per_baseline`` worker cells; ``effect`` divides the first cell's durations (a true
    speed-up). Returns verdicts [trial, comparison] and interval bounds, all computed by the
    project's own functions (the ones summarize() calls)."""
    m = baselines * per_baseline
    base = draw(rng, (TRIALS, baselines, 1, repeats))
    cells = draw(rng, (TRIALS, baselines, per_baseline, repeats))
    if effect is not None:
        cells[:, 0, 0, :] /= effect
    base_b = np.broadcast_to(base, cells.shape)
    raw = stats.p_value(base_b, cells).reshape(TRIALS, m)
    low, high = stats.log_ratio_interval(base_b, cells)
    speedup = (np.median(base_b, axis=-1) / np.median(cells, axis=-1)).reshape(TRIALS, m)
    floors = np.full(m, stats.min_p_value(repeats, repeats))
    _, verdict = stats.decide(raw, floors, speedup, low.reshape(TRIALS, m),
                              high.reshape(TRIALS, m))
    return verdict, low.reshape(TRIALS, m), high.reshape(TRIALS, m)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("repeats", range(2, 11))
def test_false_claims_and_interval_coverage_on_null_data(shape, repeats):
    rng = np.random.default_rng([repeats, len(shape)])
    # The seed grid's shape: 3 batch sizes, 5 worker settings each against num_workers=0.
    verdict, low, high = simulate(rng, SHAPES[shape], repeats, baselines=3, per_baseline=5)
    claims = np.isin(verdict, [stats.FASTER, stats.SLOWER])
    family_error = claims.any(axis=1).mean()
    assert family_error <= stats.ALPHA + tolerance(stats.ALPHA, TRIALS), family_error
    given = ~np.isnan(low)
    if repeats < 4:  # no 95% interval exists from 2 or 3 runs a side: none is given
        assert not given.any()
        assert (verdict == stats.TOO_FEW).all()
    else:
        covered = ((low <= 1) & (1 <= high))[given]
        assert covered.mean() >= 1 - stats.ALPHA - tolerance(stats.ALPHA, covered.size), (
            covered.mean())


def measure_grid() -> tuple[int, int]:
    """Repeats and comparisons of a run of configs/measure.yaml (on top of config.yaml)."""
    merged = yaml.safe_load((ROOT / "config.yaml").read_text())
    overlay = yaml.safe_load((ROOT / "configs" / "measure.yaml").read_text())
    for key, value in overlay.items():
        merged.setdefault(key, {}).update(value)
    config = config_module.validate(merged)
    cells, _ = grid.expand(config["grid"], 1)
    comparisons = sum(1 for c in cells if c.loader == "dataloader" and c.num_workers > 0)
    return config["train"]["repeats"], comparisons


def test_measure_yaml_has_the_power_to_find_a_15_percent_speedup():
    """A true 15% speed-up with 3% noise, alone among measure.yaml's other (null)
    comparisons, the hardest case for Holm: found in at least 80% of runs."""
    repeats, comparisons = measure_grid()
    assert comparisons == 30
    assert repeats >= stats.repeats_needed(comparisons)
    rng = np.random.default_rng(15)
    verdict, *_ = simulate(rng, normal, repeats, baselines=6, per_baseline=5, effect=1.15)
    power = (verdict[:, 0] == stats.FASTER).mean()
    assert power >= 0.80, power
    # ... while one repeat fewer could claim nothing at all.
    verdict, *_ = simulate(rng, normal, repeats - 1, baselines=6, per_baseline=5, effect=1.15)
    assert (verdict[:, 0] == stats.FASTER).mean() < 0.80


def test_the_exact_null_distribution_matches_scipys_exact_test():
    rng = np.random.default_rng(0)
    for n1, n2 in [(2, 2), (3, 4), (5, 5), (7, 7), (2, 9)]:
        cdf = stats._u_null_cdf(n1, n2)
        for _ in range(20):
            a, b = rng.normal(size=n1), rng.normal(size=n2)
            u = scipy.stats.mannwhitneyu(a, b, method="exact").statistic
            expected = stats.p_value(a, b)
            assert min(1.0, 2 * cdf[int(min(u, n1 * n2 - u))]) == pytest.approx(expected)
        assert stats.min_p_value(n1, n2) == pytest.approx(2 / math.comb(n1 + n2, n1))


def test_holm_matches_its_definition():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # sorted: 0.005*4, 0.01*3, 0.03*2, 0.04*1 -> 0.02, 0.03, 0.06, 0.06 (monotone)
    assert stats.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_repeats_needed():
    assert stats.repeats_needed(1) == 4  # 2/70 <= 0.05 < 2/20
    assert stats.repeats_needed(15) == 6  # 2/924 <= 0.05/15 < 2/252
    assert stats.repeats_needed(30) == 7  # 2/3432 <= 0.05/30 < 2/924


def test_a_real_but_tiny_difference_is_within_the_noise_threshold():
    base = np.array([1.000, 1.001, 1.002, 1.003, 1.004, 1.005])
    cell = base / 1.01  # 1% faster, perfectly consistent
    [result] = stats.verdicts([(base, cell)])
    assert result["p"] <= stats.ALPHA and result["verdict"] == stats.SMALL


def test_summarize_labels_what_the_statistics_decide(tmp_path):
    """The wiring: summarize() on a null table of the seed grid at 7 repeats gives each cell
    exactly the verdict and interval that stats computes for its durations."""
    from test_aggregate import record, write

    g = {"num_workers": [0, 1, 2, 4, 8, 16], "batch_size": [100, 1000, 10000], "lr": [0.01],
         "torch_threads": [1], "pin_memory": [False], "persistent_workers": [False],
         "prefetch_factor": [None], "device": ["cpu"], "workload": ["fashionmnist"],
         "loader": ["dataloader"]}
    expected = grid.expand(g, 7)[0]
    rng = np.random.default_rng(3)
    durations = {c.path: float(outliers(rng, 1)[0]) * c.batch_size / 100 for c in expected}
    durations[expected[10].path] *= 0.5  # one run of one cell far faster
    table = aggregate.build_table(write(tmp_path, [record(c, durations[c.path])
                                                   for c in expected]), expected)
    summary = aggregate.summarize(table)
    runs = table.groupby(["batch_size", "num_workers"])["epoch_duration"].apply(np.array)
    pairs, keys = [], []
    for size in g["batch_size"]:
        for w in g["num_workers"][1:]:
            pairs.append((runs[(size, 0)], runs[(size, w)]))
            keys.append((size, w))
    direct = dict(zip(keys, stats.verdicts(pairs)))
    assert (summary["comparisons"].dropna() == 15).all()
    for row in summary[summary["num_workers"] > 0].itertuples():
        want = direct[(row.batch_size, row.num_workers)]
        assert row.speedup_verdict == want["verdict"]
        assert row.speedup_p_holm == pytest.approx(want["p_holm"])
        assert row.speedup_ci_low == pytest.approx(want["ci_low"])
    # 7 runs: the median's interval exists (order statistics) and holds the median.
    assert (summary["epoch_duration_ci_low"] <= summary["epoch_duration_median"]).all()
    assert (summary["epoch_duration_median"] <= summary["epoch_duration_ci_high"]).all()


def test_the_interval_of_the_median_covers_it(tmp_path):
    rng = np.random.default_rng(7)
    for n in (2, 5, 6, 9):
        hits = given = 0
        for _ in range(400):
            x = lognormal(rng, n)  # true median 1
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

