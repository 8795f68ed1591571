"""Benchmark of the pipeline itself (not of the DataLoader): how much of the wall time of
`snakemake --cores all` is spent inside the cells' timed epochs, and where the rest goes.

Reports, for a synthetic grid (default: the seed's 18 cells on 60,000 images):

(a) efficiency = sum of the cells' run_duration / wall time of `snakemake --cores all`
    (the data set is generated first, outside the timed run);
(b) the wall time of a no-op rerun (`snakemake --cores all` with nothing to do);
(c) the seconds of overhead per job (a cell's, or in a race a round of a group whose settings
    are timed together), split by each job's timeline: between jobs
    (Snakemake starting the job, Python start, the script preamble, connecting to the warm
    server), before the clock (fork or import, loading the data set), after the clock
    (writing the JSON), plus the one-off start of the warm server;
(d) with --repeats auto (a race): the cost of a round boundary, from the last run of a round
    to the first of the next (the round's checkpoint and Snakemake updating its DAG).

Timings on shared machines are noisy: the figures are medians and ratios from one run.
Usage: python benchmarks/pipeline.py [--train-size N] [--grid YAML] [--repeats N|auto]
                                     [--budget 10m] [--cold] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from speedlimit import project, record  # noqa: E402

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def snakemake(workdir: Path, *args: str, env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.run([SNAKEMAKE, "--cores", "all", "--configfile", "config.yaml",
                           "bench.yaml", *args], cwd=workdir, env=env, capture_output=True,
                          text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"snakemake {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    return wall


def measure(workdir: Path, overlay: dict, env: dict) -> dict:
    (workdir / "bench.yaml").write_text(yaml.safe_dump(overlay))
    data_wall = snakemake(workdir, "--until", "make_synthetic", env=env)
    wall = snakemake(workdir, env=env)
    noop = snakemake(workdir, env=env)
    # One record per job: a cell's own, or a race's round of a group (its settings timed
    # together: the group's record, whose clock covers them all).
    schema = record.load_schema()
    records = [record.read(p, schema) for folder in ("runs", "check", "race/groups")
               for p in (workdir / "results" / folder).rglob("*.json")]
    records.sort(key=lambda r: r["timeline"]["lock_acquired"])
    boundaries = []  # a race: from a round's last run to the next round's first
    rounds = {}
    for rec in records:
        if "predicted" in rec or rec.get("timing", {}).get("mode") in ("windows",
                                                                       record.INTERLEAVED):
            rounds.setdefault(rec["params"]["repeat"], []).append(rec["timeline"])
    for r in sorted(rounds)[1:]:
        if r - 1 in rounds:
            boundaries.append(min(t["process_started"] for t in rounds[r])
                              - max(t["written"] for t in rounds[r - 1]))
    timed = sum(r["run_duration"] for r in records)
    before, after, between = [], [], []
    for prev, rec in zip([None] + records, records):
        t = rec["timeline"]
        before.append(t["clock_started"] - t["lock_acquired"])
        after.append(t["written"] - t["clock_stopped"])
        if prev is not None:
            between.append(t["lock_acquired"] - prev["timeline"]["written"])
    n = len(records)
    return {
        "cells": n,
        "data_generation_s": data_wall,
        "wall_s": wall,
        "sum_run_duration_s": timed,
        "efficiency": timed / wall,
        "noop_rerun_s": noop,
        "overhead_per_cell_s": (wall - timed) / n,
        "median_between_cells_s": statistics.median(between) if between else None,
        "median_before_clock_s": statistics.median(before),
        "median_after_clock_s": statistics.median(after),
        "first_cell_before_clock_s": before[0],
        "median_setup_s": statistics.median(r["setup"] for r in records),
        "after_last_cell_s": wall - (records[-1]["timeline"]["written"]
                                     - records[0]["timeline"]["lock_acquired"]),
        "rounds": len(rounds),
        "median_round_boundary_s": statistics.median(boundaries) if boundaries else None,
        "max_round_boundary_s": max(boundaries) if boundaries else None,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=60000)
    parser.add_argument("--grid", type=yaml.safe_load, default={},
                        help='grid overrides as YAML, e.g. "{num_workers: [0, 1]}"')
    parser.add_argument("--repeats", default="1",
                        help="train.repeats: 1 (the seed's one run per cell, default) or auto")
    parser.add_argument("--budget", default="10m", help="train.budget of a race")
    parser.add_argument("--cold", action="store_true",
                        help="also measure with train.warm_start: false, for comparison")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    base = args.keep or Path(tempfile.mkdtemp(prefix="speedlimit-bench-"))
    modes = [("warm", True)] + ([("cold", False)] if args.cold else [])
    results = {}
    for name, warm in modes:
        workdir = base / name
        if workdir.exists():
            shutil.rmtree(workdir)
        project.copy_to(workdir)
        # A private warm-server folder, so the server's start (the torch import) is counted.
        env = {**os.environ, "SPEEDLIMIT_WARM_DIR": str(base / f"{name}-server"),
               "SPEEDLIMIT_WARM_IDLE": "30"}
        Path(env["SPEEDLIMIT_WARM_DIR"]).mkdir(mode=0o700, exist_ok=True)  # private, or refused
        overlay = {"grid": args.grid,
                   "data": {"source": "synthetic", "root": str(base / "data"),
                            "synthetic": {"train_size": args.train_size}},
                   "train": {"warm_start": warm,
                             "repeats": args.repeats if args.repeats == "auto"
                             else int(args.repeats), "budget": args.budget}}
        results[name] = measure(workdir, overlay, env)
        r = results[name]
        print(f"[{name} start] {r['cells']} jobs, {args.train_size} images")
        print(f"  (a) efficiency          {r['efficiency']:.3f}  "
              f"(sum of run_duration {r['sum_run_duration_s']:.1f} s / wall {r['wall_s']:.1f} s)")
        print(f"  (b) no-op rerun         {r['noop_rerun_s']:.2f} s")
        print(f"  (c) overhead per cell   {r['overhead_per_cell_s']:.2f} s "
              "= (wall - timed) / cells;"
              f" medians: between cells {r['median_between_cells_s']:.2f} s, before the clock "
              f"{r['median_before_clock_s']:.2f} s (data set load {r['median_setup_s']:.2f} s),"
              f" after the clock {r['median_after_clock_s']:.2f} s")
        print(f"      first cell before the clock {r['first_cell_before_clock_s']:.2f} s "
              f"(includes the warm server's start); aggregate + plots after the last cell "
              f"{r['after_last_cell_s']:.1f} s; data generation (not in wall) "
              f"{r['data_generation_s']:.1f} s")
        if r["median_round_boundary_s"] is not None:
            print(f"  (d) a race of {r['rounds']} rounds: round boundary (checkpoint and DAG "
                  f"update) median {r['median_round_boundary_s']:.2f} s, at most "
                  f"{r['max_round_boundary_s']:.2f} s")
        sys.stdout.flush()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
