"""The decision record's outcomes from a results table, as the pipeline's `decide` step
would write them from the same runs: for tests that build a table without running the
pipeline (the pipeline itself decides once, in scripts/decide.py, and every later stage reads
its record)."""

from __future__ import annotations

import pandas as pd

from speedlimit import axes
from speedlimit.config import lever_defaults
from speedlimit.groups import GROUP_KEYS, SETTING_KEYS
from speedlimit.results import aggregate, decisions

LEVERS = lever_defaults()  # train.threshold and train.margin, as the schema defaults them


def durations_per_round(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`speedlimit.results.decisions.runs_frame`'s rows from the results table's
    finished DataLoader runs."""
    ok = table[table["status"].eq("ok") & table["loader"].eq(axes.DATALOADER)]
    if ok.empty:
        return decisions.runs_frame([])
    runs = ok.groupby("cell", sort=False).agg(duration=("epoch_duration", "mean"),
                                               round=("repeat", "first"),
                                               loader=("loader", "first"),
                                               **{k: (k, "first") for k in
                                                  GROUP_KEYS + SETTING_KEYS if k in ok})
    runs = runs.reset_index()
    for k in GROUP_KEYS + SETTING_KEYS:
        runs[k] = runs[k].map(lambda v, k=k: axes.text(v, k)) if k in runs else "default"
    runs[axes.NODE] = runs[axes.NODE].astype(str)
    runs["round"] = runs["round"].astype(int)
    return runs


def outcomes_of(table: pd.DataFrame, forecast: bool = False) -> list:
    """Every group's outcome: a race's intervals where the table's runs were timed in windows
    (a race's), else fixed repeats' (one look)."""
    runs = durations_per_round(table)
    if runs.empty:
        return []
    anytime = bool(table["timed"].eq("windows").any()) if "timed" in table else False
    return decisions.run_race(runs, LEVERS, anytime=anytime, forecast=forecast)


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`speedlimit.results.aggregate.summarize` with the outcomes decided from the same
    table."""
    return aggregate.summarize(table, outcomes_of(table))
