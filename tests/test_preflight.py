"""Resource limits and the time limit: a clear message, never a hang (issue 6, point 7)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from speedlimit.results import aggregate
from speedlimit import record as records
from speedlimit.run import job, lock, preflight, train
from speedlimit.grid import Cell

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_cell.py"
SAMPLE = 28 * 28 * 4 + 8


def dl(**kw) -> Cell:
    base = dict(loader="dataloader", batch_size=100, lr=0.01, torch_threads=1, device="cpu",
                num_workers=2, pin_memory=False, persistent_workers=False, prefetch_factor=None,
                workload="fashionmnist")
    return Cell(**{**base, **kw})


def test_shared_memory_need_is_workers_times_prefetch_times_batch():
    assert preflight.shm_needed("dataloader", 4, 1000, None, SAMPLE) == 4 * 2 * 1000 * SAMPLE
    assert preflight.shm_needed("dataloader", 4, 1000, 8, SAMPLE) == 4 * 8 * 1000 * SAMPLE
    assert preflight.shm_needed("dataloader", 0, 1000, None, SAMPLE) == 0
    assert preflight.shm_needed("tensor", None, 1000, None, SAMPLE) == 0


def test_too_little_shared_memory_is_refused_with_what_to_do():
    with pytest.raises(preflight.ResourceError) as err:
        preflight.check(dl(num_workers=4, batch_size=1000), SAMPLE, free=1 << 20, cpus=8)
    message = str(err.value)
    for words in ("/dev/shm", "num_workers 4", "prefetch_factor 2", "batch_size 1000",
                  "24.0 MB", "1.0 MB is free", "--shm-size"):
        assert words in message, message
    assert preflight.check(dl(num_workers=0, batch_size=1000), SAMPLE, free=1, cpus=8) == []


def test_more_workers_than_cpus_is_a_warning_in_the_record_and_the_table(synthetic_root,
                                                                        monkeypatch):
    assert preflight.check(dl(num_workers=2), SAMPLE, free=1 << 40, cpus=2) == []
    warning, = preflight.check(dl(num_workers=3), SAMPLE, free=1 << 40, cpus=2)
    assert "num_workers 3 exceeds the 2 CPU(s)" in warning
    monkeypatch.setattr(preflight, "cpus_available", lambda: 1)
    c = dl(num_workers=2, batch_size=300)
    done = train.run_cell(c, synthetic_root)
    assert "num_workers 2 exceeds the 1 CPU(s)" in done["warnings"][0]
    path = Path(synthetic_root).parent / "w.json"
    records.write(path, done)
    table = aggregate.build_table({c.path: str(path)}, [c])
    assert "exceeds" in table.loc[0, "warnings"]


def can_mount_tmpfs() -> bool:
    if not shutil.which("unshare") or os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c",
                            "mount -t tmpfs -o size=1m tmpfs /dev/shm"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not can_mount_tmpfs(), reason="needs root and unshare to shrink /dev/shm")
def test_a_tiny_dev_shm_for_real_fails_the_cell_clearly(synthetic_root, tmp_path):
    """A 1 MB /dev/shm (a private mount namespace) and a cell that needs ~6 MB of it."""
    out = tmp_path / "shm.json"
    command = (f"mount -t tmpfs -o size=1m tmpfs /dev/shm && exec {sys.executable} {SCRIPT} "
               f"{dl(num_workers=2, batch_size=500).path} --data-root {synthetic_root} "
               f"--output {out} --no-warm --no-exclusive")
    start = time.monotonic()
    proc = subprocess.run(["unshare", "-m", "sh", "-c", command], capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(SCRIPT.parent)})
    assert time.monotonic() - start < 60  # an answer, not a hang
    assert proc.returncode == 4, proc.stderr
    assert "not enough shared memory" in proc.stderr and "/dev/shm" in proc.stderr
    record = json.loads(out.read_text())
    assert record["status"] == "failed" and "--shm-size" in record["reason"]


def live_group(pgid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True).stdout
    pids = []
    for p in out.split():
        stat = Path(f"/proc/{p}/stat")
        if stat.exists() and stat.read_text().split()[2] != "Z":
            pids.append(int(p))
    return pids


def run_limited(synthetic_root, out, log, mode, timeout, **env):
    """train_cell.py on a 2-worker cell of 1000 epochs with a 2 s time limit."""
    d = Path(tempfile.mkdtemp(prefix="sl-", dir="/tmp"))  # a socket path must stay short
    return subprocess.run(
        [sys.executable, str(SCRIPT), dl(num_workers=2).path, "--data-root", synthetic_root,
         "--output", str(out), "--log", str(log), "--epochs", "1000", "--time-limit", "2",
         mode],
        capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(SCRIPT.parent), "SPEEDLIMIT_LOCK_DIR": str(d),
             "SPEEDLIMIT_WARM_DIR": str(d), "SPEEDLIMIT_WARM_IDLE": "5", **env})


@pytest.mark.parametrize("mode", ["--warm", "--no-warm"])
def test_the_time_limit_stops_a_cell_with_workers(synthetic_root, tmp_path, mode):
    out, log = tmp_path / "t.json", tmp_path / "t.log"
    start = time.monotonic()
    proc = run_limited(synthetic_root, out, log, mode, timeout=120)
    assert proc.returncode == 3
    assert time.monotonic() - start < 60
    text = (log.read_text() if mode == "--warm" else "") + proc.stderr
    assert "stopped: ran past train.time_limit = 2 s" in text
    record = json.loads(out.read_text())
    assert record["status"] == "failed" and "train.time_limit = 2 s" in record["reason"]
    if mode == "--warm":  # the cell's process group (its DataLoader workers) is gone
        child = int(re.findall(r"running in process (\d+)", log.read_text())[0])
        deadline = time.monotonic() + 10
        while live_group(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not live_group(child)


@pytest.mark.parametrize("mode", ["--warm", "--no-warm"])
def test_a_cell_hung_in_c_code_is_stopped_from_outside(synthetic_root, tmp_path, mode):
    """SIGALRM blocked, then libc's pause() (the test hook SPEEDLIMIT_FAULT=hang, after the
    first batch): train.time_limit's alarm never runs. The job that waits kills the cell's
    process group after the limit and the grace, and records why."""
    out, log = tmp_path / "h.json", tmp_path / "h.log"
    start = time.monotonic()
    proc = run_limited(synthetic_root, out, log, mode, timeout=180, SPEEDLIMIT_FAULT="hang")
    elapsed = time.monotonic() - start
    assert proc.returncode == job.TIME_LIMIT_EXIT, proc.stderr
    text = (log.read_text() if log.exists() else "") + proc.stderr  # (cold: on stderr)
    outside = 2 + job.GRACE_SECONDS
    said = (f"stopped from outside after {outside:.0f} s: ran past train.time_limit = 2 s and "
            "did not stop by itself (hung in C code?); its process group was killed")
    assert said in text and "stopped: ran past" not in text  # (the alarm never ran)
    record = json.loads(out.read_text())
    assert record["status"] == "failed" and record["reason"] == said
    assert record["exit_code"] == job.TIME_LIMIT_EXIT
    assert elapsed < outside + 60  # (+ a warm server's start or a cold torch import)
    child = int(re.findall(r"running in process (\d+)", text)[0])
    assert not live_group(child)  # the cell and its DataLoader workers, killed and reaped


def test_an_orphaned_job_that_owns_the_output_is_stopped(tmp_path):
    output = tmp_path / "runs" / "c.json"
    holder = ("import sys, time; sys.path.insert(0, sys.argv[1]); from speedlimit.run import lock\n"
              "with lock.own_output(sys.argv[2]) as staged:\n"
              "    print('owned', flush=True); time.sleep(120)\n")
    orphan = subprocess.Popen([sys.executable, "-c", holder, str(SCRIPT.parent), str(output),
                               "train_cell"], stdout=subprocess.PIPE, text=True)
    assert orphan.stdout.readline().strip() == "owned"
    (tmp_path / "runs" / ".c.json.999.staged").write_text("{}")  # an orphan's leftover
    start = time.monotonic()
    with lock.own_output(output) as staged:
        assert orphan.wait(timeout=10) is not None
        assert staged.name == f".c.json.{os.getpid()}.staged"
        assert not (tmp_path / "runs" / ".c.json.999.staged").exists()
    assert time.monotonic() - start < 10


def test_failures_so_far_is_a_stable_rerun_trigger(tmp_path):
    output = tmp_path / "c.json"
    assert records.failures_so_far(output) == 0
    assert records.count_failure(output) == 1
    assert records.failures_so_far(output) == 1  # differs from what the failed run had: rerun
    output.write_text("{}")  # a success does not touch the count: no further rerun
    assert records.failures_so_far(output) == 1
    assert records.count_failure(output) == 2


@pytest.mark.parametrize("redo", [0, 2])
def test_a_disturbed_cell_is_flagged_and_redone_when_asked(synthetic_root, tmp_path, redo):
    """The test hook makes the reference kernel after the clock take twice as long as before:
    the record is flagged disturbed; with --redo-disturbed N the cell runs N more times and
    the record keeps the replaced attempts' reference timings."""
    d = Path(tempfile.mkdtemp(prefix="sl-", dir="/tmp"))
    out, log = tmp_path / "t.json", tmp_path / "t.log"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), dl(num_workers=0).path, "--data-root", synthetic_root,
         "--output", str(out), "--log", str(log), "--no-warm", "--redo-disturbed", str(redo)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(SCRIPT.parent), "SPEEDLIMIT_LOCK_DIR": str(d),
             "SPEEDLIMIT_FAULT": "disturb"})
    assert proc.returncode == 0, proc.stderr
    record = json.loads(out.read_text())
    assert record["status"] == "ok" and record["reference"]["disturbed"]
    assert record["reference"]["after"] > 1.25 * record["reference"]["before"]
    assert len(record.get("redone", [])) == redo
    assert proc.stderr.count("running it again") == redo


