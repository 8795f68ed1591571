"""How long Snakemake takes to build the pipeline's DAG (`snakemake -n`), against what it takes
for as many trivial jobs (a wildcard and a params function each) and for as many jobs of the
train_cell rule's shape with nothing of ours in them (four inputs from one upstream job, a log,
a priority, three resources that vary per job and six that do not, a params string as long as
a cell's request; one aggregate job over all of them): measured in one run, on the same
machine, so that the ratios say what the pipeline's own code costs, apart from what Snakemake
itself costs for a rule of that shape (not a unit test).

A race evaluates the DAG again after every round, so this is paid per round.

Usage: python benchmarks/dag.py [--cells 1000 10000]
"""

from __future__ import annotations

import argparse
import math
import shutil
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
DATA = [f"data/raw/{name}" for name in ("a", "b", "c", "d")]


def value(wildcards):
    return json.dumps({"cell": wildcards.i, "padding": "x" * 600})


def priority(wildcards):
    return N - int(wildcards.i)


def cpus(wildcards):
    return 1 + int(wildcards.i) % 4


def mem_mb(wildcards):
    return 2048 + 512 * (int(wildcards.i) % 4)


def gpu(wildcards):
    return 0


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
    threads: 1
    resources:
        cpus_per_task=cpus,
        mem_mb=mem_mb,
        runtime=30,
        gpu=gpu,
        slurm_extra="",
        cell_lock="/tmp/lock",
        cell_slot=1,
        python="python",
        how="warm_start=1",
    params:
        request=value,
    shell:
        "echo {params.request:q} > {output}"


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
        sys.exit(f"snakemake -n failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start


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
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="speedlimit-dag-"))
    pipeline = project.copy_to(base / "pipeline")
    trivial, shaped = base / "trivial", base / "shaped"
    for folder, text in ((trivial, TRIVIAL), (shaped, SHAPED)):
        folder.mkdir()
        (folder / "Snakefile").write_text(text)
    print("| cells | pipeline `snakemake -n` (s) | trivial jobs (s) | ratio | jobs of the rule's "
          "shape (s) | ratio |")
    print("|---|---|---|---|---|---|")
    for cells in args.cells:
        overlay = grid_for(cells)
        n = (len(overlay["grid"]["num_workers"]) * len(overlay["grid"]["batch_size"])
             * len(overlay["grid"]["lr"]))
        (pipeline / "dag.yaml").write_text(yaml.safe_dump(overlay))
        ours = timed(["--configfile", "config.yaml", "dag.yaml"], pipeline)
        theirs = timed(["--config", f"jobs={n}"], trivial)
        shape = timed(["--config", f"jobs={n}"], shaped)
        print(f"| {n} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f} | {shape:.1f} | "
              f"{ours / shape:.2f} |", flush=True)
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
