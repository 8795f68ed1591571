"""Findings in plain sentences, computed from the summary (never written by hand).

:func:`compute` returns sections of sentences; :func:`markdown`, :func:`rst` and :func:`html`
render them. Sentences mark code with single backticks (`like this`); each renderer converts.
Also :func:`hardware`, the machine the cells ran on, from their ``environment`` blocks.
"""

from __future__ import annotations

import html as html_module
import re
from dataclasses import dataclass, field

import pandas as pd

from speedlimit import axes, grid
from speedlimit.results import advice
from speedlimit.results import published as published_module
from speedlimit.results import stats
from speedlimit.results.words import percent as _pct, times as _x
from speedlimit.results.words import workers as _workers
from speedlimit.results.aggregate import QUALITY_RTOL


@dataclass
class Section:
    title: str
    sentences: list[str] = field(default_factory=list)


def _s(value: float) -> str:
    return f"{value:.3g} s"


def _join(items: list[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


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


def _interval_text(row) -> str:
    """The speed-up's interval and verdict in words (summary columns ``speedup_verdict``,
    ``speedup_ci_low``/``high``, ``comparisons``, ``repeats_needed``)."""
    verdict = row.get("speedup_verdict")
    if pd.isna(verdict) or verdict == stats.SINGLE:
        return " (one run per cell, so no interval: this may be noise)"
    if verdict == stats.TOO_FEW:
        return (f" (too few repeats to tell: {int(row['repeats_needed'])} or more runs per cell "
                f"are needed for {int(row['comparisons'])} comparisons)")
    low, high = row.get("speedup_ci_low"), row.get("speedup_ci_high")
    interval = (f"95% interval {low:.2f}-{high:.2f}x; " if pd.notna(low) and pd.notna(high)
                else "")
    words = {stats.FASTER: "more than noise", stats.SLOWER: "more than noise",
             stats.NO_CLEAR: "cannot be told apart from noise",
             stats.SMALL: f"real, but within the {_pct(stats.NOISE_THRESHOLD)} noise threshold"}
    return f" ({interval}{words[verdict]})"


def batch_size_sentences(cells: pd.DataFrame, tensor: pd.DataFrame) -> list[str]:
    """Sentences about one batch size: ``cells`` are its DataLoader cells (summary rows),
    ``tensor`` its loader-free cells (possibly none)."""
    cells = cells[cells["epoch_duration_median"].notna()].sort_values("num_workers")
    size = int(cells["batch_size"].iloc[0])
    base = cells[cells["num_workers"] == 0]
    best = cells.loc[cells["epoch_duration_median"].idxmin()]
    w_best = int(best["num_workers"])
    out = []
    if base.empty:
        out.append(f"At batch_size {size}, {_workers(w_best)} was fastest "
                   f"({_s(best['epoch_duration_median'])} per epoch); the grid has no "
                   "`num_workers=0` cell to compare with.")
    elif w_best == 0:
        others = cells[cells["num_workers"] > 0]
        runner = others.loc[others["epoch_duration_median"].idxmin()] if len(others) else None
        text = (f"At batch_size {size}, loading in the main process (`num_workers=0`) was "
                f"fastest ({_s(best['epoch_duration_median'])} per epoch)")
        if runner is not None:
            text += ("; no worker setting beat it, the closest was "
                     f"{_workers(runner['num_workers'])}"
                     f" at {_x(runner['speedup'])}" + _interval_text(runner))
        out.append(text + ".")
    else:
        b = base.iloc[0]
        out.append(f"At batch_size {size}, {_workers(w_best)} was fastest: "
                   f"{_s(best['epoch_duration_median'])} per epoch against "
                   f"{_s(b['epoch_duration_median'])} with `num_workers=0`, a speed-up of "
                   f"{_x(best['speedup'])}" + _interval_text(best) + ".")
    # Did more workers than one help; did more than the best help?
    one = cells[cells["num_workers"] == 1]
    if w_best > 1 and len(one):
        cut = 1 - best["epoch_duration_median"] / one.iloc[0]["epoch_duration_median"]
        took = f"{_workers(w_best)} took {_pct(cut)} less time per epoch than `num_workers=1`"
        # num_workers=1 against the fastest of all the DataLoader settings at this batch size:
        # a test of this paragraph's best only where that is the fastest.
        fastest = bool(pd.notna(best.get("fastest")) and best.get("fastest"))
        verdict = one.iloc[0].get("vs_fastest_verdict") if fastest else None
        if not fastest:
            out.append(f"{took[0].upper()}{took[1:]}; not tested against each other (each "
                       "setting was tested against the fastest of all DataLoader settings at "
                       "this batch size, another one).")
        elif verdict in (stats.SLOWER, stats.FASTER):
            out.append(f"More than one worker helped here: {took} (more than noise).")
        elif verdict in (stats.NO_CLEAR, stats.SMALL):
            out.append(f"{took[0].upper()}{took[1:]}, but that cannot be told apart from noise"
                       " (or is within the noise threshold): more than one worker is not shown "
                       "to help.")
        else:
            out.append(f"{took[0].upper()}{took[1:]}; whether more than one worker helps is not "
                       "tested (too few repeats, or one run per cell).")
    more = cells[cells["num_workers"] > w_best]
    if len(more):
        slower = more["epoch_duration_median"] / best["epoch_duration_median"] - 1
        names = _join([str(int(w)) for w in more["num_workers"]])
        out.append(f"More workers than {w_best} did not help: {names} workers took "
                   f"{_pct(slower.min())} to {_pct(slower.max())} longer per epoch."
                   if len(more) > 1 else
                   f"More workers than {w_best} did not help: {names} workers took "
                   f"{_pct(slower.iloc[0])} longer per epoch.")
    else:
        out.append(f"No larger num_workers than {w_best} was in the grid, so more workers "
                   "might help further.")
    if "data_wait_share_median" in cells and len(base):
        share = _pct(base.iloc[0]["data_wait_share_median"])
        out.append(f"Waiting for data took {share} of each epoch with `num_workers=0`" + (
            "." if w_best == 0 else
            f" and {_pct(best['data_wait_share_median'])} with {_workers(w_best)}."))
    if len(tensor) and pd.notna(best.get("limit_ratio_median")):
        ratio = float(best["limit_ratio_median"])
        limit = float(tensor["epoch_duration_median"].median())
        text = (f"The loader-free limit (the whole set as one tensor, no DataLoader) took "
                f"{_s(limit)} per epoch; ")
        if ratio >= 1:
            text += (f"the best setting took {ratio:.2f} times as long, so it reached "
                     f"{_pct(1 / ratio)} of the limit's speed.")
        else:
            text += (f"the best setting took only {ratio:.2f} times as long, faster than the "
                     "limit should allow: a sign of noise or of contention while the limit "
                     "was measured.")
        out.append(text)
    else:
        out.append("The loader-free limit was not measured at this batch size (add `tensor` to "
                   "`grid.loader`, as `configs/measure.yaml` does).")
    return out


def compute(summary: pd.DataFrame, comparison: pd.DataFrame | None = None,
            context: dict | None = None, table: pd.DataFrame | None = None,
            grid_skipped: pd.DataFrame | None = None,
            groups: list | None = None) -> list[Section]:
    """Sections of sentences: headline, one section per workload and batch size (costs,
    prediction, fastest, smallest num_workers as fast as it, the recommendation), one
    per batch size (per setting), quality (from the results ``table``, when given), published
    vs reproduced, and how far to trust the numbers. ``groups``: :func:`advice.groups` of the
    summary, when the caller has them already."""
    context = context or {}
    ok = summary[summary["epoch_duration_median"].notna()]
    loader = ok[ok["loader"].eq("dataloader")]
    tensor = ok[ok["loader"].eq("tensor")]
    sections = []
    headline = Section("At a glance")
    not_run = not_run_sentences(table, grid_skipped)
    if loader.empty:
        headline.sentences.extend(not_run)
        headline.sentences.append("No DataLoader cell finished, so there is no num_workers "
                                  "setting to compare.")
        return [headline]
    per_size = []
    for label, part in _groups(loader):
        bests = []
        for size, cells in part.groupby("batch_size", sort=True):
            t = tensor[tensor["batch_size"] == size]
            for a in axes.LIMIT:  # the loader-free limit's keys
                if a in t and cells[a].astype(str).nunique() == 1:
                    t = t[t[a].astype(str) == str(cells[a].iloc[0])]
            title = f"batch_size {int(size)}" + (f", {label}" if label else "")
            per_size.append(Section(title, batch_size_sentences(cells, t)))
            best = cells.loc[cells["epoch_duration_median"].idxmin()]
            speed = f" ({_x(best['speedup'])})" if pd.notna(best.get("speedup")) else ""
            bests.append(f"{int(size)}: {int(best['num_workers'])}{speed}")
        headline.sentences.append(
            "Fastest num_workers per batch size" + (f" with {label}" if label else "") + ": "
            + "; ".join(bests) + " (speed-up over `num_workers=0` in brackets).")
    headline.sentences.extend(noise_sentences(ok))
    headline.sentences.extend(advice.pairs_sentence(ok))
    found = advice.groups(ok) if groups is None else groups
    if context.get("data_source") == "synthetic":
        headline.sentences.append(
            f"These runs used the synthetic stand-in data ({context.get('train_size', '?')} "
            "training images in FashionMNIST's format), not FashionMNIST itself: durations are "
            "not comparable with published ones, speed-ups are.")
    if comparison is not None:
        headline.sentences.extend(published_glance(comparison))
    sections.append(headline)
    if not_run:
        sections.append(Section("Not run", not_run))
    sections.extend(Section(g.label[0].upper() + g.label[1:], g.sentences) for g in found)
    if table is not None:
        noise = machine_noise_sentences(table, ok)
        if noise:
            sections.append(Section("The machine's noise", noise))
    steady = steady_state_sentences(loader, table)
    if steady:
        sections.append(Section("Start-up and steady state", steady))
    sections.extend(per_size)
    quality = quality_sentences(table) if table is not None else []
    if quality:
        sections.append(Section("Quality", quality))
    if comparison is not None:
        sections.append(Section("Published vs reproduced", published_sentences(comparison)))
    return sections


def noise_sentences(summary: pd.DataFrame) -> list[str]:
    """How many speed-ups are more than noise, by which test and correction, and how many
    could not be told with the repeats run; cells whose repeats spread too much."""
    loader = summary[summary["loader"].eq("dataloader")]
    repeats = int(summary["repeats"].max()) if len(summary) else 0
    tested = loader[loader["speedup_verdict"].notna()
                    & loader["speedup_verdict"].ne(stats.SINGLE)]
    if repeats <= 1 or tested.empty:
        return ["Every cell ran once (`train.repeats: 1`): there are no intervals, so none of "
                "these differences is shown to be more than noise. Run with "
                "`configs/measure.yaml` (7 repeats) for tested speed-ups and 95% intervals."]
    m = int(tested["comparisons"].max())
    counts = tested["speedup_verdict"].value_counts()
    n = {v: int(counts.get(v, 0)) for v in (stats.FASTER, stats.SLOWER, stats.NO_CLEAR,
                                             stats.SMALL, stats.TOO_FEW)}
    out = [f"Each cell ran {repeats} times. Every speed-up over `num_workers=0` was tested "
           f"with the exact Mann-Whitney test on the runs' epoch durations, and the run's {m} "
           f"comparisons were corrected together ({stats.CORRECTION}), so the chance that any "
           f"\"more than noise\" below is false is at most {_pct(stats.ALPHA)}: "
           f"{n[stats.FASTER]} faster and {n[stats.SLOWER]} slower by more than noise, "
           f"{n[stats.NO_CLEAR]} within noise"
           + (f", {n[stats.SMALL]} real but within the {_pct(stats.NOISE_THRESHOLD)} noise "
              "threshold" if n[stats.SMALL] else "") + "."]
    if n[stats.TOO_FEW]:
        needed = int(tested["repeats_needed"].max())
        out.append(f"{n[stats.TOO_FEW]} of the {m} comparisons had too few repeats to tell at "
                   f"all: with {m} comparisons, {needed} or more runs per cell are needed "
                   "before even a perfectly clear difference can be called more than noise.")
    unstable = summary[summary["unstable"].astype("boolean").fillna(False)]
    if len(unstable):
        out.append(f"{len(unstable)} cell(s) may be unstable: their runs spread by more than "
                   f"{_pct(stats.UNSTABLE)} of their median (MAD), pyperf's threshold: "
                   + _join([_setting_text(r, axes.varying(summary))
                            for _, r in unstable.head(5).iterrows()])
                   + (f" and {len(unstable) - 5} more" if len(unstable) > 5 else "") + ".")
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


def machine_noise_sentences(table: pd.DataFrame, summary: pd.DataFrame) -> list[str]:
    """How noisy the machine was during this run: the reference kernel's spread, the spread
    of one cell's repeats, the smallest difference the run could resolve, disturbed runs and
    the CPU time the rest of the machine used while clocks ran."""
    ok = table[table["status"].eq("ok")]
    runs = ok.drop_duplicates("cell")
    out = []
    ref = runs["reference_before"].dropna() if "reference_before" in runs else pd.Series()
    if len(ref) >= 2:
        rel = stats.spread(ref.to_numpy(float)) / float(ref.median())
        out.append(f"The reference kernel (the same fixed computation, timed just before and "
                   f"after every run's clock) took a median {1000 * ref.median():.0f} ms; "
                   f"over the run it spread by {_pct(rel)} (MAD), and its slowest run took "
                   f"{_pct(ref.max() / ref.min() - 1)} longer than its fastest.")
    repeated = summary[summary["repeats"] > 1]
    order = runs.dropna(subset=["order"]) if "order" in runs else pd.DataFrame()
    if len(repeated) and len(order) and order["repeat"].nunique() > 1:
        spans = order.groupby("repeat")["order"].agg(["min", "max"]).sort_index()
        apart = (spans["max"].iloc[:-1].to_numpy() < spans["min"].iloc[1:].to_numpy()).all()
        out.append("Repeats were interleaved: every cell's repeat 0 ran before any cell's "
                   "repeat 1, and so on (the table's `order`), so a slow drift of the machine "
                   "is spread over all cells rather than read as a difference between them."
                   if apart else
                   "Repeats were not fully interleaved (the table's `order`): some cell's "
                   "later repeat ran before another cell's earlier one, so a slow drift of "
                   "the machine may show as a difference between cells.")
    if len(repeated):
        rel = (repeated["epoch_duration_mad"] / repeated["epoch_duration_median"]).median()
        out.append(f"Repeats of one cell spread by a median {_pct(rel)} of their median "
                   "epoch duration (MAD).")
        given = repeated.dropna(subset=["speedup_ci_low", "speedup_ci_high"])
        if len(given):
            half = ((given["speedup_ci_high"] - given["speedup_ci_low"])
                    / (2 * given["speedup"])).median()
            out.append(f"The smallest difference this run could resolve at "
                       f"{int(repeated['repeats'].max())} repeats: about +-{_pct(half)} "
                       "(the median half-width of the speed-up intervals); smaller "
                       "differences between settings are within its noise.")
        else:
            out.append(f"At {int(repeated['repeats'].max())} repeats no speed-up interval "
                       "exists (4 or more runs per cell are needed), so the run cannot say "
                       "how small a difference it resolves.")
    if "disturbed" in runs:
        bad = runs[runs["disturbed"].astype("boolean").fillna(False)]
        if len(bad):
            out.append(f"{len(bad)} of {len(runs)} runs were disturbed: the reference kernel "
                       "took more than 25% longer or shorter after the run's clock than before "
                       "it, so the machine changed under them: "
                       + _join([f"run {int(r.run)} (`{r.cell}`)" for r in bad.head(5)
                                .itertuples()])
                       + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
                       + ". `disturbed` in the table marks them.")
        elif len(runs):
            out.append(f"No run was disturbed (the reference kernel before and after each of "
                       f"the {len(runs)} runs agreed within 25%).")
    if "other_cpu_seconds" in runs and runs["other_cpu_seconds"].notna().any():
        share = runs["other_cpu_seconds"] / runs["run_duration"]
        out.append(f"While the clocks ran, the rest of the machine (everything but the cell's "
                   f"own processes) used a median {_pct(share.median())} of one CPU "
                   f"(at most {_pct(share.max())}); hypervisor steal time: "
                   f"{runs['steal_seconds'].sum():.1f} s in all.")
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
    runs = _join([f"run {int(r.run)} (`{r.cell}`, loss {r.loss:.6f})"
                  for r in off.head(10).itertuples()])
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
                f"95% interval lies on the published value's side of 1 in "
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
            out.append(f"The published speed-up lies inside our 95% interval in "
                       f"{int(inside.sum())} of {len(inside)} cells.")
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


def published_glance(comparison: pd.DataFrame) -> list[str]:
    """One sentence per setting: agreement counts and whether the published headline holds;
    and what the published table leaves unknown."""
    out = []
    for label, part in _groups_by_setting(comparison):
        counts = part["agreement"].value_counts()
        text = (f"Against the published table{f' ({label})' if label else ''}: of "
                f"{len(part)} shared cells, our interval agrees in "
                f"{int(counts.get(published_module.AGREE, 0))}, disagrees in "
                f"{int(counts.get(published_module.DISAGREE, 0))}, is inconclusive in "
                f"{int(counts.get(published_module.INCONCLUSIVE, 0))}"
                + (f" and has no interval in {int(counts.get(published_module.NO_INTERVAL))}"
                   if counts.get(published_module.NO_INTERVAL) else ""))
        one = part[part["num_workers"] == 1]
        if len(one):
            text += "; its headline (one worker faster than none): " + _headline_verdict(one)
        out.append(text + ".")
    if out:
        out.append(f"The published table does not record {published_module.UNKNOWNS}: a "
                   "disagreement may come from any of them, not only from our machine.")
    return out


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
    threads = sorted({", ".join(f"{k}={v}" for k, v in sorted((e.get("thread_env") or {}).items()))
                      for e in envs} - {""})
    if threads:
        out.append("Thread variables in the cells' environment: " + " / ".join(
            f"`{t}`" for t in threads) + ".")
    return out


# --- renderers -----------------------------------------------------------------------------

_CODE = re.compile(r"`([^`]+)`")


def markdown(sections: list[Section], title: str = "Findings", preamble: list[str] = ()) -> str:
    lines = [f"# {title}", ""]
    for p in preamble:
        lines += [p, ""]
    for section in sections:
        lines += [f"## {section.title.replace('`', '')}", ""]
        lines += [f"- {s}" for s in section.sentences] + [""]
    return "\n".join(lines)


def _rst_inline(text: str) -> str:
    text = text.replace("*", r"\*").replace("|", r"\|")
    return _CODE.sub(lambda m: f"``{m.group(1)}``", text)


def rst(sections: list[Section]) -> str:
    """Findings as rst without section titles (so they can be included anywhere): a bold
    line per section, then a bullet per sentence."""
    lines = []
    for section in sections:
        lines += [f"**{_rst_inline(section.title).strip()}**", ""]
        lines += [f"- {_rst_inline(s)}" for s in section.sentences] + [""]
    return "\n".join(lines) + "\n"


def _html_inline(text: str) -> str:
    return _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", html_module.escape(text, quote=False))


def html(sections: list[Section]) -> str:
    parts = []
    for section in sections:
        parts.append(f"<h2>{_html_inline(section.title)}</h2><ul class=\"findings\">")
        parts += [f"<li>{_html_inline(s)}</li>" for s in section.sentences]
        parts.append("</ul>")
    return "".join(parts)
