"""The conda envs (envs/*.yaml), requirements.txt and requirements.lock name the same versions,
every pin is exact, every rule that runs something names its env, and every env holds what its
rules' code imports (checked by reading the code; for real, in a fresh venv installed from the
env's pip list, with SPEEDLIMIT_ENV_INSTALL=1)."""

from __future__ import annotations

import ast
import collections
import contextlib
import functools
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from speedlimit import project as project_files

ROOT = project_files.ROOT
ENV_FILES = sorted((ROOT / "envs").glob("*.yaml"))
EXACT_PIP = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9][A-Za-z0-9.+!-]*)$")
EXACT_CONDA = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==?([0-9][A-Za-z0-9._+-]*)$")


def canonical(name: str) -> str:
    """PEP 503 name: PyYAML, pyyaml and py_yaml are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """name -> version of a pip requirements/constraints file; every line must be name==version."""
    found = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = EXACT_PIP.match(line)
        assert match, f"{path.name}:{number}: {line!r} is not an exact pin (name==version)"
        found[canonical(match[1])] = match[2]
    return found


def lock_python() -> str:
    match = re.search(r"^# python==(\S+)$", (ROOT / "requirements.lock").read_text(), re.M)
    assert match, "requirements.lock has no '# python==X.Y.Z' line (make lock writes it)"
    return match[1]


def conda_env(path: Path) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """channels, conda pins (name -> version) and pip pins of an environment file."""
    env = yaml.safe_load(path.read_text())
    conda, pip = {}, {}
    for dep in env.get("dependencies", []):
        if isinstance(dep, dict):
            assert set(dep) == {"pip"}, f"{path.name}: unexpected entry {dep}"
            for line in dep["pip"]:
                match = EXACT_PIP.match(line.strip())
                assert match, f"{path.name}: pip entry {line!r} is not an exact pin (name==version)"
                pip[canonical(match[1])] = match[2]
        else:
            match = EXACT_CONDA.match(str(dep).strip())
            assert match and "*" not in dep, (
                f"{path.name}: conda entry {dep!r} is not an exact pin (name=version)")
            conda[canonical(match[1])] = match[2]
    return env.get("channels") or [], conda, pip


@pytest.fixture(scope="module")
def requirements() -> dict[str, str]:
    return pins(ROOT / "requirements.txt")


@pytest.fixture(scope="module")
def lock() -> dict[str, str]:
    return pins(ROOT / "requirements.lock")


def test_there_are_env_files():
    assert {p.name for p in ENV_FILES} >= {"pipeline.yaml", "report.yaml"}


def test_requirements_agree_with_the_lock(requirements, lock):
    for name, version in requirements.items():
        assert name in lock, f"requirements.txt pins {name}, requirements.lock does not"
        assert lock[name] == version, (
            f"{name}: requirements.txt pins {version}, requirements.lock {lock[name]}")


def env_problems(path: Path, requirements: dict, lock: dict, python: str) -> list[str]:
    """Every way an environment file departs from the pins (empty: none)."""
    try:
        channels, conda, pip = conda_env(path)
    except AssertionError as err:
        return [str(err)]
    problems = []
    if not channels or channels[0] != "conda-forge" or "defaults" in channels \
            or "nodefaults" not in channels:
        problems.append(f"{path.name}: channels {channels}: want conda-forge first, nodefaults, "
                        "no defaults")
    if conda.get("python") != python:
        problems.append(f"{path.name}: python={conda.get('python')}, requirements.lock was "
                        f"made with python {python}")
    if "pip" not in conda:
        problems.append(f"{path.name}: pin pip (it installs the pip section)")
    extra = sorted(set(conda) - {"python", "pip"})
    if extra:
        problems.append(f"{path.name}: {extra} from conda: keep the conda side to python and "
                        "pip, the rest as pip pins identical to requirements.txt")
    if not pip:
        problems.append(f"{path.name}: no pip pins")
    for name, version in pip.items():
        if name not in requirements:
            problems.append(f"{path.name}: pins {name}=={version}, which requirements.txt "
                            "does not name")
        elif version != requirements[name]:
            problems.append(f"{path.name}: {name}=={version}, requirements.txt pins "
                            f"{requirements[name]}")
        if lock.get(name) != version:
            problems.append(f"{path.name}: {name}=={version}, requirements.lock has "
                            f"{lock.get(name)}")
    return problems


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_are_exact_and_agree_with_requirements(path, requirements, lock):
    assert env_problems(path, requirements, lock, lock_python()) == []


@pytest.mark.parametrize("edit, problem", [
    (lambda t: re.sub(r"torch==\S+", "torch==0.0.1", t), "requirements.txt pins"),
    (lambda t: re.sub(r"torch==\S+", "torch>=2", t), "not an exact pin"),
    (lambda t: t + "      - requests==2.34.2\n", "which requirements.txt does not name"),
    (lambda t: re.sub(r"python=\S+", "python=3.11.*", t), "not an exact pin"),
    (lambda t: re.sub(r"python=\S+", "python=3.12.1", t), "requirements.lock was made with"),
    (lambda t: t.replace("  - nodefaults", "  - defaults"), "no defaults"),
    (lambda t: t.replace("  - pip=", "  - numpy=2.4.6\n  - pip="), "from conda"),
])
def test_drift_is_caught(tmp_path, requirements, lock, edit, problem):
    env = tmp_path / "pipeline.yaml"
    original = (ROOT / "envs" / "pipeline.yaml").read_text()
    env.write_text(edit(original))
    assert env.read_text() != original
    problems = env_problems(env, requirements, lock, lock_python())
    assert any(problem in p for p in problems), problems


# --- the workflow's rules, as Snakemake reads them ------------------------------------------


def read_rules(root: Path) -> dict[str, dict]:
    """Every rule of the workflow in ``root`` as Snakemake itself reads it (checkpoints and
    ``use rule ... with`` included), under ``--sdm conda``: whether it runs a job, its conda env
    and its script or shell command; paths relative to ``root``."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import DeploymentMethod, DeploymentSettings, ResourceSettings

    def under_root(path, rule):
        return path and os.path.relpath(Path(str(rule.basedir)) / path, root)

    deployment = DeploymentSettings(deployment_method={DeploymentMethod.CONDA})
    with SnakemakeApi() as api:
        workflow = api.workflow(ResourceSettings(), deployment_settings=deployment,
                                snakefile=root / "Snakefile", workdir=root)
        # The parsed workflow (snakemake is pinned): no public call lists the rules' directives.
        return {rule.name: {"runs": not rule.norun,
                            "conda": under_root(rule.conda_env, rule),
                            "script": under_root(rule.script, rule),
                            "shell": rule.shellcmd}
                for rule in workflow._workflow.rules}


