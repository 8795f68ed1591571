"""The docs: the MkDocs site under docs/ builds with --strict (every link and anchor resolves),
and README.md stays a front door: short, its commands ones the Makefile or Snakemake knows,
its links pointing at files that exist."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_LINES = 160
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def readme_commands() -> list[list[str]]:
    """Every command line of README.md's fenced ``sh`` blocks, split as the shell would
    (comments dropped)."""
    blocks = re.findall(r"^```sh\n(.*?)^```", README.read_text(), re.M | re.S)
    commands = []
    for block in blocks:
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(words)
    return commands


def readme_links() -> list[str]:
    """The relative link targets of README.md (``[text](target)``), web links left out."""
    targets = re.findall(r"\]\(([^)\s]+)\)", README.read_text())
    return [t for t in targets if not re.match(r"[a-z]+:", t)]


def anchors(page: Path) -> set[str]:
    """The anchors MkDocs gives a page's headings (Python-Markdown's toc slugs)."""
    found = set()
    fenced = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)):
            found.add(slugify(m[1].replace("`", ""), "-"))
    return found


def test_the_site_builds_strictly(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-4000:]}"
    assert (tmp_path / "index.html").is_file()
    for page in (ROOT / "docs").glob("*.md"):
        assert (tmp_path / page.stem / "index.html").is_file() or page.stem == "index", (
            f"docs/{page.name} was not built (missing from mkdocs.yml's nav?)")


def test_the_readme_is_a_front_door():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines (at most {MAX_README_LINES}): move the reference "
        "material into docs/")


def test_the_readme_shows_commands():
    programs = {words[0] for words in readme_commands()}
    assert {"make", "snakemake"} <= programs


@pytest.mark.parametrize("words", readme_commands(), ids=shlex.join)
def test_every_readme_command_is_known(words):
    program, args = words[0], words[1:]
    assert program in ("make", "snakemake"), (
        f"README.md shows {shlex.join(words)!r}: only make targets and snakemake calls")
    if program == "make":
        # make -n prints what would run without running it, and fails on an unknown target.
        result = subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, f"{shlex.join(words)}: {result.stderr}"
        return
    known = subprocess.run([str(SNAKEMAKE), "--help"], cwd=ROOT, capture_output=True,
                           text=True, timeout=120).stdout
    for arg in args:
        if arg.startswith("-"):
            option = arg.split("=", 1)[0]
            assert re.search(rf"(^|[\s,]){re.escape(option)}([\s,=]|$)", known, re.M), (
                f"{shlex.join(words)}: snakemake knows no option {option}")
        else:
            assert (ROOT / arg).is_file(), f"{shlex.join(words)}: {arg} does not exist"


def test_the_readme_links_resolve():
    assert readme_links()
    for target in readme_links():
        path, _, anchor = target.partition("#")
        file = ROOT / path
        assert file.exists(), f"README.md links to {target}, and {path} does not exist"
        if anchor:
            assert anchor in anchors(file), f"README.md links to {target}: no such heading"
