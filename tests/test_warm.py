"""The warm server: cells run in processes forked from one that imported torch once."""

import json
import os
import shutil
import tempfile
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import alive
from speedlimit import project
from speedlimit.run import job
from speedlimit.run import warm
from speedlimit.grid import Cell

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
    warm.stop_servers(d)
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


def test_an_edit_of_the_code_means_another_server(tmp_path, monkeypatch):
    before = warm.code_digest()
    copy = project.copy_to(tmp_path / "copy")
    monkeypatch.setattr(project, "ROOT", copy)
    assert warm.code_digest() == before
    train = copy / "scripts" / "speedlimit" / "run" / "train.py"
    train.write_text(train.read_text() + "\n# edit\n")
    assert warm.code_digest() != before


def test_the_machine_lock_serializes_cells(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEEDLIMIT_LOCK_DIR", str(tmp_path))
    code = ("import sys,time; sys.path.insert(0, sys.argv[1]); from speedlimit.run import job\n"
            "with job.machine_lock():\n"
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
    pids = warm.stop_servers(warm_dir)
    assert len(pids) == 1
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and alive(pids[0]):
        time.sleep(0.1)
    assert not alive(pids[0])
    assert not warm.socket_path().exists()


def test_a_socket_path_too_long_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("SPEEDLIMIT_WARM_DIR", "/tmp/" + "x" * 120)
    with pytest.raises(RuntimeError, match="SPEEDLIMIT_WARM_DIR"):
        warm.socket_path()
