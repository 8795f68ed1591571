"""`make demo` as a newcomer runs it: the .test/ configuration, raced, in a copy of the
workflow under demo/, ending with the answer on the terminal; the real run's results/ is not
touched; a second `make demo` has nothing to do and prints the answer it has."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, Project

pytestmark = pytest.mark.e2e


def make_demo(path: Path) -> subprocess.CompletedProcess:
    venv = Path(sys.executable).parents[1]  # the venv the tests run in (make's $(STAMP) holds)
    proc = subprocess.run(["make", "demo", f"VENV={venv}"], cwd=path, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_make_demo_races_the_test_configuration_and_prints_the_answer(tmp_path):
    project = Project(tmp_path / "project")
    for name in ("Makefile", "requirements.txt", "requirements.lock"):
        shutil.copy2(ROOT / name, project.path / name)
    shutil.copytree(ROOT / ".test", project.path / ".test")
    proc = make_demo(project.path)
    findings = (project.path / "demo" / "results" / "findings.md").read_text()
    assert "raced in rounds" in findings or "The race ran" in findings
    assert "speedlimit: the answer" in proc.stdout
    table = proc.stdout.split("speedlimit: the answer", 1)[1].splitlines()
    for size in (100, 500):  # a row per batch size, ending with the call to paste
        assert any(line.split()[:2] == ["fashionmnist", str(size)] and
                   f"DataLoader(dataset, batch_size={size}, shuffle=True, num_workers=" in line
                   for line in table), table
    assert "its files are under demo/" in proc.stdout
    assert not (project.path / "results").exists()  # the real run's folder: untouched
    again = make_demo(project.path)
    assert "Nothing to be done" in again.stdout + again.stderr
    assert "speedlimit: the answer" in again.stdout
