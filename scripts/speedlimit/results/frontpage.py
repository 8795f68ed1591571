"""The report's front page: what was run, on what hardware, the findings, how to reproduce.

:func:`document` assembles it from the summary, the cells' environment blocks, the findings
and the effective config, and renders it as rst (included by ``report/workflow.rst``), as a
self-contained HTML page and as markdown (``results/findings.md``).
"""

from __future__ import annotations

import html as html_module
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from speedlimit import grid
from speedlimit.results import answer as answer_module
from speedlimit.results import claims as claims_module
from speedlimit.results import findings as findings_module
from speedlimit.results import htmltable, notes
from speedlimit.results import render
from speedlimit.results.decisions import Ratio, rounded
from speedlimit.results.render import Section
from speedlimit.results.words import percent
from speedlimit.run import workloads

CONFIG_NAME = "reproduce.yaml"


def _values(values) -> str:
    def one(v):
        return "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
    return ", ".join(one(v) for v in values)


def what_was_run(summary: pd.DataFrame, config: dict) -> list[str]:
    grid, train, data = config["grid"], config["train"], config["data"]
    loader = summary[summary["loader"].eq("dataloader")]
    tensor = summary[summary["loader"].eq("tensor")]
    axes = "; ".join(f"{k} {_values(v)}" for k, v in grid.items() if k != "loader")
    source = data["source"]
    if source == "synthetic":
        syn = data.get("synthetic", {})
        source = (f"synthetic stand-in data ({syn.get('train_size')} training images in "
                  "FashionMNIST's format, generated offline)")
    else:
        source = "FashionMNIST (60,000 training images)"
    names = grid.get("workload", [workloads.DEFAULT])
    custom = config.get("workloads", {}).get("custom")
    if names == [workloads.CUSTOM]:  # (it may read the pipeline's data set, or its own)
        source = "the data the custom workload makes (workloads.custom)"
    model = ("The seed experiment's small CNN (2 conv + 3 linear layers, Adam, cross-entropy)"
             if workloads.CUSTOM not in names else
             "The custom workload's own model and training step (by default the seed "
             "experiment's small CNN, Adam and cross-entropy)" if names == [workloads.CUSTOM]
             else "The seed experiment's small CNN (2 conv + 3 linear layers; the custom "
             "workload may bring its own model, loss or step), with Adam and cross-entropy,")
    out = [f"{model} was trained for {train['epochs']} epoch(s) per cell on {source}"
           + (", one cell at a time" if train.get("exclusive", True) else
              ", cells allowed to run at the same time (`train.exclusive: false`)")
           + ", and every epoch was timed."]
    out.append("Workloads: " + "; ".join(f"{n} ({workloads.describe(n, custom)})"
                                          for n in names) + ".")
    if train["repeats"] == "auto":
        runs = (f"raced in rounds (at most {train['max_rounds']}, budget "
                f"{train['budget']}), each run timing windows of batches and predicting its "
                "epoch")
    else:
        runs = f"each run {train['repeats']} time(s), whole epochs"
    out.append(f"The grid: {axes}; loader {_values(grid.get('loader', []))}. That is {len(loader)} "
               f"DataLoader cell(s)" + (f" and {len(tensor)} loader-free cell(s) (the whole set "
                                        "as one tensor, the fastest possible epoch)"
                                        if len(tensor) else "")
               + f", {runs}, with seed {train['seed']}.")
    return out


def git_revision(cwd: str | Path = ".") -> str | None:
    """``git describe --always --dirty`` of the working copy, or None outside git."""
    try:
        proc = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=cwd,
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def reproduce(revision: str | None) -> list[str]:
    where = (f"a checkout of speedlimit at `{revision}`" if revision
             else "a checkout of speedlimit")
    return [f"In {where}, save the effective configuration as `{CONFIG_NAME}` (it is under "
            "`1. Findings`, and at the end of the findings page) and run "
            f"`snakemake --cores all --configfile {CONFIG_NAME}`, then "
            f"`snakemake --report report.html --configfile {CONFIG_NAME}`.",
            "The configuration is every setting in force, defaults included (config.yaml, "
            "any --configfile and --config merged)."]


