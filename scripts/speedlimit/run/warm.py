"""Warm start: pay ``import torch, torchvision`` once per machine, not once per cell.

A cell job (the *client*) connects to a Unix socket. Behind it a *server* process has
imported torch, torchvision and the training code, but has run no torch operation (so no
thread pool and no CUDA context exist yet). For each request it forks a *handler*, and the
handler forks the *child* that becomes the cell's process: a fresh session, the job's working
directory, environment, log, CPU affinity, niceness, resource limits, umask and control
groups. Only then does the handler tell the client that the cell started; from there the
handler watches the client's connection: if the client dies (Snakemake killed, job
cancelled, the job's time limit), the child and its DataLoader workers are killed with it;
when the child exits, its exit code goes back to the client, which exits with it.

Safe on a shared machine, and never the cause of a failed cell:

* The socket and the server's files live in a folder only this user can enter
  (``$SPEEDLIMIT_WARM_DIR``, else ``$XDG_RUNTIME_DIR/speedlimit``, else
  ``<temp>/speedlimit-warm-<uid>``), whose owner and mode are checked before each use.
* Both ends check the peer's user id (``SO_PEERCRED``): the client sends nothing (no
  environment) to another user's process, and the server runs nothing for one.
* The socket is named by the server's *identity*: the interpreter, where the code was loaded
  from (the project folder and its package folder's inode), a digest of the training code and
  the torch and torchvision versions. The client sends its identity, the server compares it
  with its own and refuses on any difference, and a server whose code folder is gone or was
  replaced refuses every cell and exits.
* Whatever fails before the cell's clock could start (an unsafe folder, another user, no
  server, a refusing server, a child that cannot become the cell's process) raises
  :class:`WarmUnavailable`; the job then runs the cell cold, with one warning in its log.

A server exits after ``idle`` seconds with nothing to do, and takes its socket, pid and log
files with it; files of a server killed outright are swept by the next server's start.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import pwd
import re
import resource
import selectors
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from speedlimit import project
from speedlimit.run import fingerprint, job
from speedlimit.run.job import Request

SCRIPTS_DIR = project.ROOT / "scripts"  # what the server puts on its PYTHONPATH
IDLE_SECONDS = 120.0
START_TIMEOUT = 180.0
DIR_ENV = "SPEEDLIMIT_WARM_DIR"
START_LOCK = "start.lock"  # one per folder: one client at a time starts a server
SERVER_ARGS = ["-m", "speedlimit.run.warm", "serve"]  # + the socket: how /proc shows a server


class WarmUnavailable(RuntimeError):
    """The warm path cannot run this cell; raised before the cell's clock could start, so the
    job runs the cell cold instead. The message says why, in one line."""


def _user(uid: int) -> str:
    try:
        return f"user {pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


# ---------------------------------------------------------------- where, and who


def _private(path: Path, create: bool = True) -> Path:
    """``path``, a folder only this user can enter (created so when missing), or
    :class:`WarmUnavailable` saying why not."""
    if create:
        with contextlib.suppress(FileExistsError, FileNotFoundError):
            os.mkdir(path, 0o700)
    try:
        st = os.lstat(path)
    except OSError as err:
        raise WarmUnavailable(f"cannot use {path} for the warm server: {err.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise WarmUnavailable(f"{path} is a symbolic link, not a folder of yours: refusing it")
    if not stat.S_ISDIR(st.st_mode):
        raise WarmUnavailable(f"{path} is not a folder: refusing it")
    if st.st_uid != os.getuid():
        raise WarmUnavailable(f"{path} belongs to {_user(st.st_uid)}, not to you "
                              f"({_user(os.getuid())}): refusing it")
    if st.st_mode & 0o077:
        raise WarmUnavailable(f"{path} has mode {stat.S_IMODE(st.st_mode):o}: other users can "
                              "enter it; refusing it (chmod 700 it, or remove it)")
    return path


def _base() -> Path:
    """The folder the server's files go to, unchecked."""
    chosen = os.environ.get(DIR_ENV)
    if chosen:
        return Path(os.path.abspath(chosen))
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        with contextlib.suppress(WarmUnavailable):
            return _private(Path(runtime), create=False) / "speedlimit"
    return Path(tempfile.gettempdir()) / f"speedlimit-warm-{os.getuid()}"


def folder() -> Path:
    """The folder of this user's warm servers, checked: owned by the user, entered by nobody
    else (created with mode 0700 when missing)."""
    return _private(_base())


