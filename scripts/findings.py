"""Write the findings (the `findings` rule): results/findings.md, the report's front-page rst,
the findings page, results/recommendation.yaml and the published-vs-reproduced table (CSV and
sortable HTML)."""

import json
import logging
import sys
from pathlib import Path

import pandas as pd

from speedlimit import logs, record
from speedlimit.results import aggregate, frontpage, htmltable, published
from speedlimit.results import decision_file as decision_record

COMPARISON_CAPTION = (
    "Speed-up over num_workers=0 per (batch_size, num_workers): the published one "
    f"(deeplizard 2019) beside ours. agreement: {published.AGREEMENT}; published_in_interval: "
    "the published value lies inside our interval. The published table records neither its "
    "hardware nor its thread settings.")


def main(summary_csv, table_csv, published_csv, config, revision, outputs,
         skipped_csv=None, decision_file=None, check_files=()) -> None:
    """``decision_file``: the decision record (the race's last round, or fixed repeats'
    decisions)."""
    summary = pd.read_csv(summary_csv)
    table = pd.read_csv(table_csv)
    grid_skipped = pd.read_csv(skipped_csv) if skipped_csv else None
    comparison = published.compare(published.load(published_csv), summary)
    environments = aggregate.environments(table)
    state = json.loads(Path(decision_file).read_text()) if decision_file else {}
    race_state = state if state.get("stopped") not in (None, "fixed") else None
    outcomes = [decision_record.outcome_from_dict(d) for d in state.get("outcomes", [])]
    schema = record.load_schema()  # the check epochs' records are train_cell's, checked alike
    checks = [record.read(f, schema) for f in check_files]
    doc = frontpage.document(summary, comparison, environments, config, revision, table,
                             grid_skipped, race_state, checks, outcomes)
    if comparison["setting"].eq("").all():  # nothing varies besides the compared axes
        comparison = comparison.drop(columns="setting")
    Path(outputs["md"]).write_text(doc.markdown())
    Path(outputs["rst"]).write_text(doc.rst())
    Path(outputs["config"]).write_text(doc.config_yaml)
    Path(outputs["recommendation"]).write_text(doc.recommendation_yaml())
    Path(outputs["html"]).write_text(doc.html(extra=(
        "<h2>Published vs reproduced, cell by cell</h2><p class=\"caption\">"
        + COMPARISON_CAPTION + "</p>" + htmltable.table(comparison, "comparison"))))
    comparison.to_csv(outputs["comparison"], index=False)
    Path(outputs["comparison_html"]).write_text(htmltable.table_page(
        comparison, "Published vs reproduced speed-up", COMPARISON_CAPTION))
    logging.info("findings written; %d cells compared with the published table",
                 len(comparison))


if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    terminal = logs.to_rule_log(smk.log[0])
    try:
        main(smk.input.summary, smk.input.table, smk.input.published,
             json.loads(smk.params.config),
             frontpage.git_revision(smk.scriptdir),
             dict(smk.output.items()), smk.input.skipped, smk.input.decisions[0],
             smk.input.checks)
    except record.RecordError as err:
        logging.error("%s", err)
        print(f"speedlimit: {err}", file=terminal, flush=True)
        sys.exit(1)
