"""Sortable HTML versions of the results table and the summary (the `tables` rule)."""

import logging
from pathlib import Path

import pandas as pd

from speedlimit import logs
from speedlimit.results import htmltable

CAPTIONS = {
    "table": ("Results table", "One row per run and epoch (durations in seconds); the seed's "
              "columns first, then every setting and measurement of the cell."),
    "summary": ("Summary", "One row per cell, runs pooled: median epoch duration (s) with its "
                "distribution-free interval; speed-up over num_workers=0 (>1 is faster) and "
                "ratio to the fastest, paired by round, with their intervals (simultaneous for "
                "the run's pairs at 95%) and verdicts; where the cell stands in the race; "
                "data-wait share and loader-free limit ratio."),
}


def main(inputs: dict, outputs: dict) -> None:
    for name, path in outputs.items():
        title, caption = CAPTIONS[name]
        frame = pd.read_csv(inputs[name])
        Path(path).write_text(htmltable.table_page(frame, title, caption, table_id=name))
        logging.info("wrote %s (%d rows)", path, len(frame))


if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    logs.to_rule_log(smk.log[0])
    main(dict(smk.input.items()), dict(smk.output.items()))
