"""The project's own files: what a working copy of the pipeline needs (tests and the
benchmark run the real snakemake in such copies)."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FILES = ("Snakefile", "config.yaml", "rules", "scripts", "schemas", "report", "reference",
         "envs", "profiles", "configs")


def copy_to(dest: str | Path) -> Path:
    """Copy the pipeline's files into ``dest`` (created); return it."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest
