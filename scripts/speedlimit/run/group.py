"""A race's round of one group, timed in one job: every setting of the group that still races,
interleaved in windows (:mod:`speedlimit.run.interleave`), and one record per setting.

The job is the group's *lead* cell's (its first setting in preference order: the
``train_cell`` machinery, warm start, lock, time limit and failure records are the same); its
request's timing names the round's cells (``{"mode": "interleaved", "cells": [...],
"windows": W, "window_seconds": S}``). What it writes is one *group record*: the lead's
record whose ``runs`` hold each cell's own record, as a run of a cell timed alone would have
it (its settings, its predicted epoch and what it was predicted from, the shared reference
and machine load), so that every reader (:func:`speedlimit.record.read_runs`) sees one
record per cell and round.
"""

from __future__ import annotations

import logging
import random
import time

import torch

from speedlimit import record
from speedlimit.grid import Cell
from speedlimit.run import costs, fingerprint, hooks, interleave, lane_epoch, noise, train
from speedlimit.run.epoch import finite

log = logging.getLogger("speedlimit.run.group")


def round_seed(seed: int, round_: int) -> int:
    """The random order of a round's windows: drawn from train.seed and the round."""
    return seed * 1_000_003 + 7_919 * round_ + 1


def _epoch(lane: interleave.Lane) -> dict:
    """What the lane trained on, as an epoch entry: its timed and untimed batches, its own
    time only (``epoch_duration = data_wait + compute``: the other lanes' turns excluded)."""
    samples = sum(e["samples"] for e in lane.epochs)
    loss = sum(e["loss"] * e["samples"] for e in lane.epochs) / samples if samples else None
    accuracy = (None if any(e["accuracy"] is None for e in lane.epochs) else
                sum(e["accuracy"] * e["samples"] for e in lane.epochs) / samples if samples
                else 0.0)
    data_wait = sum(e["data_wait"] for e in lane.epochs)
    compute = sum(e["compute"] for e in lane.epochs)
    own = data_wait + compute
    first = lane.openings[0].startup if lane.openings else None
    return {"epoch": 1, "loss": None if loss is None else finite(loss),
            "compute_per_sample": compute / samples if samples else None,
            "accuracy": accuracy, "epoch_duration": own,
            "data_wait": data_wait, "compute": compute, "first_batch": first,
            "samples_per_second": samples / own if own > 0 else None,
            "batches": sum(o.batches for o in lane.openings) + sum(
                w.batches for w in lane.windows), "samples": samples}


def _predicted(lane: interleave.Lane, size: int, origin: float) -> dict:
    got = lane_epoch.predict(lane, size)
    timed = sum(o.startup + o.warmup for o in lane.openings) + sum(w.seconds for w in lane.windows)
    return {**got, "timed": timed,
            "timed_samples": sum(o.samples for o in lane.openings) + sum(
                w.samples for w in lane.windows),
            "warmup_batches": lane.ahead,
            "window_rates": [w.rate for w in lane.windows],
            # when each window began, seconds from the group job's start: the windows of a
            # group's records in time order are the random interleaving the round ran
            "window_started": [round(w.started - origin, 6) for w in lane.windows],
            "window_others_cpu": [w.others_cpu for w in lane.windows],
            "window_data_wait": [w.data_wait for w in lane.windows],
            "window_after_skip": [w.after_skip for w in lane.windows],
            "window_workers_ahead": [w.workers_ahead for w in lane.windows],
            "skipped_samples": lane.skipped}


def run_group(lead: Cell, cells: list[Cell], dataset_root: str | None, seed: int,
              workload_function: str | None, timing: dict,
              hook: hooks.Hooks = hooks.NONE, workload_args: dict | None = None) -> dict:
    """Time ``cells`` (one group's round; ``lead`` names the job) interleaved; the group
    record. ``dataset_root``, ``workload_function``, ``workload_args``: as
    :func:`speedlimit.run.train.run_cell` takes them."""
    torch.set_num_threads(lead.torch_threads)
    device = train.resolve_device(lead.device)
    setup_start = time.perf_counter()
    workload = train.build_workload(lead, dataset_root, seed, workload_function, workload_args)
    train_set = train.with_test_delay(workload.dataset, hook.sample_delay)
    size = len(train_set)
    round_ = lead.repeat
    # what loading one sample costs, as a run of its own measures it: in the race's first round
    loading = costs.measure(workload, train_set, seed) if round_ == 0 else None
    setup = time.perf_counter() - setup_start
    reference_before = noise.reference()
    load = noise.MachineLoad().start()
    started_at, clock_started = train.now(), time.time()
    result = interleave.run(cells, train_set, workload, seed, device, timing["windows"],
                            timing["window_seconds"], random.Random(round_seed(seed, round_)),
                            cap=True)
    machine_load = load.stop()
    finished_at, clock_stopped = train.now(), time.time()
    reference = noise.verdict(reference_before, noise.reference(), machine_load,
                              result.seconds)
    environment = fingerprint.machine()
    environment.update(fingerprint.torch_facts(device))
    timeline = {"setup_started": time.time() - (time.perf_counter() - setup_start),
                "clock_started": clock_started, "clock_stopped": clock_stopped}
    common = {"reference": reference, "machine_load": machine_load, "setup": setup,
              "started_at": started_at, "finished_at": finished_at, "warnings": [],
              "run_duration": result.seconds}
    runs = []
    for lane in result.lanes:
        predicted = _predicted(lane, size, result.started)
        log.info("%s: predicted epoch %.3f s (%d windows, %.1f us per sample)",
                 lane.cell.path, predicted["epoch_duration"], predicted["windows"],
                 1e6 * (predicted["rate"] or 0))
        env = {**environment, "pin_memory_active": bool(lane.cell.pin_memory)
               and torch.accelerator.is_available()}
        extra = {"costs": loading} if loading is not None else {}
        runs.append(record.ok(
            lane.cell.path, {**lane.cell.params(), "epochs": 1, "seed": seed,
                             "dataset_size": size},
            timing={"mode": record.INTERLEAVED, "windows": timing["windows"],
                    "window_seconds": timing["window_seconds"], "lead": lead.path},
            epochs=[_epoch(lane)], shutdown=predicted["shutdown"],
            startup=predicted["startup"], predicted=predicted, environment=env,
            timeline=dict(timeline), **common, **extra))
    log.info("round %d of %s: %d settings, %.1f s (%.1f s waiting for other settings' "
             "workers)", round_, lead.path, len(cells), result.seconds, result.settle_seconds)
    group = record.ok(lead.path, {**lead.params(), "epochs": 1, "seed": seed,
                                  "dataset_size": size},
                      timing={"mode": record.INTERLEAVED, "windows": timing["windows"],
                              "window_seconds": timing["window_seconds"],
                              "cells": [c.path for c in cells],
                              "settle_seconds": result.settle_seconds},
                      epochs=[], environment=environment, timeline=dict(timeline), **common)
    group["runs"] = runs
    return group
