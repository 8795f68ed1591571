"""The warm start's client: the job's side. It connects to the server (starting one when
none answers), sends the request, and waits for the cell's exit code, enforcing the time limit
from outside; whatever fails before the cell's clock could start raises
:class:`~speedlimit.run.warm.WarmUnavailable` (then the job starts the cell cold)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from speedlimit.run import job
from speedlimit.run.request import Request
from speedlimit.run.warm.shared import (SCRIPTS_DIR, SERVER_ARGS, START_TIMEOUT,
                                        WarmUnavailable, _read_line, _start_lock, _sweep,
                                        _user, identity, peer, socket_path)


def _connect(path: Path) -> socket.socket | None:
    """A connection to the server on ``path``, None when none listens there; refuses (sending
    nothing) a process of another user."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    pid, uid = peer(sock)
    if uid != os.getuid():
        sock.close()
        raise WarmUnavailable(f"the process listening on {path} (pid {pid}) runs as "
                              f"{_user(uid)}, not as you: sent it nothing")
    return sock


def _spawn(path: Path) -> subprocess.Popen:
    """Start a server (``python -m speedlimit.run.warm serve``) on ``path``."""
    # The server's code, named here so that its digest is part of the server's identity and of
    # the cells' rerun trigger (speedlimit.project.code_digest follows imports, lazy ones too).
    from speedlimit.run.warm import server  # noqa: F401

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SCRIPTS_DIR),
                                                             env.get("PYTHONPATH")]))
    fd = os.open(path.with_suffix(".log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW,
                 0o600)
    with os.fdopen(fd, "wb") as out:
        return subprocess.Popen(
            [sys.executable, *SERVER_ARGS, str(path)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True, env=env, cwd="/",
        )


def connect(path: Path | None = None, timeout: float = START_TIMEOUT) -> socket.socket:
    """A connection to the warm server, starting one when none answers; raises
    :class:`WarmUnavailable` when there is none to be had."""
    path = path or socket_path()
    sock = _connect(path)
    if sock:
        return sock
    with _start_lock(path.parent):  # one client starts the server; the others wait
        sock = _connect(path)
        if sock:
            return sock
        _sweep(path.parent)  # a stale socket of a server that died, among others
        server = _spawn(path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.05)
            sock = _connect(path)
            if sock:
                return sock
            if server.poll() is not None:  # it died: say why instead of waiting it out
                log = path.with_suffix(".log")
                lines = log.read_text(errors="replace").strip().splitlines() or ["(no output)"]
                log.unlink(missing_ok=True)
                raise WarmUnavailable(f"the warm server exited at its start with code "
                                             f"{server.returncode}: {lines[-1]}")
    raise WarmUnavailable(f"the warm server did not start within {timeout:.0f} s "
                          f"(see {path.with_suffix('.log')})")


def run(request: Request, path: Path | None = None) -> int:
    """Have the warm server run ``request`` in a forked process; return the cell's exit code.

    Raises :class:`WarmUnavailable` when the cell cannot start that way, whatever the reason;
    it is raised only before the cell's clock could start (before its process said it was
    ready), so the caller can run it cold instead. Past :func:`job.outside_limit`
    (train.time_limit and a grace) the client has the server kill the cell's process group,
    and records the cell as failed.
    """
    try:
        sock, child = _start(request, path)
    except WarmUnavailable:
        raise
    except Exception as err:  # noqa: BLE001 - anything before the clock: a cold start
        raise WarmUnavailable(" ".join(f"{type(err).__name__}: {err}".split())) from err
    with sock:
        limit = job.outside_limit(request.time_limit)
        since = time.monotonic()
        sock.settimeout(limit)
        try:
            line = _read_line(sock)
        except TimeoutError:
            return _stop(sock, child, request, time.monotonic() - since)
    if line is None:  # the handler is gone: make sure its cell is too
        job.kill_group(child)
        job.log.error("cell %s: the warm server's handler went away", request.cell.path)
        return 1
    return int(json.loads(line)["exit"])


def _start(request: Request, path: Path | None) -> tuple[socket.socket, int]:
    """Connect, send the request, and wait until its cell's process is ready; return the
    connection and that process's pid."""
    ident = identity()
    sock = connect(path or socket_path(ident))
    try:
        message = {"identity": ident, "request": {**request.to_dict(), "warm": True}}
        try:
            sock.sendall(json.dumps(message).encode() + b"\n")
            line = _read_line(sock)
        except OSError as err:
            raise WarmUnavailable(f"the warm server's connection failed: {err}") from None
        reply = json.loads(line) if line else {
            "unavailable": "the warm server closed the connection before the cell started"}
        if "started" not in reply:
            raise WarmUnavailable(reply.get("refused") or reply.get("unavailable")
                                         or f"the warm server answered {reply}")
        return sock, int(reply["started"])
    except BaseException:
        sock.close()
        raise


def _stop(sock: socket.socket, child: int, request: Request, waited: float) -> int:
    """Past the outside limit: close our side, so that the handler kills the cell's group,
    wait until it has (it closes the connection), and record the cell as failed."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
    sock.settimeout(10)
    line = None
    try:
        line = _read_line(sock)  # the handler's answer, or None when it closes without one
    except OSError:
        job.kill_group(child)  # no answer from the handler: do it from here
    if line:  # it ended by itself in the meantime
        return int(json.loads(line)["exit"])
    return job.stopped_from_outside(request, waited)
