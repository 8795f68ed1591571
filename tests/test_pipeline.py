"""End to end: the real snakemake on a tiny synthetic grid, as a user runs it."""

from __future__ import annotations

import datetime as dt
import re
import subprocess

import pandas as pd
import pytest

from conftest import TINY, mtimes, planned
from speedlimit.data import idx

pytestmark = pytest.mark.e2e


def intervals(runs: dict) -> list[tuple[dt.datetime, dt.datetime]]:
    return sorted((dt.datetime.fromisoformat(r["started_at"]),
                   dt.datetime.fromisoformat(r["finished_at"])) for r in runs.values())


def test_run_rerun_extend_shrink_and_report(project):
    project.write_config("tiny.yaml", TINY)
    cfg = ["--configfile", "config.yaml", "tiny.yaml"]
    project.run("--cores", "all", *cfg)

    table = pd.read_csv(project.path / "results" / "table.csv")
    assert list(table.columns[:9]) == ["run", "epoch", "loss", "accuracy", "epoch_duration",
                                       "run_duration", "lr", "batch_size", "num_workers"]
    assert len(table) == 6 and table["run"].tolist() == [1, 2, 3, 4, 5, 6]
    assert table["loader"].value_counts().to_dict() == {"dataloader": 4, "tensor": 2}
    assert table.loc[table["loader"] == "tensor", "num_workers"].isna().all()
    assert table["limit_ratio"].notna().all()
    assert table["quality_consistent"].all()
    for name in ("epoch_duration", "speedup", "time_split", "quality", "published"):
        assert (project.path / "results" / "plots" / f"{name}.png").stat().st_size > 10_000
    assert "## Workload fashionmnist, batch_size 500" in (
        project.path / "results" / "findings.md").read_text()
    runs = project.runs()
    assert len(runs) == 6
    # Exclusive by default: no two cells were ever timed at the same time.
    spans = intervals(runs)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans

    # Nothing changed: nothing to do.
    assert planned(project, *cfg) == {}

    # One more num_workers value: exactly its cells (one per batch size) train.
    before = mtimes(project)
    grown = {**TINY, "grid": {**TINY["grid"], "num_workers": [0, 1, 2]}}
    project.write_config("grow.yaml", grown)
    grow = ["--configfile", "config.yaml", "grow.yaml"]
    assert planned(project, *grow) == {"train_cell": 2, "decide": 1, "aggregate": 1, "plot": 1,
                                       "findings": 1, "tables": 1, "all": 1}
    project.run("--cores", "all", *grow)
    after = mtimes(project)
    assert {k: v for k, v in after.items() if k in before} == before
    assert len(after) == 8
    assert len(pd.read_csv(project.path / "results" / "table.csv")) == 8

    # A removed value drops out of the table without training anything.
    project.write_config("shrink.yaml", {**TINY, "grid": {**TINY["grid"], "batch_size": [100]}})
    shrink = ["--configfile", "config.yaml", "shrink.yaml"]
    assert planned(project, *shrink) == {"decide": 1, "aggregate": 1, "plot": 1, "findings": 1,
                                         "tables": 1, "all": 1}
    project.run("--cores", "all", *shrink)
    table = pd.read_csv(project.path / "results" / "table.csv")
    assert sorted(table["batch_size"].unique()) == [100] and len(table) == 3
    assert mtimes(project) == after

    # The report: plain `snakemake --report`, no extra flags.
    project.run("--report", "report.html", *shrink)
    html = (project.path / "report.html").read_text()
    assert len(html) > 100_000
    for name in ("epoch_duration.png", "speedup.png", "published.png", "table.csv",
                 "summary.csv", "findings.html", "table.html", "summary.html", "The answer",
                 "race.png"):
        assert name in html


