"""On a real (single-node, local) SLURM cluster: `snakemake --profile profiles/slurm` runs every
cell as a SLURM job of its own, and the results equal a local run's in everything but timings.

tests/slurm/cluster.sh starts munged, slurmctld and slurmd under a temporary folder and stops
them by PID afterwards, also when the test fails. Skipped where SLURM is not installed
(`.ci/run` installs it: apt-get install munge slurmctld slurmd slurm-client).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time

import pandas as pd
import pytest

from conftest import ROOT, Project

pytestmark = pytest.mark.e2e

CLUSTER_SH = ROOT / "tests" / "slurm" / "cluster.sh"
NEEDED = ["munged", "mungekey", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "python3"]

# Three training cells (one with a worker, so its job asks for 2 CPUs) on 2000 images.
GRID = {
    "grid": {"num_workers": [0, 1], "batch_size": [200], "loader": ["dataloader", "tensor"]},
    "data": {"source": "synthetic", "synthetic": {"train_size": 2000, "test_size": 200}},
    # Small memory requests.
    "cluster": {"mem_mb": 1500, "mem_mb_per_worker": 500},
    "train": {"repeats": 1},
}
# Short status polls: the plugin's defaults (40 s before the first, then 10 s) dominate.
FAST_POLLS = ["--slurm-init-seconds-before-status-checks", "1",
              "--seconds-between-status-checks", "2",
              "--slurm-status-command", "squeue", "--slurm-no-account",
              # The partition (cluster.sh's only one), as a user names theirs.
              "--default-resources", "slurm_partition=debug"]
# What may differ between two runs of the same cell: when, how fast, and where.
TIMINGS = {"started_at", "finished_at", "run_duration", "startup", "setup", "environment",
           "timeline", "shutdown", "reference", "machine_load", "redone", "costs"}
EPOCH_TIMINGS = {"epoch_duration", "data_wait", "compute", "first_batch", "samples_per_second",
                 "compute_per_sample"}
TABLE_TIMINGS = ["epoch_duration", "run_duration", "data_wait", "compute", "data_wait_share",
                 "first_batch", "samples_per_second", "startup", "shutdown", "limit_ratio",
                 "node", "cpus_allowed", "started_at", "finished_at", "reference_before",
                 "reference_after", "disturbed", "other_cpu_seconds", "steal_seconds", "order",
                 "load_per_sample", "compute_per_sample",
                 # Snakemake sets the thread variables to each job's threads: a core per thread
                 # and worker under SLURM, one under the local profile's cell lock.
                 "thread_env"]


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    missing = [cmd for cmd in NEEDED if shutil.which(cmd) is None]
    if missing:
        pytest.skip(f"SLURM is not installed here (missing {', '.join(missing)}); "
                    "apt-get install munge slurmctld slurmd slurm-client, as .ci/run does")
    state = tmp_path_factory.mktemp("slurm")
    try:
        start = subprocess.run([str(CLUSTER_SH), "start", str(state)], capture_output=True,
                               text=True, timeout=120)
        assert start.returncode == 0, f"cluster.sh start failed:\n{start.stdout}\n{start.stderr}"
        yield state
    finally:
        subprocess.run([str(CLUSTER_SH), "stop", str(state)], timeout=60)
        for name in ("munged", "slurmctld", "slurmd"):
            assert not (state / f"{name}.pid").exists(), f"{name} still recorded as running"


def run_table(project: Project) -> pd.DataFrame:
    table = pd.read_csv(project.path / "results" / "table.csv")
    return table.drop(columns=TABLE_TIMINGS)


def without_timings(record: dict) -> dict:
    kept = {k: v for k, v in record.items() if k not in TIMINGS}
    kept["epochs"] = [{k: v for k, v in ep.items() if k not in EPOCH_TIMINGS}
                      for ep in record["epochs"]]
    return kept


def test_every_cell_runs_as_a_slurm_job_with_the_local_results(slurm_cluster, tmp_path):
    # Where a warm server's socket and the cell lock would go: both must stay unused.
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {"PATH": f"{slurm_cluster / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "SPEEDLIMIT_WARM_DIR": str(scratch), "SPEEDLIMIT_LOCK_DIR": str(scratch)}
    cluster = Project(tmp_path / "cluster")
    cluster.write_config("tiny.yaml", GRID)
    started = time.monotonic()
    proc = cluster.run("--profile", "profiles/slurm", "--configfile", "config.yaml", "tiny.yaml",
                       *FAST_POLLS, env=env, timeout=900)
    elapsed = time.monotonic() - started
    out = proc.stdout + proc.stderr
    submitted = re.findall(r"SLURM jobid (\d+)", out)
    print(f"cluster run: {elapsed:.0f} s, SLURM jobs {submitted}")

    runs = cluster.runs()
    assert len(runs) == 3
    # Every cell ran inside a SLURM job of its own, one the plugin submitted.
    job_ids = {cell: r["environment"]["slurm_job_id"] for cell, r in runs.items()}
    assert all(job_ids.values()) and len(set(job_ids.values())) == 3, job_ids
    assert set(job_ids.values()) <= set(submitted), (job_ids, submitted)
    # ... with the CPUs its num_workers asked for (num_workers + 1).
    for r in runs.values():
        workers = r["params"]["num_workers"] or 0
        assert r["environment"]["slurm_cpus_per_task"] == str(workers + 1)
    # SLURM itself knows them as finished jobs of this run (squeue keeps them for MinJobAge),
    # in the configured partition, with the CPUs and memory their rule asked for.
    squeue = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i %T %P %C %m"],
                            capture_output=True, text=True, env={**os.environ, **env},
                            check=True).stdout
    print(squeue)
    jobs = {line.split()[0]: line.split()[1:] for line in squeue.splitlines()}
    for r in runs.values():
        workers = r["params"]["num_workers"] or 0
        job = r["environment"]["slurm_job_id"]
        assert jobs[job] == ["COMPLETED", "debug", str(workers + 1), f"{1500 + 500 * workers}M"], (
            job, jobs)
    assert set(jobs) >= set(submitted), (jobs, submitted)
    # One SLURM log per job, kept.
    slurm_logs = list((cluster.path / "logs" / "slurm").rglob("*.log"))
    assert {p.stem for p in slurm_logs} >= set(job_ids.values()), slurm_logs
    # The profile's settings held: no warm server (cold starts), no per-machine cell lock.
    assert list(scratch.iterdir()) == []

    # The same grid on this machine, without SLURM: equal in everything but timings.
    local = Project(tmp_path / "local")
    local.write_config("tiny.yaml", GRID)
    local.run("--cores", "all", "--configfile", "config.yaml", "tiny.yaml")
    local_runs = local.runs()
    assert local_runs.keys() == runs.keys()
    for cell in runs:
        assert without_timings(runs[cell]) == without_timings(local_runs[cell]), cell
        assert local_runs[cell]["environment"]["slurm_job_id"] is None
    pd.testing.assert_frame_equal(run_table(cluster), run_table(local))
    for name in ("epoch_duration", "speedup", "time_split", "quality"):
        assert (cluster.path / "results" / "plots" / f"{name}.png").stat().st_size > 10_000
