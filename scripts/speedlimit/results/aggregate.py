"""From per-cell metrics files to the results table and the per-cell summary.

``results/table.csv``: one row per run and epoch, the seed's columns first
(run, epoch, loss, accuracy, epoch_duration, run_duration, lr, batch_size, num_workers),
then everything else speedlimit measures.

``results/summary.csv``: one row per cell (repeats pooled) and node: median epoch duration
with its interval and spread, speed-up over num_workers=0 on the same node with its interval,
and whether that speed-up is more than noise (``speedup_verdict``; the statistics:
:mod:`speedlimit.results.stats`); the loading and compute cost per sample, the speed-up they
predict (:mod:`speedlimit.results.predict`), and how the cell compares with the fastest of
its workload and batch size (``vs_fastest``, ``vs_fastest_verdict``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from speedlimit import axes, grid, record
from speedlimit.groups import family_size
from speedlimit.results import decisions, predict, stats

# The seed's table: its bookkeeping columns, then its axes (lr, batch_size, num_workers).
SEED_COLUMNS = ["run", "epoch", "loss", "accuracy", "epoch_duration", "run_duration",
                *axes.SEED]
AXIS_COLUMNS = ["loader", "repeat", *(a for a in axes.NAMES if a not in axes.SEED)]
MEASURE_COLUMNS = ["timed", "timed_duration", "data_wait", "compute", "data_wait_share",
                   "load_per_sample",
                   "compute_per_sample", "first_batch", "samples_per_second", "startup",
                   "shutdown", "limit_ratio", "quality_consistent"]
# The machine's noise around each run's clock (speedlimit.run.noise), and when it ran.
NOISE_COLUMNS = ["reference_before", "reference_after", "disturbed", "other_cpu_seconds",
                 "steal_seconds", "order"]
# The machine and software a run had (its record's environment): table column -> key. The
# findings' hardware sentences read them from the table, so no step reads the records twice.
ENVIRONMENT = {"node": "node", "cpu_model": "cpu_model", "cpus_allowed": "cpus_allowed",
               "torch_version": "torch", "cpu_count": "cpu_count",
               "physical_cores": "physical_cores", "memory_bytes": "memory_bytes",
               "gpu_name": "gpu_name", "os": "os", "python": "python",
               "torchvision": "torchvision", "torch_threads_in_force": "torch_threads",
               "torch_interop_threads": "torch_interop_threads", "thread_env": "thread_env"}
META_COLUMNS = ["status", "reason", "warnings", *ENVIRONMENT, "epochs", "seed", "cell",
                "started_at", "finished_at"]
INTEGER_COLUMNS = ["run", "epoch", "repeat", *axes.INTEGERS, "cpus_allowed", "epochs", "seed",
                   "order", "cpu_count", "physical_cores", "memory_bytes",
                   "torch_threads_in_force", "torch_interop_threads"]
BOOLEAN_COLUMNS = [*axes.BOOLEANS, "disturbed"]
TABLE_COLUMNS = SEED_COLUMNS + AXIS_COLUMNS + MEASURE_COLUMNS + NOISE_COLUMNS + META_COLUMNS

# Cells that differ only in other settings train on identical batches in identical order.
QUALITY_KEYS = [*axes.SAME_BATCHES, "epochs", "seed", "epoch"]
# Timings are compared only within a node (machine): cells that ran on different hardware,
# e.g. in separate SLURM allocations, are never each other's limit, baseline or repeat.
LIMIT_KEYS = [*axes.LIMIT, "epoch", axes.NODE]
BASELINE_KEYS = ["loader", *axes.BASELINE, axes.NODE]
# Cells that differ only in their DataLoader settings: compared with each other (every pair),
# their fastest found, and one recommendation made per group.
CONDITION_KEYS = ["loader", *axes.CONDITIONS, axes.NODE]
CELL_KEYS = ["loader", *axes.NAMES]
# One summary row per cell and node.
SUMMARY_KEYS = CELL_KEYS + [axes.NODE]
QUALITY_RTOL = 1e-6


class MissingCellsError(RuntimeError):
    """Cells of the grid have no metrics file; the message lists them."""


def rows_of(done: dict, run: int) -> list[dict]:
    """Table rows (one per epoch; one empty row for a skipped or missing cell) of a record."""
    params, env = done["params"], done.get("environment", {})
    base = {
        "run": run,
        **{k: params.get(k) for k in axes.SEED},
        **{k: params.get(k) for k in AXIS_COLUMNS},
        "status": done["status"],
        "reason": done.get("reason"),
        "warnings": "; ".join(done.get("warnings") or []) or None,
        **{column: env.get(key) for column, key in ENVIRONMENT.items()},
        "thread_env": thread_env_text(env.get("thread_env")),
        "epochs": params.get("epochs"),
        "seed": params.get("seed"),
        "cell": done["cell"],
        "started_at": done.get("started_at"),
        "finished_at": done.get("finished_at"),
        "run_duration": done.get("run_duration"),
        "startup": done.get("startup"),
        "load_per_sample": (done.get("costs") or {}).get("load_per_sample"),
        "shutdown": done.get("shutdown"),
        "reference_before": (done.get("reference") or {}).get("before"),
        "reference_after": (done.get("reference") or {}).get("after"),
        "disturbed": (done.get("reference") or {}).get("disturbed"),
        "other_cpu_seconds": (done.get("machine_load") or {}).get("other_cpu_seconds"),
        "steal_seconds": (done.get("machine_load") or {}).get("steal_seconds"),
        "clock_started": (done.get("timeline") or {}).get("clock_started"),
    }
    if not done["epochs"]:
        return [{**base, "epoch": None}]
    predicted = done.get("predicted")
    rows = []
    for ep in done["epochs"]:
        row = {**base, **{k: ep.get(k) for k in ("epoch", "loss", "accuracy", "epoch_duration",
                                                 "data_wait", "compute", "compute_per_sample",
                                                 "first_batch", "samples_per_second")}}
        row["data_wait_share"] = (ep["data_wait"] / ep["epoch_duration"]
                                  if ep["epoch_duration"] else None)
        row["timed"] = "epoch"
        if predicted:  # a race's run: the epoch predicted from its windows (run.probe)
            row.update(timed="windows", timed_duration=ep["epoch_duration"],
                       epoch_duration=predicted["epoch_duration"])
        rows.append(row)
    return rows


def thread_env_text(value) -> str | None:
    """The thread variables a cell ran with, as the table's ``thread_env`` holds them
    (``MKL_NUM_THREADS=1, OMP_NUM_THREADS=1``), from a record's dict or that text itself."""
    if isinstance(value, str) or value is None:
        return value or None
    return ", ".join(f"{k}={v}" for k, v in sorted(value.items())) or None


