"""From per-cell metrics files to the results table and the per-cell summary.

``results/table.csv``: one row per run and epoch, the seed's columns first
(run, epoch, loss, accuracy, epoch_duration, run_duration, lr, batch_size, num_workers),
then everything else speedlimit measures.

``results/summary.csv``: one row per cell (repeats pooled) and node: median epoch duration
with a 95% bootstrap interval, speed-up over num_workers=0 on the same node with its interval,
and whether that speed-up is distinguishable from noise (its interval excludes 1).
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from speedlimit import axes, grid, metrics

# The seed's table: its bookkeeping columns, then its axes (lr, batch_size, num_workers).
SEED_COLUMNS = ["run", "epoch", "loss", "accuracy", "epoch_duration", "run_duration",
                *axes.SEED]
AXIS_COLUMNS = ["loader", "repeat", *(a for a in axes.NAMES if a not in axes.SEED)]
MEASURE_COLUMNS = ["data_wait", "compute", "data_wait_share", "first_batch",
                   "samples_per_second", "startup", "limit_ratio", "quality_consistent"]
META_COLUMNS = ["status", "reason", "warnings", "node", "cpu_model", "cpus_allowed",
                "torch_version",
                "epochs", "seed", "cell", "started_at", "finished_at"]
INTEGER_COLUMNS = ["run", "epoch", "repeat", *axes.INTEGERS, "cpus_allowed", "epochs", "seed"]
BOOLEAN_COLUMNS = list(axes.BOOLEANS)
TABLE_COLUMNS = SEED_COLUMNS + AXIS_COLUMNS + MEASURE_COLUMNS + META_COLUMNS

# Cells that differ only in other settings train on identical batches in identical order.
QUALITY_KEYS = [*axes.SAME_BATCHES, "epochs", "seed", "epoch"]
# Timings are compared only within a node (machine): cells that ran on different hardware,
# e.g. in separate SLURM allocations, are never each other's limit, baseline or repeat.
LIMIT_KEYS = [*axes.LIMIT, "epoch", axes.NODE]
BASELINE_KEYS = ["loader", *axes.BASELINE, axes.NODE]
CELL_KEYS = ["loader", *axes.NAMES]
# One summary row per cell and node.
SUMMARY_KEYS = CELL_KEYS + [axes.NODE]
BOOTSTRAP = 2000
QUALITY_RTOL = 1e-6


class MissingCellsError(RuntimeError):
    """Cells of the grid have no metrics file; the message lists them."""


def rows_of(record: dict, run: int) -> list[dict]:
    """Table rows (one per epoch; one empty row for a skipped or missing cell) of a record."""
    params, env = record["params"], record.get("environment", {})
    base = {
        "run": run,
        **{k: params.get(k) for k in axes.SEED},
        **{k: params.get(k) for k in AXIS_COLUMNS},
        "status": record["status"],
        "reason": record.get("reason"),
        "warnings": "; ".join(record.get("warnings") or []) or None,
        "node": env.get("node"),
        "cpu_model": env.get("cpu_model"),
        "cpus_allowed": env.get("cpus_allowed"),
        "torch_version": env.get("torch"),
        "epochs": params.get("epochs"),
        "seed": params.get("seed"),
        "cell": record["cell"],
        "started_at": record.get("started_at"),
        "finished_at": record.get("finished_at"),
        "run_duration": record.get("run_duration"),
        "startup": record.get("startup"),
    }
    if not record["epochs"]:
        return [{**base, "epoch": None}]
    rows = []
    for ep in record["epochs"]:
        row = {**base, **{k: ep.get(k) for k in ("epoch", "loss", "accuracy", "epoch_duration",
                                                 "data_wait", "compute", "first_batch",
                                                 "samples_per_second")}}
        row["data_wait_share"] = (ep["data_wait"] / ep["epoch_duration"]
                                  if ep["epoch_duration"] else None)
        rows.append(row)
    return rows


def missing_record(cell: grid.Cell, reason: str | None = None) -> dict:
    return {"status": "missing",
            "reason": reason or "no metrics file (the cell failed or did not run)",
            "cell": cell.path, "params": cell.params(), "epochs": []}


def _failure(record: dict) -> str:
    """Why a ``status: failed`` record's cell is missing, with where its log is."""
    where = f" (log: {record['log']})" if record.get("log") else ""
    return f"failed: {record.get('reason', 'no reason recorded')}{where}"


def build_table(files: dict[str, str], expected: list[grid.Cell],
                allow_missing: bool = False) -> pd.DataFrame:
    """The results table of the ``expected`` cells; ``files`` maps cell path to metrics file.

    Every file is validated against the metrics schema. Cells without a file raise
    :class:`MissingCellsError`, unless ``allow_missing``: then they get a row marked missing.
    """
    schema = metrics.load_schema()
    numbers = grid.run_numbers(expected)
    records, missing = {}, {}
    for cell in expected:
        if cell.path not in files:
            missing[cell.path] = "no metrics file (the cell failed or did not run)"
            continue
        record = metrics.read(files[cell.path], schema)
        if record["cell"] != cell.path:
            raise metrics.MetricsError(
                f"{files[cell.path]}: holds cell {record['cell']!r}, expected {cell.path!r}")
        if record["status"] == "failed":  # a complete record of a cell that did not finish
            missing[cell.path] = _failure(record)
        else:
            records[cell.path] = record
    if missing and not allow_missing:
        listing = "\n  ".join(f"{path}: {why}" for path, why in missing.items())
        raise MissingCellsError(
            f"{len(missing)} of {len(expected)} cells have no metrics:\n  {listing}\n"
            "Run snakemake again to retrain them (failed cells rerun by themselves; their logs "
            "under logs/train_cell/ hold the tracebacks), or set "
            "`report: {allow_missing: true}` (e.g. --config report='{allow_missing: true}') "
            "to build the table with them marked missing."
        )
    rows = []
    for cell in expected:
        record = records.get(cell.path) or missing_record(cell, missing[cell.path])
        rows.extend(rows_of(record, numbers[cell.path]))
    table = pd.DataFrame(rows).reindex(columns=TABLE_COLUMNS)
    table = table.astype({c: "Int64" for c in INTEGER_COLUMNS})
    table = table.astype({c: "boolean" for c in BOOLEAN_COLUMNS})
    table["limit_ratio"] = limit_ratios(table)
    table["quality_consistent"] = quality_consistency(table)
    table = table.sort_values(["run", "epoch"], kind="stable").reset_index(drop=True)
    return table


