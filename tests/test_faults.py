"""Faults provoked for real, through the real snakemake where a user would meet them.

Issue 6: bad config, broken downloads, a killed run, a failing cell, corrupt results, two
runs at once, resource limits. Each test says what the user sees.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import signal
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import SNAKEMAKE, Project, alive
from httpmirror import Mirror, gz_files
from speedlimit.data import idx
from warmservers import stop_servers

pytestmark = pytest.mark.e2e

# Two DataLoader cells on a small synthetic set: seconds per run.
SMALL = {
    "grid": {"num_workers": [0, 2], "batch_size": [250], "loader": ["dataloader"]},
    "data": {"source": "synthetic", "synthetic": {"train_size": 1000, "test_size": 100}},
    "train": {"repeats": 1},
}
CFG = ["--configfile", "config.yaml", "small.yaml"]


@pytest.fixture
def env():
    """Private cell lock and warm server per test: independent of other tests on the machine."""
    d = tempfile.mkdtemp(prefix="sl-", dir="/tmp")  # short: it holds a Unix socket
    yield {"SPEEDLIMIT_LOCK_DIR": str(d), "SPEEDLIMIT_WARM_DIR": str(d),
            "SPEEDLIMIT_WARM_IDLE": "20"}
    shutil.rmtree(d, ignore_errors=True)


def runs_of(project) -> dict[str, Path]:
    base = project.path / "results" / "runs"
    return {str(p.relative_to(base).with_suffix("")): p for p in sorted(base.rglob("*.json"))}


def mtimes(project) -> dict[str, int]:
    return {k: p.stat().st_mtime_ns for k, p in runs_of(project).items()}


def said(proc) -> str:
    return proc.stdout + proc.stderr


def parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def cell_jobs(project) -> list[int]:
    """Live train_cell jobs of this project (orphans once snakemake is gone): the rule's
    command runs scripts/train_cell.py in the project's folder."""
    out = subprocess.run(["pgrep", "-f", "train_cell.py --output"], capture_output=True,
                         text=True).stdout
    found = []
    for pid in map(int, out.split()):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/cwd").resolve() == project.path.resolve() and alive(pid):
                found.append(pid)
    return found


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# ------------------------------------------------------------------ 1. bad config


def fake_results(project) -> dict[str, bytes]:
    """Stand-in results of an earlier run: a bad config must leave them byte for byte."""
    files = {"results/runs/dataloader/x.json": b'{"a": 1}\n', "results/table.csv": b"run\n1\n"}
    for name, data in files.items():
        (project.path / name).parent.mkdir(parents=True, exist_ok=True)
        (project.path / name).write_bytes(data)
    return files


def untouched(project, files) -> bool:
    found = {str(p.relative_to(project.path)) for p in (project.path / "results").rglob("*")
             if p.is_file()}
    return found == set(files) and all((project.path / n).read_bytes() == d
                                       for n, d in files.items())


@pytest.mark.parametrize("override, words", [
    ("grid={num_workers: [0, -1]}", ["grid.num_workers[1]", ">= 0"]),
    ("grid={num_workers: [1.5]}", ["grid.num_workers[0]", "integer"]),
    ("grid={batch_size: [0]}", ["grid.batch_size[0]", ">= 1"]),
    ("grid={lr: [fast]}", ["grid.lr[0]", "number > 0"]),
    ("grid={lr: [0]}", ["grid.lr[0]", "> 0"]),
    ("grid={num_workers: []}", ["grid.num_workers", "non-empty list"]),
    ("grid={batch_size: [100, 100]}", ["grid.batch_size", "no duplicates"]),
    ("grid={num_worker: [1]}", ["grid.num_worker", "did you mean 'num_workers'"]),
    ("train={epochs: 0}", ["train.epochs", ">= 1"]),
    ("data={source: imagenet}", ["data.source", "one of fashionmnist, synthetic"]),
    ("grid={num_workers: [0,", ["grid", "not valid YAML", "keys: num_workers"]),
])
def test_a_bad_config_value_stops_before_any_job_and_changes_nothing(project, override, words):
    files = fake_results(project)
    proc = project.run("--cores", "all", "--config", override, check=False)
    assert proc.returncode != 0
    for word in words:
        assert word in proc.stderr, proc.stderr
    assert "Job stats" not in said(proc)  # nothing was scheduled
    assert untouched(project, files)


