"""Run one cell as a job: the machine's cell lock, the time limit, and an atomic JSON write.

A job also *owns* its output (:func:`own_output`): a lock next to the metrics file, held for
the job's whole life. Snakemake's own lock lets only one run work in a folder, so a holder
found there is a job orphaned by a killed run; the new job stops it before starting, and
only the owner ever renames a finished record into place, so an orphan can never overwrite
the rerun's file. A cell that fails writes a complete record with ``status: failed`` (never
a partial one) when the caller asks for it (``Request.on_failure``).

This module imports no torch at import time: the client side of a warm start only needs
:func:`machine_lock` and :func:`write_json`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import pwd
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from speedlimit.atomic import write_atomic
from speedlimit.grid import Cell
from speedlimit.metrics import SCHEMA_VERSION

log = logging.getLogger("speedlimit.run.job")

LOCK_ENV = "SPEEDLIMIT_LOCK_DIR"


class CellTimeout(Exception):
    """The cell ran past ``train.time_limit``."""


@dataclass
class Request:
    """Everything a cell run needs; travels as JSON to a warm server (the only place it
    becomes text)."""

    cell: Cell
    dataset_root: str
    output: str
    epochs: int = 1
    seed: int = 0
    time_limit: float | None = None
    log: str | None = None
    process_started: float | None = None  # when the job's Python started (epoch seconds)
    lock_acquired: float | None = None  # when it held the machine's cell lock
    on_failure: str | None = None  # where to write a status: failed record, if anywhere
    failed_before: int = 0  # failed records this cell had before this run (a rerun trigger)
    hardware: str | None = None  # the spec's hardware key (a rerun trigger), kept in the record
    workload_function: str | None = None  # makes the cell's workload (None: the built-in one)
    cwd: str = field(default_factory=os.getcwd)
    env: dict = field(default_factory=lambda: dict(os.environ))

    def to_json(self) -> str:
        return json.dumps({**self.__dict__, "cell": self.cell.params()})

    @classmethod
    def from_json(cls, text: str) -> "Request":
        fields = json.loads(text)
        return cls(**{**fields, "cell": Cell(**fields["cell"])})


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


LOCK_HELD_ENV = "SPEEDLIMIT_LOCK_HELD"  # set by scripts/train_cell.sh: when it got the lock


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
def machine_lock(enabled: bool = True, holder: str = "?"):
    """Hold the machine's cell lock: no two exclusive cells ever run at the same time here.

    Yields when the lock was acquired (epoch seconds), or None when ``enabled`` is false.
    Under the train_cell rule, scripts/train_cell.sh already holds it (before this Python
    started; ``SPEEDLIMIT_LOCK_HELD`` says when), and this process inherited it.
    """
    if not enabled:
        yield None
        return
    path = lock_path()
    held_since = os.environ.get(LOCK_HELD_ENV)
    if held_since:
        _announce(path, holder)
        yield float(held_since)
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


def write_json(path: str | os.PathLike, record: dict) -> None:
    """Write ``record`` through a temporary file and a rename: never a partial JSON."""
    text = json.dumps(record, indent=2, allow_nan=False) + "\n"  # raises before any write
    write_atomic(path, text.encode())


def _record_without_epochs(cell: Cell, request: Request, status: str, reason: str,
                           **extra) -> dict:
    from speedlimit.run import fingerprint  # torch-free

    return {
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "reason": reason,
        **extra,
        "cell": cell.path,
        "params": {**cell.params(), "epochs": request.epochs, "seed": request.seed,
                   "hardware": request.hardware},
        "epochs": [],
        "environment": fingerprint.machine(),
    }


def skipped_record(cell: Cell, request: Request, reason: str) -> dict:
    """A complete record of a cell that cannot run here (e.g. cuda without a GPU)."""
    return _record_without_epochs(cell, request, "skipped", reason)


def failed_record(cell: Cell, request: Request, reason: str, exit_code: int) -> dict:
    """A complete record of a cell that did not finish: the table marks it missing."""
    return _record_without_epochs(cell, request, "failed", reason, exit_code=exit_code,
                                  log=request.log, failed_before=request.failed_before)


def read_status(path: str | os.PathLike) -> dict | None:
    """``status`` and ``failed_before`` of a metrics file, or None when it is absent/unreadable."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def failures_path(output: str | os.PathLike) -> Path:
    output = Path(output)
    return output.with_name(f".{output.name}.failures")


