"""Shared fixtures: a copy of the project in a temporary folder, and the real snakemake."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from speedlimit import project as project_files

ROOT = project_files.ROOT
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

# A grid small enough for seconds: 2 x 2 DataLoader cells + 2 loader-free cells, 2000 images,
# one whole epoch per cell (the seed's reproduction): the project's .test/ configuration.
TINY = yaml.safe_load((ROOT / ".test" / "config" / "config.yaml").read_text())


def planned(project, *args) -> dict[str, int]:
    """Jobs `snakemake -n` would run, per rule."""
    out = project.run("-n", *args).stdout
    if "Nothing to be done" in out:
        return {}
    stats = out.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M)}


def mtimes(project) -> dict[str, int]:
    """Each run file's modification time (ns), by its path under results/runs."""
    base = project.path / "results" / "runs"
    return {str(p.relative_to(base)): p.stat().st_mtime_ns for p in base.rglob("*.json")}


class Project:
    """A throwaway copy of the project; ``run`` calls the real snakemake inside it."""

    def __init__(self, path: Path):
        self.path = path
        project_files.copy_to(path)

    def write_config(self, name: str, data: dict) -> Path:
        target = self.path / name
        target.write_text(yaml.safe_dump(data))
        return target

    def run(self, *args: str, check: bool = True, timeout: float = 600,
            env: dict | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([SNAKEMAKE, *args], cwd=self.path, capture_output=True,
                              text=True, timeout=timeout, env={**os.environ, **(env or {})})
        if check and proc.returncode != 0:
            raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
        return proc

    def runs(self) -> dict[str, dict]:
        base = self.path / "results" / "runs"
        return {str(p.relative_to(base).with_suffix("")): json.loads(p.read_text())
                for p in sorted(base.rglob("*.json"))}


def alive(pid: int) -> bool:
    """True while process ``pid`` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


@pytest.fixture(scope="session", autouse=True)
def warm_servers(tmp_path_factory):
    """Every warm server the tests start lives in one folder and is stopped at the end."""
    from warmservers import stop_servers

    folder = tmp_path_factory.mktemp("warm")
    os.environ["SPEEDLIMIT_WARM_DIR"] = str(folder)
    os.environ["SPEEDLIMIT_WARM_IDLE"] = "30"
    yield folder
    stop_servers(folder)


@pytest.fixture
def project(tmp_path) -> Project:
    return Project(tmp_path / "project")


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> str:
    """A tiny synthetic data set laid out as torchvision expects."""
    from speedlimit.data import idx

    root = tmp_path_factory.mktemp("data") / "synthetic"
    idx.write_synthetic(root, 1200, 200, seed=0)
    return str(root)