def test_a_malformed_config_file_names_the_line(project):
    files = fake_results(project)
    good = (project.path / "config.yaml").read_text()
    (project.path / "config.yaml").write_text(good.replace("lr: [0.01]", "lr: [0.01"))
    proc = project.run("--cores", "all", check=False)
    assert proc.returncode != 0
    assert re.search(r"config\.yaml is not valid YAML at line \d+, column \d+", proc.stderr)
    assert untouched(project, files)
    # A malformed file given with --configfile is read by Snakemake before the workflow:
    # its own message (docs/faults.md says so); still nothing runs.
    (project.path / "config.yaml").write_text(good)
    (project.path / "mine.yaml").write_text("grid:\n  num_workers: [0, 1\n")
    proc = project.run("--cores", "all", "--configfile", "config.yaml", "mine.yaml", check=False)
    assert proc.returncode != 0 and "not valid JSON or YAML" in proc.stderr
    assert untouched(project, files)


# ------------------------------------------------------------------ 2. downloads


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_faults_through_the_rule(project, tmp_path):
    md5s = idx.write_synthetic(tmp_path / "made", 300, 50, seed=0, gz_dir=tmp_path / "gz")
    made = tmp_path / "made" / "FashionMNIST" / "raw"
    with Mirror(gz_files(tmp_path / "gz")) as mirror:
        data = {"source": "fashionmnist", "md5": md5s, "retries": 1, "timeout": 1,
                "mirrors": [mirror.url("slow"), mirror.url("missing"), mirror.url("corrupt"),
                            mirror.url("truncated"), mirror.url("good")]}
        project.write_config("dl.yaml", {"data": data})
        raw = project.path / "data" / "fashionmnist" / "FashionMNIST" / "raw"
        raw.mkdir(parents=True)
        # Left by an interrupted earlier run: a partial download and a cut-short file.
        (raw / ".train-images-idx3-ubyte.4242.part").write_bytes(b"half a file")
        (raw / "train-labels-idx1-ubyte").write_bytes(
            (made / "train-labels-idx1-ubyte").read_bytes()[:100])
        project.run("download_fashionmnist", "--cores", "1", "--configfile", "config.yaml",
                    "dl.yaml")
        for name in idx.FILES:
            assert (raw / name).read_bytes() == (made / name).read_bytes()
        # Only whole files: the raw ones, the checked .gz each was unpacked from, and the
        # raw files' checksums (what the training jobs declare), which coreutils confirms.
        assert sorted(p.name for p in raw.iterdir()) == sorted(
            [*idx.FILES, *(f"{name}.gz" for name in idx.FILES), idx.MANIFEST])
        subprocess.run(["md5sum", "--check", "--strict", idx.MANIFEST], cwd=raw, check=True,
                       capture_output=True)
        log = (project.path / "logs" / "data" / "download_fashionmnist.log").read_text()
        for kind in ("slow", "missing", "corrupt", "truncated"):
            assert mirror.url(kind) in log
        assert "timed out" in log and "404" in log and "md5 mismatch" in log
        assert "short read" in log and "removing a partial file" in log

        # Every mirror fails: the message names the files, the mirrors and the offline ways.
        bad = {**data, "mirrors": [mirror.url("corrupt"), mirror.url("missing")]}
        project.write_config("bad.yaml", {"data": {**bad, "root": "other"}})
        proc = project.run("download_fashionmnist", "--cores", "1", "--configfile",
                           "config.yaml", "bad.yaml", check=False)
    assert proc.returncode != 0
    out = said(proc)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert name in out
    assert mirror.url("corrupt") in out and mirror.url("missing") in out
    assert "data: {source: synthetic}" in out and "data.root" in out
    other = project.path / "other" / "fashionmnist" / "FashionMNIST" / "raw"
    assert not [p for p in other.iterdir()] if other.exists() else True  # no bad file kept

    # data.root pointed at a local copy of the .gz files: no network needed.
    copy = tmp_path / "copy" / "fashionmnist" / "FashionMNIST" / "raw"
    copy.mkdir(parents=True)
    for gz in (tmp_path / "gz").iterdir():
        (copy / gz.name).write_bytes(gz.read_bytes())
    offline = {**data, "root": str(tmp_path / "copy"),
               "mirrors": [f"http://127.0.0.1:{unused_port()}/"]}
    project.write_config("local.yaml", {"data": offline})
    project.run("download_fashionmnist", "--cores", "1", "--configfile", "config.yaml",
                "local.yaml")
    for name in idx.FILES:
        assert (copy / name).read_bytes() == (made / name).read_bytes()
    # A folder with the files but not their checksums (made by hand, or by an earlier
    # version): the job runs, keeps the files as they are (offline) and writes the checksums.
    (copy / idx.MANIFEST).unlink()
    kept = {name: (copy / name).stat().st_ino for name in idx.FILES}  # (a file made: another)
    project.run("download_fashionmnist", "--cores", "1", "--configfile", "config.yaml",
                "local.yaml")
    assert {name: (copy / name).stat().st_ino for name in idx.FILES} == kept
    subprocess.run(["md5sum", "--check", "--strict", idx.MANIFEST], cwd=copy, check=True,
                   capture_output=True)


