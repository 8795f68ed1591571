"""Train one cell for the configured epochs and time where every second goes.

Two kinds of cell share one training step, on the cell's workload (its data set, model and
training step, :mod:`speedlimit.run.workloads`; the seed's is FashionMNIST with
``ToTensor()``, Adam and cross-entropy):

* ``dataloader``: the workload's data set through a real ``torch.utils.data.DataLoader`` with
  the cell's settings (and the workload's ``collate_fn``, if it has one);
* ``tensor``: the loader-free limit. Every sample of the workload is loaded once (before the
  clock starts) into one batch of the whole set, shuffled per epoch by a permutation and
  sliced per batch (every tensor of it: :mod:`speedlimit.run.batches`).

Both shuffle with the same per-epoch permutation (``RandomSampler`` over a generator reseeded
each epoch, which is what ``shuffle=True`` builds, given its own generator so that the draws
the DataLoader makes for worker seeds never shift it) and seed the model the same way, so on
the CPU the loss of a cell does not depend on how its batches were loaded.

Timing of an epoch (``time.perf_counter``): ``data_wait`` is every second the main process
spends between finishing one step and holding the next batch on the device (creating the
iterator, worker start-up, ``next()``, the copy to the device, the final ``StopIteration``);
``compute`` is the workload's training step (forward, loss, backward, optimizer step) and
the bookkeeping of loss and accuracy (``.item()`` synchronizes a GPU, so its kernels are inside). The two partition the
epoch, so ``data_wait + compute == epoch_duration`` up to float rounding; that a second of
waiting for data lands in ``data_wait`` is tested with a data set of known per-sample delay
(the test hook ``SPEEDLIMIT_SAMPLE_DELAY``). On a GPU, a ``non_blocking`` copy (pinned
memory) returns before the data has arrived: the step synchronizes the device right after
the copy, so the copy's time is in ``data_wait``, not in the next ``compute``.

``run_duration`` runs from before the DataLoader exists to after its workers are shut down:
a cell with ``persistent_workers`` pays for ending its workers like every other cell (whose
workers end with the last epoch's ``StopIteration``). Around the clock, the fixed reference
kernel (:mod:`speedlimit.run.noise`) is timed before and after, and the CPU time the rest of
the machine used while the clock ran is recorded.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler

from speedlimit import axes, record
from speedlimit.grid import Cell
from speedlimit.run import batches, costs, fingerprint, hooks, noise, preflight, probe
from speedlimit.run import workloads
from speedlimit.run.epoch import Epoch, HangingEpoch
from speedlimit.run.workloads import build

log = logging.getLogger("speedlimit.run.train")


class CellSkipped(Exception):
    """The cell cannot run here (for example cuda asked for, none present)."""


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="milliseconds")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise CellSkipped("device cuda asked for, but torch.cuda.is_available() is False here")
    return torch.device(name)


class _Delayed(torch.utils.data.Dataset):
    """A data set whose every sample takes ``delay`` seconds longer (test hook only)."""

    def __init__(self, dataset, delay: float):
        self.dataset, self.delay = dataset, delay

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        time.sleep(self.delay)
        return self.dataset[index]


def with_test_delay(dataset, delay: float):
    """``dataset``, or under the test hook ``SPEEDLIMIT_SAMPLE_DELAY`` a slower copy of it."""
    return _Delayed(dataset, delay) if delay > 0 else dataset


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 1_000_003 + epoch


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed Python's and numpy's RNGs from the worker's torch seed."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def failing_worker(worker_id: int) -> None:
    """``worker_init_fn`` under the test hook ``SPEEDLIMIT_FAULT=worker``: the worker raises."""
    seed_worker(worker_id)
    raise RuntimeError(f"{hooks.FAULT_ENV}=worker: injected failure in DataLoader worker "
                       f"{worker_id} (a test hook)")


def make_loader(train_set, cell: Cell, seed: int, shuffle_gen: torch.Generator,
                fault: str | None = None, sampler=None, collate_fn=None) -> DataLoader:
    """The cell's DataLoader (``fault``: the test hook's, chosen before the clock). The
    keywords its axes set come from their declaration (:func:`speedlimit.axes.loader_kwargs`:
    prefetch_factor only where the grid sets one, which it never does with 0 workers); the
    rest is how every cell loads: a seeded sampler and generator, and seeded workers.
    ``sampler``: a wrapper of that sampler; ``collate_fn``: torch's default unless given (an
    interleaved run counts the batches both: :mod:`speedlimit.run.interleave`)."""
    extra = {} if collate_fn is None else {"collate_fn": collate_fn}
    init = seed_worker
    if cell.num_workers and fault == "worker":
        init = failing_worker
    # Workers are forked (Linux's default before Python 3.14), so that they are this
    # process's children: its CPU accounting (speedlimit.run.noise) counts them as the cell's.
    return DataLoader(
        train_set,
        multiprocessing_context="fork" if cell.num_workers else None,
        # (RandomSampler over its own generator is what shuffle=True builds)
        sampler=RandomSampler(train_set, generator=shuffle_gen) if sampler is None else sampler,
        worker_init_fn=init,
        generator=torch.Generator().manual_seed(seed),
        **axes.loader_kwargs(cell.params()),
        **extra,
    )


def _shut_down(loader: DataLoader | None) -> None:
    """End the loader's worker processes now (persistent ones outlive the epoch loop)."""
    iterator = getattr(loader, "_iterator", None)
    if iterator is not None and hasattr(iterator, "_shutdown_workers"):
        iterator._shutdown_workers()
        loader._iterator = None


