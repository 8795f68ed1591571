"""Profiles: plain `snakemake` gets profiles/default; `--profile profiles/slurm` really gets the
SLURM executor and its settings (the workflow profile is applied on top of it, key by key), and
each job asks SLURM for the resources of its rule."""

from __future__ import annotations

import re

import pytest
import yaml

import train_cell
from conftest import ROOT

PROFILES = ROOT / "profiles"


def parse(monkeypatch, *argv):
    from snakemake.cli import parse_args

    monkeypatch.chdir(ROOT)
    return parse_args(list(argv))[1]


def test_plain_snakemake_gets_the_default_profile(monkeypatch):
    args = parse(monkeypatch)
    assert args.cores is not None and args.rerun_incomplete and args.show_failed_logs
    assert args.executor in (None, "local")


def test_the_default_profile_overrides_no_slurm_setting():
    """The workflow profile wins per key over --profile: sharing a key would silently drop
    the SLURM profile's value."""
    default = yaml.safe_load((PROFILES / "default" / "config.yaml").read_text())
    slurm = yaml.safe_load((PROFILES / "slurm" / "config.yaml").read_text())
    assert not set(default) & set(slurm), set(default) & set(slurm)


def test_the_slurm_profile_selects_the_slurm_executor_and_its_settings(monkeypatch):
    args = parse(monkeypatch, "--profile", "profiles/slurm")
    assert args.executor == "slurm"
    assert args.jobs >= 1
    assert args.slurm_logdir.as_posix() == "logs/slurm" and args.slurm_keep_successful_logs
    assert args.config == ["train={warm_start: false, exclusive: false}"]
    # ... and still the project's usual flags from the default profile.
    assert args.cores is not None and args.rerun_incomplete


def resources_per_cell(out: str, rule: str = "train_cell") -> dict[str, dict[str, str]]:
    """cell wildcard -> resources, from a dry run's job listing."""
    found = {}
    for block in out.split(f"rule {rule}:")[1:]:
        cell = re.search(r"wildcards: cell=(\S+)", block)[1]
        line = re.search(r"resources: (.*)", block)[1]
        found[cell] = dict(item.split("=", 1) for item in line.split(", "))
    return found


def test_each_cell_asks_for_its_cpus_memory_gpu_partition_and_account(project):
    project.write_config("grid.yaml", {
        "grid": {"num_workers": [0, 3], "batch_size": [100], "device": ["cpu", "cuda"],
                 "loader": ["dataloader"]},
        "data": {"source": "synthetic"},
        "train": {"repeats": 1, "time_limit": 600},
        "cluster": {"mem_mb": 1000, "mem_mb_per_worker": 100, "runtime": 20},
    })
    # Partition and account: the profile's default-resources, here given on the command line.
    out = project.run("-n", "--profile", "profiles/slurm", "--configfile", "config.yaml",
                      "grid.yaml", "--default-resources", "slurm_partition=short",
                      "slurm_account=proj1").stdout
    cells = resources_per_cell(out)
    assert len(cells) == 4
    for cell, res in cells.items():
        workers = int(re.search(r"num_workers~(\d+)", cell)[1])
        assert res["cpus_per_task"] == str(workers + 1), (cell, res)
        assert res["mem_mb"] == str(1000 + 100 * workers)
        assert res["runtime"] == str(20 + 10)          # + time_limit in minutes
        assert res["gpu"] == ("1" if "device~cuda" in cell else "0")
        assert res["slurm_partition"] == "short" and res["slurm_account"] == "proj1"
    assert "slurm_partition=short" in out.split("rule make_synthetic:")[1].split("rule ")[0]


def test_a_groups_round_asks_for_the_cpus_of_its_largest_setting_and_memory_for_all(project):
    project.write_config("grid.yaml", {
        "grid": {"num_workers": [0, 1, 3], "batch_size": [100], "loader": ["dataloader"]},
        "data": {"source": "synthetic", "synthetic": {"train_size": 2000}},
        "train": {"repeats": "auto", "time_limit": 600},
        "cluster": {"mem_mb": 1000, "mem_mb_per_worker": 100, "runtime": 20},
    })
    out = project.run("-n", "--profile", "profiles/slurm", "--configfile", "config.yaml",
                      "grid.yaml", "--default-resources", "slurm_partition=short",
                      "slurm_account=proj1").stdout
    assert "rule train_cell:" not in out  # every setting is timed in its group's job
    [(lead, res)] = resources_per_cell(out, "race_group").items()
    assert "num_workers~0/" in lead and lead.endswith("/repeat~0")
    assert res["cpus_per_task"] == "4"  # the main process and the 3 workers of the largest
    assert res["mem_mb"] == str(1000 + 100 * (1 + 3))  # every setting's workers at once
    assert res["runtime"] == str(20 + 3 * 10)  # + time_limit in minutes, once per setting
    assert res["slurm_partition"] == "short" and res["slurm_account"] == "proj1"


@pytest.mark.parametrize("requested, environ, expected", [
    (True, {}, True),
    (True, {"SLURM_JOB_ID": "17"}, False),
    (False, {}, False),
    (False, {"SLURM_JOB_ID": "17"}, False),
])
def test_no_warm_server_inside_a_slurm_job(requested, environ, expected):
    assert train_cell.use_warm_start(requested, environ) is expected
