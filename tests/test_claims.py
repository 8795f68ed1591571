"""The claims (speedlimit.results.claims): every kind of claim, from hand-made records run
through the real aggregation and race, with a case that makes it and one that does not."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from speedlimit import grid
from speedlimit.results import aggregate, claims
from decided import outcomes_of, summarize

from test_aggregate import record, write

BASE = {"batch_size": [100], "lr": [0.01], "torch_threads": [1], "pin_memory": [False],
        "persistent_workers": [False], "prefetch_factor": [None], "device": ["cpu"],
        "workload": ["fashionmnist"], "loader": ["dataloader"]}


def tables(tmp_path, times: dict, repeats: int, noise: float = 0.002, load=None,
           compute=None, cpus=None, seed: int = 0, workload: str = "fashionmnist"):
    """(table, summary), read back from CSV as the findings rule reads them, of one group
    whose settings (num_workers -> seconds) ran ``repeats`` times each with ``noise`` (log
    spread). ``load``/``compute`` (s per sample) and ``cpus``: the costs the prediction
    uses; with workers the compute per sample is 10% higher."""
    g = {**BASE, "num_workers": sorted(times), "workload": [workload]}
    expected = grid.expand(g, repeats)[0]
    rng = np.random.default_rng(seed)
    recs = []
    for c in expected:
        t = times[c.num_workers] * math.exp(rng.normal(0.0, noise))
        recs.append(record(c, t, load=load, cpus=cpus,
                           compute=compute if c.num_workers == 0 or compute is None
                           else compute * 1.1))
    table = aggregate.build_table(write(tmp_path, recs), expected)
    table.to_csv(tmp_path / "table.csv", index=False)
    summarize(table).to_csv(tmp_path / "summary.csv", index=False)
    return pd.read_csv(tmp_path / "table.csv"), pd.read_csv(tmp_path / "summary.csv")


def make(tmp_path, times: dict, repeats: int, **kwargs):
    """Claims of one group (see :func:`tables`), and the family."""
    table, summary = tables(tmp_path, times, repeats, **kwargs)
    outcomes = outcomes_of(table, forecast=True)
    [group] = claims.build(summary, outcomes)
    return group, claims.family(outcomes, sequential=False)


def setting(group, i) -> str:
    return group.words(i)


def test_a_tested_recommendation_carries_every_claim_behind_it(tmp_path):
    group, fam = make(tmp_path, {0: 10.0, 1: 5.0, 2: 5.0}, repeats=10)
    rec = group.recommendation
    assert rec.level == "tested" and setting(group, rec.setting) == "num_workers=1"
    assert rec.gain.verdict == "faster" and rec.gain.estimate == pytest.approx(2.0, rel=0.01)
    assert rec.gain.low > 1.02
    # at most 10% slower than the fastest setting tried (here num_workers=2, as fast)
    assert rec.behind.high <= 1.10 and rec.behind.estimate == pytest.approx(1.0, abs=0.05)
    [passed] = rec.passed_over
    assert setting(group, passed.setting) == "num_workers=0" and passed.because == "slower"
    assert passed.ratio.low > 1.02 and rec.open == []
    # the family: the fastest's 2 pairs and the 2 gains over num_workers=0, one pair in both
    assert fam.comparisons == 3 and fam.rounds == 10 and not fam.sequential


def test_too_few_runs_leave_the_recommendation_undecided_with_what_is_open(tmp_path):
    group, _ = make(tmp_path, {0: 10.0, 1: 5.0, 2: 5.0}, repeats=4, noise=0.10)
    rec = group.recommendation
    assert rec.level == "undecided" and rec.open
    assert all(what in ("as fast", "gain") for _, _, what, _ in rec.open)
    assert rec.rounds_more is not None and rec.rounds_more >= 1


def test_one_run_recommends_the_fastest_and_tests_nothing(tmp_path):
    group, fam = make(tmp_path, {0: 10.0, 1: 6.0, 2: 5.0}, repeats=1)
    rec = group.recommendation
    assert rec.level == "one run" and setting(group, rec.setting) == "num_workers=2"
    assert rec.gain.verdict == "one run" and rec.open == [] and rec.passed_over == []
    assert fam.rounds == 1


def test_num_workers_0_is_recommended_where_no_worker_gains(tmp_path):
    group, _ = make(tmp_path, {0: 5.0, 1: 5.0, 2: 6.0}, repeats=10)
    rec = group.recommendation
    assert rec.level == "tested" and setting(group, rec.setting) == "num_workers=0"
    assert rec.gain is None and rec.passed_over == []
    # ... and is not, once a worker setting is shown faster.
    faster, _ = make(tmp_path / "f", {0: 5.0, 1: 4.0, 2: 6.0}, repeats=10)
    assert setting(faster, faster.recommendation.setting) == "num_workers=1"


def test_a_setting_that_gains_nothing_where_another_does_is_passed_over(tmp_path):
    # num_workers=1 is 1% faster than none, 1.5% slower than num_workers=2 (2.5% faster).
    group, _ = make(tmp_path, {0: 10.0, 1: 9.9, 2: 9.75}, repeats=10, noise=0.0005)
    rec = group.recommendation
    assert setting(group, rec.setting) == "num_workers=2" and rec.level == "tested"
    reasons = {setting(group, p.setting): p.because for p in rec.passed_over}
    assert reasons == {"num_workers=0": "slower", "num_workers=1": "no gain"}
    # With num_workers=1 as fast as num_workers=2 and gaining 2.5% itself, it is chosen.
    equal, _ = make(tmp_path / "e", {0: 10.0, 1: 9.75, 2: 9.75}, repeats=10, noise=0.0005)
    assert setting(equal, equal.recommendation.setting) == "num_workers=1"


def test_the_fastest_is_named_where_the_recommendation_is_another(tmp_path):
    group, _ = make(tmp_path, {0: 10.0, 1: 5.05, 2: 5.0}, repeats=10)
    assert setting(group, group.recommendation.setting) == "num_workers=1"
    assert setting(group, group.fastest.setting) == "num_workers=2"
    same, _ = make(tmp_path / "s", {0: 10.0, 1: 4.0, 2: 5.0}, repeats=10)
    assert same.fastest.setting == same.recommendation.setting


def test_the_prediction_holds_where_its_speedups_lie_in_the_intervals_and_fails_elsewhere(
        tmp_path):
    # Load 100 us, compute 100 us per sample, 2 CPUs, 1 thread: 200 us with no worker,
    # 100 us with 1 or 2 (compute-bound): predicted speed-up 2.00x for both.
    group, _ = make(tmp_path, {0: 10.0, 1: 5.0, 2: 5.0}, repeats=10, load=1e-4, compute=1e-4,
                    cpus=2)
    p = group.prediction
    assert [c.predicted for c in p.checks] == pytest.approx([2.0, 2.0])
    assert p.outside == [] and len(p.checked) == 2
    assert p.stop == 1 and p.recommends == 1
    off, _ = make(tmp_path / "o", {0: 10.0, 1: 8.0, 2: 6.0}, repeats=10, load=1e-4,
                  compute=1e-4, cpus=2)
    assert [c.workers for c in off.prediction.outside] == [1, 2]
    none, _ = make(tmp_path / "n", {0: 10.0, 1: 5.0}, repeats=10)
    assert none.prediction is None  # records without costs predict nothing


def test_the_race_check_compares_predicted_and_whole_epochs(tmp_path):
    group, _ = make(tmp_path, {0: 10.0, 1: 5.0}, repeats=10)
    cell = group.outcome.cells[1] + "/repeat~0"
    check = {"status": "ok", "cell": cell, "epochs": [{"epoch_duration": 4.0}]}
    [c] = claims.check_claims(group.outcome, group.cells, [check])
    assert c.setting == 1 and c.measured == 4.0
    assert c.error == pytest.approx(group.cells["epoch_duration_median"].iloc[1] / 4.0 - 1)
    other = {"status": "ok", "cell": "dataloader/elsewhere/repeat~0",
             "epochs": [{"epoch_duration": 1.0}]}
    assert claims.check_claims(group.outcome, group.cells, [other]) == []


def test_resolution_is_the_median_half_width_of_the_groups_intervals(tmp_path):
    quiet, _ = make(tmp_path, {0: 10.0, 1: 5.0, 2: 5.0}, repeats=10, noise=0.002)
    noisy, _ = make(tmp_path / "n", {0: 10.0, 1: 5.0, 2: 5.0}, repeats=10, noise=0.05)
    assert 0 < quiet.resolution() < 0.01 < noisy.resolution()
    single, _ = make(tmp_path / "s", {0: 10.0, 1: 5.0}, repeats=1)
    assert single.resolution() is None