@dataclass
class Document:
    sections: list[Section]  # everything: the findings page and results/findings.md
    front: list[Section]  # the report's front page: short enough to read at a glance
    config_yaml: str
    recommendation: dict  # results/recommendation.yaml

    def recommendation_yaml(self) -> str:
        return ("# speedlimit: the DataLoader settings to use, per workload and batch size "
                "(docs/workloads.md)\n"
                + yaml.safe_dump(self.recommendation, sort_keys=False, width=100,
                                 allow_unicode=True))

    def markdown(self) -> str:
        text = render.markdown(self.sections, title="speedlimit: findings")
        return text + "## Effective configuration\n\n```yaml\n" + self.config_yaml + "```\n"

    def rst(self) -> str:
        """The front page (included by report/workflow.rst)."""
        return render.rst(self.front)

    def html(self, title: str = "speedlimit: findings", extra: str = "") -> str:
        body = (render.html(self.sections) + extra
                + "<h2>Effective configuration</h2><pre>"
                + html_module.escape(self.config_yaml) + "</pre>")
        return htmltable.page(title, body)


def document(summary: pd.DataFrame, comparison: pd.DataFrame | None, environments: list[dict],
             config: dict, revision: str | None = None,
             table: pd.DataFrame | None = None,
             grid_skipped: pd.DataFrame | None = None, race_state: dict | None = None,
             checks: list[dict] | None = None,
             outcomes: list | None = None) -> Document:
    """The findings page, the front page and the recommendation, from the summary, the table
    and the decision record's ``outcomes`` (``race_state``: the race's last round, None with
    fixed repeats)."""
    context = {"data_source": config["data"]["source"],
               "train_size": config["data"].get("synthetic", {}).get("train_size")}
    groups, fam = [], None
    if outcomes:
        sequential = bool(outcomes[0].design is None or outcomes[0].design.anytime)
        groups = claims_module.build(summary, outcomes, checks, sequential)
        fam = groups[0].family if groups else claims_module.family(outcomes, sequential)
    found = findings_module.compute(summary, groups, fam, race_state, comparison, context,
                                    table, grid_skipped)
    run = Section("What was run", what_was_run(summary, config))
    machine = Section("Hardware", notes.hardware(environments))
    how = Section("How to reproduce", reproduce(revision))
    by_title = {section.title: section for section in found}
    sections = [*found, run, machine, how]  # the answer and how sure first, the rest after
    more = Section("More", ["Per workload and batch size, every claim behind its answer "
                            "(passed-over settings and why, as fast as which, the intervals), "
                            "the costs and the prediction; the machine's noise; published vs "
                            "reproduced cell by cell: `1. Findings` in the menu. Figures: `2.` "
                            "to `4.`; sortable tables: `5. Tables`."])
    front = ([found[0]] + [by_title[t] for t in ("How sure", "Not run") if t in by_title]
             + [run, machine, how, more])
    answer = recommendation(groups, fam, table, race_state)
    if found and found[0].title == "The answer":
        found[0].table = answer_module.table(answer["recommendations"])
    return Document(sections, front, config_yaml(config), answer)


def config_yaml(config: dict) -> str:
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False, width=200)


# --- results/recommendation.yaml --------------------------------------------------------------


def _ratio(r: Ratio | None) -> dict | None:
    return r.as_dict() if r is not None else None


