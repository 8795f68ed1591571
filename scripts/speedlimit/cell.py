"""Run one cell as a job: the machine's cell lock, the time limit, and an atomic JSON write.

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
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from speedlimit.grid import Cell, parse_path
from speedlimit.metrics import SCHEMA_VERSION

log = logging.getLogger("speedlimit.cell")

LOCK_ENV = "SPEEDLIMIT_LOCK_DIR"


class CellTimeout(Exception):
    """The cell ran past ``train.time_limit``."""


@dataclass
class Request:
    """Everything a cell run needs; travels as JSON to a warm server."""

    cell: str
    dataset_root: str
    output: str
    epochs: int = 1
    seed: int = 0
    time_limit: float | None = None
    log: str | None = None
    process_started: float | None = None  # when the job's process started (epoch seconds)
    lock_acquired: float | None = None  # when it held the machine's cell lock
    cwd: str = field(default_factory=os.getcwd)
    env: dict = field(default_factory=lambda: dict(os.environ))

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> "Request":
        return cls(**json.loads(text))


def process_start_time(pid: int | str = "self") -> float | None:
    """When a process started, in epoch seconds (Linux /proc), or None elsewhere."""
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(float(line.split()[1]) for line in open("/proc/stat")
                    if line.startswith("btime"))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def lock_path() -> Path:
    """One lock file per machine (shared by every project folder and user on it)."""
    return Path(os.environ.get(LOCK_ENV) or tempfile.gettempdir()) / "speedlimit-cells.lock"


@contextlib.contextmanager
def machine_lock(enabled: bool = True):
    """Hold the machine's cell lock: no two exclusive cells ever run at the same time here."""
    if not enabled:
        yield
        return
    path = lock_path()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    with contextlib.suppress(OSError):
        os.fchmod(fd, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            start = time.monotonic()
            log.info("another training cell holds %s; waiting for it to finish", path)
            fcntl.flock(fd, fcntl.LOCK_EX)
            log.info("got the cell lock after %.1f s", time.monotonic() - start)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_json(path: str | os.PathLike, record: dict) -> None:
    """Write ``record`` through a temporary file and a rename: never a partial JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as fh:
            json.dump(record, fh, indent=2, allow_nan=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def skipped_record(cell: Cell, request: Request, reason: str) -> dict:
    from speedlimit import fingerprint  # torch-free

    return {
        "schema_version": SCHEMA_VERSION,
        "status": "skipped",
        "reason": reason,
        "cell": cell.path,
        "params": {**cell.params(), "epochs": request.epochs, "seed": request.seed},
        "epochs": [],
        "environment": fingerprint.machine(),
    }


def _on_alarm(signum, frame):
    raise CellTimeout


def execute(request: Request) -> int:
    """Run the cell of ``request`` in this process and write its JSON; return an exit code.

    Called in the job's own process (cold start) or in a process forked from a warm server.
    """
    cell = parse_path(request.cell)
    log.info("cell %s: running in process %d", cell.path, os.getpid())
    from speedlimit import train  # imports torch: instant in a warm child

    if request.time_limit:
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, request.time_limit)
    try:
        record = train.run_cell(cell, request.dataset_root, request.epochs, request.seed)
    except train.CellSkipped as skip:
        log.warning("cell %s skipped: %s", cell.path, skip)
        record = skipped_record(cell, request, str(skip))
    except CellTimeout:
        log.error("cell %s stopped: it ran past train.time_limit = %s s", cell.path,
                  request.time_limit)
        return 3
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    record.setdefault("timeline", {}).update(
        process_started=request.process_started, lock_acquired=request.lock_acquired,
        written=time.time())
    write_json(request.output, record)
    log.info("wrote %s", request.output)
    return 0


def setup_logging() -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        force=True,
    )
