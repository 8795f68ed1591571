"""The warm server: cells run in processes forked from one that imported torch once."""

import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import alive
from speedlimit import project
from speedlimit.run import job, lock
from speedlimit.run import warm
from speedlimit.run.warm import server, shared
from speedlimit.grid import Cell
from warmservers import stop_servers

CELL = Cell(loader="dataloader", batch_size=100, lr=0.01, torch_threads=1, device="cpu",
            num_workers=2, pin_memory=False, persistent_workers=False, prefetch_factor=None,
            workload="fashionmnist")
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_cell.py"


@pytest.fixture
def warm_dir(monkeypatch):
    d = Path(tempfile.mkdtemp(prefix="sl-warm-"))  # short: a Unix socket path has 107 bytes
    monkeypatch.setenv("SPEEDLIMIT_WARM_DIR", str(d))
    monkeypatch.setenv("SPEEDLIMIT_WARM_IDLE", "5")
    monkeypatch.setenv("SPEEDLIMIT_LOCK_DIR", str(d))
    yield d
    stop_servers(d)
    shutil.rmtree(d, ignore_errors=True)


def test_cells_run_in_a_warm_server_and_match_a_cold_run(synthetic_root, tmp_path, warm_dir):
    log = tmp_path / "warm.log"
    req = job.Request(cell=CELL, dataset_root=synthetic_root,
                        output=str(tmp_path / "warm.json"), log=str(log), epochs=2)
    assert warm.run(req) == 0
    second = job.Request(**{**req.__dict__, "output": str(tmp_path / "warm2.json")})
    assert warm.run(second) == 0
    assert job.execute(job.Request(**{**req.__dict__, "output": str(tmp_path / "cold.json"),
                                          "log": None})) == 0
    loss = {name: [e["loss"] for e in json.loads((tmp_path / name).read_text())["epochs"]]
            for name in ("warm.json", "warm2.json", "cold.json")}
    assert loss["warm.json"] == loss["warm2.json"] == loss["cold.json"]
    pids = re.findall(r"running in process (\d+)", log.read_text())
    assert len(set(pids)) == 2 and str(os.getpid()) not in pids  # a fresh child per cell
    assert warm.socket_path().parent == warm_dir


def test_a_failing_cell_returns_its_exit_code_and_logs_the_traceback(tmp_path, warm_dir):
    log = tmp_path / "fail.log"
    req = job.Request(cell=CELL, dataset_root=str(tmp_path / "nowhere"),
                        output=str(tmp_path / "x.json"), log=str(log))
    assert warm.run(req) != 0
    assert "Traceback" in log.read_text()
    assert not (tmp_path / "x.json").exists()


def test_killing_the_client_kills_the_cell_and_its_workers(synthetic_root, tmp_path, warm_dir):
    log = tmp_path / "kill.log"
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), CELL.path, "--data-root", synthetic_root,
         "--output", str(tmp_path / "k.json"), "--log", str(log), "--epochs", "500"],
        env={**os.environ, "PYTHONPATH": str(SCRIPT.parent)})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.findall(r"running in process (\d+)", log.read_text() if log.exists() else "")
        if found and "epoch 1:" in log.read_text():
            # (between two epochs a cell has no workers: wait for the next epoch's)
            workers = [int(p) for p in subprocess.run(["pgrep", "-P", found[0]],
                                                      capture_output=True,
                                                      text=True).stdout.split()]
            if workers:
                break
        time.sleep(0.2)
    child = int(found[0])
    assert alive(child) and workers
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(p) for p in [child, *workers]):
        time.sleep(0.1)
    assert not any(alive(p) for p in [child, *workers])
    assert not (tmp_path / "k.json").exists()


def test_a_copy_or_an_edit_of_the_code_means_another_server(tmp_path, monkeypatch):
    here = warm.identity()
    copy = project.copy_to(tmp_path / "copy")
    monkeypatch.setattr(project, "ROOT", copy)
    there = warm.identity()
    assert there["code"] == here["code"]  # the same code, loaded from somewhere else:
    assert there["root"] == str(copy) and there["package"] != here["package"]
    assert warm.digest(there) != warm.digest(here)  # another server
    assert there["torch"].startswith(torch_version()) and there["python"] == sys.executable
    train = copy / "scripts" / "speedlimit" / "run" / "train.py"
    train.write_text(train.read_text() + "\n# edit\n")
    assert warm.digest() != warm.digest(there)


