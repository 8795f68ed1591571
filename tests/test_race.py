"""The race (speedlimit.results.race): every decision read off its intervals, with a case
that makes it and one that does not; the replay of records into rounds; the round's file
(the next runs, the stop and why, the checks); and whole races simulated through the same
code, whose false-claim rate must stay at ALPHA in every scenario, with negative controls
(ordinary intervals looked at after every round; no correction for the run's pairs) that
must break it."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from speedbench import simulation
from speedlimit.config import lever_defaults
from speedlimit.groups import GROUP_KEYS, SETTING_KEYS, family_size
from speedlimit.results import decision_file, decisions, race, schedule, stats

INF = math.inf
SLOW = math.log(1.30)  # a clear difference, in log(t_i / t_j)
LEVERS = lever_defaults()  # train.threshold and train.margin, as the schema defaults them
THRESHOLD, MARGIN = LEVERS["threshold"], LEVERS["margin"]
DESIGN = race.Design(comparisons=3, **LEVERS)


def bounds(k: int, known: dict) -> tuple[np.ndarray, np.ndarray]:
    """(L, U) of log(t_i / t_j): -inf/inf except the given pairs {(i, j): (low, high)}."""
    low, high = np.full((k, k), -INF), np.full((k, k), INF)
    np.fill_diagonal(low, 0.0)
    np.fill_diagonal(high, 0.0)
    for (i, j), (lo, hi) in known.items():
        low[i, j], high[i, j] = lo, hi
        low[j, i], high[j, i] = -hi, -lo
    return low, high


def test_nothing_known_nothing_decided_and_every_setting_runs():
    d = race.decide(*bounds(3, {}), np.array([0, 0, 0]), DESIGN)
    assert not d.out.any() and int(d.candidate) == 0 and not d.decided
    assert d.running.all() and d.maybe_best.all()


def test_a_setting_is_out_only_when_slower_beyond_the_threshold_than_each_that_may_be_fastest():
    at = math.log1p(THRESHOLD)
    clear = {(0, 1): (at + 1e-9, SLOW), (0, 2): (at + 1e-9, SLOW)}
    out = race.decide(*bounds(3, clear), np.array([0, 0, 0]), DESIGN)
    assert out.out.tolist() == [True, False, False] and int(out.slower_than[0]) in (1, 2)
    assert out.best_low[0] == pytest.approx(at + 1e-9)
    edge = race.decide(*bounds(3, {**clear, (0, 2): (at, SLOW)}), np.array([0, 0, 0]), DESIGN)
    assert not edge.out.any()
    # Slower than 1 alone is not enough while 2, not compared yet, may be the fastest:
    # nothing says 0 is slower than the fastest (only 2's intervals are promised to hold).
    one = race.decide(*bounds(3, {(0, 1): (at + 1e-9, SLOW)}), np.array([0, 0, 0]), DESIGN)
    assert not one.out[0] and one.maybe_best.tolist() == [False, True, True]


def test_a_setting_slower_than_one_that_is_itself_out_is_not_out_on_that_alone():
    # 0 slower than 1, 1 slower than 2: only 2 may be the fastest, and 0 against 2 is open.
    d = race.decide(*bounds(3, {(0, 1): (0.1, SLOW), (1, 2): (0.1, SLOW)}),
                    np.array([0, 0, 0]), DESIGN)
    assert d.maybe_best.tolist() == [False, False, True]
    assert d.out.tolist() == [False, True, False]


def test_decided_when_the_first_candidate_is_as_fast_as_the_fastest_and_gains():
    margin = math.log1p(MARGIN)
    known = {(0, 1): (0.1, SLOW), (0, 2): (0.1, SLOW), (1, 2): (-0.05, margin)}
    d = race.decide(*bounds(3, known), np.array([0, 0, 0]), DESIGN)
    assert d.out.tolist() == [True, False, False]
    assert int(d.candidate) == 1 and d.gain[1] and d.decided
    assert d.best_high[1] == pytest.approx(margin)  # at most 10% slower than the fastest
    assert not d.running.any()  # a decided group stops


def test_not_decided_while_the_candidate_may_be_more_than_the_margin_slower():
    known = {(0, 1): (0.1, SLOW), (0, 2): (0.1, SLOW),
             (1, 2): (-0.05, math.log1p(MARGIN) + 1e-9)}
    d = race.decide(*bounds(3, known), np.array([0, 0, 0]), DESIGN)
    assert int(d.candidate) == 1 and not d.decided
    # Its gain is shown: num_workers=0 stops; 1 and 2 race on.
    assert d.running.tolist() == [False, True, True]


def test_a_round_runs_only_what_the_answer_still_needs():
    margin = math.log1p(MARGIN)
    # 1 is the candidate (0 out, its gain shown), a little slower than 2 and not settled
    # against 3; 2 is a little slower than 3, so only 3 may be the fastest (2 stops though it
    # is not out); 4 is out (slower than each that may be fastest).
    known = {(0, 1): (0.1, SLOW), (0, 2): (0.1, SLOW), (0, 3): (0.1, SLOW),
             (1, 2): (0.01, margin - 0.01), (1, 3): (-0.05, 0.3), (2, 3): (0.01, 0.2),
             (4, 1): (0.1, SLOW), (4, 2): (0.1, SLOW), (4, 3): (0.1, SLOW)}
    d = race.decide(*bounds(5, known), np.array([0] * 5), DESIGN)
    assert d.out.tolist() == [True, False, False, False, True] and int(d.candidate) == 1
    assert d.maybe_best.tolist() == [False, False, False, True, False]
    # the candidate and the one that may be fastest; the baseline's part is done
    assert d.running.tolist() == [False, True, False, True, False]


def test_an_out_setting_that_is_no_baseline_stops_running():
    known = {(1, 0): (0.1, SLOW), (1, 2): (0.1, SLOW)}  # 1 (num_workers > 0) slower than both
    d = race.decide(*bounds(3, known), np.array([0, 0, 0]), DESIGN)
    assert d.out.tolist() == [False, True, False]
    assert d.running.tolist() == [True, False, True]


def test_the_recommendation_must_show_its_gain_over_num_workers_0():
    # 0 is out (slower than 2, the only one that may be fastest), 1 is as fast as 2, but
    # 1's gain over 0 is not shown: 1 and its baseline race on, 2 (settled) does not.
    known = {(0, 2): (0.1, SLOW), (1, 2): (0.01, 0.05), (0, 1): (-0.01, SLOW)}
    d = race.decide(*bounds(3, known), np.array([0, 0, 0]), DESIGN)
    assert d.out.tolist() == [True, False, False] and d.as_fast[1]
    assert int(d.candidate) == 1 and not d.gain[1] and not d.decided
    assert d.running.tolist() == [True, True, False]


def test_a_setting_shown_to_gain_nothing_where_others_gain_is_passed_over():
    at = math.log1p(THRESHOLD)
    known = {(0, 2): (0.1, SLOW), (0, 1): (-0.05, at), (1, 2): (0.03, 0.05)}
    d = race.decide(*bounds(3, known), np.array([0, 0, 0]), DESIGN)
    assert d.out[0] and d.no_gain.tolist() == [False, True, False]
    assert int(d.candidate) == 2
    # The same without 0 out: no gain shown by anyone, so nothing is passed over for it.
    calm = {(0, 1): (-0.05, at), (1, 2): (-0.05, 0.05)}
    assert not race.decide(*bounds(3, calm), np.array([0, 0, 0]), DESIGN).no_gain.any()


def test_num_workers_0_is_recommended_without_a_gain_when_as_fast_as_the_rest():
    margin = math.log1p(MARGIN)
    d = race.decide(*bounds(3, {(0, 1): (-0.05, margin), (0, 2): (-0.02, margin)}),
                    np.array([0, 0, 0]), DESIGN)
    assert int(d.candidate) == 0 and d.decided


def test_the_family_is_each_setting_against_the_best_and_against_num_workers_0():
    seed = [{"num_workers": w} for w in (0, 1, 2, 4, 8, 16)]
    # per group the fastest's 5 pairs and 5 gains, one pair in both: 27, against 45 pairs
    assert family_size([seed] * 3) == 3 * (5 + 5 - 1)
    assert family_size([[{"num_workers": 1}, {"num_workers": 2}]]) == 1  # no baseline


def _runs(durations: dict, conditions=None) -> pd.DataFrame:
    """A runs frame: {(num_workers, round): duration} of one group."""
    rows = []
    for (w, r), t in durations.items():
        row = {k: "default" for k in GROUP_KEYS + SETTING_KEYS}
        row.update(batch_size="100", lr="0.01", torch_threads="1", device="cpu",
                   workload="fashionmnist", num_workers=str(w), pin_memory="False",
                   persistent_workers="False", **(conditions or {}))
        cell = (f"dataloader/batch_size~{row['batch_size']}/num_workers~{w}/lr~0.01/"
                f"torch_threads~1/pin_memory~false/persistent_workers~false/"
                f"prefetch_factor~default/device~cpu/workload~fashionmnist")
        rows.append({**row, "loader": "dataloader", "round": r, "cell": f"{cell}/repeat~{r}",
                     "duration": t, "node": "n", "started": 100.0 * r + w,
                     "ended": 100.0 * r + w + 0.9})
    return pd.DataFrame(rows)


def clear_race(rounds: int) -> pd.DataFrame:
    """num_workers 0 takes 1.5 s, 1 and 2 take 1.0 s, with 1% noise."""
    rng = np.random.default_rng(0)
    return _runs({(w, r): (1.5 if w == 0 else 1.0) * math.exp(rng.normal(0, 0.01))
                  for w in (0, 1, 2) for r in range(rounds)})


def test_a_setting_measured_slower_than_one_before_it_is_never_the_candidate():
    margin = math.log1p(MARGIN)
    # 0 is out; 1 and 2 are shown as fast as each other: 1 is recommended ...
    known = {(0, 1): (0.1, SLOW), (0, 2): (0.1, SLOW), (1, 2): (-0.05, margin)}
    even = race.decide(*bounds(3, known), np.array([0, 0, 0]), DESIGN,
                       measured=np.array([0.3, 0.0, 0.0]))
    assert int(even.candidate) == 1 and even.decided and not even.lagging.any()
    # ... unless the run measured 1 slower than 0 by more than the threshold: then 2
    behind = np.array([0.3, 0.3 + math.log1p(THRESHOLD) + 1e-6, 0.0])
    d = race.decide(*bounds(3, known), np.array([0, 0, 0]), DESIGN, measured=behind)
    assert d.lagging.tolist() == [False, True, False] and int(d.candidate) == 2
    # (at the threshold exactly it is not behind)
    edge = np.array([0.3, 0.3 + math.log1p(THRESHOLD) - 1e-9, 0.0])
    assert not race.decide(*bounds(3, known), np.array([0, 0, 0]), DESIGN,
                           measured=edge).lagging.any()


def near_race(rounds: int, times: dict, noise: float = 0.01, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return _runs({(w, r): t * math.exp(rng.normal(0, noise))
                  for w, t in times.items() for r in range(rounds)})


def test_an_undecided_pick_follows_the_data_and_says_why():
    # 2 rounds (no look yet): 2 measured fastest, 1 within the threshold of it: 1 is pasted,
    # and why it is not 2 is said
    (o,) = decisions.run_race(near_race(2, {0: 1.5, 1: 1.01, 2: 1.0}, noise=0.001), LEVERS)
    assert not o.decided and o.words(decisions.pick(o)) == "num_workers=1"
    assert o.words(o.leader()) == "num_workers=2"
    assert decisions.why_not_fastest(o).startswith("num_workers=2 measured 1.0% faster, within "
                                              "the 2% noise threshold")
    # 1 measured 5% slower than 2: 2 is pasted, and it is the fastest measured: no why
    (o,) = decisions.run_race(near_race(2, {0: 1.5, 1: 1.05, 2: 1.0}, noise=0.001), LEVERS)
    assert o.words(decisions.pick(o)) == "num_workers=2" and decisions.why_not_fastest(o) is None
    # whatever the durations, the pick is never measured slower than a setting with fewer
    # workers by more than the threshold
    rng = np.random.default_rng(3)
    for trial in range(50):
        times = {w: float(rng.uniform(1.0, 1.2)) for w in (0, 1, 2, 4)}
        (o,) = decisions.run_race(near_race(3, times, noise=0.02, seed=trial), LEVERS)
        p = decisions.pick(o)
        assert all(o.estimate[p, q] <= 1 + THRESHOLD + 1e-12 for q in range(p)), \
            (times, p)


def test_a_decided_pick_slower_than_the_fastest_says_it_is_within_the_margin():
    # 1 is 3% slower than 2: after 6 rounds measured 3.9% slower, beyond the noise
    # threshold, but not shown slower by more than it (not out), and within the 10% margin
    (o,) = decisions.run_race(near_race(6, {0: 1.5, 1: 1.03, 2: 1.0}, noise=0.01), LEVERS)
    assert o.decided and o.words(decisions.pick(o)) == "num_workers=1"
    assert o.estimate[1, 2] == pytest.approx(1.039, abs=5e-4)
    assert decisions.why_not_fastest(o) == ("num_workers=2 measured 3.9% faster, within the 10% "
                                       "margin shown: fewer workers preferred")
    # (2 alone as fast as 1: nothing to say)
    (same,) = decisions.run_race(near_race(12, {0: 1.5, 1: 1.0, 2: 1.04}, noise=0.002), LEVERS)
    assert same.decided and decisions.why_not_fastest(same) is None


def test_a_replayed_race_decides_the_fewest_workers_as_fast_as_the_fastest():
    (o,) = decisions.run_race(clear_race(12), LEVERS)
    assert o.decided and o.words(o.recommended) == "num_workers=1"
    assert o.decision.out.tolist() == [True, False, False]
    assert o.left_at[0] is not None and o.left_at[0] < 11
    assert o.rounds == 12 and o.runs == [12, 12, 12]
    # (the same records give the same decisions)
    (again,) = decisions.run_race(clear_race(12), LEVERS)
    assert np.array_equal(again.low, o.low, equal_nan=True)


def test_too_few_rounds_leave_it_open_and_say_about_how_many_more():
    (o,) = decisions.run_race(clear_race(3), LEVERS, forecast=True)
    assert not o.decided and o.rounds_more is not None and o.rounds_more >= 1


def test_the_round_file_names_the_next_runs_in_a_seeded_order_until_the_race_stops():
    runs = clear_race(3)
    outcomes = decisions.run_race(runs, LEVERS)
    state = schedule.round_file(outcomes, runs, 2, seed=0, max_rounds=40, budget=None,
                                levers=LEVERS)
    assert state["stopped"] is None and state["rounds"] == 3
    nxt = state["next"]["cells"]
    assert len(nxt) == 3 and all(c.endswith("/repeat~3") for c in nxt)
    assert schedule.round_file(outcomes, runs, 2, seed=0, max_rounds=40,
                           budget=None, levers=LEVERS)["next"]["cells"] == nxt
    orders = {tuple(schedule.round_file(outcomes, runs, 2, seed=s, max_rounds=40,
                                    budget=None, levers=LEVERS)["next"]["cells"]) for s in range(6)}
    assert len(orders) > 1  # the order is drawn, not fixed
    assert schedule.round_file(outcomes, runs, 2, 0, max_rounds=3, budget=None,
                               levers=LEVERS)["stopped"] == \
        "max_rounds"
    # Rounds of ~2.9 s so far; one more would pass a budget of 8 s.
    spent = schedule.round_file(outcomes, runs, 2, 0, max_rounds=40, budget=8.0,
                                levers=LEVERS)
    assert spent["stopped"] == "budget" and spent["next"] is None
    assert spent["spent_seconds"] == pytest.approx(3 * 2.9)
    assert spent["check"]  # the whole epochs that check the prediction
    # A round interrupted after its first run and finished an hour later: the hour is not the
    # race's time.
    paused = runs.copy()
    later = paused["round"].eq(2) & (paused["started"] > paused.loc[paused["round"].eq(2),
                                                                    "started"].min())
    paused.loc[later, ["started", "ended"]] += 3600.0
    resumed = schedule.round_file(outcomes, paused, 2, 0, max_rounds=40, budget=8.0,
                                  levers=LEVERS)
    assert resumed["spent_seconds"] == pytest.approx(3 * 2.9 - 0.1)  # less the gap it spans
    decided = decisions.run_race(clear_race(12), LEVERS)
    done = schedule.round_file(decided, clear_race(12), 11, 0, max_rounds=40, budget=None,
                               levers=LEVERS)
    assert done["stopped"] == "decided" and done["groups"][0]["decided"]
    assert sorted(done["check"]) == sorted(c + "/repeat~0" for c in decided[0].cells[:2])


def test_a_progress_line_per_group():
    runs = clear_race(3)
    state = schedule.round_file(decisions.run_race(runs, LEVERS), runs, 2, 0, 40, None, LEVERS)
    line = schedule.progress_line(state["groups"][0], 2)
    assert line.startswith("race round 2 | workload fashionmnist, batch_size 100: in the race")
    assert "leader" in line and "more round(s)" in line


# --- whole races, simulated -----------------------------------------------------------------

RUNS = 600


def tolerance(rate: float) -> float:
    return 3 * math.sqrt(rate * (1 - rate) / RUNS)


SCENARIOS = {**simulation.SCENARIOS, **simulation.MACHINE}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_simulated_races_make_a_false_claim_in_at_most_alpha_of_runs(name):
    result = simulation.simulate(SCENARIOS[name], runs=RUNS, seed=11)
    limit = stats.ALPHA + tolerance(stats.ALPHA)
    assert result.false_claim <= limit, result
    assert result.missed <= limit, result  # every interval of the family covers its truth


@pytest.mark.parametrize("anytime", [False, True], ids=["fixed intervals", "planned looks"])
def test_without_correction_for_the_runs_comparisons_intervals_miss_more_than_alpha(anytime):
    # (negative controls: the family's Bonferroni correction, and the looks' shares of the
    # error rate against intervals for one look, are what keep the rate at alpha)
    result = simulation.simulate(simulation.SCENARIOS["null"], runs=RUNS, seed=11,
                                 corrected=False, anytime=anytime)
    assert result.missed > stats.ALPHA + tolerance(stats.ALPHA), result


def test_pooling_a_noisier_settings_spread_without_the_guard_makes_false_claims():
    # (the guard's negative control: one setting eight times noisier than the rest)
    control = simulation.NOISIER_CONTROL
    pooled = simulation.simulate(control, runs=RUNS, seed=11, guard=None)
    assert pooled.false_claim > stats.ALPHA + tolerance(stats.ALPHA), pooled
    guarded = simulation.simulate(control, runs=RUNS, seed=11)
    assert guarded.false_claim <= stats.ALPHA + tolerance(stats.ALPHA), guarded
    assert guarded.missed <= stats.ALPHA + tolerance(stats.ALPHA), guarded


def test_the_pairwise_sequences_hold_too():
    # (today's construction before the group's pooled spread, kept for the comparison table)
    result = simulation.simulate(simulation.MACHINE["this machine"], runs=RUNS, seed=11,
                                 method="pairwise")
    assert result.false_claim <= stats.ALPHA + tolerance(stats.ALPHA), result


@pytest.mark.parametrize("name", ["5%/15%", "this machine, one spread"])
def test_about_n_more_rounds_is_a_median_not_a_promise(name):
    """Forecast after 4 rounds, then raced on to the decision: about half finish later than
    the forecast's median, few later than its 90th percentile."""
    result = simulation.forecast_calibration(SCENARIOS[name], races=30, at=4, seed=2)
    assert result["races"] >= 15, result
    assert result["later_than_median"] <= 0.75 and result["later_than_p90"] <= 0.3, result