@dataclass
class _Prepared:
    """A cell made ready before its clock: its workload, data and what it will time."""

    device: torch.device
    workload: build.Workload
    train_set: torch.utils.data.Dataset
    size: int
    warnings: list[str]
    loading: dict | None
    limit_data: dict | None  # tensor cells: epoch -> the whole set as one batch, on the device
    plan: probe.Plan | None  # a race's run: the batches it times (None: whole epochs)
    hooks: hooks.Hooks
    setup_started: float
    setup: float = 0.0


def build_workload(cell: Cell, dataset_root: str | None, seed: int, function: str | None,
                   args: dict | None) -> build.Workload:
    """The cell's workload (``function``: the built-in one of its name when None)."""
    return build.build(cell.workload, function or workloads.resolve(cell.workload).function,
                       dataset_root, seed, args=args)


def _prepare(cell: Cell, dataset_root: str | None, epochs: int, seed: int,
             function: str | None, args: dict | None, timing: dict, measure_costs: bool,
             hook: hooks.Hooks) -> _Prepared:
    """Everything before the clock: threads, device, workload, checks, the loading cost, the
    plan of a race's run, and a tensor cell's samples on the device."""
    torch.set_num_threads(cell.torch_threads)
    device = resolve_device(cell.device)
    setup_start = time.perf_counter()
    workload = build_workload(cell, dataset_root, seed, function, args)
    train_set = with_test_delay(workload.dataset, hook.sample_delay)
    n = len(train_set)
    warnings = preflight.check(cell, batches.sample_bytes(workload.dataset[0]), epochs=epochs)
    for warning in warnings:
        log.warning("%s", warning)
    loading = None
    if measure_costs:
        loading = costs.measure(workload, train_set, seed)
        log.info("loading one sample in the main process: %.1f us (%d items)",
                 loading["load_per_sample"] * 1e6, loading["load_items"])
    plan = None
    if timing.get("mode") == probe.WINDOWS:
        plan = probe.plan(cell.loader, cell.batch_size, n, cell.num_workers,
                          cell.prefetch_factor, timing["windows"], timing["window_samples"])
    limit_data = _limit_data(cell, workload, epochs, seed, device, plan) \
        if cell.loader == "tensor" else None
    return _Prepared(device, workload, train_set, n, warnings, loading, limit_data, plan,
                     hook, setup_start, time.perf_counter() - setup_start)