def test_what_reruns_after_each_kind_of_change(project):
    project.write_config("tiny.yaml", TINY)
    cfg = ["--configfile", "config.yaml", "tiny.yaml"]
    project.run("--cores", "all", *cfg)
    # A setting shared by every cell: every cell again.
    assert planned(project, *cfg, "--config", "train={epochs: 2}")["train_cell"] == 6
    assert planned(project, *cfg, "--config", "train={seed: 1}")["train_cell"] == 6
    # A different data set: regenerate it, then every cell again.
    plan = planned(project, *cfg, "--config", "data={synthetic: {train_size: 1000}}")
    assert plan["make_synthetic"] == 1 and plan["train_cell"] == 6
    # The training code: every cell again.
    train_py = project.path / "scripts" / "speedlimit" / "run" / "train.py"
    original = train_py.read_text()
    train_py.write_text(original + "\n# an edit\n")
    assert planned(project, *cfg)["train_cell"] == 6
    train_py.write_text(original)
    assert planned(project, *cfg) == {}
    # The cells declare the data set's checksums, which coreutils confirms, not its files.
    (labels,) = (project.path / "data").glob("synthetic-*/FashionMNIST/raw/train-labels-*")
    md5sum = ["md5sum", "--check", "--strict", idx.MANIFEST]
    subprocess.run(md5sum, cwd=labels.parent, check=True, capture_output=True)
    # A file of it lost: the results made from it stay, and the warning before any job names
    # the file and the command that makes it again, which reruns no cell: the same data.
    labels.unlink()
    proc = project.run("-n", *cfg)
    assert "Nothing to be done" in proc.stdout
    relative = labels.relative_to(project.path)
    assert f"WARNING: the data set lacks {relative}: " in proc.stderr
    assert f"`snakemake --force {relative}`" in proc.stderr
    assert planned(project, *cfg, "--force", str(relative)) == {"make_synthetic": 1}
    project.run("--cores", "1", *cfg, "--force", str(relative))
    subprocess.run(md5sum, cwd=labels.parent, check=True, capture_output=True)
    proc = project.run("-n", *cfg)
    assert "Nothing to be done" in proc.stdout and "WARNING: the data set" not in proc.stderr
    # A file edited by hand: said, and nothing runs again for it.
    labels.write_bytes(labels.read_bytes()[:-1] + b"\x0b")  # (labels are 0 to 9)
    proc = project.run("-n", *cfg)
    assert "Nothing to be done" in proc.stdout
    assert f"WARNING: {relative} changed after the data set's checksums" in proc.stderr
    project.run("--cores", "1", *cfg, "--force", str(relative))
    assert planned(project, *cfg) == {}
    # Other data with their checksums (as a data set made again with other data would be):
    # every cell again; the data set made again as it was: no cell.
    data = labels.read_bytes()
    labels.write_bytes(data[:-1] + bytes([(data[-1] + 1) % 10]))  # another label
    idx.write_manifest(labels.parents[2])
    assert planned(project, *cfg)["train_cell"] == 6
    project.run("--cores", "1", *cfg, "--force", str(relative))
    assert planned(project, *cfg) == {}
    # The plotting code: only the figures (and the final target).
    plots_py = project.path / "scripts" / "speedlimit" / "results" / "plots.py"
    plots_py.write_text(plots_py.read_text() + "\n# an edit\n")
    assert planned(project, *cfg) == {"plot": 1, "all": 1}
    plots_py.write_text(plots_py.read_text().removesuffix("\n# an edit\n"))
    # The findings code: only the findings (the words, not the figures or tables).
    findings_py = project.path / "scripts" / "speedlimit" / "results" / "findings.py"
    findings_py.write_text(findings_py.read_text() + "\n# an edit\n")
    assert planned(project, *cfg) == {"findings": 1, "all": 1}


def test_a_bad_config_stops_before_any_job_and_changes_nothing(project):
    project.write_config("tiny.yaml", TINY)
    cfg = ["--configfile", "config.yaml", "tiny.yaml"]
    project.run("--cores", "all", *cfg)
    before = mtimes(project)
    table = (project.path / "results" / "table.csv").read_bytes()
    proc = project.run("--cores", "all", *cfg, "--config", "grid={num_workers: [0, -2]}",
                       check=False)
    assert proc.returncode != 0
    assert "grid.num_workers[1]" in proc.stderr and ">= 0" in proc.stderr
    assert mtimes(project) == before
    assert (project.path / "results" / "table.csv").read_bytes() == table


def test_command_line_grid_values_arrive_as_strings_and_are_converted(project):
    project.write_config("tiny.yaml", TINY)
    plan = planned(project, "--configfile", "config.yaml", "tiny.yaml",
                   "--config", "grid={num_workers: [0, 3]}")
    assert plan["train_cell"] == 4 + 2