def torch_version() -> str:
    from importlib.metadata import version

    return version("torch")


def test_the_machine_lock_serializes_cells(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEEDLIMIT_LOCK_DIR", str(tmp_path))
    code = ("import sys,time; sys.path.insert(0, sys.argv[1]); from speedlimit.run import lock\n"
            "with lock.machine_lock():\n"
            "    print(time.monotonic(), flush=True); time.sleep(0.5); print(time.monotonic())\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(SCRIPT.parent)],
                              stdout=subprocess.PIPE, text=True,
                              env={**os.environ}) for _ in range(3)]
    spans = sorted(tuple(map(float, p.communicate()[0].split())) for p in procs)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans


def test_servers_are_stopped_on_request(synthetic_root, tmp_path, warm_dir):
    req = job.Request(cell=CELL, dataset_root=synthetic_root,
                        output=str(tmp_path / "s.json"), log=str(tmp_path / "s.log"))
    assert warm.run(req) == 0
    pids = stop_servers(warm_dir)
    assert len(pids) == 1
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and alive(pids[0]):
        time.sleep(0.1)
    assert not alive(pids[0])
    assert not warm.socket_path().exists()


def test_a_socket_path_too_long_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("SPEEDLIMIT_WARM_DIR", "/tmp/" + "x" * 120)
    with pytest.raises(warm.WarmUnavailable, match="SPEEDLIMIT_WARM_DIR"):
        warm.socket_path()
    assert not Path("/tmp/" + "x" * 120).exists()


# ---------------------------------------------------------------- issue 10


def cell_request(tmp_path, root, name, **kw) -> job.Request:
    return job.Request(cell=CELL, dataset_root=root, output=str(tmp_path / f"{name}.json"),
                       log=str(tmp_path / f"{name}.log"), **kw)


def spec(cell: Cell, root: str) -> str:
    """The train_cell rule's request param for ``cell``."""
    from speedlimit.run import workloads
    from speedlimit.run.request import Request

    return Request.for_rule(cell, {"mode": "epochs"}, 1, 0, root,
                            workloads.resolve(cell.workload).for_request(), "code", 0, None)