def failures_so_far(output: str | os.PathLike) -> int:
    """How many runs of the cell whose metrics file is ``output`` have failed so far.

    A rerun trigger (part of the train_cell rule's params): each failure bumps the count, so
    the params differ from those the failed job ran with and Snakemake reruns the cell; a
    success leaves it alone, so the cell then stays done. The count lives in a file of its
    own because Snakemake removes a job's output before running it again.
    """
    try:
        text = failures_path(output).read_text().strip()
    except OSError:
        return 0
    return int(text) if text.isdigit() else 0


def count_failure(output: str | os.PathLike) -> int:
    count = failures_so_far(output) + 1
    write_atomic(failures_path(output), f"{count}\n".encode())
    return count


_ALARM_RETRY = 1.0  # seconds between alarms once the limit has passed
_ALARM_GIVE_UP = 30  # alarms before the cell is ended without unwinding


def _on_alarm(signum, frame):
    """Raise CellTimeout; again every second, since Python drops an exception raised where it
    cannot propagate (an at-fork hook while DataLoader starts workers, a __del__)."""
    global _alarms
    _alarms += 1
    if _alarms > _ALARM_GIVE_UP:  # it never got through: end the process, leave a record
        request = _timed_request
        log.error("cell %s: the time limit could not stop it cleanly; ending the process",
                  request.cell.path if request else "?")
        if request is not None:
            with contextlib.suppress(Exception):
                _failed(request.cell, request, _timeout_reason(request), 3)
        logging.shutdown()
        os._exit(3)
    raise CellTimeout


_alarms = 0
_timed_request: Request | None = None


def _timeout_reason(request: Request) -> str:
    return (f"stopped: ran past train.time_limit = {request.time_limit:g} s "
            "(raise train.time_limit, or null for no limit)")


def execute(request: Request) -> int:
    """Run the cell of ``request`` in this process and write its JSON; return an exit code.

    Called in the job's own process (cold start) or in a process forked from a warm server.
    """
    cell = request.cell
    log.info("cell %s: running in process %d", cell.path, os.getpid())
    from speedlimit.run import train  # imports torch: instant in a warm child

    from speedlimit.run.preflight import ResourceError

    global _alarms, _timed_request
    if request.time_limit:
        _alarms, _timed_request = 0, request
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, request.time_limit, _ALARM_RETRY)
    try:
        record = train.run_cell(cell, request.dataset_root, request.epochs, request.seed,
                                request.workload_function)
    except train.CellSkipped as skip:
        log.warning("cell %s skipped: %s", cell.path, skip)
        record = skipped_record(cell, request, str(skip))
    except CellTimeout:
        signal.setitimer(signal.ITIMER_REAL, 0)
        reason = _timeout_reason(request)
        log.error("cell %s %s", cell.path, reason)
        return _failed(cell, request, reason, 3)
    except ResourceError as err:
        log.error("cell %s cannot run here: %s", cell.path, err)
        return _failed(cell, request, str(err), 4)
    except Exception as err:  # noqa: BLE001 - recorded; the traceback goes to the log
        log.exception("cell %s failed", cell.path)
        lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()] or [""]
        # A worker's error arrives wrapped: keep its headline and the original's last line.
        summary = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
        return _failed(cell, request, f"{type(err).__name__}: {summary}"[:500], 1)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    record["params"]["hardware"] = request.hardware
    record.setdefault("timeline", {}).update(
        process_started=request.process_started, lock_acquired=request.lock_acquired,
        written=time.time())
    write_json(request.output, record)
    log.info("wrote %s", request.output)
    return 0


def _failed(cell: Cell, request: Request, reason: str, code: int) -> int:
    if request.on_failure:
        write_json(request.on_failure, failed_record(cell, request, reason, code))
    return code


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