def workflow_rules(root: Path) -> dict[str, dict]:
    """:func:`read_rules` in an interpreter of its own: loading a workflow changes the working
    directory and Snakemake's global state (and writes a log under ``root/.snakemake``)."""
    proc = subprocess.run([sys.executable, __file__, str(root)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "scripts")}, timeout=300)
    assert proc.returncode == 0, f"reading the rules of {root} failed:\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def rules(tmp_path_factory) -> dict[str, dict]:
    """The pipeline's rules, read in a copy of it (nothing written into the working copy); their
    paths, relative, hold for the working copy too."""
    return workflow_rules(project_files.copy_to(tmp_path_factory.mktemp("workflow")))


def env_less_rules(rules: dict[str, dict]) -> list[str]:
    """Rules that run a job but name no env file of envs/."""
    envs = {str(path.relative_to(ROOT)) for path in ENV_FILES}
    return [f"rule {name}" for name, rule in sorted(rules.items())
            if rule["runs"] and rule["conda"] not in envs]


def test_every_rule_that_runs_something_names_an_env(rules):
    assert {"train_cell", "race_group", "check_epoch", "race_round", "aggregate", "plot",
            "make_synthetic", "download_fashionmnist"} <= set(rules)
    assert not rules["all"]["runs"]
    assert env_less_rules(rules) == []