def environments(table: pd.DataFrame) -> list[dict]:
    """The environment of every run (its record's keys), from the table's columns."""
    runs = table.drop_duplicates("cell")
    out = []
    for _, row in runs.iterrows():
        env = {key: _plain(row.get(column)) for column, key in ENVIRONMENT.items()}
        out.append({k: v for k, v in env.items() if v is not None})
    return out


def _plain(value):
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _failure(done: dict) -> str:
    """Why a ``status: failed`` record's cell is missing, with where its log is."""
    where = f" (log: {done['log']})" if done.get("log") else ""
    return f"failed: {done.get('reason', 'no reason recorded')}{where}"


def files_of_cells(run_files) -> dict[str, str]:
    """Cell path -> the file holding its record: ``results/runs/<cell>.json``, or a race's
    group round (``results/race/groups/...``), which holds several cells' records."""
    files = {}
    for path in map(str, run_files):
        if path.startswith("results/runs/"):
            files[path.removeprefix("results/runs/").removesuffix(".json")] = path
        else:
            files.update(dict.fromkeys(record.read_runs(path), path))
    return files


def build_table(files: dict[str, str], expected: list[grid.Cell],
                allow_missing: bool = False) -> pd.DataFrame:
    """The results table of the ``expected`` cells; ``files`` maps cell path to metrics file.

    Every file is validated against the metrics schema. Cells without a file raise
    :class:`MissingCellsError`, unless ``allow_missing``: then they get a row marked missing.
    """
    schema = record.load_schema()
    numbers = grid.run_numbers(expected)
    records, missing, read = {}, {}, {}
    for cell in expected:
        if cell.path not in files:
            missing[cell.path] = "no metrics file (the cell failed or did not run)"
            continue
        file = files[cell.path]
        if file not in read:
            read[file] = record.read_runs(file, schema)
        runs = read[file]
        done = runs.get(cell.path) or next(iter(runs.values()))
        if done["cell"] != cell.path:
            raise record.RecordError(
                f"{files[cell.path]}: holds cell {done['cell']!r}, expected {cell.path!r}; "
                + record.REDO.format(path=files[cell.path]))
        if done["status"] == record.FAILED:  # a complete record of a cell that did not finish
            missing[cell.path] = _failure(done)
        else:
            records[cell.path] = done
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
        done = records.get(cell.path) or record.missing(cell.path, cell.params(),
                                                        missing[cell.path])
        rows.extend(rows_of(done, numbers[cell.path]))
    table = pd.DataFrame(rows)
    # order: 1 for the run whose clock started first (repeats are interleaved: see findings).
    table["order"] = table["clock_started"].rank(method="dense").astype("Int64")
    table = table.reindex(columns=TABLE_COLUMNS)
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
    trained on the same batches (same batch size, lr, threads, device, seed, epoch); None for
    a race's runs, which train on part of an epoch (how much depends on the workers)."""
    ok = table["status"].eq("ok") & table["timed"].ne("windows")
    keys = _key_frame(table, QUALITY_KEYS).agg("|".join, axis=1)
    reference = table.loc[ok, "loss"].groupby(keys[ok]).median()
    ref = keys.map(reference).astype(float)
    consistent = np.isclose(table["loss"], ref, rtol=QUALITY_RTOL, atol=0)
    return pd.Series(np.where(ok, consistent, None), index=table.index, dtype=object)


