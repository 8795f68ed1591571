"""Build results/table.csv, results/summary.csv and results/skipped.csv (the `aggregate` rule)."""

import logging
import sys

import pandas as pd

from speedlimit import aggregate, grid, metrics


def main(run_files, cells, table_csv, summary_csv, skipped_csv, skipped,
         allow_missing=False, seed=0) -> None:
    """``run_files``: metrics files found; ``cells``: every cell path of the current grid."""
    files = {str(p).removeprefix("results/runs/").removesuffix(".json"): str(p)
             for p in run_files}
    expected = [grid.parse_path(p) for p in cells]
    table = aggregate.build_table(files, expected, allow_missing)
    table.to_csv(table_csv, index=False)
    aggregate.summarize(table, seed).to_csv(summary_csv, index=False)
    pd.DataFrame(skipped, columns=["cell", "reason"]).to_csv(skipped_csv, index=False)
    logging.info("table: %d rows; %d combinations skipped", len(table), len(skipped))


if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    sys.stderr = open(smk.log[0], "w")
    logging.basicConfig(stream=sys.stderr, level=logging.INFO)
    try:
        main(smk.input.runs, smk.params.cells, smk.output.table, smk.output.summary, smk.output.skipped,
             smk.params.skipped, smk.params.allow_missing, smk.params.seed)
    except (metrics.MetricsError, aggregate.MissingCellsError) as err:
        logging.error("%s", err)
        sys.exit(f"speedlimit: {err}")
