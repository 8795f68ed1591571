"""The run's plan, made once from the validated config before any job: the cells, the data set
they read, how each run is timed and asked for (its request, resources and priority), where
its record goes, and what to warn of. ``rules/common.smk`` holds one :class:`Plan` and hands
Snakemake thin functions over it; what needs Snakemake itself (checkpoints, the deployment
method) stays there. No torch, numpy or pandas.
"""

from __future__ import annotations

import collections
import functools
import math
from pathlib import Path

from speedlimit import grid, record
from speedlimit.data import idx, imagefolder
from speedlimit.grid import Cell
from speedlimit.run import preflight, workloads
from speedlimit.run.request import Request

# What one run of a cell times (speedlimit.run.probe): a race's runs time windows of batches
# and predict the epoch; fixed repeats (and a race's final check) time whole epochs.
WHOLE_EPOCHS = {"mode": "epochs"}


class PlanError(ValueError):
    """The config asks for a run that cannot be made; the message says why and what to do."""


class Plan:
    """Everything the rules need from the config, computed once."""

    def __init__(self, config: dict, search: list[Path] = ()):
        self.config = config
        train = config["train"]
        self.race = train["repeats"] == "auto"
        self.rounds = train["max_rounds"] if self.race else train["repeats"]
        self.cells, self.skipped = grid.expand(config["grid"], self.rounds)
        if self.race:  # (the combinations torch rejects, once each)
            self.skipped = grid.expand(config["grid"], 1)[1]
        if not self.cells:
            reasons = collections.Counter(reason for _, reason in self.skipped)
            raise PlanError(
                f"nothing to run: none of the grid's {len(self.skipped)} runs can run here ("
                + "; ".join(f"{n}: {reason}" for reason, n in reasons.items())
                + "). Change the grid in config.yaml (or --config), or run where they can.")
        self.cell_paths = {cell.path: cell for cell in self.cells}
        self.resolved = {name: self._resolve(name, search) for name in config["grid"]["workload"]}
        self.workloads = {name: r.for_request() for name, r in self.resolved.items()}
        # The built-in workloads read the pipeline's data set; a custom one only with the old
        # signature, make(dataset_root, seed): a grid of other custom cells needs none at all.
        self.reads_dataset = {c.workload for c in self.cells if self.resolved[c.workload].dataset}
        self.dataset_root = self._dataset_root()
        # What a training job declares of the data set: its files' checksums.
        self.dataset_manifest = idx.manifest_path(self.dataset_root)
        self.cell_inputs = {name: self._workload_input(name)
                            for name in {cell.workload for cell in self.cells}}
        self.timing = ({"mode": "windows", **train["probe"]} if self.race else WHOLE_EPOCHS)
        self.exclusive = train["exclusive"]
        cluster = config["cluster"]
        # Minutes: the configured wall time, plus train.time_limit when one is set.
        self.cell_runtime = cluster["runtime"] + (
            math.ceil(train["time_limit"] / 60) if train["time_limit"] else 0)
        self.interleave = train["interleave"]
        self.group_of = (grid.interleaved_groups(self.cells, self.known_size)
                         if self.race and self.interleave["enabled"] else {})
        self.group_members = collections.defaultdict(list)  # lead prefix -> its prefixes
        for cell, lead in self.group_of.items():
            self.group_members[lead].append(cell)
        # Repeats interleaved, each round in a random order drawn from train.seed (a race's
        # later rounds take their order from the round before): a job's priority is its place.
        first = self.cells if not self.race else [c for c in self.cells if c.repeat == 0]
        self.priorities = {cell.path: len(self.cells) - place
                           for place, cell in enumerate(grid.interleaved(first, train["seed"]))}

    # --- the data set and the workloads ------------------------------------------------------

    def _resolve(self, name: str, search) -> workloads.Resolved:
        try:
            return workloads.resolve(name, self.config["workloads"]["custom"], list(search))
        except workloads.WorkloadError as err:
            raise PlanError(f"workload {name}: {err}") from None

    def fashionmnist_root(self) -> str:
        return str(Path(self.config["data"]["root"]) / "fashionmnist")

    def synthetic_root(self, train_size, test_size, seed) -> str:
        return str(Path(self.config["data"]["root"])
                   / f"synthetic-{train_size}-{test_size}-seed{seed}")

    def _dataset_root(self) -> str:
        """<data.root>/<name>: where torchvision finds FashionMNIST/raw/ for the source."""
        data = self.config["data"]
        if data["source"] == "synthetic":
            syn = data["synthetic"]
            return self.synthetic_root(syn["train_size"], syn["test_size"], syn["seed"])
        return self.fashionmnist_root()

    def imagefolder_root(self) -> str:
        return imagefolder.root(self.dataset_root)

    def _workload_input(self, name: str) -> list[str]:
        """What a cell of workload ``name`` declares of the data set: its checksum manifest
        (for imagefolder also the images as files); nothing for a custom one that brings its
        own."""
        if name not in self.reads_dataset:
            return []
        if name == "imagefolder":
            return [self.dataset_manifest, self.imagefolder_root()]
        return [self.dataset_manifest]

    def dataset_warnings(self) -> list[str]:
        """The data set's files lost or edited since their checksums were written: a cell that
        runs would find them so (Snakemake reruns nothing for a missing intermediate file)."""
        if not self.reads_dataset or not Path(self.dataset_manifest).exists():
            return []
        return [f"speedlimit: WARNING: {p}." for p in idx.manifest_problems(self.dataset_root)]

    def known_size(self, workload: str) -> int | None:
        """A workload's data set size, where the config says it before any job."""
        if workload == "custom":
            return None
        data = self.config["data"]
        return data["synthetic"]["train_size"] if data["source"] == "synthetic" else 60_000

    # --- one run: its cell, request, resources, record and priority --------------------------

    def cell(self, path: str) -> Cell:
        try:
            return self.cell_paths[path]
        except KeyError:
            raise PlanError(f"results/runs/{path}.json is not a cell of the current grid") \
                from None

    def dataset_of(self, cell: Cell) -> str | None:
        """The data set a cell's workload reads (None: a custom one that brings its own)."""
        return self.dataset_root if cell.workload in self.reads_dataset else None

    def request(self, path: str, timing: dict | None, code: str) -> str:
        """The job's request: everything that shapes a run's measurement, one stable string
        (:class:`speedlimit.run.request.Request`), and so its rerun trigger."""
        cell = self.cell(path)
        file = self.run_file(path)
        train = self.config["train"]
        return Request.for_rule(cell, timing or self.timing, train["epochs"], train["seed"],
                                self.dataset_of(cell), self.workloads[cell.workload], code,
                                record.failures_so_far(file), self.hardware_key(cell, file))

    @staticmethod
    def hardware_key(cell: Cell, path: str) -> str | None:
        """For cuda cells, a rerun trigger that retries a cell skipped for want of a GPU where
        one shows: its record keeps the key it ran under; a skipped record's key turns to
        "gpu" on a machine with a GPU, and a measured record keeps its key wherever the
        results go (a measurement is never replaced by a skip)."""
        if cell.device != "cuda":
            return None
        done = record.peek(path) or {}
        key = (done.get("params") or {}).get("hardware", "first run")
        if done.get("status") == record.SKIPPED and preflight.gpus_visible():
            return "gpu"
        return key

    @functools.cache
    def cell_resources(self, path: str) -> dict:
        """What a cell's job holds: CPUs of its SLURM allocation (its main process's threads
        plus one per worker), memory and GPUs."""
        cell = self.cell_paths[path]
        cluster = self.config["cluster"]
        workers = cell.num_workers or 0
        return {"cpus": cell.torch_threads + workers,
                "mem_mb": cluster["mem_mb"] + cluster["mem_mb_per_worker"] * workers,
                "gpu": 1 if cell.device == "cuda" else 0}

    @functools.cache
    def group_resources(self, path: str) -> dict:
        """A group's round holds every setting's workers at once: the most CPUs of one
        setting and the memory of them all."""
        members = [f"{cell}/repeat~0" for cell in self.group_members[grid.prefix(path)]]
        each = [self.cell_resources(member) for member in members]
        base = self.config["cluster"]["mem_mb"]
        return {"cpus": max(r["cpus"] for r in each),
                "mem_mb": base + sum(r["mem_mb"] - base for r in each),
                "gpu": max(r["gpu"] for r in each)}

    def group_runtime(self, settings: int) -> int:
        """Minutes: the configured wall time, plus train.time_limit once per setting."""
        limit = self.config["train"]["time_limit"]
        return self.config["cluster"]["runtime"] + (math.ceil(limit * settings / 60)
                                                    if limit else 0)

    def group_request(self, path: str, cells: list[str], code: str) -> str:
        return self.request(path, {"mode": record.INTERLEAVED, "cells": cells,
                                   "windows": self.interleave["windows"],
                                   "window_seconds": self.interleave["window_seconds"]}, code)

    def in_group(self, lead_path: str, round_cells: list[str]) -> list[str]:
        """The runs of a round that a group's job times (sorted: the job draws their order)."""
        members = set(self.group_members[grid.prefix(lead_path)])
        return sorted(path for path in round_cells if grid.prefix(path) in members)

    def run_file(self, path: str) -> str:
        """Where a run's record is: its own file, or its group's round."""
        lead = self.group_of.get(grid.prefix(path))
        if lead is None:
            return f"results/runs/{path}.json"
        return f"results/race/groups/{lead}/repeat~{path.rsplit('~', 1)[1]}.json"

    def run_files(self, paths) -> list[str]:
        """The records of these runs, each file once (a group's round holds several)."""
        return list(dict.fromkeys(self.run_file(path) for path in paths))

    # --- before any job ----------------------------------------------------------------------

    def repeats_warning(self) -> str | None:
        """Fixed repeats (or a race's max_rounds) too few for the run's comparisons to decide
        anything on a quiet machine, with the number needed."""
        from speedlimit.results import sequential

        comparisons = grid.comparisons([cell for cell in self.cells if cell.repeat == 0])
        if not comparisons:
            return None
        key = "max_rounds" if self.race else "repeats"
        needed = sequential.repeats_needed(comparisons, anytime=self.race,
                                           margin=self.config["train"]["margin"])
        if self.rounds >= needed:
            return None
        what = ("a race decides nothing before" if self.race
                else "nothing can be shown with fewer than")
        return (f"speedlimit: WARNING: train.{key}: {self.rounds} is too few for this run's "
                f"{comparisons} comparison(s) of settings: {what} {needed} runs per setting, "
                "even on a quiet machine (3% run-to-run noise; a noisier one needs more). Set "
                f"train.{key}: {needed} or more"
                + ("." if self.race else ", or train.repeats: auto to race them."))