def test_a_rule_without_env_is_caught(tmp_path):
    (tmp_path / "Snakefile").write_text(
        'rule target:\n    input:\n        "a",\n\n\n'
        'rule with_env:\n    output:\n        "a"\n    conda:\n        "envs/report.yaml"\n'
        '    script:\n        "x.py"\n\n\n'
        'rule without_env:\n    output:\n        "b"\n    shell:\n        "touch {output}"\n\n\n'
        'rule wrong_env:\n    output:\n        "c"\n    conda:\n        "envs/nope.yaml"\n'
        '    shell:\n        "touch {output}"\n\n\n'
        'checkpoint checkpoint_without_env:\n    output:\n        "d"\n    shell:\n'
        '        "touch {output}"\n\n\n'
        'use rule with_env as inherits_env with:\n    output:\n        "e"\n\n\n'
        'use rule without_env as inherits_none with:\n    output:\n        "f"\n')
    (tmp_path / "envs").symlink_to(ROOT / "envs")
    assert env_less_rules(workflow_rules(tmp_path)) == [
        "rule checkpoint_without_env", "rule inherits_none", "rule without_env",
        "rule wrong_env"]


# --- every env holds what its rules import -------------------------------------------------

# What a job may import that its env need not hold: deliberately few. A `script:` job runs
# behind Snakemake's preamble, which appends Snakemake's own installation to sys.path (it
# unpickles the job's `snakemake` object from it): `snakemake` comes from there (race_round
# reaches speedlimit.config, whose validate imports snakemake.utils). A shell job (train_cell)
# gets no such path: nothing is exempt there.
PROVIDED_TO_SCRIPTS = {"snakemake"}
PROJECT = {"speedlimit", "examples"}  # the project's own top-level packages
# The training job also imports a custom workload's module: the shipped examples run in its
# env (configs/custom.yaml runs examples.template).
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def entry_scripts(rule: dict) -> list[Path]:
    """The Python files a rule's job starts: its script, or the scripts its shell command
    names (a shell script's: the .py files it names)."""
    if rule["script"]:
        return [ROOT / rule["script"]]
    named = [ROOT / name for name in re.findall(r"[\w./-]+\.(?:py|sh)\b", rule["shell"] or "")]
    return [script for path in named
            for script in (python_run_by(path) if path.suffix == ".sh" else [path])]


def python_run_by(shell_script: Path) -> list[Path]:
    """The Python scripts a shell script runs: the .py files it names, which lie beside it."""
    names = sorted(set(re.findall(r"\w+\.py\b", shell_script.read_text())))
    return [shell_script.with_name(name) for name in names]


def code_of(entry: Path) -> set[Path]:
    """The files a job that starts with ``entry`` may run: the file, the speedlimit modules it
    imports (directly or through each other, lazy imports included: project.modules_used_by),
    and of their packages the ``__init__.py`` (which Python runs first) and ``__main__.py``
    (what ``python -m`` runs: the warm server)."""
    package = project_files.package_dir()
    files, todo = set(), [entry]
    while todo:
        file = todo.pop()
        if file in files:
            continue
        files.add(file)
        todo += [package / name for name in project_files.modules_used_by(file)]
        todo += [folder / name for folder in file.parents
                 if folder == package or package in folder.parents
                 for name in ("__init__.py", "__main__.py") if (folder / name).is_file()]
    return files


def rule_code(rule: dict) -> set[Path]:
    """Every file a rule's job may run (:func:`code_of` each entry script)."""
    entries = entry_scripts(rule)
    if ROOT / project_files.TRAIN_SCRIPT in entries:
        entries += EXAMPLES
    return set().union(*map(code_of, entries))