def run_job(cell: Cell, root: str, output: Path, log: Path, *options: str, env=None,
            **popen) -> subprocess.CompletedProcess:
    """One cell as the train_cell rule runs it (--request: everything goes to its log)."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--request", spec(cell, root), "--output", str(output),
         "--log", str(log), "--no-exclusive", *options],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(SCRIPT.parent), **(env or {})}, **popen)


def warnings_in(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if "warm start unavailable" in line]


def test_the_socket_folder_is_the_users_own_or_refused(warm_dir, monkeypatch):
    tmp_path = warm_dir  # (short: a socket path must be)
    monkeypatch.delenv("SPEEDLIMIT_WARM_DIR")
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    made = warm.folder()  # created, mode 0700
    assert made == tmp_path / f"speedlimit-warm-{os.getuid()}"
    assert made.stat().st_mode & 0o777 == 0o700 and made.stat().st_uid == os.getuid()
    made.chmod(0o755)
    with pytest.raises(warm.WarmUnavailable, match="mode 755: other users can enter it"):
        warm.socket_path()
    made.rmdir()
    made.symlink_to(tmp_path)
    with pytest.raises(warm.WarmUnavailable, match="is a symbolic link"):
        warm.folder()
    made.unlink()
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert warm.folder() == runtime / "speedlimit"  # $XDG_RUNTIME_DIR, when safe
    runtime.chmod(0o777)
    assert warm.folder() == made  # unsafe: the temp folder's private one


def test_an_unsafe_folder_means_a_cold_start_with_one_warning(synthetic_root, tmp_path,
                                                              warm_dir):
    warm_dir.chmod(0o777)
    proc = run_job(CELL, synthetic_root, tmp_path / "u.json", tmp_path / "u.log")
    warm_dir.chmod(0o700)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "u.json").read_text())
    assert record["status"] == "ok" and record["environment"]["warm_start"] is False
    line, = warnings_in(tmp_path / "u.log")
    assert f"{warm_dir} has mode 777: other users can enter it" in line
    assert "the cell starts cold" in line
    assert list(warm_dir.iterdir()) == []  # nothing was started or sent there


def test_a_child_that_cannot_become_the_cells_process_means_a_cold_start(
        synthetic_root, tmp_path, warm_dir, caplog):
    import train_cell

    request = cell_request(tmp_path, synthetic_root, "b")
    # A resource limit the forked child cannot take on (soft above hard).
    request.process["rlimits"]["nofile"] = [4096, 1024]
    assert train_cell.run(request, str(tmp_path / "b.json"), exclusive=False) == 0
    record = json.loads((tmp_path / "b.json").read_text())
    assert record["status"] == "ok" and record["environment"]["warm_start"] is False
    warned = [r.getMessage() for r in caplog.records if "warm start unavailable" in r.message]
    assert len(warned) == 1 and "could not become the cell's: ValueError" in warned[0]
    retired = int(re.findall(r"the server (\d+) retires", warned[0])[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and alive(retired):
        time.sleep(0.1)
    assert not alive(retired)
    # The next cell starts a fresh server (with its job's settings), and runs warm.
    again = cell_request(tmp_path, synthetic_root, "c")
    assert train_cell.run(again, str(tmp_path / "c.json"), exclusive=False) == 0
    assert json.loads((tmp_path / "c.json").read_text())["environment"]["warm_start"] is True
    assert int(next(warm_dir.glob("*.pid")).read_text()) != retired


def test_a_server_whose_code_folder_is_gone_refuses_and_exits(synthetic_root, tmp_path,
                                                             warm_dir):
    copy = project.copy_to(tmp_path / "copy")
    start = ("import json, sys; sys.path.insert(0, sys.argv[1]); from speedlimit.run import warm\n"
             "ident = warm.identity(); warm.connect().close()\n"
             "print(json.dumps([ident, str(warm.socket_path(ident))]))")
    out = subprocess.run([sys.executable, "-c", start, str(copy / "scripts")], check=True,
                         capture_output=True, text=True, env=os.environ).stdout
    ident, sock = json.loads(out)
    pid = int(Path(sock).with_suffix(".pid").read_text())
    assert warm.is_warm_server(pid, Path(sock)) and ident["root"] == str(copy)
    shutil.rmtree(copy)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.1)
    assert not alive(pid)  # it noticed by itself, and took its files with it
    assert sorted(p.name for p in warm_dir.iterdir()) == ["start.lock"]


def test_a_stale_server_refuses_a_cell(synthetic_root, tmp_path, monkeypatch):
    """The handler's own check, should a client reach a stale server before it exits."""
    request = cell_request(tmp_path, synthetic_root, "s")
    own = warm.identity()
    monkeypatch.setattr(server, "_stale", lambda own: "its code folder /x is gone")
    server_end, client = socket.socketpair()
    handler = os.fork()
    if handler == 0:  # a handler forked by a server (this test)
        try:
            client.close()
            server._handle(server_end, server_end, own)
        finally:
            os._exit(1)
    server_end.close()
    client.sendall(json.dumps({"identity": own, "request": request.to_dict()}).encode() + b"\n")
    reply = json.loads(shared._read_line(client))
    assert os.waitpid(handler, 0)[1] == 0
    assert reply == {"refused": f"the warm server {os.getpid()} is stale: "
                                "its code folder /x is gone"}
    assert not (tmp_path / "s.json").exists() and not (tmp_path / "s.log").exists()


def test_servers_leave_no_files_behind(synthetic_root, tmp_path, warm_dir, monkeypatch):
    monkeypatch.setenv("SPEEDLIMIT_WARM_IDLE", "1")
    assert warm.run(cell_request(tmp_path, synthetic_root, "a")) == 0
    pid = int(next(warm_dir.glob("*.pid")).read_text())
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.1)
    assert not alive(pid)
    assert sorted(p.name for p in warm_dir.iterdir()) == ["start.lock"]
    # A server killed outright leaves its files; the next server's start sweeps them.
    assert warm.run(cell_request(tmp_path, synthetic_root, "b")) == 0
    pid = int(next(warm_dir.glob("*.pid")).read_text())
    os.kill(pid, signal.SIGKILL)
    while alive(pid):
        time.sleep(0.05)
    for name in ("0123456789abcdef.sock", "0123456789abcdef.pid", "0123456789abcdef.log"):
        (warm_dir / name).write_text("1\n")  # another digest's, its server long gone
    assert len(list(warm_dir.iterdir())) == 7
    monkeypatch.setenv("SPEEDLIMIT_WARM_IDLE", "30")
    assert warm.run(cell_request(tmp_path, synthetic_root, "c")) == 0
    stem = warm.digest()
    assert sorted(p.name for p in warm_dir.iterdir()) == sorted(
        ["start.lock", f"{stem}.sock", f"{stem}.pid", f"{stem}.log"])


