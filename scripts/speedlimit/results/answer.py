"""The answer on the terminal: when a run ends (or a rerun finds nothing to do), the answer
block of ``results/findings.md`` (one line per workload and batch size: the call to paste, how
sure, the gain) and where the rest is. The Snakefile prints :func:`block` at the end of every
run that executed the workflow (rules/report.smk); a failed or dry run prints nothing."""

from __future__ import annotations

import re
from pathlib import Path

HEADING = "## The answer"


def answer_lines(findings: str) -> list[str]:
    """The answer section's lines of a findings page (its bullet points, as written)."""
    lines, inside = [], False
    for line in findings.splitlines():
        if line.strip() == HEADING:
            inside = True
            continue
        if inside and line.startswith("## "):
            break
        if inside and line.strip():
            lines.append(line.rstrip())
    return lines


def _plain(line: str) -> str:
    """A findings line for the terminal: its Markdown bullet and backticks dropped."""
    return re.sub(r"`([^`]*)`", r"\1", line[2:] if line.startswith("- ") else line)


def block(results: Path | str = "results") -> str | None:
    """What to print: the answer and where the findings, the recommendation and the report
    are; None when the run has no findings yet."""
    results = Path(results)
    findings = results / "findings.md"
    if not findings.is_file():
        return None
    lines = answer_lines(findings.read_text(encoding="utf-8"))
    if not lines:
        return None
    out = ["", "speedlimit: the answer"] + [f"  {_plain(line)}" for line in lines]
    out += [f"  findings: {findings}; settings to paste: {results / 'recommendation.yaml'}; "
            "report: snakemake --report report.html (with the same options)"]
    return "\n".join(out)
