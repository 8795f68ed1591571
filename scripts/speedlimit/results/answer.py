"""The answer as a table: one row per workload and batch size with the DataLoader call to
paste, its speed-up over ``num_workers=0`` with the interval, its bound against the fastest
setting tried, and the status (tested, or what is open and about how long more).

The rows come from the recommendation (``results/recommendation.yaml``, the structured answer
the findings write from the decision record): the findings page and the report's front page
show them as their first table (:func:`table`), and the terminal prints them when a run ends
(:func:`block`, printed by the exit hook in ``rules/inputs.smk``; a failed or dry run prints
nothing)."""

from __future__ import annotations

import math
from pathlib import Path

import yaml

from speedlimit.results.render import Table
from speedlimit.results.words import minutes, percent, times

HEADER = ["workload", "batch size", "over num_workers=0", "vs the fastest tried", "status",
          "paste"]


def _interval(ratio: dict) -> str:
    low, high = ratio.get("low"), ratio.get("high")
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return "no interval yet"
    return f"{low:.2f}-{high:.2f}x"


def gain_cell(gain) -> str:
    """The speed-up over num_workers=0: ``1.47x (1.20-1.80x)``."""
    if gain is None:
        return "no num_workers=0 tried"
    if isinstance(gain, str):
        return "num_workers=0 itself"
    return f"{times(gain['estimate'])} ({_interval(gain)})"


def bound_cell(ratio) -> str:
    """How much slower than the fastest setting tried it may be (the upper end of its
    interval against the fastest of the others): ``at most +4%``."""
    if ratio is None:
        return "the only setting tried"
    high = ratio.get("high")
    if high is None or not math.isfinite(high):
        return "no interval yet"
    return "the fastest" if high <= 1 else f"at most +{percent(high - 1)}"


def status_cell(how_sure: dict) -> str:
    """tested; or undecided, with about how many rounds and minutes more."""
    level = how_sure.get("level")
    if level == "tested":
        return "tested"
    if level == "one run":
        return "one run: not tested"
    more = how_sure.get("rounds_more")
    if not more:
        return f"open after {how_sure.get('rounds')} rounds"
    seconds = how_sure.get("seconds_more")
    return (f"open: ~{more} more round{'s' if more != 1 else ''}"
            + (f" (~{minutes(seconds)})" if seconds else ""))


def rows(recommendations: list[dict]) -> list[list[str]]:
    return [[str(e["workload"]), str(e["batch_size"]),
             gain_cell(e.get("speedup_over_num_workers_0")), bound_cell(e.get("vs_fastest_tried")),
             status_cell(e.get("how_sure") or {}), f"`{e['paste']}`"]
            for e in recommendations]


def table(recommendations: list[dict]) -> Table | None:
    """The answer table of the findings (None without a recommendation)."""
    return Table(HEADER, rows(recommendations)) if recommendations else None


def common_conditions(recommendations: list[dict]) -> str | None:
    """What every pasted call was measured with, where all rows share it
    (``torch.set_num_threads(1), device cpu``)."""
    kinds = {e.get("with") for e in recommendations}
    return kinds.pop() if len(kinds) == 1 else None


def text_table(header: list[str], body: list[list[str]], indent: str = "  ") -> list[str]:
    """Rows aligned in columns for the terminal (backticks dropped)."""
    cells = [[c.replace("`", "") for c in row] for row in [header, *body]]
    widths = [max(len(row[k]) for row in cells) for k in range(len(header))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
            for row in cells]


def block(results: Path | str = "results") -> str | None:
    """What to print when a run ends: the answer table and where the rest is; None when the
    run has no recommendation yet."""
    results = Path(results)
    path = results / "recommendation.yaml"
    if not path.is_file():
        return None
    recommendations = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get(
        "recommendations") or []
    if not recommendations:
        return None
    out = ["", "speedlimit: the answer"] + text_table(HEADER, rows(recommendations))
    shared = common_conditions(recommendations)
    rows_with = [] if shared else [f"  {e['workload']}, batch size {e['batch_size']}: with "
                                   f"{e['with']}" for e in recommendations]
    out += ([f"  measured with {shared}"] if shared else rows_with)
    out += [f"  why, and every claim behind it: {results / 'findings.md'}; settings to paste: "
            f"{path}; report: snakemake --report report.html (with the same options)"]
    return "\n".join(out)
