"""One epoch's accounting on the clock (:class:`Epoch`): each step's wait for data and its
compute, the loss and accuracy, and where a probe's windows end; and the test hook that hangs a
cell after its first step (:class:`HangingEpoch`). Used by the training loop
(:mod:`speedlimit.run.train`) and by a group's lanes (:mod:`speedlimit.run.interleave`)."""

from __future__ import annotations

import logging
import math
import time

import torch

from speedlimit.run import batches, hooks

log = logging.getLogger(__name__)


def finite(value: float) -> float | None:
    """``value``, or None (JSON null) when training diverged to inf or NaN."""
    if math.isfinite(value):
        return value
    log.warning("the loss is %s: training diverged (lr too high?); recorded as null", value)
    return None


class Epoch:
    """Accumulates one epoch's loss, accuracy and the data/compute split. ``train_step``:
    the workload's (:meth:`speedlimit.run.workloads.build.Workload.train_step`)."""

    def __init__(self, device: torch.device, train_step, probing: bool = False):
        self.device = device
        self.train_step = train_step
        self.marks: list[float] | None = [] if probing else None  # each step's end (probes)
        self.sizes: list[int] | None = [] if probing else None
        self.total_loss = 0.0
        self.correct: int | None = 0  # None: the workload's step reports no accuracy
        self.samples = 0
        self.batches = 0
        self.data_wait = 0.0
        self.compute = 0.0
        self.first_batch = None
        self.start = time.perf_counter()
        self.mark = self.start

    def step(self, network, optimizer, batch, non_blocking: bool) -> int:
        """Train on ``batch`` and account for it; its size (samples)."""
        batch = batches.to_device(batch, self.device, non_blocking)
        if non_blocking:  # the copy has only been queued: wait for it, on the data's clock
            torch.cuda.synchronize(self.device)
        got = time.perf_counter()
        self.data_wait += got - self.mark
        if self.first_batch is None:
            self.first_batch = got - self.start
        loss, correct = self.train_step(network, batch, optimizer)
        n = batches.size(batch)
        self.total_loss += loss * n
        self.correct = None if correct is None or self.correct is None \
            else self.correct + correct
        self.samples += n
        self.batches += 1
        self.mark = time.perf_counter()
        self.compute += self.mark - got
        if self.marks is not None:
            self.marks.append(self.mark)
            self.sizes.append(n)
        return n

    def finish(self, epoch: int, dataset_size: int) -> dict:
        """The epoch's record; a probe's (stopped early) covers the samples it timed."""
        end = time.perf_counter()
        self.data_wait += end - self.mark
        duration = end - self.start
        seen = self.samples if self.marks is not None else dataset_size
        return {
            "epoch": epoch,
            "loss": finite(self.total_loss / seen),
            "accuracy": None if self.correct is None else self.correct / seen,
            "epoch_duration": duration,
            "data_wait": self.data_wait,
            "compute": self.compute,
            "first_batch": self.first_batch,
            "samples_per_second": self.samples / duration if duration > 0 else None,
            "batches": self.batches,
            "samples": self.samples,
            "compute_per_sample": self.compute / self.samples if self.samples else None,
        }


class HangingEpoch(Epoch):
    """The test hook ``SPEEDLIMIT_FAULT=hang``: after its first step, the cell hangs in C
    code for good (:func:`speedlimit.run.hooks.hang`)."""

    def step(self, *args, **kwargs) -> int:
        n = super().step(*args, **kwargs)
        hooks.hang()
        return n