def imported_modules(path: Path) -> set[str]:
    """The modules a file imports, anywhere in it (lazy imports too): ``import a.b`` and
    ``from a.b import c`` both name ``a.b``; relative imports stay in the file's package."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def outside_imports(rule: dict) -> dict[str, set[Path]]:
    """What a rule's job imports from outside the standard library and the project (and the
    exemptions): module -> the files that import it."""
    exempt = PROJECT | (PROVIDED_TO_SCRIPTS if rule["script"] else set())
    found = collections.defaultdict(set)
    for file in rule_code(rule):
        for module in imported_modules(file):
            top = module.split(".")[0]
            if top not in sys.stdlib_module_names and top not in exempt:
                found[module].add(file)
    return dict(found)


@functools.cache
def distributions_by_module() -> dict[str, frozenset[str]]:
    """Top-level module -> the distributions (PEP 503 names) that install it, as installed
    here (the lock's versions)."""
    return {top: frozenset(map(canonical, names))
            for top, names in importlib.metadata.packages_distributions().items()}


@functools.cache
def requires(name: str) -> frozenset[str]:
    """What distribution ``name`` needs at run time, as installed here (no extras)."""
    needed = set()
    for line in importlib.metadata.requires(name) or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            needed.add(canonical(requirement.name))
    return frozenset(needed)


def with_dependencies(names) -> set[str]:
    """The distributions pip installs for ``names``: them and what they need, transitively."""
    found, todo = set(), [canonical(name) for name in names]
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo += requires(name)
    return found


def shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def missing_imports(env: Path, rules: dict[str, dict]) -> list[str]:
    """Every module that ``rules`` (those that run in ``env``) import but ``env`` does not
    install, neither listed nor needed by what is listed (empty: none)."""
    installed = with_dependencies(conda_env(env)[2])
    lacking = collections.defaultdict(lambda: (set(), set()))  # module -> its rules, its files
    problems = []
    for name, rule in sorted(rules.items()):
        if not entry_scripts(rule):
            problems.append(f"{env.name}: rule {name} runs no Python script of the project "
                            "that this test can follow: what it imports is unknown")
        for module, files in outside_imports(rule).items():
            top = module.split(".")[0]
            if not distributions_by_module().get(top, frozenset()) & installed:
                lacking[top][0].add(name)
                lacking[top][1].update(str(shown(file)) for file in files)
    lock = pins(ROOT / "requirements.lock")
    for top, (names, files) in sorted(lacking.items()):
        dists = sorted(distributions_by_module().get(top, ()))
        fix = " or ".join(f"{dist}=={lock.get(dist, '?')}" for dist in dists) or "its package"
        problems.append(
            f"{env.name}: {top} is imported by rule {', '.join(sorted(names))} (in "
            f"{', '.join(sorted(files))}), but the env neither lists it nor gets it through "
            f"what it lists: add {fix}")
    return problems


def rules_in(env: Path, rules: dict[str, dict]) -> dict[str, dict]:
    return {name: rule for name, rule in rules.items()
            if rule["conda"] == str(env.relative_to(ROOT))}


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_every_env_holds_what_its_rules_import(path, rules):
    assert rules_in(path, rules), f"{path.name}: no rule runs in it"
    problems = missing_imports(path, rules_in(path, rules))
    assert not problems, "\n".join(problems)


def test_the_rules_code_is_followed(rules):
    """The entry scripts and the imports found are the real ones: through the shell script,
    the package's modules, `use rule` and lazy imports."""
    assert entry_scripts(rules["race_group"]) == [ROOT / project_files.TRAIN_SCRIPT]
    assert entry_scripts(rules["plot"]) == [ROOT / "scripts" / "plot.py"]
    train = outside_imports(rules["check_epoch"])
    assert ROOT / "scripts/speedlimit/run/lane_epoch.py" in train["scipy.stats"]
    assert {"torch", "torchvision", "numpy"} <= {m.split(".")[0] for m in train}
    assert "pandas" not in {m.split(".")[0] for m in train}  # (the results wing's, not a cell's)
    assert ROOT / "scripts/speedlimit/run/warm/__main__.py" in rule_code(rules["train_cell"])
    assert "snakemake.utils" in {m for f in rule_code(rules["race_round"])
                                 for m in imported_modules(f)}  # lazy, and exempt in a script
    assert "snakemake.utils" not in outside_imports(rules["race_round"])


def test_what_a_listed_package_needs_is_provided():
    assert {"torch", "pillow", "numpy"} <= with_dependencies(["torchvision"])
    assert "scipy" not in with_dependencies(["torchvision"])  # only with its extra


@pytest.mark.parametrize("drop, module", [("scipy", "scipy"), ("pyyaml", "yaml")])
def test_a_missing_package_is_caught(tmp_path, rules, drop, module):
    env = tmp_path / "report.yaml"
    original = (ROOT / "envs" / "report.yaml").read_text()
    env.write_text(re.sub(rf"(?im)^\s+- {drop}==\S+\n", "", original))
    assert env.read_text() != original
    problems = missing_imports(env, rules_in(ROOT / "envs" / "report.yaml", rules))
    assert len(problems) == 1 and f": {module} is imported by rule " in problems[0], problems


def test_a_lazy_import_is_caught(tmp_path):
    script = tmp_path / "x.py"
    script.write_text("import json\n\n\ndef later():\n    from seaborn import objects\n")
    rule = {"script": str(script), "shell": None}
    assert outside_imports(rule) == {"seaborn": {script}}
    problems = missing_imports(ROOT / "envs" / "pipeline.yaml", {"x": rule})
    assert len(problems) == 1 and "seaborn is imported by rule x (" in problems[0], problems
    assert problems[0].endswith("add seaborn==0.13.2"), problems


# --- the same, for real: a fresh virtual environment from an env's pip list -----------------

IMPORT_EACH = """
import importlib, json, sys
failed = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception as err:
        failed[name] = f"{type(err).__name__}: {err}"
print(json.dumps(failed))
"""


def module_name(file: Path) -> str | None:
    """The dotted name a file of the project is imported by (None: a script, or a __main__)."""
    for base in (project_files.package_dir().parent, ROOT):
        if base in file.parents and file.name != "__main__.py":
            parts = file.relative_to(base).with_suffix("").parts
            if parts[0] in PROJECT:
                return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    return None


def modules_to_import(rules: dict[str, dict]) -> list[str]:
    """Every module the rules' jobs import: the project's own, and what they import from
    outside."""
    names = set()
    for rule in rules.values():
        names |= {module_name(file) for file in rule_code(rule)} - {None}
        names |= set(outside_imports(rule))
    return sorted(names)


@contextlib.contextmanager
def fresh_venv(folder: Path):
    """The python of a new virtual environment of this interpreter in ``folder``, removed
    afterwards (a torch env takes GBs)."""
    venv.create(folder, with_pip=True)
    try:
        yield folder / "bin" / "python"
    finally:
        shutil.rmtree(folder)


@pytest.mark.skipif(os.environ.get("SPEEDLIMIT_ENV_INSTALL") != "1",
                    reason="installs each env in a fresh venv (minutes, GBs): set "
                           "SPEEDLIMIT_ENV_INSTALL=1 (docs/development.md)")
@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_a_fresh_venv_of_the_env_imports_its_rules_modules(path, rules, tmp_path):
    _, conda, pip = conda_env(path)
    if platform.python_version() != conda["python"]:
        pytest.skip(f"{path.name} pins python {conda['python']}, this is "
                    f"{platform.python_version()}")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("".join(f"{name}=={version}\n" for name, version in pip.items()))
    modules = modules_to_import(rules_in(path, rules))
    with fresh_venv(tmp_path / "venv") as python:
        install = subprocess.run([python, "-m", "pip", "install", "--quiet", "-r", requirements],
                                 capture_output=True, text=True, timeout=1800)
        assert install.returncode == 0, install.stderr[-4000:]
        # The project's folders on the path, nothing of this interpreter's.
        imported = subprocess.run(
            [python, "-c", IMPORT_EACH, *modules], capture_output=True, text=True, cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": f"{ROOT / 'scripts'}{os.pathsep}{ROOT}"},
            timeout=600)
    assert imported.returncode == 0, imported.stderr[-4000:]
    assert json.loads(imported.stdout) == {}, f"{path.name}: {len(modules)} modules"


if __name__ == "__main__":  # workflow_rules: the rules of the workflow in sys.argv[1], as JSON
    print(json.dumps(read_rules(Path(sys.argv[1]).resolve())))