# ------------------------------------------------------------------ 3. a killed run


def test_a_run_killed_mid_cell_is_finished_by_the_next_run(project, env):
    # Cells of several seconds, so that the kill lands in the middle of one.
    long = {**SMALL, "grid": {**SMALL["grid"], "batch_size": [100]},
            "train": {"repeats": 1, "epochs": 20},
            "data": {"source": "synthetic", "synthetic": {"train_size": 3000, "test_size": 100}}}
    project.write_config("small.yaml", long)
    out = open(project.path.parent / "first.out", "w")
    first = subprocess.Popen([SNAKEMAKE, "--cores", "all", *CFG], cwd=project.path,
                             stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                             env={**os.environ, **env})
    logs = project.path / "logs" / "train_cell"

    def second_cell_training():
        done = runs_of(project)
        if len(done) != 1:
            return None
        for log in logs.rglob("*.log"):
            cell = str(log.relative_to(logs).with_suffix(""))
            if cell not in done and "epoch 1:" in log.read_text():
                return cell
        return None

    try:
        interrupted = wait_for(second_cell_training, 240, "the second cell to be training")
    finally:
        first.send_signal(signal.SIGKILL)  # snakemake only: its job lives on as an orphan
        first.wait()
    killed_at = dt.datetime.now(dt.timezone.utc)
    finished = mtimes(project)
    assert interrupted not in finished
    orphans = cell_jobs(project)
    assert orphans, "the killed run's job should have survived it (an orphan)"
    # Hang it (its DataLoader workers, forked with its command line, are left running): it
    # still owns the cell's output when the next run's job starts, however slow that start,
    # and only SIGKILL stops it (a stopped process keeps SIGTERM pending).
    hung = [pid for pid in orphans if parent(pid) not in orphans]
    for pid in hung:
        os.kill(pid, signal.SIGSTOP)

    # The next run: Snakemake's stale lock, and its message says what to do.
    proc = project.run("--cores", "all", *CFG, check=False, env=env)
    assert proc.returncode != 0
    assert "--unlock" in proc.stderr and "cannot be locked" in proc.stderr
    project.run("--unlock", *CFG, env=env)
    try:
        proc = project.run("--cores", "all", *CFG, env=env)
    finally:
        for pid in hung:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    runs = runs_of(project)
    assert set(runs) == set(finished) | {interrupted}
    assert {k: v for k, v in mtimes(project).items() if k in finished} == finished  # kept
    record = json.loads(runs[interrupted].read_text())
    assert record["status"] == "ok"
    assert dt.datetime.fromisoformat(record["started_at"]) > killed_at  # redone
    assert not any(alive(p) for p in orphans)
    log = (logs / f"{interrupted}.log").read_text()
    assert "orphaned when its snakemake was killed" in log
    table = pd.read_csv(project.path / "results" / "table.csv")
    assert (table["status"] == "ok").all() and table["cell"].nunique() == 2
    assert not list((project.path / "results" / "runs").rglob(".*.staged"))
    assert "Nothing to be done" in project.run("-n", *CFG, env=env).stdout


