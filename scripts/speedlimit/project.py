"""The project's own files: what a working copy of the pipeline needs (tests and the
benchmark run the real snakemake in such copies)."""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.machinery
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FILES = ("Snakefile", "config.yaml", "rules", "scripts", "schemas", "report", "reference",
         "envs", "profiles", "configs", "examples")


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


def _imported(path: Path, package: str | None = None) -> list[str]:
    """Dotted names of what one file imports, anywhere in it (lazy imports too); relative
    imports are resolved against ``package`` (the importing module's), or left out."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module
            if node.level:
                if package is None:
                    continue
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(parts + ([node.module] if node.module else []))
            if module:
                # `from speedlimit.run import job` names a module; `... import Request` does not.
                names += [module] + [f"{module}.{alias.name}" for alias in node.names]
    return names


def _imports(path: Path) -> set[Path]:
    """Files of the speedlimit modules one file imports, anywhere in it (lazy imports too).
    Parsed once per version of the file: the workflow digests each rule's script, and most of
    them import the same modules."""
    stat = path.stat()
    return set(_imports_of(path, stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=1024)
def _imports_of(path: Path, mtime_ns: int, size: int) -> frozenset[Path]:
    found = set()
    for name in _imported(path):
        if name.split(".")[0] == "speedlimit":
            file = _module_file(name)
            if file is not None:
                found.add(file)
    return frozenset(found)


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
        for template in templates_of(package_dir() / name):
            digest.update(str(template.relative_to(package_dir())).encode())
            digest.update(template.read_bytes())
    return digest.hexdigest()[:16]


def templates_of(module: Path) -> list[Path]:
    """The files a module renders from: the ``templates`` folder beside it, where its code
    names that folder (:mod:`speedlimit.results.render`)."""
    folder = module.with_name("templates")
    if not folder.is_dir() or '"templates"' not in module.read_text():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file())


# --- a user's module (the custom workload): where it is, and a digest of its code


def _file_under(root: Path, module: str) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_location(module: str, search=()) -> tuple[Path, Path]:
    """The file of module ``module`` and the folder its top-level package lies in: under the
    first of ``search`` that has it, else where Python's path has it (found, not imported).
    Raises FileNotFoundError."""
    for folder in map(Path, search):
        file = _file_under(folder, module)
        if file is not None:
            return file, folder
    spec = importlib.machinery.PathFinder.find_spec(module.split(".")[0])
    if spec is not None:
        locations = list(spec.submodule_search_locations or [])
        top = Path(locations[0]) if locations else Path(spec.origin or "")
        file = _file_under(top.parent, module)
        if file is not None:
            return file, top.parent
    where = ", ".join(str(f) for f in search)
    raise FileNotFoundError(f"no module {module} in {where or '-'} or on Python's path")


def module_digest(module: str, search=()) -> str:
    """Digest of a user's module, its parent packages' ``__init__.py`` and the modules it
    imports (directly or through each other) from the same folder: from any of it when the
    module was found in ``search`` (the project), else from its own top-level package only.
    Editing any of them changes the digest; nothing else does."""
    file, root = module_location(module, search)
    local = root in map(Path, search)
    top = module.split(".")[0]
    parents = [".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)]
    found = {file: module}
    found.update({f: name for name in parents if (f := _file_under(root, name))})
    todo = list(found.items())
    while todo:
        path, name = todo.pop()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        try:
            imported = _imported(path, package or None)
        except SyntaxError:
            continue  # the cell will say so; its bytes are still in the digest
        for other in imported:
            if other.split(".")[0] == "speedlimit":  # this project's package, wherever it is
                other_file = _module_file(other)
                if other_file is not None and other_file not in found:
                    found[other_file] = other
                    todo.append((other_file, other))
                continue
            if not local and other.split(".")[0] != top:
                continue
            other_file = _file_under(root, other)
            if other_file is not None and other_file not in found:
                found[other_file] = other
                todo.append((other_file, other))
    digest = hashlib.sha256()
    for path in sorted(found):
        digest.update(found[path].encode())  # the module's dotted name: where it is, in words
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
