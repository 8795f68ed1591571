"""The run's plan (speedlimit.plan): what the rules hand Snakemake, computed from the config
alone, before any job (the pipeline tests run it for real)."""

from __future__ import annotations

import json

import pytest

from speedlimit import config as config_module
from speedlimit.plan import WHOLE_EPOCHS, Plan, PlanError


def plan(grid: dict | None = None, **train) -> Plan:
    cfg = {"grid": grid or {"num_workers": [0, 2], "batch_size": [100],
                            "loader": ["dataloader"]},
           "data": {"source": "synthetic", "synthetic": {"train_size": 2000}},
           "train": train}
    return Plan(config_module.validate(cfg))


def test_fixed_repeats_time_whole_epochs_each_run_in_its_own_file():
    p = plan(repeats=3, time_limit=120)
    assert not p.race and p.rounds == 3 and len(p.cells) == 2 * 3 and not p.group_of
    path = next(c.path for c in p.cells if c.num_workers == 2 and c.repeat == 1)
    request = json.loads(p.request(path, None, "abc"))
    assert request["timing"] == WHOLE_EPOCHS and request["code"] == "abc"
    assert request["dataset_root"] == "data/synthetic-2000-10000-seed0"
    assert p.run_file(path) == f"results/runs/{path}.json"
    assert p.cell_inputs == {"fashionmnist": ["data/synthetic-2000-10000-seed0/FashionMNIST/"
                                              "raw/MD5SUMS"]}
    cluster = p.config["cluster"]
    assert p.cell_resources(path) == {
        "cpus": 3, "mem_mb": cluster["mem_mb"] + 2 * cluster["mem_mb_per_worker"], "gpu": 0}
    assert p.cell_runtime == 30 + 2  # the configured wall time plus the time limit
    # every repeat 0 before any repeat 1: a job's priority is its place in that order
    order = sorted(p.priorities, key=p.priorities.get, reverse=True)
    assert [int(path.rsplit("~", 1)[1]) for path in order] == [0, 0, 1, 1, 2, 2]


def test_a_race_times_a_groups_settings_together_in_one_job_per_round():
    p = plan(repeats="auto")
    assert p.race and p.rounds == 40
    assert p.priorities and all(path.endswith("/repeat~0") for path in p.priorities)
    lead, other = sorted(c.path for c in p.cells if c.repeat == 0)
    assert p.run_file(other) == p.run_file(lead) == (
        "results/race/groups/" + lead.replace("/repeat~0", "") + "/repeat~0.json")
    assert p.run_files([lead, other]) == [p.run_file(lead)]
    assert p.in_group(lead, [other, lead, "tensor/x/repeat~0"]) == sorted([lead, other])
    # the round holds both settings' workers at once: the largest's CPUs, both memories
    cluster = p.config["cluster"]
    assert p.group_resources(lead) == {
        "cpus": 3, "mem_mb": cluster["mem_mb"] + 2 * cluster["mem_mb_per_worker"], "gpu": 0}
    timing = json.loads(p.group_request(lead, [lead, other], "abc"))["timing"]
    assert timing["mode"] == "interleaved" and timing["cells"] == [lead, other]
    assert json.loads(p.request(lead, None, "abc"))["timing"]["mode"] == "windows"


def test_a_config_that_runs_nothing_or_names_no_workload_is_an_error_saying_why():
    with pytest.raises(PlanError, match="nothing to run: none of the grid's 1 runs can run "
                                        r"here \(1: persistent_workers needs num_workers > 0"):
        plan({"num_workers": [0], "batch_size": [100], "loader": ["dataloader"],
              "persistent_workers": [True]}, repeats=1)
    with pytest.raises(PlanError, match="workload custom: grid.workload has custom, but "
                                        r"workloads.custom names no function: .*; see "
                                        r"docs/workloads.md\)$"):
        Plan(config_module.validate({"grid": {"workload": ["custom"]}, "train": {"repeats": 1}}))


def test_too_few_repeats_for_the_runs_comparisons_are_warned_of_with_the_number_needed():
    warning = plan(repeats=2).repeats_warning()
    assert warning.startswith("speedlimit: WARNING: train.repeats: 2 is too few for this run's "
                              "1 comparison(s)") and "train.repeats: auto" in warning
    assert plan(repeats=40).repeats_warning() is None
