"""Warm start: pay ``import torch, torchvision`` once per machine, not once per cell.

A cell job (the *client*) connects to a Unix socket. Behind it a *server* process has
imported torch, torchvision and the training code, but has run no torch operation (so no
thread pool and no CUDA context exist yet). For each request it forks a *handler*, and the
handler forks the *child* that runs the cell in a fresh session with the client's working
directory, environment and log file. The handler watches the client's connection: if the
client dies (Snakemake killed, job cancelled), the child and its DataLoader workers are
killed with it; when the child exits, its exit code goes back to the client, which exits
with it.

The socket's name carries a digest of the Python executable and of this package's source,
so an edit of the training code never runs in a server that imported the old code. A server
exits after ``idle`` seconds with nothing to do.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from speedlimit import project
from speedlimit.run.job import Request

SCRIPTS_DIR = project.ROOT / "scripts"  # what the server puts on its PYTHONPATH
IDLE_SECONDS = 120.0
START_TIMEOUT = 180.0


def code_digest() -> str:
    """The server's identity: the interpreter, and the same digest of the training code that
    is the train_cell rule's rerun trigger (so both change together)."""
    digest = hashlib.sha256(sys.executable.encode())
    digest.update(project.code_digest(project.TRAIN_SCRIPT).encode())
    return digest.hexdigest()[:16]


def socket_path() -> Path:
    """The warm server's socket: in $SPEEDLIMIT_WARM_DIR (or the temp folder), named by the
    user and the code digest."""
    base = Path(os.environ.get("SPEEDLIMIT_WARM_DIR") or tempfile.gettempdir())
    path = base / f"speedlimit-warm-{os.getuid()}-{code_digest()}.sock"
    if len(os.fsencode(path)) > 100:  # AF_UNIX paths end at 107 bytes
        raise RuntimeError(f"warm-server socket path too long for a Unix socket: {path}; "
                           "set SPEEDLIMIT_WARM_DIR to a shorter folder")
    return path


def stop_servers(directory: Path | None = None) -> list[int]:
    """Terminate the warm servers whose sockets live in ``directory``; return their pids."""
    directory = directory or socket_path().parent
    stopped = []
    for pidfile in Path(directory).glob("speedlimit-warm-*.sock.pid"):
        with contextlib.suppress(ValueError, ProcessLookupError, FileNotFoundError):
            pid = int(pidfile.read_text())
            os.kill(pid, signal.SIGTERM)
            stopped.append(pid)
    return stopped


def _read_line(sock: socket.socket) -> bytes | None:
    """One newline-terminated message (the protocol's only kind), or None at end of stream."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    return data


# ---------------------------------------------------------------- client


def _connect(path: Path) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    return sock


def _spawn(path: Path) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SCRIPTS_DIR),
                                                      env.get("PYTHONPATH")]))
    with open(f"{path}.log", "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "speedlimit.run.warm", "serve", str(path)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True, env=env, cwd="/",
        )


def connect(path: Path | None = None, timeout: float = START_TIMEOUT) -> socket.socket:
    """A connection to the warm server, starting one when none answers."""
    path = path or socket_path()
    sock = _connect(path)
    if sock:
        return sock
    with open(f"{path}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one client starts the server; the others wait
        sock = _connect(path)
        if sock:
            return sock
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a stale socket of a server that died
        server = _spawn(path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.05)
            sock = _connect(path)
            if sock:
                return sock
            if server.poll() is not None:  # it died: say why instead of waiting it out
                tail = "".join(Path(f"{path}.log").read_text(errors="replace")
                               .splitlines(keepends=True)[-5:])
                raise RuntimeError(f"warm server exited with code {server.returncode} "
                                   f"(log {path}.log):\n{tail}"
                                   "set `train: {warm_start: false}` to run cells without it")
    raise RuntimeError(f"warm server did not start within {timeout:.0f} s; see {path}.log")


def run(request: Request, path: Path | None = None) -> int:
    """Have the warm server run ``request``; return the cell's exit code."""
    sock = connect(path)
    with sock:
        sock.sendall(request.to_json().encode() + b"\n")
        reply = _read_line(sock)
        if reply is None:
            raise RuntimeError("warm server closed the connection without an exit code")
    return int(json.loads(reply)["exit"])


# ---------------------------------------------------------------- server


def _child(request: Request, listener: socket.socket, conn: socket.socket) -> None:
    """In the forked child: become the cell's process and run it. Never returns."""
    code = 1
    try:
        listener.close()
        conn.close()
        os.setsid()
        os.chdir(request.cwd)
        os.environ.clear()
        os.environ.update(request.env)
        if request.log:
            fd = os.open(request.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.close(fd)
        sys.argv = ["speedlimit-cell", request.cell.path]
        from speedlimit import logs
        from speedlimit.run import job

        logs.setup()
        code = job.execute(request)
    except BaseException:  # noqa: BLE001 - the traceback goes to the cell's log
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _handle(listener: socket.socket, conn: socket.socket) -> None:
    """In the forked handler: run one request's child and report its exit code."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    data = _read_line(conn)
    if data is None:  # the client went away before asking anything
        os._exit(0)
    request = Request.from_json(data.decode())
    pid = os.fork()
    if pid == 0:
        _child(request, listener, conn)
    listener.close()
    sel = selectors.DefaultSelector()
    sel.register(conn, selectors.EVENT_READ)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps({"exit": code if code >= 0 else 128 - code}).encode()
                             + b"\n")
            os._exit(0)
        if sel.select(timeout=0.2):
            try:
                gone = not conn.recv(1, socket.MSG_PEEK)
            except OSError:
                gone = True
            if gone:  # the client died: so does its cell, workers included
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                os._exit(0)


def _dispatch(listener: socket.socket, conn: socket.socket) -> int:
    """Fork a handler for one connection; return its pid."""
    pid = os.fork()
    if pid == 0:
        try:
            _handle(listener, conn)
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

    from speedlimit.run import job, train  # noqa: F401

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(64)
    listener.settimeout(1.0)
    handlers: set[int] = set()
    last_busy = time.monotonic()
    pidfile = Path(f"{path}.pid")
    pidfile.write_text(f"{os.getpid()}\n")
    print(f"speedlimit warm server {os.getpid()} listening on {path}", flush=True)
    try:
        while True:
            for pid in list(handlers):
                if os.waitpid(pid, os.WNOHANG)[0]:
                    handlers.discard(pid)
            if handlers:
                last_busy = time.monotonic()
            elif time.monotonic() - last_busy > idle:
                break
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            handlers.add(_dispatch(listener, conn))
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # no new client can connect from here on
        listener.setblocking(False)
        while True:  # serve the clients that connected just before the unlink
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, OSError):
                break
            conn.setblocking(True)
            handlers.add(_dispatch(listener, conn))
        listener.close()
        for pid in handlers:
            os.waitpid(pid, 0)
        with contextlib.suppress(FileNotFoundError):
            pidfile.unlink()
        print(f"speedlimit warm server {os.getpid()} idle for {idle:.0f} s, exiting", flush=True)


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        serve(Path(sys.argv[2]), float(os.environ.get("SPEEDLIMIT_WARM_IDLE", IDLE_SECONDS)))
    else:
        sys.exit("usage: python -m speedlimit.run.warm serve SOCKET")
