"""The table and summary, from hand-made metrics records (no training)."""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from speedlimit import grid
from speedlimit import record as records
from speedlimit.results import aggregate
from decided import summarize


def record(c: grid.Cell, duration: float, loss: float = 0.5, wait: float = 0.25,
           load: float | None = None, compute: float | None = None, cpus: int | None = None,
           cpu_model: str | None = None) -> dict:
    """A metrics record; ``load``, ``compute`` (seconds per sample) and ``cpus`` (CPUs the
    cell may use) only when given, as records of older runs lack them."""
    rec = _record(c, duration, loss, wait)
    if load is not None:
        rec["costs"] = {"load_per_sample": load, "load_items": 256}
    if compute is not None:
        rec["epochs"][0]["compute_per_sample"] = compute
    if cpus is not None:
        rec["environment"]["cpus_allowed"] = cpus
    if cpu_model is not None:
        rec["environment"]["cpu_model"] = cpu_model
    return rec


def _record(c: grid.Cell, duration: float, loss: float, wait: float) -> dict:
    return {
        "schema_version": records.SCHEMA_VERSION, "status": "ok", "cell": c.path,
        "params": {**c.params(), "epochs": 1, "seed": 0, "dataset_size": 100},
        "epochs": [{"epoch": 1, "loss": loss, "accuracy": 0.8, "epoch_duration": duration,
                    "data_wait": duration * wait, "compute": duration * (1 - wait),
                    "first_batch": 0.01, "samples_per_second": 100 / duration, "batches": 1}],
        "run_duration": duration + 0.01, "startup": 0.01,
        "started_at": "2026-11-25T10:00:00.000+00:00",
        "finished_at": "2026-11-25T10:00:01.000+00:00",
        "environment": {"python": "3.11", "torch": "2", "torchvision": "0", "cpu_count": 2,
                        "device": "cpu", "torch_threads": 1, "node": "n1"},
    }


def cells(repeats=3):
    g = {"num_workers": [0, 2], "batch_size": [100], "lr": [0.01], "torch_threads": [1],
         "pin_memory": [False], "persistent_workers": [False], "prefetch_factor": [None],
         "device": ["cpu"], "workload": ["fashionmnist"], "loader": ["dataloader", "tensor"]}
    return grid.expand(g, repeats)[0]


def write(tmp_path, recs):
    files = {}
    for r in recs:
        path = tmp_path / (r["cell"].replace("/", "_") + ".json")
        records.write(path, r)
        files[r["cell"]] = str(path)
    return files


def durations(c):
    if c.loader == "tensor":
        return 1.0
    runs = {0: [10.0, 10.2, 9.9, 10.1, 9.8], 2: [5.0, 5.1, 4.9, 5.05, 4.95]}
    return runs[c.num_workers][c.repeat]


def test_table_summary_speedup_and_limit(tmp_path):
    expected = cells(repeats=5)
    files = write(tmp_path, [record(c, durations(c)) for c in expected])
    table = aggregate.build_table(files, expected)
    assert list(table.columns[:9]) == aggregate.SEED_COLUMNS
    assert len(table) == 15 and table["run"].tolist() == list(range(1, 16))
    two = table[(table["num_workers"] == 2)]
    assert two["limit_ratio"].tolist() == pytest.approx([5.0, 5.1, 4.9, 5.05, 4.95])
    assert table["quality_consistent"].all()
    assert table["timed"].eq("epoch").all()
    summary = summarize(table)
    row = summary[summary["num_workers"] == 2].iloc[0]
    two_cell = next(c for c in expected if c.num_workers == 2)
    assert row["repeats"] == 5 and row["cell"] == two_cell.path.rsplit("/repeat~", 1)[0]
    assert row["epoch_duration_median"] == pytest.approx(5.0)
    # The geometric mean of the paired (same repeat) ratios 2, 2, 2.0204, 2, 1.9798 (what
    # the additive model of two settings measures).
    logs = np.log([10.0 / 5.0, 10.2 / 5.1, 9.9 / 4.9, 10.1 / 5.05, 9.8 / 4.95])
    assert row["speedup"] == pytest.approx(np.exp(logs.mean()))
    # Fixed repeats, one pair in the family: the group's spread is that pair's, with
    # (5 - 1)(2 - 1) degrees of freedom, at half the error rate (the other half is the
    # median's sign-test interval, which 5 runs cannot give yet): scipy's t interval at 97.5%.
    ci = scipy.stats.ttest_1samp(logs, 0.0).confidence_interval(0.975)
    assert row["speedup_ci_low"] == pytest.approx(np.exp(ci.low))
    assert row["speedup_ci_high"] == pytest.approx(np.exp(ci.high))
    assert row["speedup_verdict"] == "faster" and row["comparisons"] == 1
    assert row["intervals"] == "fixed" and row["race"] == "recommended"
    base = summary[summary["num_workers"] == 0].iloc[0]
    assert np.isnan(base["speedup"])
    assert base["race"] == "out: slower than num_workers=2"
    assert np.isnan(summary[summary["loader"] == "tensor"].iloc[0]["speedup"])