def test_a_cell_run_without_a_data_set_file_records_what_is_missing_and_how_to_make_it(
        synthetic_root, tmp_path):
    """A file lost after the data set's checksums were written (which Snakemake does not see):
    the failed record says which file and the command that makes it again, with torchvision's
    own error beside it; a data set with all its files but a broken one says no such thing."""

    def failed_reason(root):
        out = tmp_path / f"{root.name}.json"
        proc = subprocess.run(
            [sys.executable, str(SCRIPT), dl(num_workers=0).path, "--data-root", str(root),
             "--output", str(out), "--log", str(tmp_path / f"{root.name}.log"), "--no-warm",
             "--no-exclusive"],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONPATH": str(SCRIPT.parent)})
        assert proc.returncode == 1
        record = json.loads(out.read_text())
        assert record["status"] == "failed"
        return record["reason"], proc.stderr

    lacking, broken = tmp_path / "lacking", tmp_path / "broken"
    for root in (lacking, broken):
        shutil.copytree(synthetic_root, root)
    lost = lacking / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    lost.unlink()
    reason, stderr = failed_reason(lacking)
    assert reason.startswith(f"the data set lacks {lost}: make it again with "
                             f"`snakemake --force {lost}` and this run's config options "
                             "(RuntimeError: ")
    assert f"the data set lacks {lost}" in stderr
    (broken / "FashionMNIST" / "raw" / "train-labels-idx1-ubyte").write_bytes(b"not IDX")
    reason, stderr = failed_reason(broken)
    assert "lacks" not in reason and "lacks" not in stderr