def test_stop_servers_signals_only_this_users_warm_servers(synthetic_root, tmp_path, warm_dir):
    assert warm.run(cell_request(tmp_path, synthetic_root, "a")) == 0
    server = int(next(warm_dir.glob("*.pid")).read_text())
    bystander = subprocess.Popen(["sleep", "60"])
    (warm_dir / "fedcba9876543210.pid").write_text(f"{bystander.pid}\n")
    (warm_dir / "0123456789abcdef.pid").write_text("1\n")
    assert stop_servers(warm_dir) == [server]
    time.sleep(0.5)
    assert bystander.poll() is None  # not a warm server: never signalled
    bystander.kill()
    bystander.wait()


def test_a_warm_child_runs_with_the_jobs_affinity_niceness_and_limits(synthetic_root,
                                                                       tmp_path, warm_dir):
    """The server is started by this test's process (all CPUs, niceness 0, its limits); the
    job narrows each of them. Warm and cold, the cell reports the job's."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 CPUs to narrow the affinity")
    assert warm.run(cell_request(tmp_path, synthetic_root, "first")) == 0  # the server
    import resource

    def narrowed():
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, 0) + 3)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 1000), min(hard, 2000)))
        os.umask(0o027)

    records = {}
    for mode in ("warm", "no-warm"):
        out, log = tmp_path / f"{mode}.json", tmp_path / f"{mode}.log"
        proc = run_job(CELL, synthetic_root, out, log, f"--{mode}", preexec_fn=narrowed)
        assert proc.returncode == 0, proc.stderr
        records[mode] = json.loads(out.read_text())["environment"]
        assert not warnings_in(log)
    warm_env, cold_env = records["warm"], records["no-warm"]
    assert warm_env["warm_start"] is True and cold_env["warm_start"] is False
    assert warm_env["process"]["affinity"] == [min(os.sched_getaffinity(0))]
    assert warm_env["process"]["nice"] == os.getpriority(os.PRIO_PROCESS, 0) + 3
    assert warm_env["process"]["rlimits"]["nofile"][1] <= 2000
    assert warm_env["process"]["umask"] == "0027"
    for key in ("process", "cpus_allowed", "torch_threads", "torch_interop_threads",
                "thread_env"):
        assert warm_env[key] == cold_env[key], key


def test_a_cold_job_killed_takes_its_cell_and_workers_with_it(synthetic_root, tmp_path):
    log = tmp_path / "kill.log"
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), CELL.path, "--data-root", synthetic_root,
         "--output", str(tmp_path / "k.json"), "--log", str(log), "--epochs", "500",
         "--no-warm", "--no-exclusive"],
        stderr=open(log, "w"), env={**os.environ, "PYTHONPATH": str(SCRIPT.parent)})
    deadline = time.monotonic() + 60
    workers = []
    while time.monotonic() < deadline and not workers:
        found = re.findall(r"running in process (\d+)", log.read_text())
        if found and "epoch 1:" in log.read_text():
            workers = [int(p) for p in subprocess.run(["pgrep", "-P", found[0]],
                                                      capture_output=True,
                                                      text=True).stdout.split()]
        time.sleep(0.2)
    child = int(found[0])
    assert child != proc.pid and workers
    proc.send_signal(signal.SIGTERM)  # as Snakemake cancels a job
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(p) for p in [child, *workers]):
        time.sleep(0.1)
    assert not any(alive(p) for p in [child, *workers])


def test_a_cell_waiting_for_the_machine_lock_says_who_holds_it(synthetic_root, tmp_path,
                                                               monkeypatch):
    monkeypatch.setenv("SPEEDLIMIT_LOCK_DIR", str(tmp_path))
    cell = Cell(loader="tensor", batch_size=500, lr=0.01, torch_threads=1, device="cpu",
                workload="fashionmnist")
    log = tmp_path / "wait.log"
    with lock.machine_lock(holder="dataloader/some/other/cell"):
        waiting = subprocess.Popen(
            [str(SCRIPT.with_suffix(".sh")), str(lock.lock_path()), str(tmp_path / "w.json"),
             str(log), sys.executable, "--request", spec(cell, synthetic_root)],
            stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "held by" not in (
                log.read_text() if log.exists() else ""):
            time.sleep(0.2)
        assert not (tmp_path / "w.json").exists()
    assert waiting.wait(timeout=120) == 0
    user = pwd.getpwuid(os.getuid()).pw_name
    first = log.read_text().splitlines()[0]
    assert first == (f"speedlimit: waited 10 s for the machine's cell lock {lock.lock_path()}; "
                     f"held by: pid {os.getpid()}, user {user}, cell dataloader/some/other/cell")
    assert "held by" not in waiting.stderr.read()  # the holder is this user's own cell
    assert json.loads((tmp_path / "w.json").read_text())["status"] == "ok"


# ------------------------------------------- issue 10, section 2: another user on the machine

SYSTEM_PYTHON = "/usr/bin/python3"  # another user cannot run this user's venv's interpreter
LISTEN = r"""
import os, socket, sys
path, how = sys.argv[1], sys.argv[2]
if how == "folder":  # their own folder where this user's would be, socket path bound first
    os.mkdir(os.path.dirname(path), 0o777)