def test_more_axes_skips_and_new_values(project):
    axes = {**TINY, "grid": {"num_workers": [0, 1], "batch_size": [200], "loader": ["dataloader"],
                             "prefetch_factor": [None, 4], "device": ["cpu", "cuda"]}}
    project.write_config("axes.yaml", axes)
    cfg = ["--configfile", "config.yaml", "axes.yaml"]
    project.run("--cores", "all", *cfg)
    skipped = pd.read_csv(project.path / "results" / "skipped.csv")
    # prefetch_factor=4 cannot go with num_workers=0: listed with its reason, never run.
    assert len(skipped) == 2 and skipped["reason"].str.contains("num_workers > 0").all()
    table = pd.read_csv(project.path / "results" / "table.csv")
    assert len(table) == 6
    import torch

    if not torch.cuda.is_available():  # a cuda cell on a CPU machine: a recorded skip
        cuda = table[table["device"] == "cuda"]
        assert (cuda["status"] == "skipped").all() and cuda["reason"].str.contains("cuda").all()
        assert (table.loc[table["device"] == "cpu", "status"] == "ok").all()
    # A new torch_threads value: exactly the new cells (one per valid combination).
    more = {**axes, "grid": {**axes["grid"], "torch_threads": [1, 2]}}
    project.write_config("more.yaml", more)
    assert planned(project, "--configfile", "config.yaml", "more.yaml")["train_cell"] == 6


def test_no_job_starts_while_a_cell_is_timed_and_repeats_interleave(project):
    """While a cell's clock runs, no other job of the run starts its Python (the next job
    waits in scripts/train_cell.sh, before Python); and every cell's repeat 0 runs before any
    cell's repeat 1, as the table's `order` records."""
    project.write_config("tiny.yaml", {**TINY, "train": {"repeats": 2}})
    cfg = ["--configfile", "config.yaml", "tiny.yaml"]
    project.run("--cores", "all", *cfg)
    runs = project.runs()
    assert len(runs) == 12
    clocks = {cell: (r["timeline"]["clock_started"], r["timeline"]["clock_stopped"])
              for cell, r in runs.items()}
    for cell, r in runs.items():
        started = r["timeline"]["process_started"]
        assert started is not None
        for other, (start, stop) in clocks.items():
            if other != cell:
                assert not start < started < stop, (cell, "started during", other)
    first = max(r["timeline"]["clock_started"] for r in runs.values() if r["params"]["repeat"] == 0)
    second = min(r["timeline"]["clock_started"] for r in runs.values()
                 if r["params"]["repeat"] == 1)
    assert first < second
    table = pd.read_csv(project.path / "results" / "table.csv")
    assert table.groupby("repeat")["order"].agg(["min", "max"]).to_dict() == {
        "min": {0: 1, 1: 7}, "max": {0: 6, 1: 12}}
    findings = (project.path / "results" / "findings.md").read_text()
    assert "Repeats were interleaved" in findings


def test_cells_this_machine_cannot_run_are_named_and_come_back_where_they_can(project,
                                                                             tmp_path):
    """cuda cells on a machine without a GPU: recorded as skipped, said in the findings and on
    the report's front page with the reason; run again where a GPU shows (the test hook
    SPEEDLIMIT_DEV_DIR stands in for /dev). A grid of only such cells: one clear sentence."""
    grid = {**TINY["grid"], "device": ["cpu", "cuda"]}
    project.write_config("tiny.yaml", {**TINY, "grid": grid})
    cfg = ["--configfile", "config.yaml", "tiny.yaml"]
    nogpu = tmp_path / "dev-without-gpu"
    nogpu.mkdir()
    env = {"SPEEDLIMIT_DEV_DIR": str(nogpu)}
    project.run("--cores", "all", *cfg, env=env)
    findings = (project.path / "results" / "findings.md").read_text()
    front = (project.path / "results" / "report" / "description.rst").read_text()
    for text in (findings, front):
        assert "Not run" in text and "device=cuda" in text, text
        assert "6 run(s)" in text and "torch.cuda.is_available() is False here" in text
    table = pd.read_csv(project.path / "results" / "table.csv")
    assert (table.loc[table["device"] == "cuda", "status"] == "skipped").all()
    assert "Nothing to be done" in project.run("-n", *cfg, env=env).stdout
    gpu = tmp_path / "dev-with-gpu"
    gpu.mkdir()
    (gpu / "nvidia0").write_text("")
    out = project.run("-n", *cfg, env={"SPEEDLIMIT_DEV_DIR": str(gpu)}).stdout
    assert re.search(r"^train_cell\s+6$", out, re.M), out  # the 6 skipped, nothing else

    only = {**TINY, "grid": {**TINY["grid"], "device": ["cuda"]}}
    project.write_config("only.yaml", only)
    proc = project.run("--cores", "all", "--configfile", "config.yaml", "only.yaml", env=env)
    said = proc.stdout + proc.stderr
    assert "speedlimit: nothing to summarize: none of the 6 runs finished" in said
    assert "Traceback" not in said
    assert "No DataLoader cell finished" in (project.path / "results" / "findings.md").read_text()
