"""Where DataLoader workers should stop helping, predicted from the measured costs.

Per sample, ``load`` seconds to produce it (the workload's ``__getitem__`` in the main
process, measured before the clock) and ``compute`` seconds to train on it (forward, loss,
backward, step: the ``num_workers=0`` cells' compute on the clock, where no worker competes
for the CPU). With no worker the main process does both, one after the other: ``load +
compute`` per sample. With ``W`` workers the main process only computes, and an epoch can be
no shorter than any of

* ``compute``: the training step, in the main process;
* ``load / W``: the loading, shared by the ``W`` workers;
* ``(load + threads * compute) / cpus``: all the CPU work, shared by the CPUs the cell may use
  (``threads``: torch's intra-op threads of the main process).

The prediction is the largest of them (a roofline). What it leaves out: collating batches,
handing them from the workers to the main process, starting the workers, and processes that
slow each other down beyond sharing CPU time (caches, memory bandwidth). Where the measured
speed-ups fall short, that is where the time went.

This module imports nothing of the project but :mod:`speedlimit.results.stats`.
"""

from __future__ import annotations

import math



def per_sample(load: float, compute: float, workers: int, cpus: int, threads: int = 1) -> float:
    """Predicted seconds per sample of an epoch with ``workers`` DataLoader workers."""
    if workers == 0:
        return load + compute
    return max(compute, load / workers, (load + threads * compute) / max(1, cpus))


def speedup(load: float, compute: float, workers: int, cpus: int, threads: int = 1) -> float:
    """Predicted speed-up of ``workers`` workers over ``num_workers=0``."""
    return (per_sample(load, compute, 0, cpus, threads)
            / per_sample(load, compute, workers, cpus, threads))


def stops_helping(load: float, compute: float, workers, cpus: int, threads: int,
                  threshold: float) -> int:
    """The smallest of ``workers`` (the grid's values) predicted within ``threshold`` of the
    fastest of them: more workers than this are predicted to gain nothing that matters."""
    times = {w: per_sample(load, compute, w, cpus, threads) for w in workers}
    best = min(times.values())
    return min(w for w, t in times.items() if t <= best * (1 + threshold))


def enough_workers(load: float, compute: float, cpus: int, threads: int,
                   threshold: float) -> int:
    """The fewest workers predicted within ``threshold`` of the best any number of workers
    can do, whatever the grid (the same criterion as :func:`stops_helping`; 0 when no number
    of workers is predicted to gain more than the threshold)."""
    floor = max(compute, (load + threads * compute) / max(1, cpus))  # no W does better
    if per_sample(load, compute, 0, cpus, threads) <= floor * (1 + threshold):
        return 0
    return max(1, math.ceil(load / (floor * (1 + threshold)) - 1e-9))
