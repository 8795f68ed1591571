"""Per workload and batch size: costs, prediction, the fastest, the smallest num_workers within
noise of it, prediction vs measured, and results/recommendation.yaml, from hand-made records
run through the real aggregation (no training). Each sentence the findings can print about a
workload is made true here, and false by another case."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import yaml
from docutils.core import publish_parts

from speedlimit import grid
from speedlimit.results import advice, aggregate, findings, frontpage, predict, stats

from test_aggregate import record, write

US = 1e-6


def run(tmp_path, cells: dict, repeats: int = 7, load: float | None = 400 * US,
        compute: float | None = 100 * US, cpus: int | None = 2, jitter: float = 0.01,
        workload: str = "fashionmnist-augment", **grid_values):
    """Summary and table (read back from CSV, as the findings rule reads them) of one
    workload's cells: ``cells`` maps num_workers (or (num_workers, pin_memory)) to an epoch
    duration, or to (duration, compute per sample), or to a list of one per repeat. ``load``
    and ``cpus``: one value for every cell, or a value per num_workers."""
    pins = sorted({k[1] for k in cells if isinstance(k, tuple)}) or [False]
    g = {"num_workers": sorted({k[0] if isinstance(k, tuple) else k for k in cells}),
         "batch_size": [100], "lr": [0.01], "torch_threads": [1], "pin_memory": pins,
         "persistent_workers": [False], "prefetch_factor": [None], "device": ["cpu"],
         "workload": [workload], "loader": ["dataloader"], **grid_values}
    def spec_of(c):
        return cells.get((c.num_workers, c.pin_memory), cells.get(c.num_workers))

    expected = [c for c in grid.expand(g, repeats)[0] if spec_of(c) is not None]
    recs = []
    for c in expected:
        spec = spec_of(c)
        if isinstance(spec, list):  # a duration per repeat, as given
            spec, factor = spec[c.repeat], 1.0
        else:
            factor = 1 + jitter * (c.repeat - (repeats - 1) / 2)
        duration, per_sample = spec if isinstance(spec, tuple) else (spec, compute)
        recs.append(record(c, duration * factor, load=per_cell(load, c), compute=per_sample,
                           cpus=per_cell(cpus, c),
                           cpu_model="Test CPU"))
    table = aggregate.build_table(write(tmp_path, recs), expected)
    table.to_csv(tmp_path / "table.csv", index=False)
    aggregate.summarize(table).to_csv(tmp_path / "summary.csv", index=False)
    return pd.read_csv(tmp_path / "summary.csv"), pd.read_csv(tmp_path / "table.csv")


def per_cell(value, c):
    return value.get(c.num_workers) if isinstance(value, dict) else value


def only(tmp_path, cells, **kw) -> advice.Group:
    summary, _ = run(tmp_path, cells, **kw)
    (group,) = advice.groups(summary)
    return group


def text(group) -> str:
    return " ".join(group.sentences)


# --- the prediction -----------------------------------------------------------------------


def test_the_prediction_is_the_largest_of_its_three_floors():
    load, compute = 400 * US, 100 * US
    assert predict.per_sample(load, compute, 0, 2) == pytest.approx(500 * US)
    assert predict.per_sample(load, compute, 1, 2) == pytest.approx(400 * US)  # loading, 1 worker
    assert predict.per_sample(load, compute, 2, 2) == pytest.approx(250 * US)  # the 2 CPUs
    assert predict.per_sample(load, compute, 8, 16) == pytest.approx(100 * US)  # the compute
    assert predict.per_sample(load, compute, 2, 2, threads=2) == pytest.approx(300 * US)
    assert predict.speedup(load, compute, 2, 2) == pytest.approx(2.0)
    assert predict.stops_helping(load, compute, [0, 1, 2, 3, 4], 2) == 2
    assert predict.stops_helping(1 * US, compute, [0, 1, 2], 2) == 0  # 1% of the work
    assert predict.enough_workers(load, compute, 16) == 4
    assert predict.enough_workers(load, compute, 2) == 2
    assert predict.enough_workers(1 * US, compute, 2) == 0
    # Loading 3.01 times the compute on many CPUs: 3 workers come within 2% of the best (4),
    # so 3 is enough, as stops_helping says of a grid that ends at 3 or at 4.
    assert predict.enough_workers(301 * US, compute, 16) == 3
    assert predict.stops_helping(301 * US, compute, [0, 1, 2, 3], 16) == 3
    assert predict.stops_helping(301 * US, compute, [0, 1, 2, 3, 4], 16) == 3
    assert predict.enough_workers(310 * US, compute, 16) == 4  # 3 workers: 3.3% short


def test_times_are_written_in_units_a_person_reads():
    assert advice._us(138e-6) == "138 µs" and advice._us(0.00123) == "1.23 ms"
    assert advice._ms(0.0139) == "13.9 ms" and advice._ms(1.17) == "1.17 s"


def test_predicted_speedups_are_in_the_summary(tmp_path):
    summary, table = run(tmp_path, {0: 10, 1: 8, 2: 5, 3: 5.05})
    assert summary["predicted_speedup"].tolist() == pytest.approx([1.0, 1.25, 2.0, 2.0])
    assert summary["load_per_sample_median"].tolist() == pytest.approx([400 * US] * 4)
    assert summary["cpus_allowed"].tolist() == [2] * 4
    assert {"load_per_sample", "compute_per_sample"} <= set(table.columns)
    assert table["load_per_sample"].eq(400 * US).all()


# --- against the fastest: one family of all pairs -----------------------------------------


def test_every_cell_is_compared_with_the_fastest_of_its_group(tmp_path):
    summary, _ = run(tmp_path, {0: 10, 1: 8, 2: 5, 3: 5.05})
    rows = summary.set_index("num_workers")
    assert rows["fastest"].tolist() == [False, False, True, False]
    assert rows.loc[0, "vs_fastest"] == pytest.approx(0.5)
    assert rows.loc[0, "vs_fastest_verdict"] == rows.loc[1, "vs_fastest_verdict"] == "slower"
    assert rows.loc[3, "vs_fastest_verdict"] == "within noise"
    assert rows.loc[3, "vs_fastest_ci_low"] < 1 < rows.loc[3, "vs_fastest_ci_high"]
    assert pd.isna(rows.loc[2, "vs_fastest_verdict"])
    assert rows["pairs"].eq(6).all()  # every pair of the 4 cells: C(4, 2)
    assert rows["pairs_repeats_needed"].eq(5).all()  # 2 / C(10, 5) <= 0.05 / 6


def test_the_family_is_every_pair_once_with_the_fastest_first(monkeypatch):
    """Whatever the fastest's place in its group, each pair of cells is tested exactly once,
    and the pairs with the fastest put it first (its speed-up over the other)."""
    samples = {k: np.full(3, float(d)) for k, d in zip("abcd", (10, 8, 5, 6))}  # fastest: c
    seen, verdicts = [], stats.verdicts

    def record_pairs(pairs, alpha=stats.ALPHA):
        seen.extend(pairs)
        return verdicts(pairs, alpha)

    monkeypatch.setattr(aggregate.stats, "verdicts", record_pairs)
    aggregate.versus_fastest({"g": list(samples)}, samples)
    name = {id(v): k for k, v in samples.items()}
    tested = [(name[id(x)], name[id(y)]) for x, y in seen]
    assert sorted(frozenset(p) for p in tested) == sorted(
        frozenset(p) for p in itertools.combinations("abcd", 2))
    assert all(x == "c" for x, y in tested if "c" in (x, y))


def test_picking_the_fastest_from_the_same_runs_keeps_false_claims_rare():
    """Four settings of equal speed, 7 runs each, noise of any shape: the fastest is picked
    from the data, yet a "slower than the fastest" claim (any, in a run) stays at most ALPHA
    because every pair is in the family."""
    rng = np.random.default_rng(1)
    false_claims = 0
    trials = 300
    for _ in range(trials):
        samples = {w: rng.lognormal(0, 0.05, 7) for w in range(4)}
        found = aggregate.versus_fastest({"g": list(samples)}, samples)
        false_claims += any(v.get("vs_fastest_verdict") in (stats.SLOWER, stats.FASTER)
                            for v in found.values())
    assert false_claims / trials <= stats.ALPHA + 0.02


# --- sentences ---------------------------------------------------------------------------


def test_costs_prediction_fastest_and_a_prediction_that_holds(tmp_path):
    group = only(tmp_path, {0: 10, 1: 8, 2: 5, 3: 5.05})
    s = group.sentences
    assert group.label == "workload fashionmnist-augment, batch_size 100"
    assert s[0] == ("Loading one sample took 400 µs in the main process (the workload's "
                    "`__getitem__` on a fixed sample of items, before the clock; the median over "
                    "4 cell(s)); computing one took 100 µs with `num_workers=0` (on the clock, "
                    "1 torch thread(s)). Per batch of 100: 40 ms of loading against 10 ms of "
                    "compute, so loading costs 4.00 times the compute.")
    assert s[1] == ("Predicted from these costs with the 2 CPU(s) a cell may use: an epoch can "
                    "be no shorter than its compute (10 ms per batch), its loading shared by the "
                    "workers (40 ms / num_workers) or all its work shared by the CPUs (50 ms / 2 "
                    "= 25 ms); so workers should stop helping at `num_workers=2`, 2.00x over "
                    "`num_workers=0`.")
    assert s[2].startswith("Measured: the fastest setting was `num_workers=2` (5 s per epoch, "
                           "median), 2.00x (95% interval ")
    assert s[2].endswith("; more than noise) over `num_workers=0`.")
    assert s[3].startswith("No setting with fewer workers stands in for the fastest. Fewer "
                           "workers than `num_workers=2`: `num_workers=0` (0.50x of its speed, "
                           "95% interval 0.49-0.52x) was slower than the fastest by more than "
                           "noise; `num_workers=1` (0.62x")
    assert s[4] == ("The prediction holds: workers stopped helping at `num_workers=2`, as "
                    "predicted, and every predicted speed-up lies inside its measured 95% "
                    "interval.")
    assert s[5].startswith("Predicted vs measured speed-up over `num_workers=0` per num_workers: "
                           "1: 1.25x predicted, 1.25x measured (95% interval ")
    assert "inside" in s[5] and "outside" not in s[5]
    assert s[6].startswith("Recommended: `DataLoader(dataset, batch_size=100, shuffle=True, "
                           "num_workers=2)`, 2.00x")
    assert "Furthest off" not in text(group)


def test_a_smaller_num_workers_within_noise_is_recommended_and_a_failed_prediction_said(
        tmp_path):
    group = only(tmp_path, {0: 10, 1: 5.05, 2: 5})
    assert int(group.fastest["num_workers"]) == 2
    assert int(group.recommended["num_workers"]) == 1 and group.smaller == "within noise"
    s = text(group)
    assert ("The smallest num_workers as fast as the fastest is `num_workers=1`: at 0.99x "
            "of its speed (95% interval 0.96-1.02x) it cannot be told apart from it and is at "
            "most 10% slower, with fewer processes. Fewer workers than `num_workers=1`: "
            "`num_workers=0` (0.50x of its speed, 95% interval 0.49-0.52x) was slower than the "
            "fastest by more than noise.") in s
    assert ("The prediction fails here: it put the crossover at `num_workers=2`, but workers "
            "stopped helping at `num_workers=1`; 1 of 2 predicted speed-ups lie outside their "
            "measured 95% interval.") in s
    assert "1: 1.25x predicted, 1.98x measured (95% interval" in s and "outside)" in s
    assert ("Furthest off: `num_workers=1`, whose epoch took 2.95 s (37%) less than predicted "
            "from the `num_workers=0` epoch: faster than the measured costs allow") in s


# num_workers=1 spreads so widely that it is told apart from neither the fastest nor from
# num_workers=0: it may be far slower than the fastest, so it does not stand in for it.
WIDE = [4.9, 5.0, 5.1, 9.8, 10.0, 10.2, 5.05]
# num_workers=2 shown faster than num_workers=0 (every run); num_workers=1 as fast as it, but
# with two runs slower than all of num_workers=0's.
ZERO = [5.30, 5.25, 5.35, 5.28, 5.32, 5.27, 5.33]
TWO = [4.90, 4.92, 4.88, 4.91, 4.89, 4.93, 4.87]
ONE = [4.89, 4.91, 4.90, 5.40, 4.92, 5.41, 4.88]


def test_a_setting_that_may_be_much_slower_than_the_fastest_is_not_recommended(tmp_path):
    group = only(tmp_path, {0: 10, 1: WIDE, 2: 5})
    assert group.smaller == "fastest" and int(group.recommended["num_workers"]) == 2
    assert ("`num_workers=1` (0.98x of its speed, 95% interval 0.50-1.01x) could not be told "
            "apart from the fastest, but may be more than 10% slower.") in text(group)
    between = only(tmp_path / "b", {0: 10, 1: WIDE, 2: 5.05, 3: 5})
    assert between.smaller == "within noise" and int(between.recommended["num_workers"]) == 2
    s = text(between)
    assert ("The smallest num_workers as fast as the fastest is `num_workers=2`: at 0.99x of its "
            "speed") in s
    assert "`num_workers=1` (0.98x of its speed, 95% interval 0.50-1.01x) could not be told" in s
    # Where nothing shows a gain, num_workers=0 spread as widely does not stand in either.
    no_gain = only(tmp_path / "c", {0: WIDE, 1: 5, 2: 5.05})
    assert not no_gain.gain_shown and int(no_gain.recommended["num_workers"]) == 1
    assert "`num_workers=0` (0.98x of its speed, 95% interval 0.50-1.01x) could not be" in \
        text(no_gain)


def test_a_setting_as_fast_as_the_fastest_but_with_no_gain_shown_is_not_recommended(tmp_path):
    """num_workers=1 is as fast as the fastest (at most 10% slower), but two of its seven
    runs are slower than every num_workers=0 run: its gain is not shown, the fastest's is.
    Its prediction holds for the crossover, not for the speed-ups: said plainly."""
    group = only(tmp_path, {0: ZERO, 1: ONE, 2: TWO})
    one = group.cells.set_index("num_workers").loc[1]
    assert one["vs_fastest_verdict"] in advice.SAME_SPEED and one["vs_fastest_ci_low"] >= 0.9
    assert one["speedup_verdict"] != "faster"
    assert group.gain_shown and int(group.recommended["num_workers"]) == 2
    assert ("`num_workers=1` (1.00x of its speed, 95% interval 0.91-1.00x) was as fast as the "
            "fastest, but not faster than `num_workers=0` by more than noise.") in text(group)
    assert ("The prediction holds for the crossover (workers stopped helping at "
            "`num_workers=2`, as predicted) but fails for the speed-ups: 2 of 2 predicted "
            "speed-ups lie outside their measured 95% interval.") in text(group)
    # Without a gain shown anywhere, the smallest as fast is what to use.
    calm = only(tmp_path / "b", {0: 5.02, 1: 5.0, 2: 5.01})
    assert not calm.gain_shown and int(calm.recommended["num_workers"]) == 0
    assert advice.how_sure(calm) == (
        "tested", "no worker setting was faster than `num_workers=0` by more than noise and the "
        "2% noise threshold, and it is as fast as the fastest measured (at most 10% slower, "
        "95% interval) (7 runs per cell)")


def test_a_gain_shown_by_another_setting_than_the_fastest_is_kept(tmp_path):
    """The fastest (num_workers=2) spreads too widely to be shown faster than num_workers=0,
    and so does everything as fast as it; num_workers=1 is shown faster: it is recommended."""
    group = only(tmp_path, {0: 10, 1: 6, 2: [3.0, 3.1, 2.9, 12.0, 12.5, 13.0, 3.05]})
    assert int(group.fastest["num_workers"]) == 2
    assert group.smaller == "gain elsewhere" and int(group.recommended["num_workers"]) == 1
    assert ("The fastest is not faster than `num_workers=0` by more than noise, nor is any "
            "setting as fast as it, but `num_workers=1` is (1.67x (95% interval") in text(group)
    assert "the recommendation is the fastest setting with a gain shown." in text(group)
    level, words = advice.how_sure(group)
    assert level == "tested" and words == ("faster than `num_workers=0` by more than noise and "
                                           "the fastest of the settings with a gain shown (7 "
                                           "runs per cell)")


def test_loading_in_the_main_process_fastest_and_the_time_the_model_leaves_out(tmp_path):
    group = only(tmp_path, {0: 5, 1: (6, 150 * US), 2: (6.5, 170 * US)}, load=10 * US,
                 workload="fashionmnist")
    s = group.sentences
    assert s[2] == ("Measured: the fastest setting was `num_workers=0` (5 s per epoch, median): "
                    "no worker setting beat loading in the main process.")
    assert s[3] == "It is also the smallest num_workers in the grid here (`num_workers=0`)."
    assert s[4] == ("The prediction fails here: it put the crossover at `num_workers=1`, but "
                    "workers stopped helping at `num_workers=0`; 2 of 2 predicted speed-ups lie "
                    "outside their measured 95% interval.")
    assert s[6] == ("Furthest off: `num_workers=2`, whose epoch took 1.95 s (43%) longer than "
                    "predicted from the `num_workers=0` epoch: time the model leaves out "
                    f"({advice.LEFT_OUT}); computing one sample took 170 µs there against "
                    "100 µs with `num_workers=0`.")
    assert s[7] == ("Recommended: `DataLoader(dataset, batch_size=100, shuffle=True, "
                    "num_workers=0)`.")
    assert advice.how_sure(group) == ("tested", "no worker setting was faster than "
                                      "`num_workers=0` by more than noise and the 2% "
                                      "noise threshold, and it is the fastest measured (7 runs "
                                      "per cell)")


def test_too_few_repeats_leave_the_smaller_setting_and_the_crossover_open(tmp_path):
    group = only(tmp_path, {0: 10, 1: 8, 2: 5, 3: 5.05}, repeats=3)
    assert group.smaller == "untested" and int(group.recommended["num_workers"]) == 2
    s = text(group)
    assert ("Whether fewer workers would be as fast cannot be told: 3 runs per cell are too few "
            "for the run's 6 pairwise comparisons (5 are needed); the recommendation is the "
            "fastest as measured.") in s
    assert ("The prediction put the crossover at `num_workers=2`; with these repeats the "
            "measurement cannot place it, so that is not checked.") in s
    assert "1: 1.25x predicted, 1.25x measured (no interval)" in s
    assert advice.how_sure(group) == ("too few repeats", "3 runs per cell, 5 needed for this "
                                      "run's comparisons: not tested")


def test_one_run_per_cell_claims_nothing(tmp_path):
    group = only(tmp_path, {0: 10, 1: 8, 2: 5}, repeats=1)
    s = text(group)
    assert "cannot be told: one run per cell" in s
    assert "(one run per cell: no interval)" in s
    assert advice.how_sure(group) == ("one run", "nothing behind this was tested; run with "
                                      "repeats (configs/workloads.yaml) before relying on it")
    assert "more than noise" not in s


def test_without_a_num_workers_0_cell_nothing_is_predicted(tmp_path):
    group = only(tmp_path, {1: 6, 2: 5})
    s = text(group)
    assert ("with no `num_workers=0` cell the compute was never measured without workers "
            "competing for the CPU, so nothing is predicted.") in s
    assert "the grid has no `num_workers=0` cell to compare it with." in s
    assert "Predicted" not in s


def test_records_without_costs_predict_nothing(tmp_path):
    group = only(tmp_path, {0: 10, 2: 5}, load=None, compute=None, cpus=None)
    assert group.sentences[0] == ("The cells recorded no loading cost (metrics written before "
                                  "speedlimit measured it), so nothing is predicted.")
    assert not any(s.startswith("Predicted") for s in group.sentences)


def test_loading_too_cheap_to_matter_predicts_no_workers(tmp_path):
    group = only(tmp_path, {0: 5, 1: 5.1}, load=1 * US)
    assert ("so no num_workers in the grid is predicted to gain more than the 2% noise "
            "threshold: workers should not help (`num_workers=0`).") in text(group)
    assert group.predicted_stop == 0


def test_more_workers_than_the_grid_has_would_help(tmp_path):
    group = only(tmp_path, {0: 11, 1: 10, 2: 5.5}, load=1000 * US, cpus=8)
    assert ("More workers than the grid has would still help: loading stops limiting only at "
            "`num_workers=8`.") in text(group)
    assert "More workers than the grid has" not in text(only(tmp_path / "b", {0: 10, 1: 8, 2: 5}))


def test_other_dataloader_settings_are_named_and_defaults_preferred_among_equals(tmp_path):
    equal = only(tmp_path, {(0, False): 10, (2, False): 5.02, (2, True): 5})
    assert equal.varying == ["pin_memory"] and equal.fastest["pin_memory"] == True  # noqa: E712
    assert equal.recommended["pin_memory"] == False  # noqa: E712 - torch's default, as fast
    assert "`num_workers=2, pin_memory=" in text(equal)
    faster = only(tmp_path / "b", {(0, False): 10, (2, False): 6, (2, True): 5})
    assert faster.recommended["pin_memory"] == True  # noqa: E712
    assert "pin_memory=True" in advice.paste(faster, faster.recommended)
    # The fastest has no num_workers=0 cell with its pin_memory to be compared with: said.
    assert ("the grid has no `num_workers=0` cell with its other settings (`pin_memory=True`) "
            "to compare it with.") in text(faster)
    assert advice.how_sure(faster) == (
        "tested", "not compared with `num_workers=0` (the grid has no such cell with its other "
        "settings) and the fastest measured (7 runs per cell)")
    # pin_memory=True is shown faster than num_workers=0 (with pinned memory too); the
    # default, as fast as it, is not (two runs in seven slower than num_workers=0): not it.
    unshown = only(tmp_path / "c", {(0, False): ZERO, (0, True): ZERO, (2, True): TWO,
                                    (2, False): ONE})
    assert unshown.recommended["pin_memory"] == True  # noqa: E712
    assert int(unshown.recommended["num_workers"]) == 2


def test_the_pairs_are_described_once(tmp_path):
    summary, _ = run(tmp_path, {0: 10, 1: 8, 2: 5, 3: 5.05})
    (sentence,) = advice.pairs_sentence(summary)
    assert ("exact Mann-Whitney test, Holm over the run's 6 pairs, so the chance that any "
            "\"slower than the fastest\" below is false is at most 5%") in sentence
    assert "against the fastest, 2 setting(s) were slower by more than noise, 1 within noise." \
        in sentence
    summary3, _ = run(tmp_path / "b", {0: 10, 1: 8, 2: 5, 3: 5.05}, repeats=3)
    assert "3 had too few repeats to tell" in advice.pairs_sentence(summary3)[0]


# --- results/recommendation.yaml and the front page ------------------------------------------


def test_the_recommendation_holds_what_to_paste_its_gain_machine_and_certainty(tmp_path):
    summary, table = run(tmp_path, {0: 10, 1: 5.05, 2: 5})
    rec = advice.recommendation(advice.groups(summary), table)
    (entry,) = rec["recommendations"]
    assert entry["workload"] == "fashionmnist-augment" and entry["batch_size"] == 100
    assert entry["dataloader_kwargs"] == {"batch_size": 100, "shuffle": True, "num_workers": 1}
    assert entry["paste"] == "DataLoader(dataset, batch_size=100, shuffle=True, num_workers=1)"
    gain = entry["speedup_over_num_workers_0"]
    assert gain["median"] == pytest.approx(10 / 5.05, rel=1e-3) and gain["verdict"] == "faster"
    assert gain["ci_low"] < gain["median"] < gain["ci_high"]
    assert entry["fastest_measured"]["dataloader_kwargs"]["num_workers"] == 2
    assert entry["machine"] == {"node": "n1", "cpu_model": "Test CPU", "cpus": 2,
                                "torch_threads": 1, "torch": "2"}
    assert entry["holds_under"] == {"lr": 0.01, "torch_threads": 1, "device": "cpu"}
    sure = entry["how_sure"]
    assert sure["level"] == "tested" and sure["repeats"] == 7 and sure["pairs"] == 3
    assert sure["in_words"] == ("faster than num_workers=0 by more than noise and as fast as "
                                "the fastest measured (at most 10% slower, 95% interval) (7 "
                                "runs per cell)")
    assert "each Holm-corrected at 5% over the run" in rec["about"]
    assert "is at most 10%" in rec["about"]
    assert entry["predicted"]["workers_stop_helping_at"] == 2
    assert entry["predicted"]["measured_stop"] == 1
    # It is YAML a person can read back.
    assert yaml.safe_load(yaml.safe_dump(rec)) == rec


def test_the_front_page_shows_the_recommendation(tmp_path):
    summary, table = run(tmp_path, {0: 10, 1: 5.05, 2: 5})
    config = {"grid": {"num_workers": [0, 1, 2], "batch_size": [100],
                       "workload": ["fashionmnist-augment"], "loader": ["dataloader"]},
              "train": {"epochs": 1, "seed": 0, "repeats": 7},
              "data": {"source": "synthetic", "synthetic": {"train_size": 2000}},
              "workloads": {"custom": None}}
    doc = frontpage.document(summary, None, [], config, "abc", table)
    titles = [s.title for s in doc.front]
    assert titles[:4] == ["At a glance", "What was run", "Hardware", "Recommendation"]
    front = doc.front[3].sentences
    assert front[0].startswith("Workload fashionmnist-augment, batch_size 100: `DataLoader("
                               "dataset, batch_size=100, shuffle=True, num_workers=1)`, 1.98x")
    assert "; tested: faster than `num_workers=0` by more than noise" in front[0]
    body = publish_parts(doc.rst(), writer="html",
                         settings_overrides={"report_level": 2, "halt_level": 2})["html_body"]
    assert "Recommendation" in body and "num_workers=1)" in body
    assert "fashionmnist-augment (the same images through per-sample CPU augmentation" in \
        " ".join(doc.front[1].sentences)
    assert front[-1] == ("All of it, with the machine each holds for: "
                         "`results/recommendation.yaml`.")
    assert doc.recommendation_yaml().startswith("# speedlimit: the DataLoader settings")
    md = doc.markdown()
    assert "## Workload fashionmnist-augment, batch_size 100" in md


def test_findings_get_a_section_per_workload_and_batch_size(tmp_path):
    a, _ = run(tmp_path / "a", {0: 10, 2: 5}, workload="fashionmnist-augment")
    b, _ = run(tmp_path / "b", {0: 5, 2: 6}, workload="fashionmnist", load=10 * US)
    summary = pd.concat([a, b]).assign(first_run=lambda f: range(1, len(f) + 1))
    titles = [s.title for s in findings.compute(summary)]
    assert "Workload fashionmnist-augment, batch_size 100" in titles
    assert "Workload fashionmnist, batch_size 100" in titles


def test_a_real_difference_within_the_noise_threshold_is_said_as_such(tmp_path):
    """Runs so steady that a 1% difference is real: within the 2% threshold, both over
    num_workers=0 and against the fastest; num_workers=0 then stands in for the fastest."""
    group = only(tmp_path, {0: 5.05, 1: 5.0}, jitter=0.0005)
    s = text(group)
    assert ("1.01x (95% interval 1.01-1.01x; within the 2% noise threshold) over "
            "`num_workers=0`.") in s
    assert ("The smallest num_workers as fast as the fastest is `num_workers=0`: at 0.99x of "
            "its speed (95% interval 0.99-0.99x) it differs from it by less than the 2% noise "
            "threshold and is at most 10% slower, with fewer processes.") in s
    assert not group.gain_shown and int(group.recommended["num_workers"]) == 0
    steady = only(tmp_path / "b", {0: 10, 1: 5.05, 2: 5.0}, jitter=0.0005)
    assert advice.how_sure(steady) == (
        "tested", "faster than `num_workers=0` by more than noise and as fast as the fastest "
        "measured (at most 10% slower, 95% interval) (7 runs per cell)")
    small = only(tmp_path / "c", {0: 5.05, 1: 5.0, 2: 5.2}, jitter=0.0005)
    small.recommended = small.fastest  # as if num_workers=1 had been picked
    small.smaller = "fastest"
    assert advice.how_sure(small)[1].startswith("faster than `num_workers=0`, but within the "
                                                "noise threshold and the fastest measured")


def test_what_cannot_be_told_is_said(tmp_path):
    wide = only(tmp_path, {0: 10, 1: WIDE, 2: WIDE[::-1]})
    assert "(95% interval 0.99-2.02x; cannot be told apart from noise) over" in text(wide)
    assert advice.how_sure(wide)[1].startswith("not told apart from `num_workers=0` and the "
                                               "fastest measured")
    few = only(tmp_path / "b", {0: 10, 1: 8, 2: 5, 3: 5.05}, repeats=3)
    assert few.sentences[2] == ("Measured: the fastest setting was `num_workers=2` (5 s per "
                                "epoch, median), 2.00x (too few repeats to tell: 5 runs per "
                                "cell are needed) over `num_workers=0`.")
    uncomputed = only(tmp_path / "c", {0: 10, 2: 5}, compute=None)
    assert uncomputed.sentences[0].endswith("; no compute time was recorded, so nothing is "
                                            "predicted.")
    assert "; no compute time" not in only(tmp_path / "d", {0: 10, 2: 5}).sentences[0]


def test_the_costs_and_cpus_behind_the_prediction_are_the_ones_it_prints(tmp_path):
    """Loading is the median over the cells; the CPUs are those every cell could use (under
    SLURM each cell has its own allocation), the same in the sentence and in the predicted
    speed-ups; torch's threads count in the CPU work."""
    cells = {0: 10, 1: 8, 2: 5, 4: 5}
    group = only(tmp_path, cells, load={0: 300 * US, 1: 400 * US, 2: 900 * US, 4: 400 * US},
                 cpus={0: 2, 1: 4, 2: 4, 4: 4})
    assert "Loading one sample took 400 µs in the main process" in group.sentences[0]
    assert group.sentences[1].startswith("Predicted from these costs with the 2 CPU(s)")
    expected = [predict.speedup(400 * US, 100 * US, w, 2) for w in (0, 1, 2, 4)]
    assert group.cells["predicted_speedup"].tolist() == pytest.approx(expected)
    threads = only(tmp_path / "t", {0: 10, 2: 6}, torch_threads=[2])
    assert "all its work shared by the CPUs (60 ms / 2 = 30 ms)" in threads.sentences[1]
    assert threads.cells.set_index("num_workers").loc[2, "predicted_speedup"] == \
        pytest.approx(500 / 300)