# ------------------------------------------------------------------ 4. a failing cell


def test_a_failing_cell_lets_the_grid_finish_and_the_aggregate_name_it(project, env):
    project.write_config("small.yaml", SMALL)
    fault = {**env, "SPEEDLIMIT_FAULT": "worker:num_workers~2"}
    proc = project.run("--cores", "all", "--keep-going", *CFG, check=False, env=fault)
    assert proc.returncode != 0
    out = said(proc)
    runs = runs_of(project)
    bad = next(k for k in runs if "num_workers~2" in k)
    good = next(k for k in runs if "num_workers~0" in k)
    assert json.loads(runs[good].read_text())["status"] == "ok"  # the other cell completed
    assert f"cell {bad} FAILED" in out
    assert "1 of 2 cells have no metrics" in out and bad in out
    assert "injected failure in DataLoader worker" in out and "allow_missing" in out
    log = (project.path / "logs" / "train_cell" / f"{bad}.log").read_text()
    assert "Traceback" in log and "Caught RuntimeError in DataLoader worker process" in log
    assert "failing_worker" in log  # the worker's own traceback
    assert not (project.path / "results" / "table.csv").exists()
    kept = mtimes(project)[good]

    # Opted in: the table and report are built, the cell marked missing (it was retried).
    proc = project.run("--cores", "all", *CFG, "--config", "report={allow_missing: true}",
                       env=fault)
    assert "1 cell(s) missing" in said(proc)
    table = pd.read_csv(project.path / "results" / "table.csv")
    row = table[table["cell"] == bad].iloc[0]
    assert row["status"] == "missing" and "injected failure" in row["reason"]
    assert pd.isna(row["epoch_duration"])
    assert (project.path / "results" / "plots" / "epoch_duration.png").exists()
    assert json.loads(runs[bad].read_text())["failed_before"] == 1
    project.run("--report", "report.html", *CFG, "--config", "report={allow_missing: true}",
                env=fault)

    # Fixed: the next run retrains only the failed cell; then nothing is left to do.
    project.run("--cores", "all", *CFG, env=env)
    assert mtimes(project)[good] == kept
    assert json.loads(runs[bad].read_text())["status"] == "ok"
    table = pd.read_csv(project.path / "results" / "table.csv")
    assert (table["status"] == "ok").all()
    assert "Nothing to be done" in project.run("-n", *CFG, env=env).stdout


# ------------------------------------------------------------------ 5. corrupt results


# A race of the same two settings: two rounds of windows, then the whole epochs that check them.
SMALL_RACE = {**SMALL, "train": {"repeats": "auto", "max_rounds": 2, "budget": None,
                                 "probe": {"windows": 2, "window_samples": 200},
                                 "interleave": {"enabled": False}}}


def corruptions(good: str) -> list[tuple[str, str]]:
    """The ways a record goes bad, each with the words that say what is wrong: cut short,
    not JSON, valid JSON of the wrong shape, a record of another schema version."""
    record = json.loads(good)
    return [
        (good[:40], "not valid JSON (truncated or corrupt?)"),
        ("hello\n", "not valid JSON"),
        (json.dumps({**record, "epochs": [{"epoch": 1}]}),
         "does not follow schemas/metrics.schema.json at epochs/0"),
        (json.dumps({**record, "schema_version": 1}), "schema_version 1 is not the supported 2"),
    ]