SUMMARY_COLUMNS = SUMMARY_KEYS + [
    "cell", "repeats", "epoch_duration_median", "epoch_duration_ci_low", "epoch_duration_ci_high",
    "epoch_duration_mad", "unstable", "speedup", "speedup_ci_low", "speedup_ci_high",
    "speedup_verdict", "fastest", "vs_fastest", "vs_fastest_ci_low", "vs_fastest_ci_high",
    "vs_fastest_verdict", "race", "comparisons", "intervals",
    "load_per_sample_median", "compute_per_sample_median", "cpus_allowed",
    "predicted_speedup", "steady_epoch_duration_median", "steady_speedup",
    "data_wait_share_median", "limit_ratio_median", "loss_median", "accuracy_median",
    "disturbed_runs", "first_run"]


def comparisons(outcomes: list) -> dict:
    """Every DataLoader cell's comparisons, read off the decision record's outcomes
    (:mod:`speedlimit.results.decisions`: paired by round, each setting against its
    num_workers=0 and against the fastest of the others, simultaneous over the run's
    comparisons; a race's intervals hold at every round, fixed repeats' at their one look):
    (cell path without repeat, node) -> summary columns."""
    out = {}
    for o in outcomes:
        leader = o.leader()
        node = o.conditions.get(axes.NODE)
        for i, cell in enumerate(o.cells):
            anytime = o.design is None or o.design.anytime
            columns = {"fastest": i == leader, "race": decisions.state_words(o, i),
                       "comparisons": family_size([x.settings for x in outcomes]),
                       "intervals": "sequential" if anytime else "fixed"}
            b = o.base[i]
            if b >= 0 and b != i:
                columns.update(_ratio_columns("speedup", decisions.Ratio.speedup(o, i, b)))
            if len(o.settings) > 1:  # against the fastest of the others, as a speed ratio
                columns.update(_ratio_columns("vs_fastest", decisions.Ratio.ahead(o, i)))
            out[(cell, node)] = columns
    return out


def _ratio_columns(name: str, ratio: "decisions.Ratio") -> dict:
    """A speed ratio (t_other / t_cell: above 1, the cell is faster), its interval and the
    verdict read off that interval."""
    return {name: ratio.estimate, f"{name}_ci_low": _finite(ratio.low),
            f"{name}_ci_high": _finite(ratio.high), f"{name}_verdict": ratio.verdict}


def _finite(value: float) -> float:
    return value if np.isfinite(value) else float("nan")


def group_costs(rows: pd.DataFrame) -> tuple[float, float, int | None]:
    """(load, compute, cpus) of one group's DataLoader cells (summary rows): the median of its
    cells' loading costs per sample, the median compute per sample of its num_workers=0 cells
    (nan without one: with workers, they compete with the compute for the CPU), and the CPUs
    every cell could use (None where none recorded it). The prediction and the findings'
    sentences both take them from here."""
    load = float(rows["load_per_sample_median"].median())
    alone = rows[rows[axes.COMPARED] == 0]["compute_per_sample_median"]
    cpus = rows["cpus_allowed"].dropna()
    return (load, float(alone.median()) if len(alone) else float("nan"),
            int(cpus.min()) if len(cpus) else None)


def predictions(summary: pd.DataFrame) -> pd.Series:
    """Predicted speed-up over num_workers=0 of every DataLoader cell, from its group's costs,
    the CPUs its cells could use and its torch threads (nan where a cost is missing)."""
    out = pd.Series(np.nan, index=summary.index)
    loader = summary[summary["loader"].eq(axes.DATALOADER)]
    for _, rows in loader.groupby(_key_frame(loader, CONDITION_KEYS).agg("|".join, axis=1)):
        load, compute, cpus = group_costs(rows)
        if np.isnan(load) or np.isnan(compute) or cpus is None:
            continue
        for index, row in rows.iterrows():
            out[index] = predict.speedup(load, compute, int(row[axes.COMPARED]), cpus,
                                         int(row["torch_threads"]))
    return out