def test_the_race_finds_a_clear_answer_and_stops_early():
    result = simulation.simulate(simulation.SCENARIOS["5%/15%"], runs=RUNS, seed=11)
    assert result.decided > 0.95 and result.correct > 0.95
    # The 15% faster setting (index 2) is recommended; the 5% one, 9.5% slower, is passed.
    assert result.recommended[2] > 0.95
    assert result.mean_runs < 40 * 3 * 6  # far fewer runs than 40 rounds of every cell


def test_the_margin_is_a_lever_a_wider_one_decides_what_a_narrower_leaves_open():
    # 1 is 15% slower than 2 at most (and 0 out): not as fast at 10%, as fast at 20%.
    known = {(0, 1): (0.1, SLOW), (0, 2): (0.1, SLOW), (1, 2): (0.01, math.log(1.15))}
    base = np.array([0, 0, 0])
    assert not race.decide(*bounds(3, known), base, race.Design(3, **LEVERS)).decided
    wider = {**LEVERS, "margin": 0.2}
    d = race.decide(*bounds(3, known), base, race.Design(3, **wider))
    assert d.decided and int(d.candidate) == 1
    # a threshold above 0's lower bound: 0 is no longer out
    assert not race.decide(*bounds(3, known), base,
                           race.Design(3, **{**wider, "threshold": 0.12})).out[0]