def assert_named(proc, rule: str, path: str, problem: str, then: str = "") -> None:
    """The run failed in ``rule`` (the first to read the record), and said on the terminal
    which file, what is wrong with it and what to do (delete it, and run snakemake again
    ``then``); no traceback, no cell retrained."""
    out = said(proc)
    assert proc.returncode != 0
    assert f"Error in rule {rule}:" in out, out[-3000:]
    assert f"speedlimit: {path}: " in proc.stderr and problem in proc.stderr
    assert f"delete the file (rm {path}) and run snakemake again{then}" in proc.stderr
    assert "Traceback" not in out and "Error in rule train_cell" not in out


def others(project, but: str) -> dict[str, tuple[bytes, int]]:
    """Every record but ``but``: its bytes and modification time."""
    return {k: (p.read_bytes(), p.stat().st_mtime_ns) for k, p in runs_of(project).items()
            if k != but}


@pytest.mark.parametrize("mode", ["fixed repeats", "race"])
def test_a_corrupt_record_stops_the_run_naming_it_and_what_to_do(project, env, mode):
    """Each corruption of one record fails the rule that reads it first (the decision: the
    `decide` rule, or a race's round checkpoint, which must not decide on it; the findings,
    for a check epoch's record) with the file, the problem and the remedy, and rewrites no
    other record. Deleted and run again as the message says, that cell alone trains again."""
    race = mode == "race"
    project.write_config("small.yaml", SMALL_RACE if race else SMALL)
    project.run("--cores", "all", *CFG, env=env)
    cell = sorted(runs_of(project))[0]  # (a round-0 run: every round's checkpoint reads it)
    path, name = runs_of(project)[cell], f"results/runs/{cell}.json"
    rest = others(project, cell)
    # The decision is made again from the records (the message says how: record.RACE_REDO in a
    # race, record.FIXED_REDO with fixed repeats).
    again = ["-R", "race_round" if race else "decide"]
    for content, problem in corruptions(path.read_text()):
        path.write_text(content)
        proc = project.run("--cores", "all", *CFG, check=False, env=env)
        assert_named(proc, "race_round" if race else "decide", name, problem,
                     " with -R race_round" if race else " with -R decide")
        assert others(project, cell) == rest

    path.unlink()
    project.run("--cores", "all", *again, *CFG, env=env)
    assert others(project, cell) == rest
    assert json.loads(path.read_text())["status"] == "ok"
    assert "Nothing to be done" in project.run("-n", *CFG, env=env).stdout

    if race:  # a check epoch's record is a train_cell record too: the findings read it
        check = sorted((project.path / "results" / "check").rglob("*.json"))[0]
        check_name, every = str(check.relative_to(project.path)), others(project, "")
        check.write_bytes(check.read_bytes()[:40])
        proc = project.run("--cores", "all", *CFG, check=False, env=env)
        assert_named(proc, "findings", check_name, "not valid JSON (truncated or corrupt?)",
                     " to measure the cell again")
        check.unlink()
        project.run("--cores", "all", *CFG, env=env)
        assert json.loads(check.read_text())["timing"]["mode"] == "epochs"
        assert others(project, "") == every

        # A round's decisions (race state, not a record) cut short: named, and decided again.
        last = sorted((project.path / "results" / "race").glob("round~*.json"))[-1]
        decided = last.read_bytes()
        last.write_bytes(decided[:40])
        proc = project.run("--cores", "all", *CFG, check=False, env=env)
        assert proc.returncode != 0
        rel = str(last.relative_to(project.path))
        assert f"{rel}: not valid JSON" in proc.stderr
        assert f"delete the file (rm {rel}) and run snakemake again with -R race_round" in (
            proc.stderr)
        last.unlink()
        project.run("--cores", "all", *again, *CFG, env=env)
        assert last.read_bytes() == decided and others(project, "") == every