def _limit_data(cell: Cell, workload, epochs: int, seed: int, device, plan) -> dict:
    """A tensor cell's samples, per epoch, on the device (before the clock). A race's run
    times only its first batches: only their items are loaded."""
    if plan is not None and not plan.whole_epoch:
        size = len(workload.dataset)
        order = torch.randperm(size, generator=torch.Generator().manual_seed(
            epoch_seed(seed, 1)))  # the permutation epoch 1 draws on the clock
        items = order[:plan.total * cell.batch_size]
        return {1: batches.to_device(workload.tensors(1, items), device)}
    if workload.per_epoch:
        return {e: batches.to_device(workload.tensors(e), device)
                for e in range(1, epochs + 1)}
    return dict.fromkeys(range(1, epochs + 1), batches.to_device(workload.tensors(1), device))


@dataclass
class _Clocked:
    """What the clock measured."""

    epochs: list[dict]
    run_duration: float
    shutdown: float
    startup: float
    predicted: dict | None
    reference: dict
    machine_load: dict | None
    started_at: str
    finished_at: str
    clock_started: float
    clock_stopped: float


def _clocked(cell: Cell, ready: _Prepared, epochs: int, seed: int) -> _Clocked:
    """The timed part: the loader and every epoch (a race's run: its planned batches), with
    the machine's noise measured just before and after."""
    fault = ready.hooks.fault_for(cell.path)  # the test hooks, chosen before the clock
    epoch_class = HangingEpoch if fault == "hang" else Epoch
    device, workload, n, the_plan = ready.device, ready.workload, ready.size, ready.plan
    # A race's run stops after its planned batches; one whose plan covers the epoch runs it.
    limit = the_plan.total if the_plan is not None and not the_plan.whole_epoch else None
    torch.manual_seed(seed)
    network = workload.model().to(device)
    optimizer = workload.make_optimizer(network, cell.lr)
    shuffle_gen = torch.Generator()
    reference_before = noise.reference()
    load = noise.MachineLoad()

    started_at = now()
    clock_started = time.time()
    load.start()
    run_start = time.perf_counter()
    loader = (make_loader(ready.train_set, cell, seed, shuffle_gen, fault,
                          collate_fn=workload.collate_fn)
              if cell.loader == "dataloader" else None)
    non_blocking = bool(cell.pin_memory) and device.type == "cuda"
    records = []
    iterator = None
    for epoch in range(1, epochs + 1):
        shuffle_gen.manual_seed(epoch_seed(seed, epoch))
        workload.set_epoch(epoch)
        acc = epoch_class(device, workload.train_step, probing=limit is not None)
        if epoch == 1:
            loader_setup = acc.start - run_start
        if loader is not None:
            iterator = iter(loader)
            for batch in iterator:
                acc.step(network, optimizer, batch, non_blocking)
                if acc.batches == limit:
                    break
        else:
            whole = ready.limit_data[epoch]
            perm = torch.randperm(n, generator=shuffle_gen).to(device)
            for i in range(0, n, cell.batch_size):
                acc.step(network, optimizer, batches.rows(whole, perm[i : i + cell.batch_size]),
                         False)
                if acc.batches == limit:
                    break
        records.append(acc.finish(epoch, n))
        log.info("epoch %d: %s", epoch, records[-1])
    shutdown_start = time.perf_counter()
    stopped_early = limit is not None and acc.batches < the_plan.batches
    if stopped_early and iterator is not None and hasattr(iterator, "_shutdown_workers"):
        iterator._shutdown_workers()  # what the epoch's last StopIteration would have done
    _shut_down(loader)  # persistent workers end on the clock too
    shutdown = time.perf_counter() - shutdown_start
    run_duration = time.perf_counter() - run_start
    machine_load = load.stop()
    finished_at = now()
    clock_stopped = time.time()
    predicted = None
    if limit is not None:
        predicted = probe.predict(the_plan, acc.start, acc.marks, acc.sizes, n,
                                  shutdown if stopped_early else 0.0,
                                  not cell.persistent_workers)
        log.info("predicted epoch: %.3f s (timed %.3f s of %d samples, then %.1f us per "
                 "sample)", predicted["epoch_duration"], predicted["timed"],
                 predicted["timed_samples"], 1e6 * (predicted["rate"] or 0))
    # (test hook: SPEEDLIMIT_FAULT=disturb makes the machine seem to change under the cell)
    reference_after = noise.reference(
        extra=max(reference_before) if fault == "disturb" else 0.0)
    reference = noise.verdict(reference_before, reference_after, machine_load, run_duration)
    if reference["disturbed"]:
        log.warning("flagged disturbed: the reference kernel took %.1f ms before the clock and "
                    "%.1f ms after (exact test p = %.2g), and the rest of the machine used %s "
                    "of a CPU meanwhile", 1e3 * reference["before"], 1e3 * reference["after"],
                    reference["shift_p"], "?" if reference["other_cpu_share"] is None
                    else f"{100 * reference['other_cpu_share']:.0f}%")
    # Time to the first batch, counted from before the loader exists: worker start-up.
    startup = loader_setup + (records[0]["first_batch"] or 0.0)
    return _Clocked(records, run_duration, shutdown, startup, predicted, reference,
                    machine_load, started_at, finished_at, clock_started, clock_stopped)