def _version_of(package: str) -> str | None:
    """A package's version and location, read from its files without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.origin:
        return None
    try:
        text = Path(spec.origin).with_name("version.py").read_text()
    except OSError:
        text = ""
    found = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)", text, re.M)
    return f"{found.group(1) if found else '?'} at {Path(spec.origin).parent}"


def identity() -> dict:
    """What a server must share with a client to run its cells: the interpreter, where the
    code is loaded from (the project folder, and its package folder's device and inode, so a
    copy deleted and made again elsewhere or in place is another server), the train_cell
    rule's code digest (its rerun trigger: both change together), torch and torchvision."""
    package = os.stat(project.package_dir())
    return {
        "python": sys.executable,
        "root": str(project.ROOT),
        "package": [package.st_dev, package.st_ino],
        "code": project.code_digest(project.TRAIN_SCRIPT),
        "torch": _version_of("torch"),
        "torchvision": _version_of("torchvision"),
    }


def digest(ident: dict | None = None) -> str:
    """The server's name: a digest of its :func:`identity`."""
    text = json.dumps(ident or identity(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def socket_path(ident: dict | None = None) -> Path:
    """The socket of the server with ``ident`` (this code's by default), in :func:`folder`."""
    path = _base() / f"{digest(ident)}.sock"
    if len(os.fsencode(path)) > 100:  # AF_UNIX paths end at 107 bytes
        raise WarmUnavailable(f"warm-server socket path too long for a Unix socket: {path}; "
                              f"set {DIR_ENV} to a shorter folder")
    _private(path.parent)
    return path


def peer(sock: socket.socket) -> tuple[int, int]:
    """The pid and user id of the process at the other end of a Unix socket (SO_PEERCRED)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _ = struct.unpack("3i", creds)
    return pid, uid


def is_warm_server(pid: int, path: Path) -> bool:
    """Whether process ``pid`` is this user's warm server of socket ``path``: checked in /proc
    (its user ids and its command line), not taken from a file."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    except OSError:
        return False
    uids = next((line.split()[1:] for line in status.splitlines() if line.startswith("Uid:")),
                [])
    mine = str(os.getuid())
    return (bool(uids) and all(uid == mine for uid in uids)
            and [os.fsdecode(arg) for arg in argv[1:]] == [*SERVER_ARGS, str(path)])


def stop_servers(directory: Path | None = None) -> list[int]:
    """Terminate this user's warm servers whose sockets live in ``directory``; return their
    pids. Only a process that :func:`is_warm_server` is ever signalled."""
    try:
        directory = Path(directory) if directory else folder()
    except WarmUnavailable:
        return []
    stopped = []
    for pidfile in directory.glob("*.pid"):
        with contextlib.suppress(ValueError, OSError):
            pid = int(pidfile.read_text())
            if is_warm_server(pid, pidfile.with_suffix(".sock")):
                os.kill(pid, signal.SIGTERM)
                stopped.append(pid)
    return stopped


@contextlib.contextmanager
def _start_lock(directory: Path):
    fd = os.open(directory / START_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _sweep(directory: Path) -> None:
    """Remove the files of servers that are gone without cleaning up (SIGKILL, a reboot).
    Call with the start lock held."""
    stems = {p.stem for p in directory.iterdir() if p.suffix in (".sock", ".pid", ".log")}
    for stem in stems:
        try:
            pid = int((directory / f"{stem}.pid").read_text())
        except (OSError, ValueError):
            pid = None
        if pid and is_warm_server(pid, directory / f"{stem}.sock"):
            continue
        for suffix in (".sock", ".pid", ".log"):
            (directory / f"{stem}{suffix}").unlink(missing_ok=True)


def _unlink_if_same(path: Path, inode: int) -> None:
    """Remove ``path`` if it is still the file this process made (not a successor's)."""
    with contextlib.suppress(OSError):
        if os.lstat(path).st_ino == inode:
            path.unlink()


def _read_line(sock: socket.socket) -> bytes | None:
    """One newline-terminated message (the protocol's only kind), or None at end of stream."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    return data


def _send(sock: socket.socket, message: dict) -> None:
    with contextlib.suppress(OSError):
        sock.sendall(json.dumps(message).encode() + b"\n")


# ---------------------------------------------------------------- client


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
        message = {"identity": ident, "request": {**request.to_dict(), "warm_start": True}}
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
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except OSError:
        job.kill_group(child)  # no answer from the handler: do it from here
    if data.endswith(b"\n"):  # it ended by itself in the meantime
        return int(json.loads(data)["exit"])
    return job.stopped_from_outside(request, waited)


# ---------------------------------------------------------------- server


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
    from speedlimit.run import preflight, train  # noqa: F401

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


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        serve(Path(sys.argv[2]), float(os.environ.get("SPEEDLIMIT_WARM_IDLE", IDLE_SECONDS)))
    else:
        sys.exit("usage: python -m speedlimit.run.warm serve SOCKET")
