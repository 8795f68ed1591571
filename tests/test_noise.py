"""The machine's noise (speedlimit.run.noise): the shift flag's false-flag rate on a machine
whose speed does not change and its power when it does (simulated through the flag's own
code), and a busy process outside the pipeline seen for real, compared with the CPU time that
process itself used; the cell's own DataLoader workers are the cell's, not "other"."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from speedlimit.grid import Cell
from speedlimit.run import noise, train

TRIALS = 2000


def tolerance(rate: float) -> float:
    return 3 * math.sqrt(rate * (1 - rate) / TRIALS)


def flags(rng, after_factor: float, jitter: float, share=None):
    out = []
    for _ in range(TRIALS):
        level = rng.lognormal(0.0, 0.3)  # the kernel's speed differs from run to run...
        before = list(level * rng.lognormal(0.0, jitter, noise.REPS))
        after = list(level * after_factor * rng.lognormal(0.0, jitter, noise.REPS))
        load = None if share is None else {"other_cpu_seconds": share}
        out.append(noise.verdict(before, after, load, 1.0)["disturbed"])
    return np.mean(out)


@pytest.mark.parametrize("jitter", [0.01, 0.05, 0.20])
def test_an_unchanging_machine_is_rarely_flagged_whatever_the_kernels_own_jitter(jitter):
    """... because the reference's own repetitions calibrate the test (exact, at 1%)."""
    rate = flags(np.random.default_rng(1), 1.0, jitter)
    assert rate <= noise.SHIFT_ALPHA + tolerance(noise.SHIFT_ALPHA), rate


def test_a_machine_that_slows_by_a_third_under_the_cell_is_flagged():
    assert flags(np.random.default_rng(2), 1.33, 0.05) >= 0.95


def test_a_change_within_ten_percent_is_never_flagged_however_clear():
    assert flags(np.random.default_rng(3), 1.08, 0.005) == 0.0


def test_a_busy_machine_is_flagged_by_the_cpu_the_rest_of_it_used():
    rng = np.random.default_rng(4)
    assert flags(rng, 1.0, 0.05, share=0.5) == 1.0
    assert flags(rng, 1.0, 0.05, share=0.05) <= noise.SHIFT_ALPHA + tolerance(0.01)


def test_the_shift_test_is_scipys_exact_mann_whitney():
    """Counted in pure Python (no scipy import in the cell's process), checked against scipy."""
    import scipy.stats

    rng = np.random.default_rng(5)
    for n1, n2 in [(9, 9), (3, 5), (9, 4)]:
        for shift in (0.0, 0.3, 1.0):
            a, b = rng.normal(0, 1, n1), rng.normal(shift, 1, n2)
            expected = scipy.stats.mannwhitneyu(a, b, method="exact").pvalue
            assert noise.shift_p(list(a), list(b)) == pytest.approx(expected)


def cell(**kw) -> Cell:
    base = dict(loader="dataloader", batch_size=100, lr=0.01, torch_threads=1, device="cpu",
                num_workers=0, pin_memory=False, persistent_workers=False, prefetch_factor=None,
                workload="fashionmnist")
    return Cell(**{**base, **kw})


def _cpu_seconds(pid: int | str) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _everyone_elses_cpu(skip: set[int]) -> dict[int, float]:
    """CPU seconds so far of every process but those in ``skip`` (a snapshot of /proc)."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) not in skip:
            try:
                out[int(name)] = _cpu_seconds(name)
            except (OSError, IndexError, ValueError):  # gone meanwhile
                pass
    return out


def _used_between(samples, start: float, stop: float) -> float:
    """CPU seconds the processes of ``samples`` ((time, {pid: cpu}) snapshots) used between
    ``start`` and ``stop``: per process, its last snapshot in the span less its last before
    it (0 for one born in the span)."""
    before = [s for t, s in samples if t <= start]
    within = [s for t, s in samples if start < t <= stop]
    if not within:
        return 0.0
    first = before[-1] if before else {}
    last: dict[int, float] = {}
    for snapshot in within:
        last.update(snapshot)
    return sum(cpu - first.get(pid, 0.0) for pid, cpu in last.items())


def test_a_busy_process_outside_the_pipeline_is_seen_as_what_it_used(synthetic_root):
    """A CPU-bound process on the cell's CPUs through the cell's clock: the record's other
    processes' CPU time holds at least the CPU time that process itself used during the clock
    (read from its /proc/<pid>/stat, sampled every 20 ms), and no more than it plus what every
    other process on the machine used meanwhile (each read from its own /proc/<pid>/stat, so a
    program someone else runs on the machine does not fail the test), and the cell is flagged
    busy."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    samples, others, stop = [], [], threading.Event()

    def sample():
        while not stop.is_set():
            now = time.time()
            samples.append((now, _cpu_seconds(hog.pid)))
            others.append((now, _everyone_elses_cpu({os.getpid(), hog.pid})))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        record = train.run_cell(cell(), synthetic_root, epochs=3, seed=0)
    finally:
        stop.set()
        sampler.join()
        hog.kill()
        hog.wait()
    times, cpu = np.array(samples).T
    line = record["timeline"]
    used = (np.interp(line["clock_stopped"], times, cpu)
            - np.interp(line["clock_started"], times, cpu))
    third = _used_between(others, line["clock_started"], line["clock_stopped"])
    other = record["machine_load"]["other_cpu_seconds"]
    clock = line["clock_stopped"] - line["clock_started"]
    assert used > 0.2 * clock  # the hog did run during the clock
    # /proc counts in ticks of 10 ms, per CPU; snapshots are 20 ms apart.
    slack = 0.15 * clock + 0.1
    assert used - slack <= other <= used + third + slack, (other, used, third, clock)
    assert record["reference"]["busy"] and record["reference"]["disturbed"]


def test_the_cells_own_workers_count_as_the_cell_not_as_other(synthetic_root):
    """Augmented samples cost about a millisecond each, loaded by 2 (forked) workers: their
    CPU time is the cell's own, so the cell's CPU seconds hold the loading as well as the
    compute."""
    record = train.run_cell(cell(num_workers=2, workload="fashionmnist-augment"),
                            synthetic_root, epochs=1, seed=0)
    epoch = record["epochs"][0]
    loading = record["costs"]["load_per_sample"] * epoch["samples"]
    assert loading > 0.3  # enough to tell
    assert record["machine_load"]["cell_cpu_seconds"] >= epoch["compute"] + 0.5 * loading
