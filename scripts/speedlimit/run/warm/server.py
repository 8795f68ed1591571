"""The warm start's server: one process per identity that has imported torch, torchvision
and the training code. For each connection it forks a *handler*, which checks the client and
forks the *child* that becomes the cell's process (the job's session, folder, environment,
log, CPU affinity, niceness, limits, umask and control groups) and watches both. Run as
``python -m speedlimit.run.warm serve SOCKET``."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import selectors
import signal
import socket
import sys
import time
import traceback
from pathlib import Path

from speedlimit import project
from speedlimit.run import fingerprint, job
from speedlimit.run.request import Request
from speedlimit.run.warm.shared import (IDLE_SECONDS, _read_line, _send, _start_lock,
                                        _unlink_if_same, _user, digest, identity, peer)


_package_fd: int | None = None  # the server's code folder, held open: its inode stays its own


def _stale(own: dict) -> str | None:
    """Why this server may no longer serve anybody (its code folder gone or replaced)."""
    package = project.package_dir()
    try:
        found = os.stat(package)
    except OSError:
        return f"its code folder {package} is gone"
    if [found.st_dev, found.st_ino] != own["package"] or (
            _package_fd is not None and os.fstat(_package_fd).st_nlink == 0):
        return f"its code folder {package} was replaced"
    return None


def _join_cgroup(wanted: str | None) -> None:
    """Move this process into the job's control group (cgroup v2 only), or raise."""
    lines = (wanted or "").splitlines()
    if len(lines) != 1 or not lines[0].startswith("0::"):
        raise RuntimeError(f"the job runs in other control groups ({'; '.join(lines)}) than "
                           "the warm server")
    procs = Path("/sys/fs/cgroup", lines[0][3:].lstrip("/"), "cgroup.procs")
    procs.write_text(f"{os.getpid()}\n")
    if fingerprint.cgroup() != wanted:
        raise RuntimeError(f"could not join the job's control group {lines[0][3:]}")


def _become(settings: dict) -> None:
    """Take on the job's control groups, CPU affinity, resource limits, niceness and umask
    (see :func:`fingerprint.process`), or raise: then the job starts its cell cold."""
    if settings["cgroup"] != fingerprint.cgroup():
        _join_cgroup(settings["cgroup"])
    if settings["affinity"] is not None:
        os.sched_setaffinity(0, settings["affinity"])
    for name, limits in settings["rlimits"].items():
        resource.setrlimit(getattr(resource, f"RLIMIT_{name.upper()}"), tuple(limits))
    os.setpriority(os.PRIO_PROCESS, 0, settings["nice"])  # after RLIMIT_NICE
    os.umask(int(settings["umask"], 8))