elif how == "symlink":  # a symbolic link where this user's folder would be
    os.mkdir(os.path.dirname(path) + ".real", 0o777)
    os.symlink(os.path.dirname(path) + ".real", os.path.dirname(path))
s = socket.socket(socket.AF_UNIX)
s.bind(path)
if how == "drop":  # bound in this user's folder (by root), then listening as the other user
    os.setgid(int(sys.argv[4]))
    os.setuid(int(sys.argv[3]))
s.listen(8)
print("listening", flush=True)
while True:
    conn, _ = s.accept()
    conn.settimeout(5)
    data = b""
    try:
        while chunk := conn.recv(65536):
            data += chunk
    except OSError:
        pass
    print(f"connection: {len(data)} bytes", flush=True)
    conn.close()
"""


@pytest.fixture(scope="module")
def other_user():
    """A second local user, created for these tests and removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root: creates a second local user (useradd) to play another user")
    if not shutil.which("useradd") or not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.skip(f"needs useradd and {SYSTEM_PYTHON}")
    name = f"slwarm{os.getpid() % 100000}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    name], check=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["pkill", "-KILL", "-u", name])  # only that user's processes
        subprocess.run(["userdel", name], check=True)


def as_user(user, code: str, *args: str, root: bool = False) -> subprocess.Popen:
    """Run ``code`` (system Python) as ``user`` (or as root, for one that drops to it)."""
    who = {} if root else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    proc = subprocess.Popen([SYSTEM_PYTHON, "-c", code, *args], stdout=subprocess.PIPE,
                            text=True, cwd="/", env={"PATH": "/usr/bin:/bin"}, **who)
    return proc


def shared_tmp() -> Path:
    """A temp folder shared by all users, as /tmp is (sticky, world-writable)."""
    path = Path(tempfile.mkdtemp(prefix="sl-shared-", dir="/tmp"))
    path.chmod(0o1777)
    return path


def stopped(proc: subprocess.Popen) -> str:
    proc.kill()
    return proc.communicate()[0]


def cold_beside(squatter: subprocess.Popen, root: str, tmp_path: Path) -> tuple[str, str]:
    """One cell's job while another user's ``squatter`` listens: the cell must finish, cold,
    with one warning. Returns what the squatter heard and that warning."""
    try:
        assert squatter.stdout.readline().strip() == "listening"
        proc = run_job(CELL, root, tmp_path / "c.json", tmp_path / "c.log")
    finally:
        heard = stopped(squatter)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "c.json").read_text())
    assert record["status"] == "ok" and record["environment"]["warm_start"] is False
    line, = warnings_in(tmp_path / "c.log")
    return heard, line


