"""How long Snakemake takes to build the pipeline's DAG (`snakemake -n`), against what it takes
for as many trivial jobs (a wildcard and a params function each) and for as many jobs of the
train_cell rule's shape with nothing of ours in them (one input from one upstream job, a log,
a priority, a conda env, two resources that vary per job and seven that do not, a params
string as long as a cell's request, a shell command of as many fields; one aggregate job over
all of them): measured in one run, on the same machine, so that the ratios say what the
pipeline's own code costs, apart from what Snakemake itself costs for a rule of that shape
(not a unit test). With --before REV, the pipeline as it was at git revision REV is timed in
the same run too.

Each of --repeats rounds times every variant once, back to back, in a new random order: a
machine whose speed drifts or jumps (this VM's moves by 20% from one minute to the next) slows
the variants of a round alike, so the ratios are taken within a round and their median
reported, with the medians of the times.

A race evaluates the DAG again after every round, so this is paid per round.

Usage: python benchmarks/dag.py [--cells 1000 10000] [--repeats 3] [--before REV]
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from speedlimit import project  # noqa: E402

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

TRIVIAL = '''
N = int(config["jobs"])  # (a config key needs two characters or more)


def value(wildcards):
    return f"job {wildcards.i}"


rule all:
    input:
        expand("out/{i}.txt", i=range(N)),


rule one:
    output:
        "out/{i}.txt",
    params:
        value=value,
    shell:
        "echo {params.value} > {output}"
'''


SHAPED = '''
import json

N = int(config["jobs"])
DATA = "data/raw/MD5SUMS"


def value(wildcards):
    return json.dumps({"cell": wildcards.i, "padding": "x" * 600})


def priority(wildcards):
    return N - int(wildcards.i)


def cpus(wildcards):
    return 1 + int(wildcards.i) % 4


def mem_mb(wildcards):
    return 2048 + 512 * (int(wildcards.i) % 4)


rule all:
    input:
        "table.csv",


rule data:
    output:
        DATA,
    shell:
        "touch {output}"


rule one:
    input:
        DATA,
    output:
        "out/{i}.json",
    log:
        "logs/{i}.log",
    priority: priority
    conda:
        "env.yaml"
    threads: 1
    resources:
        cpus_per_task=cpus,
        mem_mb=mem_mb,
        runtime=30,
        gpu=0,
        slurm_extra="",
        cell_lock="/tmp/lock",
        cell_slot=1,
        python="python",
        how="warm_start=1",
    params:
        request=value,
    shell:
        "echo {resources.cell_lock:q} {output:q} {log:q} {resources.python:q}"
        " --request {params.request:q} --how {resources.how:q} > {output}"


rule aggregate:
    input:
        expand("out/{i}.json", i=range(N)),
    output:
        "table.csv",
    shell:
        "cat {input} > {output}"
'''


def timed(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run([SNAKEMAKE, "-n", "--quiet", "all", *args], cwd=cwd,
                          capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"snakemake -n failed in {cwd}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start


def pipeline_at(revision: str, dest: Path) -> Path:
    """The pipeline's files as they were at a git revision (git archive), in ``dest``."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", revision], cwd=project.ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def grid_for(cells: int) -> dict:
    """A grid of about ``cells`` DataLoader cells (num_workers x batch_size x lr x 1 repeat)."""
    side = max(1, round(math.sqrt(cells / 10)))
    return {"grid": {"num_workers": list(range(10)), "batch_size": list(range(1, side + 1)),
                     "lr": [round(0.001 * (k + 1), 4) for k in range(side)],
                     "loader": ["dataloader"]},
            "data": {"source": "synthetic"}, "train": {"repeats": 1}}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", metavar="REV", help="also time the pipeline at this git "
                        "revision, in the same rounds")
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="speedlimit-dag-"))
    pipelines = {"pipeline": project.copy_to(base / "pipeline")}
    if args.before:
        pipelines["before"] = pipeline_at(args.before, base / "before")
    trivial, shaped = base / "trivial", base / "shaped"
    for folder, text in ((trivial, TRIVIAL), (shaped, SHAPED)):
        folder.mkdir()
        (folder / "Snakefile").write_text(text)
    (shaped / "env.yaml").write_text("channels: [conda-forge]\ndependencies: [python=3.11]\n")
    order = random.Random(0)
    names = [*pipelines, "trivial", "shape"]
    print(f"Medians of {args.repeats} rounds (ratios within each round; their range in "
          "brackets).\n")
    print("| cells | " + " | ".join(f"{name} (s)" for name in names)
          + " | " + " | ".join(f"{name} / trivial" for name in pipelines)
          + " | shape / trivial | pipeline / shape |")
    print("|---" * (1 + len(names) + len(pipelines) + 2) + "|")
    for cells in args.cells:
        overlay = yaml.safe_dump(grid_for(cells))
        n = math.prod(len(grid_for(cells)["grid"][axis])
                      for axis in ("num_workers", "batch_size", "lr"))
        runs = {name: (["--configfile", "config.yaml", "dag.yaml"], folder)
                for name, folder in pipelines.items()}
        runs["trivial"] = (["--config", f"jobs={n}"], trivial)
        runs["shape"] = (["--config", f"jobs={n}"], shaped)
        for folder in pipelines.values():
            (folder / "dag.yaml").write_text(overlay)
        times = {name: [] for name in names}
        for _ in range(args.repeats):
            for name in order.sample(names, len(names)):
                times[name].append(timed(*runs[name]))

        def ratio(a, b):
            ratios = [x / y for x, y in zip(times[a], times[b])]
            spread = f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""
            return f"{statistics.median(ratios):.2f}{spread}"

        print(f"| {n} | " + " | ".join(f"{statistics.median(times[name]):.1f}" for name in names)
              + " | " + " | ".join(ratio(name, "trivial") for name in pipelines)
              + f" | {ratio('shape', 'trivial')} | {ratio('pipeline', 'shape')} |", flush=True)
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
