"""The project's own files: what a working copy of the pipeline needs (tests and the
benchmark run the real snakemake in such copies)."""

from __future__ import annotations

import hashlib
import re
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


# `from speedlimit[.mod] import a, b as c` (one line, or a parenthesized list), or
# `import speedlimit.mod`; anywhere in a file, since some imports are lazy.
_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+speedlimit(?:\.(\w+))?[ \t]+import[ \t]+"
                     r"(\([^)]*\)|[\w \t,]+)|import[ \t]+speedlimit\.(\w+))", re.M)


def modules_used_by(path: str | Path) -> list[str]:
    """The speedlimit modules a file imports, directly or through each other (sorted)."""
    package = ROOT / "scripts" / "speedlimit"
    seen: set[str] = set()
    todo = [Path(path)]
    while todo:
        text = todo.pop().read_text()
        for sub, names, plain in _IMPORT.findall(text):
            found = [sub or plain] if (sub or plain) else [
                n.split(" as ")[0].strip() for n in names.strip("()").split(",")]
            found = [n.split()[0] for n in found if n.split()]
            for name in found:
                if name and name not in seen and (package / f"{name}.py").exists():
                    seen.add(name)
                    todo.append(package / f"{name}.py")
    return sorted(seen)


def code_digest(script: str | Path) -> str:
    """Digest of the speedlimit modules behind a rule's script: a rerun trigger that follows
    the imports, so no hand-kept list of modules can go stale."""
    digest = hashlib.sha256()
    for name in modules_used_by(ROOT / script):
        digest.update(name.encode())
        digest.update((ROOT / "scripts" / "speedlimit" / f"{name}.py").read_bytes())
    return digest.hexdigest()[:16]
