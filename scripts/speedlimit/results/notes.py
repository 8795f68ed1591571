"""The findings beyond the answer, in plain sentences: the machine's noise as the run measured
it, start-up and steady state, what was not run, quality (loss and accuracy per cell), the
published table against ours, and the hardware and software the cells ran on. Each a function
of the table or the summary; :func:`speedlimit.results.findings.compute` places them."""

from __future__ import annotations


import pandas as pd

from speedlimit import axes, grid
from speedlimit.results import published as published_module
from speedlimit.results import stats
from speedlimit.results.aggregate import QUALITY_RTOL, thread_env_text
from speedlimit.results.words import join as _join, percent as _pct, seconds, times as _x
from speedlimit.results.words import workers as _workers


def _round_orders(order: pd.DataFrame) -> str:
    """Whether the rounds ran their cells in one order or in different orders, as measured."""
    cell = order["cell"].str.replace(r"/repeat~\d+$", "", regex=True)
    sequences = {tuple(c for c in cell[part.sort_values("order").index])
                 for _, part in order.groupby("repeat")}
    if len(sequences) == 1:
        return "each round in the same order (every cell after the same neighbour)"
    return "the rounds in different orders"


def machine_noise_sentences(table: pd.DataFrame, summary: pd.DataFrame) -> list[str]:
    """How noisy the machine was during this run: the reference kernel, the order the runs
    ran in, the spread of one cell's runs, the runs flagged disturbed and why, and the CPU
    time the rest of the machine used while clocks ran."""
    ok = table[table["status"].eq("ok")]
    runs = ok.drop_duplicates("cell")
    out = []
    ref = runs["reference_before"].dropna() if "reference_before" in runs else pd.Series()
    if len(ref) >= 2:
        rel = stats.spread(ref.to_numpy(float)) / float(ref.median())
        out.append(f"The reference kernel (the same fixed computation, timed 9 times just "
                   f"before and 9 times just after every run's clock) took a median "
                   f"{seconds(float(ref.median()))}; over the run its median before the clock "
                   f"spread by {_pct(rel)} (MAD), and its slowest run took "
                   f"{_pct(ref.max() / ref.min() - 1)} longer than its fastest.")
    repeated = summary[summary["repeats"] > 1]
    order = runs.dropna(subset=["order"]) if "order" in runs else pd.DataFrame()
    if len(repeated) and len(order) and order["repeat"].nunique() > 1:
        spans = order.groupby("repeat")["order"].agg(["min", "max"]).sort_index()
        apart = (spans["max"].iloc[:-1].to_numpy() < spans["min"].iloc[1:].to_numpy()).all()
        out.append("Repeats were interleaved: every cell's repeat 0 ran before any cell's "
                   f"repeat 1, and so on, {_round_orders(order)} (the table's `order`), so a "
                   "slow drift of the machine is spread over all cells rather than read as a "
                   "difference between them."
                   if apart else
                   "Repeats were not fully interleaved (the table's `order`): some cell's "
                   "later repeat ran before another cell's earlier one, so a slow drift of "
                   "the machine may show as a difference between cells.")
    if len(repeated):
        rel = (repeated["epoch_duration_mad"] / repeated["epoch_duration_median"]).median()
        out.append(f"Runs of one cell spread by a median {_pct(rel)} of their median epoch "
                   "duration (MAD).")
        unstable = summary[summary["unstable"].astype("boolean").fillna(False)]
        if len(unstable):
            vary = axes.varying(summary)
            out.append(f"{len(unstable)} cell(s) may be unstable: their runs spread by more "
                       f"than {_pct(stats.UNSTABLE)} of their median (MAD), pyperf's threshold: "
                       + _join([_setting_text(r, vary) for _, r in unstable.head(5).iterrows()])
                       + (f" and {len(unstable) - 5} more" if len(unstable) > 5 else "") + ".")
    if "disturbed" in runs:
        bad = runs[runs["disturbed"].astype("boolean").fillna(False)]
        if len(bad):
            out.append(f"{len(bad)} of {len(runs)} runs were flagged `disturbed` (the reference "
                       "kernel ran at a different speed after the clock than before it, by the "
                       "exact test at 1% and by more than 10%, or the rest of the machine used "
                       "more than 10% of a CPU meanwhile): they stay in the comparisons, whose "
                       "rounds pair every setting under the same conditions, and the table "
                       "marks them.")
        elif len(runs):
            out.append(f"No run was flagged `disturbed` ({len(runs)} runs).")
    if "other_cpu_seconds" in runs and runs["other_cpu_seconds"].notna().any():
        share = runs["other_cpu_seconds"] / runs["run_duration"]
        out.append(f"While the clocks ran, the rest of the machine (everything but the cell's "
                   f"own processes) used a median {_pct(share.median())} of one CPU "
                   f"(at most {_pct(share.max())}); hypervisor steal time: "
                   f"{runs['steal_seconds'].sum():.1f} s in all.")
    return out


