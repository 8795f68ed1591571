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

from speedlimit.results import advice
from speedlimit.results import findings as findings_module
from speedlimit.results import htmltable
from speedlimit.results.findings import Section
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
    model = ("The seed experiment's small CNN (2 conv + 3 linear layers, Adam, cross-entropy)"
             if workloads.CUSTOM not in names else
             "The seed experiment's small CNN (2 conv + 3 linear layers; the custom workload "
             "may bring its own model), with Adam and cross-entropy,")
    out = [f"{model} was trained for {train['epochs']} epoch(s) per cell on {source}"
           + (", one cell at a time" if train.get("exclusive", True) else
              ", cells allowed to run at the same time (`train.exclusive: false`)")
           + ", and every epoch was timed."]
    out.append("Workloads: " + "; ".join(f"{n} ({workloads.describe(n, custom)})"
                                          for n in names) + ".")
    out.append(f"The grid: {axes}; loader {_values(grid.get('loader', []))}. That is {len(loader)} "
               f"DataLoader cell(s)" + (f" and {len(tensor)} loader-free cell(s) (the whole set "
                                        "as one tensor, the fastest possible epoch)"
                                        if len(tensor) else "")
               + f", each run {train['repeats']} time(s) with seed {train['seed']}.")
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
                "(README: Workloads)\n"
                + yaml.safe_dump(self.recommendation, sort_keys=False, width=100,
                                 allow_unicode=True))

    def markdown(self) -> str:
        text = findings_module.markdown(self.sections, title="speedlimit: findings")
        return text + "## Effective configuration\n\n```yaml\n" + self.config_yaml + "```\n"

    def rst(self) -> str:
        """The front page (included by report/workflow.rst)."""
        return findings_module.rst(self.front)

    def html(self, title: str = "speedlimit: findings", extra: str = "") -> str:
        body = (findings_module.html(self.sections) + extra
                + "<h2>Effective configuration</h2><pre>"
                + html_module.escape(self.config_yaml) + "</pre>")
        return htmltable.page(title, body)


def document(summary: pd.DataFrame, comparison: pd.DataFrame | None, environments: list[dict],
             config: dict, revision: str | None = None,
             table: pd.DataFrame | None = None,
             grid_skipped: pd.DataFrame | None = None) -> Document:
    context = {"data_source": config["data"]["source"],
               "train_size": config["data"].get("synthetic", {}).get("train_size")}
    groups = advice.groups(summary[summary["epoch_duration_median"].notna()])
    found = findings_module.compute(summary, comparison, context, table, grid_skipped, groups)
    run = Section("What was run", what_was_run(summary, config))
    machine = Section("Hardware", findings_module.hardware(environments))
    recommended = Section("Recommendation", advice.front_sentences(groups))
    how = Section("How to reproduce", reproduce(revision))
    sections = [found[0], run, machine, recommended, *found[1:], how]
    more = Section("More", ["Per workload and batch size (loading cost, predicted and measured "
                            "crossover, the smallest num_workers as fast as the fastest), "
                            "per batch size (fastest setting, its interval, more workers, the "
                            "loader-free limit) and published vs reproduced cell by cell: "
                            "`1. Findings` in the menu. Figures: `2.` to `4.`; sortable "
                            "tables: `5. Tables`."])
    not_run = [s for s in found if s.title == "Not run"]
    front = ([found[0], *not_run, run, machine] + ([recommended] if groups else [])
             + [how, more])
    return Document(sections if groups else [s for s in sections if s is not recommended],
                    front, config_yaml(config), advice.recommendation(groups, table))


def config_yaml(config: dict) -> str:
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False, width=200)