def machine(g: claims_module.GroupClaims, table: pd.DataFrame | None) -> dict:
    """The machine a group's cells ran on: node(s), CPU model, the CPUs a cell could use,
    torch's threads in force and its version."""
    out = {"node": None, "cpu_model": None, "cpus": g.costs.cpus,
           "torch_threads": g.costs.threads, "torch": None}
    if table is not None:
        rows = table[table["status"].eq("ok") & table["loader"].eq("dataloader")]
        rows = rows[rows["cell"].map(grid.prefix).isin(g.outcome.cells)]
        for key, column in (("node", "node"), ("cpu_model", "cpu_model"),
                            ("torch", "torch_version")):
            values = rows[column].dropna().astype(str).unique() if column in rows else []
            out[key] = " / ".join(sorted(values)) if len(values) else None
    return out


def recommendation(groups: list[claims_module.GroupClaims],
                   fam: claims_module.Family | None, table: pd.DataFrame | None,
                   race_state: dict | None = None) -> dict:
    """``results/recommendation.yaml``: per group, the DataLoader settings to use, every claim
    behind them with its interval, the machine they hold for and how sure it is (undecided:
    about how many more rounds, and seconds, the race's last round reckoned)."""
    seconds = {e["label"]: e.get("seconds_more") for e in (race_state or {}).get("groups", [])}
    entries = []
    for g in groups:
        rec = g.recommendation
        i = rec.setting
        entries.append({
            "workload": g.workload,
            "batch_size": g.batch_size,
            "paste": findings_module.paste(g, i),
            "with": findings_module.holds_under(g),
            "how_sure": {"level": rec.level, "rounds": g.outcome.rounds,
                         "rounds_more": rec.rounds_more,
                         "seconds_more": seconds.get(g.label) if rec.rounds_more else None,
                         "open": [f"{g.words(a)} vs "
                                  f"{'the fastest of the others' if b < 0 else g.words(b)}: "
                                  f"{what}" for a, b, what, _ in rec.open]},
            "speedup_over_num_workers_0": (_ratio(rec.gain) if rec.gain is not None else
                                           ("this is num_workers=0" if g.outcome.base[i] == i
                                            else None)),
            "vs_fastest_tried": (_ratio(rec.behind) if rec.behind is not None else None),
            "holds_under": {k: v for k, v in g.outcome.conditions.items()
                            if k not in ("workload", "batch_size")},
            "dataloader_kwargs": findings_module.kwargs(g, i),
            "passed_over": [{"setting": g.words(p.setting), "because": p.because,
                             "versus": g.words(p.versus), "ratio": _ratio(p.ratio)}
                            for p in rec.passed_over],
            "fastest_measured": {"setting": g.words(g.fastest.setting),
                                 "dataloader_kwargs": findings_module.kwargs(
                                     g, g.fastest.setting),
                                 "epoch_duration_median_s": rounded(g.fastest.median)},
            "machine": machine(g, table),
            "predicted": ({"load_per_sample_s": rounded(g.prediction.load, 9),
                           "compute_per_sample_s": rounded(g.prediction.compute, 9),
                           "picks_num_workers": g.prediction.recommends,
                           "speedups_inside_intervals": (
                               f"{len(g.prediction.checked) - len(g.prediction.outside)} of "
                               f"{len(g.prediction.checked)}")}
                          if g.prediction is not None else None),
            "check": [{"setting": g.words(c.setting), "predicted_epoch_s": rounded(c.predicted),
                       "measured_epoch_s": rounded(c.measured)} for c in g.checks],
        })
    levers = (f"at most {percent(fam.margin)} slower than the fastest setting tried and faster "
              f"than num_workers=0 by more than {percent(fam.threshold)}" if fam is not None
              else "as fast as the fastest setting tried and faster than num_workers=0")
    about = ("The DataLoader call to paste (`paste`) and what it was measured with (`with`), per "
             f"workload and batch size: the fewest workers {levers} where any setting "
             "is. level tested: decided; undecided: the fewest workers measured within the noise "
             "threshold of the fastest; one run: nothing tested.")
    if fam is not None and fam.rounds > 1:
        about += (f" Every interval is one of the run's {fam.comparisons} comparisons, "
                  f"simultaneous at {percent(1 - fam.alpha)}.")
    return {"recommendations": entries, "about": about}
