"""The test hooks: environment variables with which the test suite provokes, for real, what a
user's machine may do. They are no settings, and nothing but this module reads them.

* ``SPEEDLIMIT_FAULT``: ``worker`` makes a cell's DataLoader workers raise; ``hang`` makes the
  cell hang in C code after its first batch (SIGALRM blocked, libc's ``pause()``); ``disturb``
  makes the machine seem to slow down under the cell (the reference kernel sleeps after the
  clock). ``kind:<text>`` aims the fault at the cells whose path contains ``<text>``.
* ``SPEEDLIMIT_SAMPLE_DELAY``: seconds every sample takes longer to load.
* ``SPEEDLIMIT_DEV_DIR``: the folder looked at instead of ``/dev`` for GPUs.

:func:`read` reads them once: in a cell's process, from its own environment (a warm server's
child takes on its job's environment first).
"""

from __future__ import annotations

import ctypes
import os
import signal
from dataclasses import dataclass
from pathlib import Path

FAULT_ENV = "SPEEDLIMIT_FAULT"
SAMPLE_DELAY_ENV = "SPEEDLIMIT_SAMPLE_DELAY"
DEV_ENV = "SPEEDLIMIT_DEV_DIR"


@dataclass(frozen=True)
class Hooks:
    fault: str | None = None
    fault_where: str = ""
    sample_delay: float = 0.0

    def fault_for(self, cell_path: str) -> str | None:
        """The fault asked for in this cell, or None."""
        return self.fault if self.fault and self.fault_where in cell_path else None


NONE = Hooks()


def read(environ=None) -> Hooks:
    environ = os.environ if environ is None else environ
    kind, _, where = (environ.get(FAULT_ENV) or "").partition(":")
    return Hooks(kind or None, where, float(environ.get(SAMPLE_DELAY_ENV) or 0))


def dev_dir(environ=None) -> Path:
    """Where device files are looked for (``/dev``, or the test hook's folder)."""
    environ = os.environ if environ is None else environ
    return Path(environ.get(DEV_ENV) or "/dev")


def hang() -> None:
    """Hang in C code for good, as a deadlocked library call would: SIGALRM blocked (so
    train.time_limit's alarm never runs) and libc's ``pause()``. Only SIGKILL ends it."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    libc = ctypes.CDLL(None)
    while True:
        libc.pause()