def test_the_decision_record_gives_back_every_outcome_exactly():
    """What the decide step writes is what every later stage reads: each outcome, its
    decisions, intervals (unbounded sides included), history, measurements and forecast,
    through strict JSON (no NaN or inf in the file)."""
    runs = near_race(5, {0: 1.5, 1: 1.01, 2: 1.0}, noise=0.02)
    outcomes = decisions.run_race(runs, LEVERS, forecast=True)
    state = schedule.round_file(outcomes, runs, 4, 0, max_rounds=40, budget=None,
                                levers=LEVERS)
    text = json.dumps(state, allow_nan=False)
    back = [decision_file.outcome_from_dict(d) for d in json.loads(text)["outcomes"]]
    for o, b in zip(outcomes, back, strict=True):
        for name in ("label", "conditions", "settings", "cells", "varying", "base", "rounds",
                     "runs", "left_at", "rounds_more", "design", "round_numbers"):
            assert getattr(b, name) == getattr(o, name), name
        for name in ("low", "high", "estimate", "common", "durations"):
            np.testing.assert_array_equal(getattr(b, name), getattr(o, name), err_msg=name)
        for name in o.decision.__dataclass_fields__:
            np.testing.assert_array_equal(getattr(b.decision, name),
                                          getattr(o.decision, name), err_msg=name)
        assert len(b.history) == len(o.history) == 5
        for (bl, bh), (ol, oh) in zip(b.history, o.history):
            np.testing.assert_array_equal(bl, ol)
            np.testing.assert_array_equal(bh, oh)
        assert np.isinf(o.history[0][1]).any()  # an unbounded side, kept as one
        assert (decisions.pick(b), decisions.why_not_fastest(b)) == \
            (decisions.pick(o), decisions.why_not_fastest(o))
        assert b.versus_best(0) == o.versus_best(0)
    fixed = decisions.run_race(runs, LEVERS, anytime=False)
    record = schedule.fixed_file(fixed, 5, LEVERS)
    assert record["stopped"] == "fixed" and record["next"] is None
    (again,) = [decision_file.outcome_from_dict(d)
                for d in json.loads(json.dumps(record, allow_nan=False))["outcomes"]]
    assert not again.design.anytime and again.decided == fixed[0].decided
