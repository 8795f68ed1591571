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
import ctypes
import errno
import fcntl
import json
import logging
import os
import pwd
import selectors
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from speedlimit.atomic import write_atomic
from speedlimit.grid import Cell
from speedlimit.metrics import SCHEMA_VERSION
from speedlimit.run import fingerprint, preflight  # torch-free

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
    timing: dict | None = None  # whole epochs (None) or a race's windows (speedlimit.run.probe)
    warm_start: bool = False  # run in a process forked from a warm server (recorded)
    cwd: str = field(default_factory=os.getcwd)
    env: dict = field(default_factory=lambda: dict(os.environ))
    # The job's CPU affinity, niceness, resource limits, umask and control groups: a warm
    # server's child takes them on, so that it is the process a cold start would have been.
    process: dict = field(default_factory=lambda: fingerprint.process())

    def to_dict(self) -> dict:
        return {**self.__dict__, "cell": self.cell.params()}

    @classmethod
    def from_dict(cls, fields: dict) -> "Request":
        return cls(**{**fields, "cell": Cell(**fields["cell"])})

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> "Request":
        return cls.from_dict(json.loads(text))


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
_ALARM_GIVE_UP = 5  # alarms before the cell is ended without unwinding (within GRACE_SECONDS)


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
                _failed(request.cell, request, _timeout_reason(request), TIME_LIMIT_EXIT)
        logging.shutdown()
        os._exit(TIME_LIMIT_EXIT)
    raise CellTimeout


_alarms = 0
_timed_request: Request | None = None


def _timeout_reason(request: Request) -> str:
    return (f"stopped: ran past train.time_limit = {request.time_limit:g} s "
            "(raise train.time_limit, or null for no limit)")


TIME_LIMIT_EXIT = 3  # the exit code of a cell stopped by train.time_limit
GRACE_SECONDS = 10.0  # past train.time_limit, before the job kills the cell from outside


def outside_limit(time_limit: float | None) -> float | None:
    """Seconds from the moment a cell's clock may start to the moment its job kills it from
    outside: train.time_limit and a grace (10 s, or a tenth of the limit when longer), so
    that the cell's own alarm always has the first chance to stop it cleanly. None: no limit.
    """
    if not time_limit:
        return None
    return time_limit + max(GRACE_SECONDS, 0.1 * time_limit)


def stopped_from_outside(request: Request, seconds: float) -> int:
    """Record a cell that its job had to kill (its own alarm never got through: a hang in C
    code); return the time limit's exit code."""
    reason = (f"stopped from outside after {seconds:.0f} s: ran past train.time_limit = "
              f"{request.time_limit:g} s and did not stop by itself (hung in C code?); its "
              "process group was killed")
    log.error("cell %s %s", request.cell.path, reason)
    return _failed(request.cell, request, reason, TIME_LIMIT_EXIT)


def execute(request: Request) -> int:
    """Run the cell of ``request`` in this process and write its JSON; return an exit code.

    Called in the process that :func:`run_cold` forks from the job, or in one forked from a
    warm server: never in the job's own process, which waits and enforces the time limit.
    """
    cell = request.cell
    log.info("cell %s: running in process %d", cell.path, os.getpid())
    from speedlimit.run import train  # imports torch: instant in a warm child

    from speedlimit.run.preflight import ResourceError

    global _alarms, _timed_request
    # The test hook SPEEDLIMIT_FAULT=hang: as in a hang in C code, the alarm never gets
    # through, whenever it comes (a slow setup on a loaded machine, a thread that takes it).
    hang = preflight.injected_fault(cell.path) == "hang"
    if request.time_limit:
        _alarms, _timed_request = 0, request
        signal.signal(signal.SIGALRM, signal.SIG_IGN if hang else _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, request.time_limit, _ALARM_RETRY)
    try:
        timing = request.timing or {"mode": "epochs"}
        record = train.run_cell(cell, request.dataset_root, request.epochs, request.seed,
                                request.workload_function, timing,
                                # a race measures the loading cost in its first round only
                                measure_costs=timing["mode"] == "epochs" or cell.repeat == 0)
    except train.CellSkipped as skip:
        log.warning("cell %s skipped: %s", cell.path, skip)
        record = skipped_record(cell, request, str(skip))
    except CellTimeout:
        signal.setitimer(signal.ITIMER_REAL, 0)
        reason = _timeout_reason(request)
        log.error("cell %s %s", cell.path, reason)
        return _failed(cell, request, reason, TIME_LIMIT_EXIT)
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
    record["environment"]["warm_start"] = request.warm_start
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


READY = b"ready\n"  # what a cell's process says, warm or cold, when its clock may start


def die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux ``PR_SET_PDEATHSIG``):
    a job killed outright never leaves its cell running."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def exit_code(status: int) -> int:
    """A wait status as a shell reports it: the exit code, or 128 + the signal."""
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def kill_group(pgid: int) -> None:
    """SIGKILL every process left in the cell's process group (its DataLoader workers too)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def run_cold(request: Request) -> int:
    """Run the cell in a child of the job, in a session of its own that its DataLoader
    workers join, and wait for it with :func:`wait_for`; return its exit code."""
    parent = os.getpid()
    ready_r, ready_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(ready_r)
            os.setsid()
            die_with_parent()
            if os.getppid() != parent:  # the job died before the line above
                os._exit(1)
            from speedlimit.run import train  # noqa: F401 - the torch import, before the clock

            os.write(ready_w, READY)
            os.close(ready_w)
            code = execute(request)
        except BaseException:  # noqa: BLE001 - the traceback goes to the cell's log
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(ready_w)
    try:
        return wait_for(pid, ready_r, request)
    finally:
        os.close(ready_r)


def _kill_and_reraise(pgid: int):
    def handler(signum, frame):
        kill_group(pgid)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    return handler


def wait_for(pid: int, ready: int, request: Request) -> int:
    """Wait for the cold cell's process ``pid`` (the leader of its process group); return its
    exit code. ``ready`` is the pipe on which it says that its clock may start.

    The time limit, enforced from outside: train.time_limit is an alarm inside the cell, which
    a hang in C code never lets run; past :func:`outside_limit`, counted from the moment the
    cell was ready (or from the fork, while it was not), the job kills the cell's whole group
    and records it as failed. A signal that ends the job (SIGTERM, SIGINT, SIGHUP) ends the
    cell's group first; SIGKILL does through :func:`die_with_parent`.
    """
    limit = outside_limit(request.time_limit)
    since = time.monotonic()
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux >= 5.3: poll
        pidfd = None
    sel = selectors.DefaultSelector()
    sel.register(ready, selectors.EVENT_READ)
    if pidfd is not None:
        sel.register(pidfd, selectors.EVENT_READ)
    handlers = {sig: signal.signal(sig, _kill_and_reraise(pid))
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        while True:
            left = None if limit is None else since + limit - time.monotonic()
            if left is not None and left <= 0:
                kill_group(pid)
                os.waitpid(pid, 0)
                return stopped_from_outside(request, time.monotonic() - since)
            wait = left if pidfd is not None else min(left or 0.05, 0.05)
            for key, _ in sel.select(wait):
                if key.fd == ready:
                    os.read(ready, len(READY))  # READY, or end of file: counts from now
                    sel.unregister(ready)
                    since = time.monotonic()
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                kill_group(pid)  # workers a crash left behind (the zombie still holds the id)
                return exit_code(os.waitpid(pid, 0)[1])
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        sel.close()
        if pidfd is not None:
            os.close(pidfd)


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