def _child(request: Request, listener: socket.socket, conn: socket.socket, ready_r: int,
           ready_w: int) -> None:
    """In the forked child: become the cell's process and run it. Never returns.

    Until it writes ``job.READY`` on ``ready_w``, whatever fails is sent there (one line)
    instead, and the job starts the cell cold: nothing of it reaches the cell's log."""
    try:
        listener.close()
        conn.close()
        os.close(ready_r)
        os.setsid()
        _become(request.process)
        os.chdir(request.cwd)
        os.environ.clear()
        os.environ.update(request.env)
        log_fd = (os.open(request.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                  if request.log else None)
        from speedlimit import logs  # noqa: F401 - imported by the server: from memory
        from speedlimit.run import train  # noqa: F401
    except BaseException as err:  # noqa: BLE001 - the job hears why, and starts it cold
        traceback.print_exc()  # (into the server's log)
        reason = " ".join(f"{type(err).__name__}: {err}".split())
        with contextlib.suppress(OSError):
            os.write(ready_w, f"its forked process could not become the cell's: {reason}"
                     .encode()[:2000])
        sys.stderr.flush()
        os._exit(70)
    code = 1
    try:
        if log_fd is not None:
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            os.close(log_fd)
        sys.argv = ["speedlimit-cell", request.cell.path]
        logs.setup()
        os.write(ready_w, job.READY)
        os.close(ready_w)
        code = job.execute(request)
    except BaseException:  # noqa: BLE001 - the traceback goes to the cell's log
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _handle(listener: socket.socket, conn: socket.socket, own: dict) -> None:
    """In the forked handler: check the client, run its request's child, and report."""
    for sig in (signal.SIGCHLD, signal.SIGTERM):  # not the server's: a cold job's defaults
        signal.signal(sig, signal.SIG_DFL)
    pid, uid = peer(conn)
    if uid != os.getuid():
        print(f"refused a connection from {_user(uid)} (pid {pid}): not this server's user",
              flush=True)
        os._exit(0)
    data = _read_line(conn)
    if data is None:  # the client went away before asking anything
        os._exit(0)
    message = json.loads(data)
    stale = _stale(own)
    if stale:  # never again: the server notices it too, within a second, and exits
        _send(conn, {"refused": f"the warm server {os.getppid()} is stale: {stale}"})
        os._exit(0)
    theirs = message.get("identity") or {}
    differ = sorted(key for key in own.keys() | theirs.keys() if own.get(key) != theirs.get(key))
    if differ:
        _send(conn, {"refused": f"the warm server {os.getppid()} was started from other code "
                                f"(differs in: {', '.join(differ)})"})
        os._exit(0)
    request = Request.from_dict(message["request"])
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        _child(request, listener, conn, ready_r, ready_w)
    listener.close()
    os.close(ready_w)
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    sel = selectors.DefaultSelector()
    sel.register(conn, selectors.EVENT_READ, "client")
    sel.register(ready_r, selectors.EVENT_READ, "ready")
    if pidfd is not None:
        sel.register(pidfd, selectors.EVENT_READ, "exit")
    started, why = False, None
    while True:
        for key, _ in sel.select(timeout=None if pidfd is not None else 0.2):
            if key.data == "ready":
                said = os.read(ready_r, 4096)
                if said == job.READY:
                    started = True
                    _send(conn, {"started": pid})
                    continue
                why = why or said.decode(errors="replace").strip()
                if not said:
                    sel.unregister(ready_r)
            elif key.data == "client":
                try:
                    gone = not conn.recv(1, socket.MSG_PEEK)
                except OSError:
                    gone = True
                if gone:  # the client died or gave up: so does its cell, workers included
                    job.kill_group(pid)
                    os.waitpid(pid, 0)
                    os._exit(0)
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
            job.kill_group(pid)  # workers a crash left behind (the zombie still holds the id)
            code = job.exit_code(os.waitpid(pid, 0)[1])
            if started:
                _send(conn, {"exit": code})
                os._exit(0)
            # Most likely the server itself is more restricted than this job (lower limits,
            # a higher niceness, another control group): it retires, and the next cell's job
            # starts a server with its own settings.
            why = why or f"its forked process exited with code {code} before the cell started"
            _send(conn, {"unavailable": f"{why} (the server {os.getppid()} retires)"})
            print(f"retiring: a child could not become its cell's process: {why}", flush=True)
            os.kill(os.getppid(), signal.SIGTERM)
            os._exit(0)


def _dispatch(listener: socket.socket, conn: socket.socket, own: dict) -> int:
    """Fork a handler for one connection; return its pid."""
    pid = os.fork()
    if pid == 0:
        try:
            _handle(listener, conn, own)
        finally:
            os._exit(0)
    conn.close()
    return pid


def _terminate(signum, frame):
    raise SystemExit(0)


def serve(path: Path, idle: float = IDLE_SECONDS) -> None:
    signal.signal(signal.SIGTERM, _terminate)  # run the cleanup below
    import torch  # noqa: F401 - the point of the server: import once, fork many
    import torchvision  # noqa: F401

    from speedlimit import logs  # noqa: F401 - everything a child needs, from memory
    from speedlimit.run import group, preflight, train  # noqa: F401 - (group: a race's round)

    global _package_fd
    _package_fd = os.open(project.package_dir(), os.O_RDONLY | os.O_DIRECTORY)
    own = identity()
    if digest(own) != path.stem:
        sys.exit(f"the code changed while this server started (identity {own}); exiting")
    os.umask(0o077)  # its own files; each child takes on its job's umask
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    socket_inode = os.lstat(path).st_ino
    listener.listen(64)
    listener.settimeout(1.0)
    handlers: set[int] = set()
    last_busy = time.monotonic()
    pidfile = path.with_suffix(".pid")
    pidfile.write_text(f"{os.getpid()}\n")
    log_inode = os.fstat(1).st_ino
    print(f"speedlimit warm server {os.getpid()} listening on {path}", flush=True)
    why = f"idle for {idle:.0f} s"
    try:
        while True:
            for pid in list(handlers):
                if os.waitpid(pid, os.WNOHANG)[0]:
                    handlers.discard(pid)
            if handlers:
                last_busy = time.monotonic()
            elif time.monotonic() - last_busy > idle:
                break
            stale = _stale(own)
            if stale:
                why = f"stale: {stale}"
                break
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            handlers.add(_dispatch(listener, conn, own))
    except SystemExit:
        why = "stopped (SIGTERM)"
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let the cleanup finish
        _unlink_if_same(path, socket_inode)  # no new client can connect from here on
        listener.setblocking(False)
        while True:  # serve the clients that connected just before the unlink
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, OSError):
                break
            conn.setblocking(True)
            handlers.add(_dispatch(listener, conn, own))
        listener.close()
        with _start_lock(path.parent):  # not while a client starts this server's successor
            with contextlib.suppress(OSError):
                if pidfile.read_text().strip() == str(os.getpid()):
                    pidfile.unlink()
            _unlink_if_same(path.with_suffix(".log"), log_inode)
        print(f"speedlimit warm server {os.getpid()} exiting: {why}", flush=True)
        for pid in handlers:
            os.waitpid(pid, 0)