def run_cell(cell: Cell, dataset_root: str | None, epochs: int = 1, seed: int = 0,
             workload_function: str | None = None, timing: dict | None = None,
             measure_costs: bool = True, hooks: hooks.Hooks = hooks.NONE,
             workload_args: dict | None = None) -> dict:
    """Train ``cell`` and return its record (:mod:`speedlimit.record`): set up before the
    clock (:func:`_prepare`), the timed loop (:func:`_clocked`), and the record.

    ``dataset_root``: the pipeline's data set (None for a custom workload that brings its own
    data); ``workload_function``: the function that makes the cell's workload (the built-in
    one of its name when None), called with ``workload_args``; ``timing``: ``{"mode": "epochs"}`` (whole epochs, the default) or
    ``{"mode": "windows", "windows": W, "window_samples": S}`` (a race's run:
    :mod:`speedlimit.run.probe`); ``measure_costs``: time the loading of one sample before
    the clock (a race measures it in its first round only); ``hooks``: the test hooks, as the
    job read them (none by default)."""
    timing = timing or {"mode": probe.EPOCHS}
    problem = cell.problem()
    if problem:
        raise CellSkipped(problem)
    if timing.get("mode") == probe.WINDOWS and epochs != 1:
        raise ValueError("a race's run (timing: windows) predicts one epoch: train.epochs "
                         "must be 1")
    ready = _prepare(cell, dataset_root, epochs, seed, workload_function, workload_args,
                     timing, measure_costs, hooks)
    clocked = _clocked(cell, ready, epochs, seed)
    environment = fingerprint.machine()
    environment.update(fingerprint.torch_facts(ready.device))
    environment["pin_memory_active"] = bool(cell.pin_memory) and torch.accelerator.is_available()
    done = record.ok(
        cell.path, {**cell.params(), "epochs": epochs, "seed": seed, "dataset_size": ready.size},
        timing=timing,
        epochs=clocked.epochs, run_duration=clocked.run_duration, shutdown=clocked.shutdown,
        startup=clocked.startup, reference=clocked.reference,
        machine_load=clocked.machine_load, setup=ready.setup, started_at=clocked.started_at,
        finished_at=clocked.finished_at, environment=environment, warnings=ready.warnings,
        timeline={"setup_started": time.time() - (time.perf_counter() - ready.setup_started),
                  "clock_started": clocked.clock_started,
                  "clock_stopped": clocked.clock_stopped})
    if ready.loading is not None:
        done["costs"] = ready.loading
    if clocked.predicted is not None:
        done["predicted"] = clocked.predicted
    return done
