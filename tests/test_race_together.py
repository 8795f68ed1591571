"""End to end: a race whose groups time their settings together (train.interleave), through
the real snakemake: one job per group and round, writing one record per setting in the group's
record, no window timed while another setting's workers load; the rounds decided from those
records; the whole epochs that check the predictions; a finished race trains nothing again,
and a new group races on its own while the old group's rounds are kept."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from conftest import planned

from speedlimit.results import answer
from speedlimit.run import interleave

pytestmark = pytest.mark.e2e

# One group of two settings timed together, on 2000 images (20 batches an epoch), and the
# loader-free limit (a run of its own, in round 0).
RACE = {
    "grid": {"num_workers": [0, 2], "batch_size": [100], "loader": ["dataloader", "tensor"]},
    "data": {"source": "synthetic", "synthetic": {"train_size": 2000, "test_size": 200}},
    "train": {"repeats": "auto", "max_rounds": 3, "budget": None,
              "interleave": {"windows": 2, "window_seconds": 0.05}},
}
CFG = ["--configfile", "config.yaml", "race.yaml"]
LEAD = ("dataloader/batch_size~100/num_workers~0/lr~0.01/torch_threads~1/pin_memory~false/"
        "persistent_workers~false/prefetch_factor~default/device~cpu/workload~fashionmnist")
TICKS = 2.5 / interleave._HZ


def mtimes(project) -> dict[str, int]:
    """Each record's modification time (ns), by its path under results/ (runs of their own
    and groups' rounds)."""
    base = project.path / "results"
    return {p.relative_to(base).as_posix(): p.stat().st_mtime_ns
            for folder in ("runs", "race/groups") for p in (base / folder).rglob("*.json")}


def groups(project) -> list[dict]:
    folder = project.path / "results" / "race" / "groups"
    return [json.loads(p.read_text()) for p in sorted(folder.rglob("*.json"))]


def test_a_group_times_its_settings_together_one_job_per_round(project):
    project.write_config("race.yaml", RACE)
    proc = project.run("--cores", "all", *CFG)
    rounds = [json.loads((project.path / "results" / "race" / f"round~{r}.json").read_text())
              for r in range(3)]
    assert [r["stopped"] for r in rounds] == [None, None, "max_rounds"]

    # One job per round of the group (the lead's), none per setting; the limit on its own.
    files = sorted(p.relative_to(project.path).as_posix()
                   for p in (project.path / "results" / "race" / "groups").rglob("*.json"))
    assert files == [f"results/race/groups/{LEAD}/repeat~{r}.json" for r in range(3)]
    runs = project.runs()
    assert all(k.startswith("tensor/") for k in runs) and len(runs) == 1
    assert proc.stderr.count("rule race_group:") == 3

    for r, group in enumerate(groups(project)):
        assert group["status"] == "ok" and group["timing"]["mode"] == "interleaved"
        cells = {run["cell"] for run in group["runs"]}
        assert cells == {f"{LEAD}/repeat~{r}",
                         f"{LEAD.replace('num_workers~0', 'num_workers~2')}/repeat~{r}"}
        assert set(group["timing"]["cells"]) == cells  # the round's runs, as asked for
        for run in group["runs"]:
            predicted = run["predicted"]
            assert predicted["windows"] == 2 and predicted["openings"] >= 1
            assert predicted["epoch_duration"] > predicted["startup"] > 0
            # no window was timed while the other setting's workers were loading
            assert all(x is not None and x <= TICKS for x in predicted["window_others_cpu"])
            assert run["timing"]["lead"] == f"{LEAD}/repeat~{r}"
            # every run of the round was timed in one process, in one job
            assert run["timeline"]["process_started"] == group["timeline"]["process_started"]
        # when each window began: each setting's in its own order, and together one window
        # of each setting per round of windows (the random interleaving, read off the record)
        starts = sorted((t, i) for i, run in enumerate(group["runs"])
                        for t in run["predicted"]["window_started"])
        assert all(len(run["predicted"]["window_started"]) == 2 for run in group["runs"])
        assert all(run["predicted"]["window_started"] == sorted(run["predicted"]
                                                               ["window_started"])
                   for run in group["runs"])
        assert sorted(i for _, i in starts[:2]) == [0, 1] == sorted(i for _, i in starts[2:])

    table = pd.read_csv(project.path / "results" / "table.csv")
    assert len(table) == 2 * 3 + 1 and table["status"].eq("ok").all()
    loader = table[table["loader"].eq("dataloader")]
    assert sorted(loader["repeat"]) == [0, 0, 1, 1, 2, 2]
    checks = sorted((project.path / "results" / "check").rglob("*.json"))
    assert checks and all(json.loads(p.read_text())["timing"]["mode"] == "epochs"
                          for p in checks)
    findings = (project.path / "results" / "findings.md").read_text()
    assert "The race ran 3 round(s)" in findings
    # the group's first round measured the loading cost, as a run of its own does
    assert "Loading one sample took" in findings and "recorded no loading cost" not in findings

    # The run ends with the answer on the terminal: the table the findings open with, a row
    # per group on one line each.
    recommendations = yaml.safe_load((project.path / "results" / "recommendation.yaml")
                                     .read_text())["recommendations"]
    rows = answer.rows(recommendations)
    assert f"| {' | '.join(rows[0][:5])} |" in findings.split("## The answer", 1)[1]

    def printed(out: str) -> bool:
        lines = out.split("speedlimit: the answer", 1)[1].splitlines()
        return all(any(all(c.replace("`", "") in line for c in row) for line in lines)
                   for row in rows)
    assert "speedlimit: the answer" in proc.stdout and printed(proc.stdout)
    assert "report: snakemake --report report.html" in proc.stdout

    # The report builds from it (no answer printed: nothing ran), and a finished race has
    # nothing to do; a rerun says so and prints the answer it has.
    report = project.run("--report", "report.html", *CFG)
    assert (project.path / "report.html").stat().st_size > 100_000
    assert "speedlimit: the answer" not in report.stdout
    assert planned(project, *CFG) == {}
    again = project.run("--cores", "all", *CFG)
    assert "Nothing to be done" in again.stderr + again.stdout and printed(again.stdout)

    # A new group (another batch size) races on its own; the old group's rounds are kept.
    before = mtimes(project)
    grown = {**RACE, "grid": {**RACE["grid"], "batch_size": [100, 50]}}
    project.write_config("race.yaml", grown)
    project.run("--cores", "all", *CFG)
    after = mtimes(project)
    assert {k: after[k] for k in before} == before
    new = [k for k in after if k not in before]
    assert new and all("batch_size~50/" in k for k in new)
    assert len([k for k in new if k.startswith("race/groups/")]) == 3
