"""The machine's cell lock, and a job's ownership of its output.

* :func:`machine_lock`: one lock file per machine (in the temp folder, shared by every project
  folder and user on it): no two exclusive cells are ever timed at the same time here. Under
  the train_cell rule, ``scripts/train_cell.sh`` takes it before any Python starts and the job
  inherits it; who holds it is written into the file for those who wait.
* :func:`own_output`: a lock next to a run's record, held for the job's whole life.
  Snakemake's own lock lets only one run work in a folder, so a holder found there is a job
  orphaned by a killed run; the new job stops it before starting, and only the owner ever
  renames a finished record into place, so an orphan can never overwrite the rerun's file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import pwd
import signal
import tempfile
import time
from pathlib import Path

log = logging.getLogger("speedlimit.run.lock")

LOCK_ENV = "SPEEDLIMIT_LOCK_DIR"  # another folder for the lock file (the tests' own)


def lock_path() -> Path:
    """One lock file per machine (shared by every project folder and user on it)."""
    return Path(os.environ.get(LOCK_ENV) or tempfile.gettempdir()) / "speedlimit-cells.lock"


def _try_lock(fd: int) -> bool:
    """Take an exclusive flock on ``fd`` if free; False when another process holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        return False
    return True


def _announce(path: Path, holder: str) -> None:
    """Write who holds the lock into the lock file, for those waiting (train_cell.sh)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_WRONLY)  # never O_CREAT: see machine_lock
        try:
            os.ftruncate(fd, 0)
            user = pwd.getpwuid(os.getuid()).pw_name
            os.write(fd, f"pid {os.getpid()}, user {user}, cell {holder}\n".encode())
        finally:
            os.close(fd)


@contextlib.contextmanager
def machine_lock(enabled: bool = True, holder: str = "?", held_since: float | None = None):
    """Hold the machine's cell lock: no two exclusive cells ever run at the same time here.

    Yields when the lock was acquired (epoch seconds), or None when ``enabled`` is false.
    Under the train_cell rule, scripts/train_cell.sh already holds it (before this Python
    started: ``held_since`` says when, from its ``--lock-held``), and this process inherited
    it.
    """
    if not enabled:
        yield None
        return
    path = lock_path()
    if held_since is not None:
        _announce(path, holder)
        yield held_since
        return
    try:  # O_CREAT on another user's file in sticky /tmp fails under fs.protected_regular
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    with contextlib.suppress(OSError):
        os.fchmod(fd, 0o666)
    try:
        if not _try_lock(fd):
            start = time.monotonic()
            log.info("another training cell holds %s; waiting for it to finish", path)
            fcntl.flock(fd, fcntl.LOCK_EX)
            log.info("got the cell lock after %.1f s", time.monotonic() - start)
        _announce(path, holder)
        yield time.time()
    finally:
        os.close(fd)  # closing releases the lock


def staging_path(output: str | os.PathLike) -> Path:
    """Where this process's run of a cell writes its record before the owner renames it."""
    output = Path(output)
    return output.with_name(f".{output.name}.{os.getpid()}.staged")


def _holder_is_a_cell_job(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"train_cell" in cmdline


@contextlib.contextmanager
def own_output(output: str | os.PathLike, grace: float = 10.0):
    """Own ``output`` for the job's life, stopping an orphaned job of a killed run that does.

    Yields the staging path this job writes to; leftovers of earlier jobs are removed.
    """
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    owner = output.with_name(f".{output.name}.owner")
    fd = os.open(owner, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _try_lock(fd):
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            pid = int(text) if text.isdigit() else None
            if pid and pid != os.getpid() and _holder_is_a_cell_job(pid):
                log.warning("an earlier job (pid %d) still runs this cell: it was orphaned when "
                            "its snakemake was killed; stopping it so that it cannot overwrite "
                            "this run's %s", pid, output)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + grace
                while time.monotonic() < deadline:
                    if _try_lock(fd):
                        break
                    time.sleep(0.1)
                else:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            else:
                log.warning("waiting for the process that holds %s", owner)
            fcntl.flock(fd, fcntl.LOCK_EX)  # (again: a no-op when already held)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        for leftover in output.parent.glob(f".{output.name}.*.staged"):
            leftover.unlink(missing_ok=True)
        yield staging_path(output)
    finally:
        staging_path(output).unlink(missing_ok=True)
        os.close(fd)