def _groups(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(label, rows) per combination of the axes that vary besides batch_size/num_workers."""
    varying = axes.varying(frame)  # the settings (and nodes) that vary: never compared
    if not varying:
        return [("", frame)]
    out = []
    for values, part in frame.groupby(varying, dropna=False, sort=True):
        values = values if isinstance(values, tuple) else (values,)
        out.append((", ".join(f"`{a}={v}`" for a, v in zip(varying, values)), part))
    return out


def _ranking(cells: pd.DataFrame, column: str) -> list[int]:
    ranked = cells.dropna(subset=[column]).sort_values([column, "num_workers"])
    return [int(w) for w in ranked["num_workers"]]


def steady_state_sentences(loader: pd.DataFrame, table: pd.DataFrame | None) -> list[str]:
    """With 2 or more epochs: the ranking of num_workers over whole runs against epochs 2+
    only (worker start-up gone); and persistent_workers cells that cannot help (1 epoch)."""
    out = []
    if "steady_epoch_duration_median" in loader and loader[
            "steady_epoch_duration_median"].notna().any():
        same, changed = [], []
        for label, part in _groups(loader):
            for size, cells in part.groupby("batch_size", sort=True):
                whole = _ranking(cells, "epoch_duration_median")
                steady = _ranking(cells, "steady_epoch_duration_median")
                where = f"batch_size {int(size)}" + (f" ({label})" if label else "")
                if whole == steady:
                    same.append(where)
                else:
                    changed.append(f"at {where}, whole runs rank num_workers "
                                   f"{' < '.join(map(str, whole))} (fastest first), epochs "
                                   f"after the first {' < '.join(map(str, steady))}")
        out.append("Without the first epoch (worker start-up gone: the steady state, "
                   "`steady_epoch_duration_median` in the summary), the ranking of num_workers "
                   + ("is the same at every batch size." if not changed else
                      "changes: " + "; ".join(changed) + "."
                      + (f" It is the same at {_join(same)}." if same else "")))
    if table is not None and "warnings" in table:
        runs = table.drop_duplicates("cell")
        flagged = runs[runs["warnings"].astype("string").fillna("").str.contains(
            "persistent_workers cannot help with train.epochs: 1", regex=False)]
        if len(flagged):
            out.append(f"`persistent_workers: true` cannot help with `train.epochs: 1` "
                       f"({len(flagged)} run(s)): it keeps workers alive between epochs, and "
                       "there is only one, so those cells measure the same work as "
                       "`persistent_workers: false` (each pays its workers' start and "
                       "shutdown on the clock); run 2 or more epochs to see what it saves.")
    return out


def not_run_sentences(table: pd.DataFrame | None,
                      grid_skipped: pd.DataFrame | None = None) -> list[str]:
    """Every group of cells of the grid that has no measurement, and why: combinations torch
    rejects (results/skipped.csv), cells skipped on this machine (``status: skipped``, e.g.
    cuda without a GPU: they run again where they can) and cells missing after a failure."""
    out = []
    if grid_skipped is not None and len(grid_skipped):
        cells = pd.DataFrame([grid.parse_path(p).params() for p in grid_skipped["cell"]],
                             index=grid_skipped.index)
        for reason, part in grid_skipped.groupby("reason", sort=True):
            label = _common_setting(cells.loc[part.index],
                                    table if table is not None and len(table) else cells)
            out.append(f"{len(part)} run(s) of the grid{f' ({label})' if label else ''} were "
                       f"not run because {reason} (listed in `results/skipped.csv`).")
    if table is None or "status" not in table:
        return out
    for status, why in (("skipped", "skipped on this machine"), ("missing", "missing")):
        rows = table[table["status"].eq(status)].drop_duplicates("cell")
        for reason, part in rows.groupby("reason", sort=True, dropna=False):
            label = _common_setting(part, table)
            text = (f"{len(part)} run(s){f' ({label})' if label else ''} were {why}: "
                    f"{reason if isinstance(reason, str) else 'no reason recorded'}")
            if status == "skipped":
                text += ("; their records say so (`status: skipped`), and they run again when "
                         "the pipeline runs on a machine where they can")
            out.append(text + ".")
    return out


def _common_setting(part: pd.DataFrame, reference: pd.DataFrame) -> str:
    """The settings all rows of ``part`` share that some row of ``reference`` does not."""
    labels = []
    for axis in axes.NAMES:
        values = part[axis].map(axes.as_text).unique()
        if len(values) == 1 and not reference[axis].map(axes.as_text).eq(values[0]).all():
            labels.append(f"`{axis}={values[0]}`")
    return ", ".join(labels)


def _setting_text(row, settings=()) -> str:
    """A cell in words: its batch size and workers (or the loader-free limit), and the value
    of every other setting named in ``settings`` (those that vary), so that no two cells read
    the same."""
    if row["loader"] == "tensor":
        text = f"the loader-free cell at batch_size {int(row['batch_size'])}"
    else:
        text = f"batch_size {int(row['batch_size'])} with {_workers(row['num_workers'])}"
    others = [f"{a}={axes.as_text(row[a])}" for a in settings
              if a not in (axes.ROWS, axes.COMPARED, "loader")
              and (a in axes.of_kind(row["loader"]) or a == axes.NODE)]
    return text + (f" ({', '.join(others)})" if others else "")


def quality_sentences(table: pd.DataFrame) -> list[str]:
    """Whether every cell that trained on the same batches reached the same loss (the table's
    ``quality_consistent``), naming the runs that did not."""
    ok = table[table["status"].eq("ok")]
    if ok.empty or "quality_consistent" not in ok:
        return []
    if "timed" in ok and ok["timed"].eq("windows").all():
        return ["A race's runs train on part of an epoch (how much depends on the workers), so "
                "their losses are not compared; every cell is seeded the same way, and the "
                "whole epochs of `train.repeats: 1` compare them (same batches, same loss)."]
    ok = ok[ok["quality_consistent"].notna()]
    flags = ok["quality_consistent"].astype("boolean")
    off = ok[flags.eq(False)]
    if off.empty:
        same = list(axes.SAME_BATCHES)
        other = [a for a in axes.NAMES if a not in axes.SAME_BATCHES] + ["loader"]
        return ["Quality is not what the settings trade: every cell is seeded the same way "
                "(model init, shuffling, workers, augmentation), so all cells with the same "
                f"{_join(same)} trained on the same batches in the same order and reached the "
                f"same training loss (to {QUALITY_RTOL:g} relative), whatever {_join(other)} "
                f"they used ({len(ok)} runs checked)."]
    vary = axes.varying(ok)
    runs = _join([f"{_setting_text(r, vary)} (run {int(r['run'])}, loss {r['loss']:.6f})"
                  for _, r in off.head(10).iterrows()])
    more = f" and {len(off) - 10} more" if len(off) > 10 else ""
    return [f"{len(off)} of {len(ok)} runs reached a different training loss than cells that "
            f"trained on the same batches: {runs}{more}. On the CPU they should match exactly; "
            "look for non-deterministic kernels (GPU) or a changed data set. Their speed is "
            "not comparable at equal quality (`quality_consistent` in the table)."]


def published_sentences(comparison: pd.DataFrame) -> list[str]:
    """Where the published speed-ups and ours agree, and where they do not."""
    if comparison.empty:
        return ["No cell of this grid matches a published one (the published grid is "
                "num_workers 0, 1, 2, 4, 8, 16 x batch_size 100, 1000, 10000 at lr 0.01, on the "
                "seed's workload, fashionmnist), so there is nothing to compare."]
    out = []
    for label, part in _groups_by_setting(comparison):
        where = f" ({label})" if label else ""
        kinds = {k: part[part["agreement"].eq(k)] for k in (
            published_module.AGREE, published_module.DISAGREE, published_module.INCONCLUSIVE,
            published_module.NO_INTERVAL)}
        if len(kinds[published_module.NO_INTERVAL]) == len(part):
            out.append(f"Published ({published_module.SOURCE}) and reproduced speed-ups{where} "
                       "side by side: ours have no interval (one run per cell, or too few "
                       "repeats), so no agreement or disagreement is claimed: "
                       + _join([_cell_text(r) for _, r in part.iterrows()]) + ".")
        else:
            out.append(
                f"Published ({published_module.SOURCE}) and reproduced speed-ups{where}: our "
                f"interval lies on the published value's side of 1 in "
                f"{len(kinds[published_module.AGREE])} of {len(part)} cells, on the other side "
                f"in {len(kinds[published_module.DISAGREE])}, and straddles 1 (inconclusive) in "
                f"{len(kinds[published_module.INCONCLUSIVE])}"
                + (f"; {len(kinds[published_module.NO_INTERVAL])} have no interval"
                   if len(kinds[published_module.NO_INTERVAL]) else "") + ".")
            for kind, verb in ((published_module.AGREE, "They agree at "),
                               (published_module.DISAGREE, "They disagree at "),
                               (published_module.INCONCLUSIVE, "Inconclusive at ")):
                if len(kinds[kind]):
                    out.append(verb + _join([_cell_text(r) for _, r in kinds[kind].iterrows()])
                               + ".")
        one = part[part["num_workers"] == 1]
        if len(one):
            out.append("The published headline, one worker about 20% faster than none at every "
                       "batch size: ours with `num_workers=1` was "
                       + _join([f"{_x(r['reproduced_speedup'])} at batch_size "
                                f"{int(r['batch_size'])}" for _, r in one.iterrows()])
                       + ", so " + _headline_verdict(one) + ".")
        inside = part["published_in_interval"].dropna()
        if len(inside):
            out.append(f"The published speed-up lies inside our interval in "
                       f"{int(inside.sum())} of {len(inside)} cells.")
    out.append(f"The published table does not record {published_module.UNKNOWNS}: a "
               "disagreement may come from any of them, not only from our machine.")
    return out


def _headline_verdict(one: pd.DataFrame) -> str:
    """Whether "one worker is faster than none" holds, per batch size, by our intervals."""
    faster = one[one["reproduced_ci_low"] > 1]
    unsure = one[~(one["reproduced_ci_low"] > 1) & ~(one["reproduced_ci_high"] < 1)]
    sizes = lambda rows: _join([str(int(b)) for b in rows["batch_size"]])  # noqa: E731
    if one["reproduced_ci_low"].isna().all():
        return "with no interval, whether it holds here is not claimed"
    if len(faster) == len(one):
        return "it holds at every batch size (each interval above 1)"
    parts = []
    if len(faster):
        parts.append(f"it holds at batch_size {sizes(faster)} (interval above 1)")
    slower = one[one["reproduced_ci_high"] < 1]
    if len(slower):
        parts.append(f"it is reversed at batch_size {sizes(slower)} (interval below 1)")
    if len(unsure):
        parts.append(f"it is inconclusive at batch_size {sizes(unsure)}")
    return "; ".join(parts)


def _groups_by_setting(comparison: pd.DataFrame):
    return [(str(k), g) for k, g in comparison.groupby("setting", sort=True)]


def _cell_text(row) -> str:
    return (f"batch_size {int(row['batch_size'])} with {int(row['num_workers'])} "
            f"worker{'s' if row['num_workers'] != 1 else ''} (published "
            f"{_x(row['published_speedup'])}, ours {_x(row['reproduced_speedup'])})")


def hardware(environments: list[dict]) -> list[str]:
    """Sentences on the machine(s) and software the cells ran on, from their environment."""
    envs = [e for e in environments if e]
    if not envs:
        return ["No cell recorded its environment."]

    def values(key):
        return sorted({str(e.get(key)) for e in envs if e.get(key) is not None})

    out = []
    for node in values("node"):
        group = [e for e in envs if str(e.get("node")) == node]
        e = group[0]
        parts = [str(e.get("cpu_model") or "unknown CPU")]
        cpus = f"{e.get('cpu_count')} logical CPUs"
        extra = []
        if e.get("physical_cores"):
            extra.append(f"{e['physical_cores']} physical cores")
        if e.get("cpus_allowed"):
            extra.append(f"{e['cpus_allowed']} allowed to the cells")
        parts.append(cpus + (f" ({', '.join(extra)})" if extra else ""))
        if e.get("memory_bytes"):
            parts.append(f"{e['memory_bytes'] / 2**30:.1f} GiB RAM")
        if e.get("gpu_name"):
            parts.append(f"GPU {e['gpu_name']}")
        out.append(f"{len(group)} cell run(s) on node `{node}`: " + ", ".join(parts) + ".")
    sw = []
    for key, name in (("os", "OS"), ("python", "Python"), ("torch", "torch"),
                      ("torchvision", "torchvision"), ("device", "device"),
                      ("torch_threads", "torch threads"),
                      ("torch_interop_threads", "inter-op threads")):
        v = values(key)
        if v:
            sw.append(f"{name} {' / '.join(v)}")
    if sw:
        out.append("Software and settings in force: " + "; ".join(sw) + ".")
    threads = sorted({thread_env_text(e.get("thread_env")) for e in envs} - {None})
    if threads:
        out.append("Thread variables in the cells' environment: " + " / ".join(
            f"`{t}`" for t in threads) + ".")
    return out