def test_one_run_has_no_interval_and_says_so(tmp_path):
    expected = cells(repeats=1)
    files = write(tmp_path, [record(c, durations(c)) for c in expected])
    row = summarize(aggregate.build_table(files, expected)).query("num_workers == 2")
    row = row.iloc[0]
    assert row["speedup"] == pytest.approx(2.0)
    assert row["speedup_verdict"] == "one run" and np.isnan(row["speedup_ci_low"])


def test_overlapping_noise_is_not_called_a_speedup(tmp_path):
    expected = cells(repeats=5)
    times = {0: [10.0, 6.0, 8.0, 7.5, 9.5], 2: [9.0, 7.0, 8.5, 6.5, 9.9]}
    recs = [record(c, 1.0 if c.loader == "tensor" else times[c.num_workers][c.repeat])
            for c in expected]
    summary = summarize(aggregate.build_table(write(tmp_path, recs), expected))
    row = summary[summary["num_workers"] == 2].iloc[0]
    assert row["speedup_ci_low"] < 1 < row["speedup_ci_high"]
    assert row["speedup_verdict"] == "not told apart"


def test_a_cell_whose_quality_differs_is_flagged(tmp_path):
    expected = cells(repeats=1)
    recs = [record(c, 1.0, loss=0.5 if c.num_workers != 2 else 0.6) for c in expected]
    table = aggregate.build_table(write(tmp_path, recs), expected)
    # runs: 1 = 0 workers, 2 = 2 workers, 3 = loader-free
    assert table["quality_consistent"].tolist() == [True, False, True]


def test_missing_cells_fail_clearly_or_are_marked_when_allowed(tmp_path):
    expected = cells(repeats=1)
    files = write(tmp_path, [record(c, 1.0) for c in expected[:2]])
    with pytest.raises(aggregate.MissingCellsError) as err:
        aggregate.build_table(files, expected)
    assert expected[2].path in str(err.value) and "allow_missing" in str(err.value)
    table = aggregate.build_table(files, expected, allow_missing=True)
    assert table["status"].tolist() == ["ok", "ok", "missing"]


@pytest.mark.parametrize("content, problem", [
    ('{"schema_version": 2, "status": "ok"', "not valid JSON"),
    ("hello", "not valid JSON"),
    ('{"schema_version": 1, "status": "ok"}', "schema_version 1"),
    ('{"schema_version": 2, "status": "ok", "cell": "x", "params": {}, "epochs": [], '
     '"environment": {}}', "does not follow"),
])
def test_corrupt_metrics_files_are_named_with_their_problem(tmp_path, content, problem):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(records.RecordError) as err:
        records.read(path)
    assert str(path) in str(err.value) and problem in str(err.value)


def test_a_file_that_holds_another_cell_is_rejected(tmp_path):
    expected = cells(repeats=1)
    recs = [record(c, 1.0) for c in expected]
    files = write(tmp_path, recs)
    first, second = expected[0].path, expected[1].path
    files[first], files[second] = files[second], files[first]
    with pytest.raises(records.RecordError, match="holds cell"):
        aggregate.build_table(files, expected)


