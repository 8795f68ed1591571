"""Pre-flight checks of what a cell's DataLoader needs from the machine, and a test hook.

* Shared memory: every batch a DataLoader worker hands to the main process travels through
  ``/dev/shm``; up to ``num_workers * prefetch_factor`` batches are in flight. When that does
  not fit (a container's default 64 MB ``/dev/shm``, for example), torch fails deep inside a
  worker ("bus error", "No space left on device") or stalls. :func:`check` refuses such a cell
  up front with a message that says how much is needed and what to change.
* CPUs: more workers than CPUs this process may use is allowed (the grid may ask on purpose)
  but the timing then measures contention; :func:`check` returns a warning that the cell's
  log and its metrics record (``warnings``) carry into the table.

This module imports no torch.
"""

from __future__ import annotations

import os

from speedlimit.grid import PREFETCH
from speedlimit.run import hooks

SHM_PATH = "/dev/shm"


class ResourceError(RuntimeError):
    """The machine cannot give the cell what its settings need; the message says what to do."""


def _mb(n: float) -> str:
    return f"{n / 2**20:.1f} MB"


def shm_needed(loader: str, num_workers: int | None, batch_size: int,
               prefetch_factor: int | None, sample_bytes: int) -> int:
    """Bytes of shared memory the DataLoader's batches in flight take at most."""
    if loader != "dataloader" or not num_workers:
        return 0
    in_flight = num_workers * (prefetch_factor or PREFETCH)
    return in_flight * batch_size * sample_bytes


def shm_free(path: str = SHM_PATH) -> int | None:
    """Free bytes in ``path`` (None where there is no such file system)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def cpus_available() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def check(cell, sample_bytes: int, free: int | None = None, cpus: int | None = None,
          shm_path: str = SHM_PATH, epochs: int = 1) -> list[str]:
    """Raise :class:`ResourceError` when the cell cannot run here; return warnings otherwise."""
    need = shm_needed(cell.loader, cell.num_workers, cell.batch_size, cell.prefetch_factor,
                      sample_bytes)
    free = shm_free(shm_path) if free is None else free
    if need and free is not None and need > free:
        prefetch = cell.prefetch_factor or PREFETCH
        raise ResourceError(
            f"not enough shared memory: this cell's DataLoader keeps up to num_workers "
            f"{cell.num_workers} x prefetch_factor {prefetch} batches of batch_size "
            f"{cell.batch_size} in {shm_path} ({_mb(need)}), but only {_mb(free)} is free there. "
            f"Enlarge {shm_path} (docker: --shm-size=1g; or `mount -o remount,size=1G "
            f"{shm_path}`), or lower num_workers, batch_size or prefetch_factor in the grid."
        )
    warnings = []
    cpus = cpus_available() if cpus is None else cpus
    if cell.loader == "dataloader" and cell.num_workers and cell.num_workers > cpus:
        warnings.append(
            f"num_workers {cell.num_workers} exceeds the {cpus} CPU(s) this cell may use: the "
            "workers compete for CPU, so this cell's timing measures oversubscription"
        )
    if cell.loader == "dataloader" and cell.persistent_workers and epochs == 1:
        warnings.append(PERSISTENT_ONE_EPOCH)
    return warnings


PERSISTENT_ONE_EPOCH = (
    "persistent_workers cannot help with train.epochs: 1 (it keeps workers alive between "
    "epochs, and there is only one): this cell measures the same work as persistent_workers: "
    "false")


def gpus_visible() -> int:
    """NVIDIA GPUs whose device files this machine shows (/dev/nvidia0, ...), without torch."""
    dev = hooks.dev_dir()
    return sum(1 for p in dev.glob("nvidia*") if p.name[len("nvidia"):].isdigit())
