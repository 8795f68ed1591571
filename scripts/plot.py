"""Render the figures under results/plots/ (the `plot` rule)."""

import logging

import pandas as pd

from speedlimit import logs
from speedlimit.results import decision_file as decision_file_module
from speedlimit.results import plots, published


def main(table_csv: str, summary_csv: str, published_csv: str, decision_file: str,
         outputs: dict) -> None:
    table = pd.read_csv(table_csv)
    summary = pd.read_csv(summary_csv)
    outcomes = decision_file_module.read_record(decision_file)
    figures = {
        "epoch_duration": lambda: plots.epoch_duration(table),
        "speedup": lambda: plots.speedup(summary),
        "prediction": lambda: plots.prediction(summary),
        "time_split": lambda: plots.time_split(table),
        "quality": lambda: plots.quality(table),
        "race": lambda: plots.race(outcomes),
        "published": lambda: plots.published_vs_reproduced(
            published.compare(published.load(published_csv), summary)),
    }
    measured = table["status"].eq("ok") & table["loader"].eq("dataloader")
    for name, path in outputs.items():
        if measured.any():
            figure = figures[name]()
        else:  # e.g. every cell failed or was skipped, and report.allow_missing is on
            figure = plots.placeholder(name.replace("_", " "),
                                       "No DataLoader cell finished: nothing to plot.\n"
                                       "See results/table.csv (status, reason) and the "
                                       "cells' logs.")
        plots.save(figure, path)
        logging.info("wrote %s", path)


if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    logs.to_rule_log(smk.log[0])
    main(smk.input.table, smk.input.summary, smk.input.published, smk.input.decisions[0],
         dict(smk.output.items()))
