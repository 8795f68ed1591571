"""Run one cell as a job: in a process of its own (cold, :func:`run_cold`; or forked from a
warm server, :mod:`speedlimit.run.warm`), with the time limit enforced from inside (an alarm)
and from outside (its job kills the process group past the limit and a grace), and its record
written whole (:mod:`speedlimit.record`). A cell that fails writes a complete record with
``status: failed`` (never a partial one) when the caller asks for it
(``Request.on_failure``).

This module imports no torch at import time: the client side of a warm start only needs
:func:`outside_limit` and :func:`stopped_from_outside`.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import selectors
import signal
import sys
import time
import traceback

from speedlimit import record
from speedlimit.run import fingerprint, hooks  # torch-free
from speedlimit.run.request import Request

log = logging.getLogger("speedlimit.run.job")


class CellTimeout(Exception):
    """The cell ran past ``train.time_limit``."""


def _of_group(done: dict, request: Request) -> dict:
    """A group's round (:mod:`speedlimit.run.group`) names its cells in every record, so
    that each cell of the round reads as skipped or failed too."""
    if (request.timing or {}).get("mode") == record.INTERLEAVED:
        done["timing"] = request.timing
    return done


def skipped(request: Request, reason: str) -> dict:
    """A complete record of a cell that cannot run here (e.g. cuda without a GPU)."""
    return _of_group(record.skipped(request.cell.path, request.params(), reason,
                                    fingerprint.machine()), request)


def failed(request: Request, reason: str, exit_code: int) -> dict:
    """A complete record of a cell that did not finish: the table marks it missing."""
    return _of_group(record.failed(request.cell.path, request.params(), reason,
                                   fingerprint.machine(), exit_code, request.log,
                                   request.failed_before), request)


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
                _failed(request, _timeout_reason(request), TIME_LIMIT_EXIT)
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
    return _failed(request, reason, TIME_LIMIT_EXIT)


def execute(request: Request) -> int:
    """Run the cell of ``request`` in this process and write its JSON; return an exit code.

    Called in the process that :func:`run_cold` forks from the job, or in one forked from a
    warm server: never in the job's own process, which waits and enforces the time limit.
    The test hooks are read here, once, from the cell's own environment.
    """
    cell = request.cell
    log.info("cell %s: running in process %d", cell.path, os.getpid())
    from speedlimit.data import idx
    from speedlimit.run import train  # imports torch: instant in a warm child

    from speedlimit.run.preflight import ResourceError

    global _alarms, _timed_request
    hook = hooks.read()
    # The test hook SPEEDLIMIT_FAULT=hang: as in a hang in C code, the alarm never gets
    # through, whenever it comes (a slow setup on a loaded machine, a thread that takes it).
    hang = hook.fault_for(cell.path) == "hang"
    if request.time_limit:
        _alarms, _timed_request = 0, request
        signal.signal(signal.SIGALRM, signal.SIG_IGN if hang else _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, request.time_limit, _ALARM_RETRY)
    try:
        timing = request.timing or {"mode": "epochs"}
        if timing["mode"] == record.INTERLEAVED:  # a race's round of a group (run.group)
            from speedlimit.grid import parse_path
            from speedlimit.run import group

            done = group.run_group(cell, [parse_path(c) for c in timing["cells"]],
                                   request.dataset_root, request.seed,
                                   request.workload_function, timing, hook,
                                   workload_args=request.workload_args)
        else:
            done = train.run_cell(cell, request.dataset_root, request.epochs, request.seed,
                                  request.workload_function, timing,
                                  # a race measures the loading cost in its first round only
                                  measure_costs=timing["mode"] == "epochs" or cell.repeat == 0,
                                  hooks=hook, workload_args=request.workload_args)
    except train.CellSkipped as skip:
        log.warning("cell %s skipped: %s", cell.path, skip)
        done = skipped(request, str(skip))
    except CellTimeout:
        signal.setitimer(signal.ITIMER_REAL, 0)
        reason = _timeout_reason(request)
        log.error("cell %s %s", cell.path, reason)
        return _failed(request, reason, TIME_LIMIT_EXIT)
    except ResourceError as err:
        log.error("cell %s cannot run here: %s", cell.path, err)
        return _failed(request, str(err), 4)
    except Exception as err:  # noqa: BLE001 - recorded; the traceback goes to the log
        log.exception("cell %s failed", cell.path)
        lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()] or [""]
        # A worker's error arrives wrapped: keep its headline and the original's last line.
        summary = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
        reason = f"{type(err).__name__}: {summary}"[:500]
        # Most likely why: the data set lost a file after the checksums this job declares.
        lacks = idx.lacking(request.dataset_root) if request.dataset_root else None
        if lacks:
            log.error("cell %s: %s", cell.path, lacks)
            reason = f"{lacks} ({reason})"
        return _failed(request, reason, 1)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    written = time.time()
    for run in [done, *done.get("runs", [])]:  # a group's record holds each cell's
        record.with_job(run, request.hardware, request.warm, request.process_started,
                        request.lock_acquired, written)
    record.write(request.output, done)
    log.info("wrote %s", request.output)
    return 0


def _failed(request: Request, reason: str, code: int) -> int:
    if request.on_failure:
        record.write(request.on_failure, failed(request, reason, code))
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


