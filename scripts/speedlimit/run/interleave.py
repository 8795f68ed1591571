"""Timing a group's settings interleaved in one process, in short windows in a random order.

On a machine whose speed drifts by tens of percent over a minute, two runs of a setting
minutes apart differ by more than two settings do; two windows a fraction of a second apart
share most of that drift (``benchmarks/noise.py`` measures how much, on the machine at hand).
So a group's settings (cells that differ only in their DataLoader settings) are timed side by
side in one process, as Google Benchmark's random interleaving and Abedi and Brecht's
randomized multiple interleaved trials do: every setting has its own DataLoader, iterator,
model and optimizer (a *lane*), all alive together; each *round* takes one *window* of
every running lane, in a random order, and a window is a stretch of that setting's own epoch
(real training steps on its own batches).

What a window times, and what it never times:

* **the setting alone.** Before a window, every other lane's workers finish what they were
  asked for (their prefetched batches): a lane counts the samples its sampler handed out and
  the samples its collate function made (in the workers), and is *idle* when the two agree.
  No window starts while another lane is busy; each window records the CPU time the other
  lanes' workers used during it (``others_cpu``, from ``/proc``: independent of the counts),
  which the tests check is nil.
* **no prefetched batches where they matter.** After a switch, a lane's first
  ``num_workers * prefetch_factor`` batches were loaded while other lanes ran: they are
  consumed (trained on) untimed. Once :data:`EVIDENCE` such windows of the lane show that its
  workers stay ahead of it (at every fetch the next batch surely made, by the counts above:
  :meth:`Lane.workers_ahead`), its queue is full in the steady state too, and the batches
  they loaded meanwhile are what the steady state has: its later windows start at the switch
  (what saves a lane with many workers and large batches most of its untimed training).
* **no epoch boundary.** A lane stops at its epoch's last batch; its workers' shutdown is
  timed on its own, and its next epoch opens with a timed start-up.

Start-up (from before the iterator exists to its first batch), warm-up (the next
``num_workers * prefetch_factor`` batches, which its workers loaded during start-up) and
shutdown are each timed alone, and the predicted epoch counts each of them
(:func:`predict`): start-up + warm-up + the rest of the epoch's samples at the window's
rate + shutdown (where the epoch's last ``StopIteration`` would shut the workers down).

Linux only for ``others_cpu`` (``None`` elsewhere). Private torch API used:
``_MultiProcessingDataLoaderIter._workers`` (the worker processes' pids) and
``_shutdown_workers`` (as :mod:`speedlimit.run.train` does); torch is pinned.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import time
from dataclasses import dataclass, field

import torch
from torch.utils.data import RandomSampler, Sampler
from torch.utils.data._utils.collate import default_collate

from speedlimit.grid import PREFETCH, Cell, interleavable
from speedlimit.run import train
from speedlimit.run.epoch import Epoch

EVIDENCE = 3  # windows after a skip that show a lane's workers stay ahead: it skips no more
IDLE_TIMEOUT = 120.0  # seconds a lane may stay busy before the run gives up (a dead worker)
_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class _CountedSampler(Sampler):
    """A sampler that counts the items it handed out (in the main process)."""

    def __init__(self, inner: Sampler):
        self.inner, self.drawn = inner, 0

    def __iter__(self):
        for index in self.inner:
            self.drawn += 1
            yield index

    def __len__(self):
        return len(self.inner)


class _CountedCollate:
    """The workload's collate function (torch's ``default_collate`` by default) that counts
    the samples it made, in a counter shared with the forked workers (the workers make
    batches; the main process reads the count). It counts the samples it is handed (the
    sampler's items, one each, whatever a sample is: a tuple, a dict, a tensor), so that a
    lane is idle exactly when the two counts agree."""

    def __init__(self, collate=None):
        self.collate = collate or default_collate
        self.made = multiprocessing.get_context("fork").Value("q", 0)

    def __call__(self, batch):
        out = self.collate(batch)
        with self.made.get_lock():
            self.made.value += len(batch)
        return out


def _cpu_seconds(pids: list[int]) -> float | None:
    """User + system CPU seconds of these processes so far (``/proc/<pid>/stat``)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / _HZ


@dataclass
class Window:
    """One timed stretch of a lane: ``samples`` in ``seconds``."""

    round: int
    seconds: float
    samples: int
    batches: int
    started: float  # perf_counter at its start (the run's own clock)
    others_cpu: float | None  # CPU seconds the other lanes' workers used meanwhile
    data_wait: float = 0.0  # seconds of it the main process waited for the next batch
    after_skip: bool = True  # the batches loaded ahead were consumed before it
    workers_ahead: bool = False  # at each fetch num_workers batches (or the epoch's rest) made

    @property
    def rate(self) -> float:
        """Seconds per sample."""
        return self.seconds / self.samples

    def as_dict(self) -> dict:
        return {"round": self.round, "seconds": self.seconds, "samples": self.samples,
                "batches": self.batches, "started": self.started,
                "others_cpu": self.others_cpu, "data_wait": self.data_wait,
                "after_skip": self.after_skip, "workers_ahead": self.workers_ahead}


@dataclass
class Opening:
    """An epoch's start, timed alone: start-up to the first batch, then the warm-up."""

    startup: float
    warmup: float
    samples: int  # the first batch's and the warm-up's
    batches: int


class Lane:
    """One setting of the group: its loader, iterator, model and optimizer, alive together
    with the other lanes'."""

    def __init__(self, cell: Cell, train_set, workload, seed: int, device: torch.device):
        self.cell, self.device, self.workload, self.seed = cell, device, workload, seed
        self.shuffle_gen = torch.Generator()
        self.sampler = _CountedSampler(RandomSampler(train_set, generator=self.shuffle_gen))
        self.collate = _CountedCollate(workload.collate_fn)
        self.loader = train.make_loader(train_set, cell, seed, self.shuffle_gen,
                                        sampler=self.sampler, collate_fn=self.collate)
        self.batches_per_epoch = len(self.loader)
        self.ahead = cell.ahead
        if not interleavable(cell, self.batches_per_epoch):
            raise ValueError(f"{cell.path}: an epoch of {self.batches_per_epoch} batches is too "
                             f"short to time in windows ({cell.ahead} batches loaded ahead)")
        torch.manual_seed(seed)
        self.network = workload.model().to(device)
        self.optimizer = workload.make_optimizer(self.network, cell.lr)
        self.non_blocking = bool(cell.pin_memory) and device.type == "cuda"
        self.iterator = None
        self.epoch = 0
        self.taken = 0  # batches of the current epoch consumed
        self.acc: Epoch | None = None
        self.openings: list[Opening] = []
        self.windows: list[Window] = []
        self.shutdowns: list[float] = []
        self.skipped = 0  # samples trained on untimed (loaded ahead while other lanes ran)
        self.taken_samples = 0  # samples taken from its iterators (its collate counts them)
        self.epochs: list[dict] = []  # each finished epoch's loss and accuracy

    # --- the lane's state ---

    def busy(self) -> bool:
        """Its workers still make batches they were asked for."""
        return self.sampler.drawn != self.collate.made.value

    def pids(self) -> list[int]:
        workers = getattr(self.iterator, "_workers", None) or []
        return [w.pid for w in workers if w.pid is not None]

    @property
    def exhausted(self) -> bool:
        return self.iterator is None or self.taken >= self.batches_per_epoch

    # --- what it does ---

    def _step(self) -> int:
        batch = next(self.iterator)
        n = self.acc.step(self.network, self.optimizer, batch, self.non_blocking)
        self.taken += 1
        self.taken_samples += n
        return n

    def open(self) -> Opening:
        """Start the next epoch, timed: start-up to the first batch, then the warm-up."""
        self.epoch += 1
        self.shuffle_gen.manual_seed(train.epoch_seed(self.seed, self.epoch))
        self.workload.set_epoch(self.epoch)
        self.taken = 0
        start = time.perf_counter()
        self.acc = Epoch(self.device, self.workload.train_step)
        self.iterator = iter(self.loader)
        samples = self._step()
        startup = self.acc.start - start + self.acc.first_batch  # to holding the first batch
        batches = 1
        while batches < 1 + self.ahead and not self.exhausted:
            samples += self._step()
            batches += 1
        opening = Opening(startup, self.acc.mark - start - startup, samples, batches)
        self.openings.append(opening)
        return opening

    def workers_ahead(self) -> bool:
        """Whether the next batch is surely made: at most ``prefetch_factor - 1`` of the
        batches asked for are not (each worker makes its ``prefetch_factor`` in order, so
        none has its first, the oldest, unmade), or all the epoch has left is made. Batches
        made out of order while the next one is not (another worker's) do not count."""
        ready = (self.collate.made.value - self.taken_samples) / self.cell.batch_size
        per_worker = self.cell.prefetch_factor or PREFETCH
        left = self.batches_per_epoch - self.taken
        return ready >= min(self.ahead - (per_worker - 1), left)

    @property
    def waits_for_data(self) -> bool:
        """Whether the batches its workers load ahead may shorten a window: until
        :data:`EVIDENCE` windows after a skip found, at each of their fetches, at least
        ``num_workers`` batches made and waiting."""
        shown = [w for w in self.windows if w.after_skip][-EVIDENCE:]
        return len(shown) < EVIDENCE or not all(w.workers_ahead for w in shown)

    def skip(self) -> bool:
        """Consume, untimed, the batches its workers loaded while other lanes ran, where they
        would shorten the next window; whether it did."""
        if not self.ahead or not self.waits_for_data:
            return False
        for _ in range(self.ahead):
            if self.exhausted:
                break
            self.acc.mark = time.perf_counter()
            self.skipped += self._step()
        return True

    def window(self, round_: int, seconds: float, others: list["Lane"],
               after_skip: bool = True) -> Window | None:
        """Time batches until ``seconds`` have passed (at least one batch), or the epoch's
        last batch; None when the epoch had no batch left."""
        if self.exhausted:
            return None
        pids = [p for lane in others for p in lane.pids()]
        cpu_before = _cpu_seconds(pids)
        waited = self.acc.data_wait
        start = time.perf_counter()
        self.acc.mark = start
        samples = batches = 0
        ahead_all = True
        while not self.exhausted:
            ahead_all = self.workers_ahead() and ahead_all
            samples += self._step()
            batches += 1
            if self.acc.mark - start >= seconds:
                break
        end = self.acc.mark
        cpu_after = _cpu_seconds(pids)
        others_cpu = (None if cpu_before is None or cpu_after is None
                      else cpu_after - cpu_before)
        win = Window(round_, end - start, samples, batches, start, others_cpu,
                     self.acc.data_wait - waited, after_skip, ahead_all)
        self.windows.append(win)
        return win

    def close(self) -> float:
        """End the epoch: its loss and accuracy, and its workers' shutdown, timed."""
        if self.acc is not None and self.acc.samples:
            self.epochs.append({"epoch": self.epoch, "samples": self.acc.samples,
                                "loss": self.acc.total_loss / self.acc.samples,
                                "accuracy": None if self.acc.correct is None
                                else self.acc.correct / self.acc.samples,
                                "data_wait": self.acc.data_wait, "compute": self.acc.compute})
        start = time.perf_counter()
        iterator = self.iterator
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
        train._shut_down(self.loader)
        self.iterator = None
        seconds = time.perf_counter() - start
        self.shutdowns.append(seconds)
        return seconds


def _settle(others: list[Lane], timeout: float = IDLE_TIMEOUT) -> float:
    """Wait until no lane in ``others`` has a batch in the making; the seconds waited."""
    start = time.perf_counter()
    while any(lane.busy() for lane in others):
        if time.perf_counter() - start > timeout:
            busy = [lane.cell.path for lane in others if lane.busy()]
            raise RuntimeError(f"DataLoader workers still busy after {timeout:.0f} s "
                               f"(a worker died?): {busy}")
        time.sleep(0.0005)
    return time.perf_counter() - start


@dataclass
class Result:
    """What an interleaved run measured, per lane (in the order of ``cells``)."""

    lanes: list[Lane]
    rounds: int
    order: list[list[int]]  # per round, the lanes in the order they ran
    settle_seconds: float  # waiting for other lanes' workers, in all
    seconds: float  # the whole run
    dataset_size: int
    started: float = 0.0  # perf_counter at the run's start: its windows' clock origin
    extra: dict = field(default_factory=dict)


def run(cells: list[Cell], train_set, workload, seed: int, device: torch.device,
        rounds: int, window_seconds: float, rng: random.Random, settle: bool = True,
        running=None, cap: bool = False) -> Result:
    """Time ``cells`` (one group) interleaved: every lane opened in a random order, each
    alone; then ``rounds`` rounds of one window per running lane in a random order (with
    ``cap``, a lane whose windows have timed ``rounds * window_seconds`` after
    :data:`MIN_WINDOWS` of them sits out the rest: a window is at least one batch, and at
    0.3 s a batch 30 windows would time three times what the round asks); then every lane's
    shutdown, alone, in a random order.

    ``running(round_) -> set of lane indices`` picks the lanes a round times (all by
    default); ``settle=False`` skips waiting for the other lanes' workers (only for tests
    that show what that wait prevents)."""
    started = time.perf_counter()
    lanes = [Lane(c, train_set, workload, seed, device) for c in cells]
    settled = 0.0

    def ready(index: int) -> bool:
        """Lane ``index`` ready for a window: the others idle, its epoch open, the batches
        loaded ahead consumed where they matter (whether they were)."""
        nonlocal settled
        others = [lane for j, lane in enumerate(lanes) if j != index]
        if settle:
            settled += _settle(others)
        lane = lanes[index]
        skipped = lane.skip()
        while lane.exhausted:  # its epoch ended (or never began): the next one, opened alone
            if lane.iterator is not None:
                lane.close()
            lane.open()
            skipped = lane.skip() or bool(lane.ahead)  # (an opening ends its warm-up)
        return skipped

    for index in rng.sample(range(len(lanes)), len(lanes)):
        ready(index)
    order = []
    timed_enough = rounds * window_seconds  # a lane's windows time this much at most ...

    def wanted(index: int) -> bool:
        """... once it has MIN_WINDOWS: a lane whose windows each run a batch longer than a
        window (large batches) stops there, not after ``rounds`` of them."""
        windows = lanes[index].windows
        return (not cap or len(windows) < MIN_WINDOWS
                or sum(w.seconds for w in windows) < timed_enough)

    for round_ in range(rounds):
        chosen = sorted(running(round_)) if running is not None else range(len(lanes))
        chosen = [i for i in chosen if wanted(i)]
        if not chosen:
            break
        this = rng.sample(list(chosen), len(chosen))
        order.append(this)
        for index in this:
            skipped = ready(index)
            lanes[index].window(round_, window_seconds,
                                [lane for j, lane in enumerate(lanes) if j != index],
                                skipped)
    for index in rng.sample(range(len(lanes)), len(lanes)):
        if settle:
            settled += _settle(lanes)
        lanes[index].close()
    return Result(lanes, rounds, order, settled, time.perf_counter() - started,
                  len(train_set), started)


MIN_WINDOWS = 10  # windows every lane gets before its timed seconds may stop it