def _key_frame(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Key columns with missing values made comparable (NaN/None never equal otherwise)."""
    return table[keys].astype(object).where(table[keys].notna(), "-").astype(str)


def limit_ratios(table: pd.DataFrame) -> pd.Series:
    """epoch_duration / median loader-free epoch_duration of the same batch size (and lr,
    torch_threads, device, epoch); NaN where no loader-free cell was measured."""
    keys = _key_frame(table, LIMIT_KEYS).agg("|".join, axis=1)
    tensor = table["loader"].eq("tensor") & table["status"].eq("ok")
    limit = table.loc[tensor, "epoch_duration"].groupby(keys[tensor]).median()
    return table["epoch_duration"] / keys.map(limit).astype(float)


def quality_consistency(table: pd.DataFrame) -> pd.Series:
    """True where a row's loss equals (to QUALITY_RTOL) the loss of every other cell that
    trained on the same batches (same batch size, lr, threads, device, seed, epoch)."""
    ok = table["status"].eq("ok")
    keys = _key_frame(table, QUALITY_KEYS).agg("|".join, axis=1)
    reference = table.loc[ok, "loss"].groupby(keys[ok]).median()
    ref = keys.map(reference).astype(float)
    consistent = np.isclose(table["loss"], ref, rtol=QUALITY_RTOL, atol=0)
    return pd.Series(np.where(ok, consistent, None), index=table.index, dtype=object)


def _bootstrap_medians(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    picks = rng.integers(0, len(values), size=(BOOTSTRAP, len(values)))
    return np.median(values[picks], axis=1)


def _interval(samples: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(samples, [2.5, 97.5])
    return float(low), float(high)


def summarize(table: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """One row per cell and node: medians over repeats, 95% bootstrap intervals, speed-up vs
    0 workers on the same node."""
    ok = table[table["status"].eq("ok")].copy()
    # A run's epoch duration is the mean over its epochs.
    per_run = (ok.groupby(["run"] + SUMMARY_KEYS + ["repeat"], dropna=False)
                 .agg(epoch_duration=("epoch_duration", "mean"),
                      data_wait_share=("data_wait_share", "mean"),
                      limit_ratio=("limit_ratio", "mean"),
                      loss=("loss", "last"), accuracy=("accuracy", "last"))
                 .reset_index())
    per_run["cell_key"] = _key_frame(per_run, SUMMARY_KEYS).agg("|".join, axis=1)
    per_run["base_key"] = _key_frame(per_run, BASELINE_KEYS).agg("|".join, axis=1)
    samples = {k: g["epoch_duration"].to_numpy(float) for k, g in per_run.groupby("cell_key")}
    boots = {k: _bootstrap_medians(v, np.random.default_rng([seed, zlib.crc32(k.encode())]))
             for k, v in samples.items()}
    baselines = {row.base_key: row.cell_key for row in per_run.itertuples()
                 if row.loader == "dataloader" and row.num_workers == 0}
    rows = []
    for key, group in per_run.groupby("cell_key", sort=False):
        first = group.iloc[0]
        durations = samples[key]
        row = {c: first[c] for c in SUMMARY_KEYS}
        row["repeats"] = len(durations)
        row["epoch_duration_median"] = float(np.median(durations))
        row["epoch_duration_ci_low"], row["epoch_duration_ci_high"] = (
            _interval(boots[key]) if len(durations) > 1 else (np.nan, np.nan))
        base = baselines.get(first["base_key"]) if first["loader"] == "dataloader" else None
        if base is not None:
            row["speedup"] = float(np.median(samples[base]) / np.median(durations))
            if len(durations) > 1 and len(samples[base]) > 1:
                low, high = _interval(boots[base] / boots[key])
                row["speedup_ci_low"], row["speedup_ci_high"] = low, high
                row["speedup_significant"] = bool(low > 1.0 or high < 1.0)
        row["data_wait_share_median"] = float(group["data_wait_share"].median())
        row["limit_ratio_median"] = float(group["limit_ratio"].median())
        row["loss_median"] = float(group["loss"].median())
        row["accuracy_median"] = float(group["accuracy"].median())
        row["first_run"] = int(group["run"].min())
        rows.append(row)
    columns = SUMMARY_KEYS + ["repeats", "epoch_duration_median", "epoch_duration_ci_low",
                           "epoch_duration_ci_high", "speedup", "speedup_ci_low",
                           "speedup_ci_high", "speedup_significant", "data_wait_share_median",
                           "limit_ratio_median", "loss_median", "accuracy_median", "first_run"]
    summary = pd.DataFrame(rows).reindex(columns=columns)
    summary = summary.astype({c: "Int64" for c in (*axes.INTEGERS, "repeats", "first_run")})
    return summary.sort_values("first_run", kind="stable").reset_index(drop=True)
