"""What loading one sample costs, measured before the clock.

The time to produce one sample in the main process: ``dataset[i]`` (the workload's
``__getitem__``: read, decode, augment, whatever it does), for a fixed sample of items, the
same in every cell of a workload (the first :data:`ITEMS` of a random order drawn from
``train.seed``), after :data:`WARMUP` of them untimed; the mean over the items. A very slow
data set is measured on as many items as fit in :data:`BUDGET` seconds (at least
:data:`MINIMUM`). Per-epoch data sets are measured at epoch 0, which no training epoch uses.

Not in it: collating a batch (``torch.stack``) and handing it from a worker to the main
process; the findings say so where the measured speed-ups fall short of the prediction.
The compute time per sample is measured on the clock instead (the epoch's ``compute`` over its
samples), where it costs nothing extra.
"""

from __future__ import annotations

import time

import torch

ITEMS = 256
WARMUP = 8
MINIMUM = 16
BUDGET = 2.0  # seconds


def items(size: int, seed: int, count: int = ITEMS) -> list[int]:
    """The fixed sample of item indices: a random order seeded by ``seed``, its first ones."""
    order = torch.randperm(size, generator=torch.Generator().manual_seed(seed))
    return order[:min(count, size)].tolist()


def load_per_sample(dataset, indices: list[int], budget: float = BUDGET) -> tuple[float, int]:
    """Mean seconds to produce one of ``indices`` in this process, and how many were timed."""
    for index in indices[:WARMUP]:
        dataset[index]
    timed = 0
    start = time.perf_counter()
    for index in indices:
        dataset[index]
        timed += 1
        if timed >= MINIMUM and time.perf_counter() - start > budget:
            break
    return (time.perf_counter() - start) / timed, timed


def measure(workload, dataset, seed: int) -> dict:
    """The ``costs`` block of a cell's record (``dataset``: what the cell loads, maybe the
    test hook's slower copy of ``workload.dataset``)."""
    workload.set_epoch(0)
    seconds, timed = load_per_sample(dataset, items(len(dataset), seed))
    return {"load_per_sample": seconds, "load_items": timed}
