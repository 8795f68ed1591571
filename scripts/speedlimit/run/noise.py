"""The machine's own noise, measured around every cell's clock.

* :func:`reference`: a fixed compute kernel (the same matrix products every time, at the
  cell's thread setting), timed just before the clock starts and just after it stops. On a
  quiet machine the two take the same time; a cell whose two differ by more than
  :data:`DISTURBED` was run on a machine that changed under it (another process, a throttled
  or stolen CPU) and is flagged ``disturbed``.
* :class:`MachineLoad`: CPU time the rest of the machine used while the clock ran: every
  CPU's busy time from ``/proc/stat`` (steal time included: a hypervisor's other guests),
  less the CPU time of the cell's own processes (this one and its reaped DataLoader workers,
  from ``getrusage``), so contamination from outside the pipeline is visible.

Linux only for the load (``None`` elsewhere); imports torch only inside :func:`reference`.
"""

from __future__ import annotations

import os
import resource
import time

DISTURBED = 0.25  # |after / before - 1| above this: the cell's machine changed under it
_SIZE, _ROUNDS = 192, 40  # ~20-60 ms on one core of a 2020s CPU


def reference(extra: float = 0.0) -> float:
    """Seconds of the fixed reference kernel (matrix products of a seeded 192x192 matrix).
    ``extra`` seconds of sleep join the timed work: the test hook SPEEDLIMIT_FAULT=disturb."""
    import torch

    generator = torch.Generator().manual_seed(0)
    a = torch.rand(_SIZE, _SIZE, generator=generator)
    b = a.clone()
    start = time.perf_counter()
    for _ in range(_ROUNDS):
        b = torch.tanh(a @ b)
    float(b.sum())  # force the work
    if extra:
        time.sleep(extra)
    return time.perf_counter() - start


def disturbed(before: float, after: float, threshold: float = DISTURBED) -> bool:
    return before > 0 and abs(after / before - 1) > threshold


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