# ------------------------------------------------------------------ 6. two runs at once


def test_a_second_run_in_the_same_folder_is_refused_and_the_first_finishes(project, env):
    project.write_config("small.yaml", {**SMALL, "train": {"repeats": 1, "epochs": 5}})
    first = subprocess.Popen([SNAKEMAKE, "--cores", "all", *CFG], cwd=project.path,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env={**os.environ, **env})
    wait_for(lambda: (project.path / "logs" / "train_cell").exists() or first.poll() is not None,
             120, "the first run to start a job")
    second = project.run("--cores", "all", *CFG, check=False, env=env)
    out, _ = first.communicate(timeout=300)
    assert first.poll() is None or first.returncode == 0, out
    assert second.returncode != 0
    assert "cannot be locked" in second.stderr and "--unlock" in second.stderr
    table = pd.read_csv(project.path / "results" / "table.csv")
    assert table["cell"].nunique() == 2 and (table["status"] == "ok").all()


# ------------------------------------------------------------------ 7. the warm start (issue 10)


def test_two_copies_share_a_python_and_one_is_deleted_between_runs(tmp_path, env):
    """Copy A's run leaves its warm server idling; A is deleted; copy B runs within the idle
    time. B's cells must neither fail nor run in A's server."""
    a, b = Project(tmp_path / "a"), Project(tmp_path / "b")
    for copy in (a, b):
        copy.write_config("small.yaml", SMALL)
    env = {**env, "SPEEDLIMIT_WARM_IDLE": "300"}  # A's server idles through B's run
    folder = Path(env["SPEEDLIMIT_WARM_DIR"])
    try:
        a.run("--cores", "all", *CFG, env=env)
        assert all(r["environment"]["warm_start"] for r in a.runs().values())
        a_server, = (int(p.read_text()) for p in folder.glob("*.pid"))
        assert alive(a_server)
        shutil.rmtree(a.path)
        b.run("--cores", "all", *CFG, env=env)
        servers = [int(p.read_text()) for p in folder.glob("*.pid")]
    finally:
        stop_servers(folder)
    runs = b.runs()
    assert len(runs) == 2 and all(r["status"] == "ok" for r in runs.values())
    logs = "".join(p.read_text() for p in (b.path / "logs").rglob("*.log"))
    assert "ImportError" not in logs and "Traceback" not in logs
    # Served warm, by a fresh server of B's own (A's, stale, has gone with its files).
    assert all(r["environment"]["warm_start"] for r in runs.values())
    assert not alive(a_server)
    assert len(servers) == 1 and servers[0] != a_server
    assert (b.path / "results" / "table.csv").exists()


def test_a_cell_hung_in_c_code_is_stopped_and_the_grid_goes_on(project, env):
    project.write_config("small.yaml", {**SMALL, "train": {"repeats": 1, "time_limit": 4}})
    hang = {**env, "SPEEDLIMIT_FAULT": "hang:num_workers~2"}
    start = time.monotonic()
    proc = project.run("--cores", "all", *CFG, check=False, env=hang)
    assert time.monotonic() - start < 120
    assert proc.returncode != 0  # the aggregate step refuses: a cell has no metrics
    runs = {k: json.loads(p.read_text()) for k, p in runs_of(project).items()}
    bad = next(k for k in runs if "num_workers~2" in k)
    good = next(k for k in runs if "num_workers~0" in k)
    assert runs[good]["status"] == "ok"
    reason = ("stopped from outside after 14 s: ran past train.time_limit = 4 s and did not "
              "stop by itself (hung in C code?); its process group was killed")
    assert runs[bad]["status"] == "failed" and runs[bad]["reason"] == reason
    assert f"speedlimit: cell {bad} FAILED: {reason}" in said(proc)
    assert "1 of 2 cells have no metrics" in said(proc)
