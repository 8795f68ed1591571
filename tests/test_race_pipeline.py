"""End to end: the race (train.repeats: auto) through the real snakemake, as a user runs it:
rounds decided by a checkpoint, each in its recorded random order, the progress lines, the
stop and why, the whole epochs that check the prediction, the findings and the figure; a
finished race trains nothing again, a larger max_rounds continues it, and a new group races
on its own while the old one's runs are reused."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from conftest import mtimes, planned
from speedlimit.config import lever_defaults
from speedlimit.results import blocks, race, sequential

pytestmark = pytest.mark.e2e

# One group of two settings on 2000 images, runs of a few hundred samples each, each setting
# in runs of its own (the timing of settings a group cannot time together: a custom workload's,
# or an epoch too short for windows; tests/test_race_together.py times them together).
RACE = {
    "grid": {"num_workers": [0, 2], "batch_size": [100], "loader": ["dataloader", "tensor"]},
    "data": {"source": "synthetic", "synthetic": {"train_size": 2000, "test_size": 200}},
    "train": {"repeats": "auto", "max_rounds": 2, "budget": None,
              "probe": {"windows": 2, "window_samples": 200}, "interleave": {"enabled": False}},
}
CFG = ["--configfile", "config.yaml", "race.yaml"]


def rounds(project) -> list[dict]:
    folder = project.path / "results" / "race"
    files = sorted(folder.glob("round~*.json"), key=lambda p: int(p.stem.split("~")[1]))
    return [json.loads(p.read_text()) for p in files]


def test_nothing_can_be_decided_in_the_rounds_these_tests_allow():
    # The tests below count runs and stops from the rounds they allow: with at most 3 rounds
    # no interval of this grid exists yet (1 comparison; 2 with a second batch size): the
    # group's pooled intervals look first after round 4, and the median's sign-test sequence
    # has none at 3 rounds. So no setting leaves and no group decides, however quiet or busy
    # the machine (with 4 rounds a clear gain may already decide, and they would count wrong
    # on a quiet machine).
    assert blocks.spend([1, 2, 3]).sum() == 0.0 and blocks.spend(4) > 0
    for comparisons in (1, 2):
        # the median's share
        alpha = race.Design(comparisons, **lever_defaults()).alpha_each / 2
        assert sequential.sign_k(3, alpha) < 0


def test_a_race_runs_in_rounds_stops_checks_and_reruns_only_what_is_new(project):
    project.write_config("race.yaml", RACE)
    proc = project.run("--cores", "all", *CFG)
    # Before any job: max_rounds 2 is too few for a race to decide anything.
    assert ("WARNING: train.max_rounds: 2 is too few for this run's 1 comparison(s) of "
            "settings") in proc.stderr
    state = rounds(project)
    assert [s["round"] for s in state] == [0, 1]
    assert [s["stopped"] for s in state] == [None, "max_rounds"]
    # Each round names the next one's runs, in an order drawn from the seed.
    for before, after in zip(state, state[1:]):
        assert all(c.endswith(f"/repeat~{after['round']}") for c in before["next"]["cells"])
    # One progress line per group and round on the terminal, and why the race stopped.
    lines = [line for line in proc.stdout.splitlines() + proc.stderr.splitlines()
             if "race round" in line]
    assert len(lines) == 2 and all("workload fashionmnist, batch_size 100" in x for x in lines)
    assert "race stopped after 2 round(s)" in proc.stdout + proc.stderr

    runs = project.runs()
    loader = [k for k in runs if k.startswith("dataloader/")]
    tensor = [k for k in runs if k.startswith("tensor/")]
    assert len(loader) == 4  # 2 settings x 2 rounds (nothing decided, nothing out)
    assert len(tensor) == 1  # the loader-free limit: round 0 only
    assert all(r["timing"]["mode"] == "windows" for r in runs.values())
    assert all("predicted" in r for r in runs.values())
    # Rounds are blocked: every run of a round started after the last of the round before.
    by_round = {}
    for r in runs.values():
        t = r["timeline"]
        by_round.setdefault(r["params"]["repeat"], []).append((t["clock_started"],
                                                               t["clock_stopped"]))
    for r in range(1, 2):
        assert max(e for _, e in by_round[r - 1]) <= min(s for s, _ in by_round[r])
    # The whole epochs that check the prediction: the leader and num_workers=0 (one cell
    # when the leader is num_workers=0).
    checks = sorted((project.path / "results" / "check").rglob("*.json"))
    assert len(checks) == len(state[-1]["check"]) in (1, 2)
    assert any("num_workers~0" in str(p) for p in checks)
    assert all(json.loads(p.read_text())["timing"]["mode"] == "epochs" for p in checks)

    table = pd.read_csv(project.path / "results" / "table.csv")
    assert table["timed"].eq("windows").all() and len(table) == 5
    summary = pd.read_csv(project.path / "results" / "summary.csv")
    assert summary["intervals"].dropna().eq("sequential").all()
    findings = (project.path / "results" / "findings.md").read_text()
    assert "## The answer" in findings.split("## How sure")[0]
    assert ("The race ran 2 round(s)" in findings
            and "stopped because it reached `train.max_rounds` = 2" in findings)
    assert "The race's epochs, predicted from windows of batches, against one whole epoch" \
        in findings
    rec = yaml.safe_load((project.path / "results" / "recommendation.yaml").read_text())
    [entry] = rec["recommendations"]
    assert entry["how_sure"]["level"] in ("undecided", "tested")
    assert len(entry["check"]) == len(checks)
    assert (project.path / "results" / "plots" / "race.png").stat().st_size > 10_000

    # A finished race: nothing to do.
    assert planned(project, *CFG) == {}

    # More rounds allowed: the race continues from where it stopped; no run is redone.
    before = mtimes(project)
    more = {**RACE, "train": {**RACE["train"], "max_rounds": 3}}
    project.write_config("race.yaml", more)
    project.run("--cores", "all", *CFG)
    after = mtimes(project)
    assert {k: after[k] for k in before} == before
    assert sum(k.endswith("repeat~2.json") for k in after) == 2
    assert rounds(project)[-1]["stopped"] == "max_rounds" and len(rounds(project)) == 3

    # A new group (another batch size) races on its own; the old group's runs are reused.
    before = mtimes(project)
    grown = {**more, "grid": {**more["grid"], "batch_size": [100, 500]}}
    project.write_config("race.yaml", grown)
    project.run("--cores", "all", *CFG)
    after = mtimes(project)
    assert {k: after[k] for k in before} == before
    new = [k for k in after if k not in before]
    assert new and all("batch_size~500" in k for k in new)
    # round 0's 2 settings, then what each round's decisions asked of the next (a setting
    # settled or out, or the group decided, stops running)
    asked = 2 + sum(c.startswith("dataloader/batch_size~500/")
                    for s in rounds(project) for c in (s["next"] or {}).get("cells", []))
    assert len([k for k in new if k.startswith("dataloader/")]) == asked


def test_a_budget_stops_the_race_and_raising_it_continues(project):
    project.write_config("race.yaml", {**RACE, "train": {**RACE["train"], "budget": "1s"}})
    project.run("--cores", "all", *CFG)
    state = rounds(project)
    assert len(state) == 1 and state[0]["stopped"] == "budget"
    findings = (project.path / "results" / "findings.md").read_text()
    assert "stopped because the next round would have passed `train.budget`" in findings
    project.write_config("race.yaml", {**RACE, "train": {**RACE["train"], "budget": "10m"}})
    project.run("--cores", "all", *CFG)
    assert [s["stopped"] for s in rounds(project)][-1] == "max_rounds"