def test_json_is_written_atomically(tmp_path):
    target = tmp_path / "out.json"
    records.write(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    with pytest.raises(ValueError):
        records.write(target, {"a": float("nan")})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_cells_from_different_nodes_are_never_compared_as_equals(tmp_path):
    """On a cluster repeats land on different machines: one summary row per cell and node,
    speed-up and loader-free limit only against the same node's cells."""
    expected = cells(repeats=3)
    recs = []
    for c in expected:
        # Repeat 0 and 1 on a fast node, repeat 2 on one twice as slow (no 0-worker run there).
        node, factor = ("fast", 1.0) if c.repeat < 2 else ("slow", 2.0)
        r = record(c, durations(c) * factor)
        r["environment"]["node"] = node
        if node == "slow" and c.loader == "dataloader" and c.num_workers == 0:
            r["environment"]["node"] = "fast"
            r["epochs"][0]["epoch_duration"] = durations(c)
        recs.append(r)
    table = aggregate.build_table(write(tmp_path, recs), expected)
    slow_two = table[(table["node"] == "slow") & (table["num_workers"] == 2)]
    # Limit: the slow node's own loader-free run (2.0 s), not the fast node's (1.0 s).
    assert slow_two["limit_ratio"].tolist() == pytest.approx([4.9 * 2 / 2.0])
    summary = summarize(table)
    assert "node" in summary.columns
    rows = {(r.loader, r.num_workers if r.loader == "dataloader" else None, r.node): r
            for r in summary.itertuples()}
    assert set(rows) == {("dataloader", 0, "fast"), ("dataloader", 2, "fast"),
                         ("dataloader", 2, "slow"), ("tensor", None, "fast"),
                         ("tensor", None, "slow")}
    fast_two = rows[("dataloader", 2, "fast")]
    assert fast_two.repeats == 2 and fast_two.epoch_duration_median == pytest.approx(5.05)
    # Paired: only the rounds both ran on the fast node (repeats 0 and 1: 10/5, 10.2/5.1).
    assert fast_two.speedup == pytest.approx(2.0)
    # No 0-worker run on the slow node: no speed-up rather than one against the fast node.
    assert np.isnan(rows[("dataloader", 2, "slow")].speedup)


def test_adding_a_setting_widens_every_interval_of_the_family(tmp_path):
    """The intervals are simultaneous for all of the run's comparisons: a new setting adds
    comparisons to the family, so every interval widens (its point estimate stays)."""
    expected = cells(repeats=5)
    files = write(tmp_path, [record(c, durations(c)) for c in expected])
    before = summarize(aggregate.build_table(files, expected))
    extra = grid.expand({"num_workers": [0, 2, 4], "batch_size": [100], "lr": [0.01],
                         "torch_threads": [1], "pin_memory": [False],
                         "persistent_workers": [False], "prefetch_factor": [None],
                         "device": ["cpu"], "workload": ["fashionmnist"],
                         "loader": ["dataloader", "tensor"]}, 5)[0]
    more = [c for c in extra if c.num_workers == 4]
    files.update(write(tmp_path, [record(c, 7.0 + 0.1 * c.repeat) for c in more]))
    after = summarize(aggregate.build_table(files, expected + more))
    old, new = (frame[frame["num_workers"].eq(2)].iloc[0] for frame in (before, after))
    assert (old["comparisons"], new["comparisons"]) == (1, 3)
    assert new["speedup"] == pytest.approx(old["speedup"])
    assert new["speedup_ci_low"] < old["speedup_ci_low"]
    assert new["speedup_ci_high"] > old["speedup_ci_high"]
    cols = ["epoch_duration_ci_low", "epoch_duration_ci_high"]  # per cell: unchanged
    kept = after[after["num_workers"].ne(4) | after["num_workers"].isna()].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept[cols], before[cols])


def test_a_null_loss_passes_the_schema(tmp_path):
    c = cells(repeats=1)[0]
    rec = record(c, 1.0)
    rec["epochs"][0]["loss"] = None
    path = tmp_path / "r.json"
    records.write(path, rec)
    assert records.read(path)["epochs"][0]["loss"] is None


def test_a_groups_round_reads_as_one_record_per_cell_and_fails_as_each_of_them(tmp_path):
    from speedlimit import record

    def path(workers):
        return grid.Cell(loader="dataloader", batch_size=100, num_workers=workers, lr=0.01,
                         torch_threads=1, pin_memory=False, persistent_workers=False,
                         device="cpu", workload="fashionmnist", repeat=1).path

    lead, other = path(0), path(2)
    timing = {"mode": "interleaved", "cells": [lead, other], "windows": 2,
              "window_seconds": 0.5}
    ok = {"status": "ok", "cell": lead, "timing": timing,
          "runs": [{"status": "ok", "cell": lead}, {"status": "ok", "cell": other}]}
    assert list(record.runs_of("f.json", ok)) == [lead, other]
    failed = {"status": "failed", "cell": lead, "params": {"repeat": 1, "num_workers": 0},
              "timing": timing, "reason": "boom"}
    runs = record.runs_of("f.json", failed)
    assert list(runs) == [lead, other]
    assert runs[other]["status"] == "failed" and runs[other]["params"]["num_workers"] == 2
    with pytest.raises(record.RecordError, match="a group's record with no runs"):
        record.runs_of("f.json", {**ok, "runs": []})
    plain = {"status": "ok", "cell": lead, "timing": {"mode": "windows"}}
    assert record.runs_of("f.json", plain) == {lead: plain}
