"""The machine's own noise, measured around every cell's clock, and the flag ``disturbed``.

* :class:`MachineLoad`: CPU time the rest of the machine used while the clock ran: every
  CPU's busy time from ``/proc/stat`` (steal time included: a hypervisor's other guests),
  less the CPU time of the cell's own processes (this one and its reaped DataLoader workers,
  from ``getrusage``; the workers are forked, see :mod:`speedlimit.run.train`). A cell is
  **busy** when the rest of the machine used more than :data:`BUSY` of a CPU on average: a
  process outside the pipeline competed with it.
* :func:`reference`: a fixed compute kernel (the same small matrix products every time),
  timed :data:`REPS` times just before the clock and :data:`REPS` times just after. A cell is
  **shifted** when the two sets differ by more than their own repetitions' spread allows (the
  exact two-sided Mann-Whitney test at :data:`SHIFT_ALPHA`) *and* their medians by more than
  :data:`SHIFT`: the machine's speed changed under the cell (another process, a throttled or
  a host's busy CPU that ``/proc/stat`` cannot see). On a machine whose speed does not change
  the repetitions before and after are exchangeable, so the test flags at most
  :data:`SHIFT_ALPHA` of cells whatever the kernel's own jitter: the reference calibrates
  itself, and the flag measures the machine, not its own noise (``tests/test_noise.py``
  checks both by simulation and with a busy process for real).

``disturbed`` is busy or shifted. Linux only for the load (``None`` elsewhere); imports torch
only inside :func:`reference`.
"""

from __future__ import annotations

import functools
import os
import resource
import statistics
import time

REPS = 9  # kernel timings before and after the clock
_SIZE, _ROUNDS = 128, 64  # one timing: about 3 ms on one core of a 2020s CPU
SHIFT = 0.10  # a reference change smaller than this never flags
SHIFT_ALPHA = 0.01  # the shift test's level: its false-flag rate on an unchanging machine
BUSY = 0.10  # other processes' CPU use, in CPUs on average over the clock, that flags


def reference(extra: float = 0.0) -> list[float]:
    """:data:`REPS` timings (seconds) of the fixed reference kernel. ``extra`` seconds of
    sleep join each timing: the test hook SPEEDLIMIT_FAULT=disturb."""
    import torch

    generator = torch.Generator().manual_seed(0)
    a = torch.rand(_SIZE, _SIZE, generator=generator)
    out = []
    for _ in range(REPS):
        b = a.clone()
        start = time.perf_counter()
        for _ in range(_ROUNDS):
            b = torch.tanh(a @ b)
        float(b.sum())  # force the work
        if extra:
            time.sleep(extra)
        out.append(time.perf_counter() - start)
    return out


def shift_p(before: list[float], after: list[float]) -> float:
    """Exact two-sided Mann-Whitney p-value of "the reference ran as fast after as before"
    (ties count a half). scipy's ``mannwhitneyu(method="exact")`` gives the same (the tests
    check it); it is counted here because importing scipy would cost a cell's process a
    second after its clock."""
    n1, n2 = len(before), len(after)
    u = sum((a > b) + 0.5 * (a == b) for a in before for b in after)
    counts = _u_counts(n1, n2)  # arrangements with each U, under "no difference"
    total = sum(counts)
    low = min(u, n1 * n2 - u)
    tail = sum(counts[: int(low + 1e-9) + 1])
    return min(1.0, 2 * tail / total)


@functools.lru_cache(maxsize=None)
def _u_counts(n1: int, n2: int) -> tuple[int, ...]:
    """How many of the C(n1 + n2, n1) orders of two samples give each U = 0 .. n1 n2: the
    recursion c(n1, n2, u) = c(n1 - 1, n2, u - n2) + c(n1, n2 - 1, u)."""
    if n1 == 0 or n2 == 0:
        return (1,)
    out = [0] * (n1 * n2 + 1)
    for u, c in enumerate(_u_counts(n1 - 1, n2)):
        out[u + n2] += c
    for u, c in enumerate(_u_counts(n1, n2 - 1)):
        out[u] += c
    return tuple(out)


def verdict(before: list[float], after: list[float], machine_load: dict | None,
            clock_seconds: float) -> dict:
    """The ``reference`` block of a record: the medians before and after, the shift test,
    the other processes' CPU share, and the flags."""
    median_before, median_after = statistics.median(before), statistics.median(after)
    change = median_after / median_before - 1 if median_before > 0 else 0.0
    p = shift_p(before, after)
    shifted = p <= SHIFT_ALPHA and abs(change) > SHIFT
    other = (machine_load or {}).get("other_cpu_seconds")
    share = other / clock_seconds if other is not None and clock_seconds > 0 else None
    busy = share is not None and share > BUSY
    return {"before": median_before, "after": median_after, "change": change,
            "before_times": before, "after_times": after, "shift_p": p, "shifted": shifted,
            "other_cpu_share": share, "busy": busy, "disturbed": shifted or busy}


def _proc_stat() -> tuple[float, float] | None:
    """(busy, steal) CPU seconds of all CPUs since boot, from /proc/stat's first line."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(v) for v in fields[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice
    user, nice, system, _idle, _iowait, irq, softirq, steal = (ticks + [0] * 8)[:8]
    hz = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq + steal) / hz, steal / hz


def _own_cpu() -> float:
    """CPU seconds of this process and its reaped children (the cell's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class MachineLoad:
    """CPU seconds used by the rest of the machine between :meth:`start` and :meth:`stop`."""

    def start(self) -> "MachineLoad":
        self._stat, self._own = _proc_stat(), _own_cpu()
        return self

    def stop(self) -> dict | None:
        stat, own = _proc_stat(), _own_cpu()
        if stat is None or self._stat is None:
            return None
        busy, steal = stat[0] - self._stat[0], stat[1] - self._stat[1]
        cell = own - self._own
        return {"other_cpu_seconds": round(max(0.0, busy - cell), 3),
                "steal_seconds": round(steal, 3),
                "cell_cpu_seconds": round(cell, 3)}
