"""Build results/table.csv, results/summary.csv and results/skipped.csv (the `aggregate` rule)."""

import logging
import sys

import pandas as pd

from speedlimit import grid, logs, record
from speedlimit.results import aggregate
from speedlimit.results import decision_file as decision_record


def main(run_files, decision_file, table_csv, summary_csv, skipped_csv, skipped,
         allow_missing=False, terminal=None) -> None:
    """``run_files``: the metrics file of every run of the grid (of a race: of its rounds);
    ``decision_file``: the decision record the summary's intervals and verdicts come from."""
    files = aggregate.files_of_cells(run_files)
    expected = [grid.parse_path(p) for p in files]
    table = aggregate.build_table(files, expected, allow_missing)
    table.to_csv(table_csv, index=False)
    aggregate.summarize(table, decision_record.read_record(decision_file)).to_csv(summary_csv,
                                                                          index=False)
    pd.DataFrame(skipped, columns=["cell", "reason"]).to_csv(skipped_csv, index=False)
    logging.info("table: %d rows; %d combinations skipped", len(table), len(skipped))
    if not table["status"].eq("ok").any():
        skipped_here = table[table["status"].eq("skipped")]
        reasons = "; ".join(f"{n} cell(s): {reason}" for reason, n in
                            skipped_here["reason"].value_counts().items())
        print(f"speedlimit: nothing to summarize: none of the {len(expected)} runs finished"
              + (f" ({reasons})" if reasons else "") + "; see results/table.csv and "
              "results/findings.md", file=terminal or sys.stdout, flush=True)
    missing = table[table["status"].eq("missing")]
    if len(missing):
        lines = "\n  ".join(f"{r.cell}: {r.reason}" for r in missing.itertuples())
        message = (f"speedlimit: WARNING: {len(missing)} cell(s) missing, marked "
                   f"status=missing in {table_csv} (report.allow_missing is true):\n  {lines}")
        logging.warning("%s", message)
        print(message, file=terminal or sys.stdout, flush=True)


if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    terminal = logs.to_rule_log(smk.log[0])
    try:
        main(smk.input.runs, smk.input.decisions[0], smk.output.table, smk.output.summary,
             smk.output.skipped, smk.params.skipped, smk.params.allow_missing,
             terminal)
    except (record.RecordError, aggregate.MissingCellsError) as err:
        logging.error("%s", err)
        print(f"speedlimit: {err}", file=terminal, flush=True)
        sys.exit(1)
