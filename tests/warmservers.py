"""Stopping this user's warm servers between tests (the pipeline never stops one: a server
exits after its idle time, :data:`speedlimit.run.warm.IDLE_SECONDS`)."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from speedlimit.run import warm


def stop_servers(directory: Path | None = None) -> list[int]:
    """Terminate this user's warm servers whose sockets live in ``directory``; return their
    pids. Only a process that :func:`speedlimit.run.warm.is_warm_server` is ever signalled."""
    try:
        directory = Path(directory) if directory else warm.folder()
    except warm.WarmUnavailable:
        return []
    stopped = []
    for pidfile in directory.glob("*.pid"):
        with contextlib.suppress(ValueError, OSError):
            pid = int(pidfile.read_text())
            if warm.is_warm_server(pid, pidfile.with_suffix(".sock")):
                os.kill(pid, signal.SIGTERM)
                stopped.append(pid)
    return stopped