def summarize(table: pd.DataFrame, outcomes: list) -> pd.DataFrame:
    """One row per cell and node: the median epoch duration over repeats with its
    distribution-free interval and spread; the speed-up over num_workers=0 and the ratio to
    the fastest of the group, with the intervals and the verdicts read off them from the
    decision record's ``outcomes`` (:func:`comparisons`); the costs and the predicted
    speed-up."""
    ok = table[table["status"].eq("ok")].copy()
    if ok.empty:  # every cell skipped or missing: nothing to summarize, and the findings say so
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    ok["steady"] = ok["epoch_duration"].where(ok["epoch"] > 1)
    # A run's epoch duration is the mean over its epochs; its steady state, over epochs 2+.
    per_run = (ok.groupby(["run"] + SUMMARY_KEYS + ["repeat"], dropna=False)
                 .agg(epoch_duration=("epoch_duration", "mean"),
                      steady=("steady", "mean"),
                      data_wait_share=("data_wait_share", "mean"),
                      load_per_sample=("load_per_sample", "mean"),
                      compute_per_sample=("compute_per_sample", "mean"),
                      cpus_allowed=("cpus_allowed", "first"),
                      limit_ratio=("limit_ratio", "mean"),
                      loss=("loss", "last"), accuracy=("accuracy", "last"),
                      disturbed=("disturbed", "max"), cell=("cell", "first"))
                 .reset_index())
    per_run["cell_key"] = _key_frame(per_run, SUMMARY_KEYS).agg("|".join, axis=1)
    per_run["base_key"] = _key_frame(per_run, BASELINE_KEYS).agg("|".join, axis=1)
    steady = {k: g["steady"].to_numpy(float) for k, g in per_run.groupby("cell_key")}
    baselines = {row.base_key: row.cell_key for row in per_run.itertuples()
                 if row.loader == axes.DATALOADER and getattr(row, axes.COMPARED) == 0}
    compared = comparisons(outcomes)
    rows = []
    for key, group in per_run.groupby("cell_key", sort=False):
        first = group.iloc[0]
        durations = group["epoch_duration"].to_numpy(float)
        median = float(np.median(durations))
        row = {c: first[c] for c in SUMMARY_KEYS}
        row["cell"] = grid.prefix(first["cell"])  # its path without repeat~R
        row["repeats"] = len(durations)
        row["epoch_duration_median"] = median
        row["epoch_duration_ci_low"], row["epoch_duration_ci_high"] = (
            stats.median_interval(durations))
        row["epoch_duration_mad"] = stats.spread(durations)
        row["unstable"] = bool(row["epoch_duration_mad"] > stats.UNSTABLE * median) \
            if len(durations) > 1 else None
        if not np.isnan(steady[key]).all():
            row["steady_epoch_duration_median"] = float(np.nanmedian(steady[key]))
        base = baselines.get(first["base_key"]) if first["loader"] == axes.DATALOADER else None
        if base is not None and not np.isnan(steady[key]).all() \
                and not np.isnan(steady[base]).all():
            row["steady_speedup"] = float(np.nanmedian(steady[base])
                                          / np.nanmedian(steady[key]))
        row.update(compared.get((row["cell"], str(first[axes.NODE])), {}))
        row["load_per_sample_median"] = float(group["load_per_sample"].median())
        row["compute_per_sample_median"] = float(group["compute_per_sample"].median())
        row["cpus_allowed"] = group["cpus_allowed"].dropna().min()  # what every run had
        row["data_wait_share_median"] = float(group["data_wait_share"].median())
        row["limit_ratio_median"] = float(group["limit_ratio"].median())
        row["loss_median"] = float(group["loss"].median())
        row["accuracy_median"] = float(group["accuracy"].median())
        row["disturbed_runs"] = int(group["disturbed"].astype("boolean").fillna(False).sum())
        row["first_run"] = int(group["run"].min())
        rows.append(row)
    summary = pd.DataFrame(rows).reindex(columns=SUMMARY_COLUMNS)
    summary = summary.astype({c: "Int64" for c in (*axes.INTEGERS, "repeats", "first_run",
                                                  "disturbed_runs", "comparisons", "cpus_allowed")})
    summary = summary.astype({"unstable": "boolean", "fastest": "boolean"})
    summary["predicted_speedup"] = predictions(summary)
    return summary.sort_values("first_run", kind="stable").reset_index(drop=True)
