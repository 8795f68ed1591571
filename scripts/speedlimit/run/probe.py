"""Timing a cell in windows of batches, and the full epoch predicted from them.

A race (``train.repeats: auto``) needs many runs of every cell, and a full epoch of 60,000
images takes seconds: so each run of a race times part of the epoch, as pyperf does (several
values per process, several processes), and predicts the whole:

* **start-up**: from before the DataLoader exists to its first batch (worker start-up), timed
  on its own;
* **warm-up**: the next ``num_workers * prefetch_factor`` batches. The workers loaded them while
  the main process waited for the first one, so they come faster than the steady state would;
  they are timed as they are, not extrapolated;
* **windows**: ``windows`` stretches of at least ``window_samples`` samples each; the steady
  rate is the median of their seconds per sample (robust to one window that met a busy
  second of the machine).

The predicted epoch is what was timed, plus the rest of the epoch's samples at the steady rate,
plus shutting the workers down (which a full epoch's last ``StopIteration`` does). When the
plan covers the whole epoch (few, large batches) the run times the whole epoch and predicts
nothing. The prediction is checked against full epochs of the same cells at the end of every
race (the findings show the check).

Torch-free: the training loop (:mod:`speedlimit.run.train`) calls :func:`plan` before the clock
and :func:`predict` after it.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from speedlimit.grid import PREFETCH

EPOCHS = "epochs"  # time whole epochs (fixed repeats: the seed's reproduction)
WINDOWS = "windows"  # time windows of batches and predict the epoch (a race's runs)


@dataclass(frozen=True)
class Plan:
    warmup: int  # batches after the first, timed, not extrapolated
    per_window: int  # batches per window
    windows: int
    batches: int  # batches of the whole epoch

    @property
    def total(self) -> int:
        """Batches the run times: the first, the warm-up and the windows (at most the epoch)."""
        return min(self.batches, 1 + self.warmup + self.per_window * self.windows)

    @property
    def whole_epoch(self) -> bool:
        return self.total >= self.batches


def plan(loader: str, batch_size: int, dataset_size: int, num_workers: int | None,
         prefetch_factor: int | None, windows: int, window_samples: int) -> Plan:
    """What a run of a cell times, from its settings and the timing's ``windows`` and
    ``window_samples``."""
    workers = (num_workers or 0) if loader == "dataloader" else 0
    warmup = workers * (prefetch_factor or PREFETCH)
    per_window = max(1, math.ceil(window_samples / batch_size))
    return Plan(warmup, per_window, windows, math.ceil(dataset_size / batch_size))


def predict(the_plan: Plan, start: float, marks: list[float], sizes: list[int],
            dataset_size: int, shutdown: float, workers_end_with_epoch: bool) -> dict:
    """The predicted epoch from the timed batches.

    ``start``: the clock's start (before the loader exists); ``marks``: the moment each timed
    batch's step finished; ``sizes``: their samples; ``shutdown``: seconds to end the workers
    after the last timed batch; ``workers_end_with_epoch``: a full epoch would end its workers
    inside the epoch (not ``persistent_workers``)."""
    timed = marks[-1] - start
    samples = sum(sizes)
    first = 1 + the_plan.warmup
    rates = []
    for k in range(the_plan.windows):
        lo, hi = first + k * the_plan.per_window, first + (k + 1) * the_plan.per_window
        if hi > len(marks):
            break
        rates.append((marks[hi - 1] - marks[lo - 1]) / sum(sizes[lo:hi]))
    rest = max(0, dataset_size - samples)
    rate = statistics.median(rates) if rates else None
    if rest and rate is None:  # (the epoch ended early: nothing to extrapolate with)
        rate = timed / samples
    predicted = timed + (rate or 0.0) * rest + (shutdown if workers_end_with_epoch else 0.0)
    return {
        "epoch_duration": predicted,
        "timed": timed,
        "timed_samples": samples,
        "startup": marks[0] - start,
        "warmup": marks[min(first, len(marks)) - 1] - marks[0],
        "warmup_batches": the_plan.warmup,
        "window_rates": rates,
        "rate": rate,
        "rest_samples": rest,
        "shutdown": shutdown,
    }