def test_a_grid_without_workers_claims_nothing_about_them(tmp_path):
    zeros = text(only(tmp_path, {(0, False): 10, (0, True): 9}))
    assert "the grid has no setting with workers to compare it with." in zeros
    assert "No setting with workers was measured here, so the prediction is not checked." \
        in zeros
    assert "cell with its other settings" not in zeros and "prediction holds" not in zeros
    both = text(only(tmp_path / "b", {0: 10, 2: 5}))
    assert "no setting with workers" not in both and "prediction holds" in both


def test_a_recommendation_of_num_workers_0_and_one_without_costs(tmp_path):
    summary, table = run(tmp_path, {0: 5, 1: 6}, load=None, compute=None)
    (entry,) = advice.recommendation(advice.groups(summary), table)["recommendations"]
    assert entry["dataloader_kwargs"]["num_workers"] == 0
    assert entry["speedup_over_num_workers_0"] == {"median": 1.0, "ci_low": None,
                                                  "ci_high": None,
                                                  "verdict": "this is num_workers=0"}
    assert entry["fastest_measured"]["speedup_over_num_workers_0"] == 1.0
    assert entry["how_sure"]["comparisons_with_num_workers_0"] == 1
    assert entry["how_sure"]["repeats_needed"] == 4  # 2 / C(8, 4) <= 0.05 for one comparison
    assert entry["predicted"] is None
    (line, pointer) = advice.front_sentences(advice.groups(summary))
    assert line.startswith("Workload fashionmnist-augment, batch_size 100: `DataLoader(dataset, "
                           "batch_size=100, shuffle=True, num_workers=0)`; tested: no worker")
