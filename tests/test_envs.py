"""The conda envs (envs/*.yaml), requirements.txt and requirements.lock name the same versions,
every pin is exact, and every rule that runs something names its env."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ENV_FILES = sorted((ROOT / "envs").glob("*.yaml"))
RULE_FILES = [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]
EXACT_PIP = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9][A-Za-z0-9.+!-]*)$")
EXACT_CONDA = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==?([0-9][A-Za-z0-9._+-]*)$")
# Keywords whose rule runs a job (and so needs an environment).
RUNS = ("script:", "shell:", "run:", "notebook:", "wrapper:")


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


def rule_blocks(files=RULE_FILES) -> dict[str, tuple[Path, str]]:
    """rule name -> (file, text of its block), from the Snakefile and rules/*.smk."""
    blocks = {}
    for path in files:
        lines = path.read_text().splitlines()
        starts = [i for i, line in enumerate(lines) if re.match(r"^rule \w+:", line)]
        for i in starts:
            # A rule ends at the next line that starts at column 0 (comment or statement).
            end = next((j for j in range(i + 1, len(lines))
                        if lines[j] and not lines[j][0].isspace()), len(lines))
            name = re.match(r"^rule (\w+):", lines[i])[1]
            blocks[name] = (path, "\n".join(lines[i:end]))
    return blocks


def env_less_rules(files=RULE_FILES) -> list[str]:
    """Rules that run a job but name no env file of envs/."""
    envs = [p.resolve() for p in ENV_FILES]
    bad = []
    for name, (path, body) in rule_blocks(files).items():
        if not any(re.search(rf"^\s+{kw}", body, re.M) for kw in RUNS):
            continue
        match = re.search(r"^\s+conda:\s*\n\s+\"([^\"]+)\"", body, re.M)
        if not match or (path.parent / match[1]).resolve() not in envs:
            bad.append(f"rule {name} ({path.name})")
    return bad


def test_every_rule_that_runs_something_names_an_env():
    assert {"train_cell", "aggregate", "plot", "make_synthetic",
            "download_fashionmnist"} <= set(rule_blocks())
    assert env_less_rules() == []


def test_a_rule_without_env_is_caught(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "x.smk").write_text(
        'rule with_env:\n    output:\n        "a"\n    conda:\n        "../envs/report.yaml"\n'
        '    script:\n        "x.py"\n\n\n'
        'rule without_env:\n    output:\n        "b"\n    shell:\n        "touch {output}"\n\n\n'
        'rule wrong_env:\n    output:\n        "c"\n    conda:\n        "../envs/nope.yaml"\n'
        '    shell:\n        "touch {output}"\n\n\n'
        'rule target:\n    input:\n        "a",\n')
    (tmp_path / "envs").symlink_to(ROOT / "envs")
    assert env_less_rules([rules / "x.smk"]) == ["rule without_env (x.smk)",
                                                 "rule wrong_env (x.smk)"]
