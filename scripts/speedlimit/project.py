"""The project's own files: what a working copy of the pipeline needs (tests and the
benchmark run the real snakemake in such copies)."""

from __future__ import annotations

import ast
import hashlib
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


TRAIN_SCRIPT = "scripts/train_cell.py"  # the train_cell rule's script (and the warm server's)


def package_dir() -> Path:
    return ROOT / "scripts" / "speedlimit"


def _module_file(dotted: str) -> Path | None:
    """The file of module ``speedlimit.x.y`` (a package's ``__init__.py``), or None."""
    parts = dotted.split(".")[1:]
    base = package_dir().joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if parts and candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> set[Path]:
    """Files of the speedlimit modules one file imports, anywhere in it (lazy imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from speedlimit.run import job` names a module; `... import Request` does not.
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] == "speedlimit":
                file = _module_file(name)
                if file is not None:
                    found.add(file)
    return found


def modules_used_by(path: str | Path) -> list[str]:
    """The speedlimit modules a file imports, directly or through each other, as paths under
    the package (``run/job.py``), sorted."""
    seen: set[Path] = set()
    todo = [Path(path)]
    while todo:
        for file in _imports(todo.pop()) - seen:
            seen.add(file)
            todo.append(file)
    return sorted(str(file.relative_to(package_dir())) for file in seen)


def code_digest(script: str | Path) -> str:
    """Digest of a rule's script and the speedlimit modules behind it: a rerun trigger that
    follows the imports, so no hand-kept list of modules can go stale (and that covers the
    script itself where the rule runs it from a shell command). The warm server's identity
    uses the same digest of the train_cell script."""
    digest = hashlib.sha256((ROOT / script).read_bytes())
    for name in modules_used_by(ROOT / script):
        digest.update(name.encode())
        digest.update((package_dir() / name).read_bytes())
    return digest.hexdigest()[:16]
