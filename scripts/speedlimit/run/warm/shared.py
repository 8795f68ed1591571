"""What the warm start's client and server share (:mod:`speedlimit.run.warm`): the folder of
this user's servers and its checks, a server's identity and socket, the peer's user id, the
start lock, and the one-line JSON protocol."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import pwd
import re
import socket
import stat
import struct
import sys
import tempfile
from pathlib import Path

from speedlimit import project

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