@pytest.mark.parametrize("how", ["folder", "symlink"])
def test_another_users_planted_folder_gets_nothing_and_the_cell_runs_cold(
        other_user, how, synthetic_root, tmp_path, monkeypatch):
    shared = shared_tmp()
    monkeypatch.delenv("SPEEDLIMIT_WARM_DIR")
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(shared))
    folder = shared / f"speedlimit-warm-{os.getuid()}"  # where this user's would be
    squatter = as_user(other_user, LISTEN, str(folder / f"{warm.digest()}.sock"), how)
    heard, line = cold_beside(squatter, synthetic_root, tmp_path)
    assert "connection" not in heard  # never connected to, so sent nothing
    owner = f"user {other_user.pw_name} (uid {other_user.pw_uid})"
    said = {"folder": f"{folder} belongs to {owner}, not to you",
            "symlink": f"{folder} is a symbolic link, not a folder of yours"}[how]
    assert said in line and "the cell starts cold" in line, line
    shutil.rmtree(shared, ignore_errors=True)


def test_another_users_process_on_the_socket_gets_nothing(other_user, synthetic_root, tmp_path,
                                                          warm_dir):
    path = warm_dir / f"{warm.digest()}.sock"
    squatter = as_user(other_user, LISTEN, str(path), "drop", str(other_user.pw_uid),
                       str(other_user.pw_gid), root=True)
    heard, line = cold_beside(squatter, synthetic_root, tmp_path)
    assert heard.splitlines() == ["connection: 0 bytes"]  # the client hung up, saying nothing
    assert (f"the process listening on {path} (pid {squatter.pid}) runs as user "
            f"{other_user.pw_name} (uid {other_user.pw_uid}), not as you: sent it nothing"
            in line), line


def test_the_server_runs_nothing_for_another_user(other_user, synthetic_root, tmp_path,
                                                  warm_dir):
    assert warm.run(cell_request(tmp_path, synthetic_root, "mine")) == 0
    sock = next(warm_dir.glob("*.sock"))
    shared = shared_tmp()
    request = cell_request(shared, synthetic_root, "theirs")
    message = json.dumps({"identity": warm.identity(), "request": request.to_dict()})
    client = ("import socket, sys\n"
              "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
              "s.sendall(sys.argv[2].encode() + b'\\n'); s.settimeout(30)\n"
              "try:\n    print(repr(s.recv(65536)))\n"
              "except ConnectionResetError:\n    print('reset')\n")
    warm_dir.chmod(0o711)  # a lapse: the folder alone would keep them out
    sock.chmod(0o777)
    try:
        theirs = as_user(other_user, client, str(sock), message)
        answer = theirs.communicate(timeout=60)[0]
    finally:
        warm_dir.chmod(0o700)
    assert answer.strip() in ("b''", "reset")  # closed without a word
    assert (f"refused a connection from user {other_user.pw_name} (uid {other_user.pw_uid})"
            in sock.with_suffix(".log").read_text())
    assert not list(shared.iterdir())  # no cell ran, no log was written
    shutil.rmtree(shared, ignore_errors=True)


DECOY = "speedlimit/run/warm.py"  # a module named as the server's, that only sleeps


def test_stop_servers_never_signals_another_users_process(other_user, warm_dir):
    decoy = Path(tempfile.mkdtemp(prefix="sl-decoy-", dir="/tmp"))
    decoy.chmod(0o755)
    for name in ("speedlimit/__init__.py", "speedlimit/run/__init__.py", DECOY):
        (decoy / name).parent.mkdir(parents=True, exist_ok=True)
        (decoy / name).write_text("import time; time.sleep(120)\n" if name == DECOY else "")
        os.chmod(decoy / name, 0o644)
    sock = warm_dir / "0123456789abcdef.sock"
    theirs = subprocess.Popen([SYSTEM_PYTHON, "-m", "speedlimit.run.warm", "serve", str(sock)],
                              cwd="/", env={"PYTHONPATH": str(decoy)}, user=other_user.pw_uid,
                              group=other_user.pw_gid, extra_groups=[])
    try:
        cmdline = Path(f"/proc/{theirs.pid}/cmdline")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and b"serve" not in cmdline.read_bytes():
            time.sleep(0.05)
        assert cmdline.read_bytes().split(b"\0")[1:-1] == [b"-m", b"speedlimit.run.warm",
                                                            b"serve", os.fsencode(sock)]
        sock.with_suffix(".pid").write_text(f"{theirs.pid}\n")
        assert not warm.is_warm_server(theirs.pid, sock)
        assert stop_servers(warm_dir) == []
        time.sleep(0.5)
        assert theirs.poll() is None
    finally:
        theirs.kill()
        theirs.wait()
        shutil.rmtree(decoy, ignore_errors=True)
