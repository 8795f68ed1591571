"""Findings in plain sentences: each claim of :mod:`speedlimit.results.claims` phrased once,
from the vocabulary of :mod:`speedlimit.results.words` (never computed here).

:func:`compute` returns sections of sentences, the answer first; :mod:`speedlimit.results.render`
renders them. Sentences mark code with single backticks (`like this`); each format converts.
Also :func:`hardware`, the machine the cells ran on, from their ``environment`` blocks.
"""

from __future__ import annotations


import pandas as pd

from speedlimit import axes, grid
from speedlimit.results import claims as claims_module
from speedlimit.results import published as published_module
from speedlimit.results import stats
from speedlimit.results.aggregate import QUALITY_RTOL, thread_env_text
from speedlimit.results.render import Section
from speedlimit.results.words import behind, interval, minutes, percent as _pct, seconds
from speedlimit.results.words import speedup as speedup_words, times as _x
from speedlimit.results.words import workers as _workers


def _join(items: list[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


# --- the DataLoader call a recommendation pastes --------------------------------------------


def kwargs(g: claims_module.GroupClaims, i: int) -> dict:
    """The DataLoader keyword arguments of setting ``i``, from the axes' declaration: the
    group's batch size, shuffle (RandomSampler, as every cell), num_workers (what the findings
    rank: always spelled out), and each other DataLoader axis whose value is not torch's
    default (a call keeps the rest as torch has them)."""
    values = {**g.outcome.conditions, **g.outcome.settings[i]}
    out = {}
    for axis in axes.KEYWORDS:
        value = axis.read(values.get(axis.name))
        if axis.name in (axes.ROWS, axes.COMPARED) or (value is not None
                                                       and value != axis.default):
            out[axis.loader_keyword] = value
        if axis.name == axes.ROWS:
            out["shuffle"] = True
    return out


def paste(g: claims_module.GroupClaims, i: int) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs(g, i).items())
    return f"DataLoader(dataset, {args})"


def holds_under(g: claims_module.GroupClaims) -> str:
    """What the pasted call was measured under and holds with: torch's intra-op threads, as
    the training process sets them, and the device (``torch.set_num_threads(1)``, cpu)."""
    threads = int(float(g.outcome.conditions.get("torch_threads") or 1))
    device = g.outcome.conditions.get("device") or "cpu"
    return f"torch.set_num_threads({threads}), device {device}"


# --- one group ------------------------------------------------------------------------------


def _s(g, i: int) -> str:
    return f"`{g.words(i)}`"


def gain_text(g: claims_module.GroupClaims, i: int, ratio) -> str:
    """A setting's gain over its num_workers=0 setting, or why there is none to give."""
    if ratio is not None:
        return "over `num_workers=0`: " + speedup_words(ratio.estimate, ratio.low, ratio.high,
                                                       ratio.verdict)
    if g.outcome.base[i] == i:
        return "it is `num_workers=0` itself"
    return "the grid has no `num_workers=0` setting with its other settings to compare with"


def recommendation_sentence(g: claims_module.GroupClaims) -> str:
    rec = g.recommendation
    i = rec.setting
    head = f"`{paste(g, i)}`"
    if rec.level == "tested":
        if g.outcome.base[i] == i:
            return (f"Recommended: {head}, tested: no setting with workers was shown faster "
                    f"than loading in the main process by more than the "
                    f"{_pct(stats.NOISE_THRESHOLD)} noise threshold, and it is "
                    f"{behind_words(rec.behind)}.")
        return (f"Recommended: {head}, tested: {gain_text(g, i, rec.gain)}; "
                f"{behind_words(rec.behind)}.")
    if rec.level == "one run":
        return (f"Fastest in one run: {head} ({gain_text(g, i, rec.gain)}); with one run per "
                "cell nothing is tested: race the settings (`train.repeats: auto`) before "
                "relying on it.")
    why = f"; {rec.why}" if rec.why else ""
    return (f"Undecided after {g.outcome.rounds} round(s); the fewest workers measured within "
            f"the {_pct(stats.NOISE_THRESHOLD)} noise threshold of the fastest: {head} "
            f"({gain_text(g, i, rec.gain)}; {behind_words(rec.behind)}{why}).")


def behind_words(ratio: claims_module.Ratio | None) -> str:
    """How much slower than the fastest setting tried the setting may be (its interval
    against the fastest of the others)."""
    if ratio is None:
        return "the only setting tried"
    return behind(ratio.low, ratio.high)


def passed_over_sentence(g: claims_module.GroupClaims) -> list[str]:
    rec = g.recommendation
    if not rec.passed_over:
        return []
    parts = []
    for p in rec.passed_over:
        if p.because == "slower":
            parts.append(f"{_s(g, p.setting)} is slower than the fastest setting tried by more "
                         f"than noise ({_x(p.ratio.estimate)} the fastest other's epoch, "
                         f"{interval(p.ratio.low, p.ratio.high)})")
        else:
            gain = speedup_words(p.ratio.estimate, p.ratio.low, p.ratio.high, p.ratio.verdict)
            parts.append(f"{_s(g, p.setting)} gains no more than the noise threshold over "
                         f"`num_workers=0` ({gain}) where other settings gain more")
    return ["Passed over, before it in the order of preference (fewest workers, then torch's "
            "defaults): " + "; ".join(parts) + "."]


def open_sentence(g: claims_module.GroupClaims) -> list[str]:
    rec = g.recommendation
    if rec.level != "undecided":
        return []
    fast = [(a, b, r) for a, b, what, r in rec.open if what == "as fast"]
    gain = [(a, b, r) for a, b, what, r in rec.open if what == "gain"]
    parts = []
    for a, _, r in fast:
        parts.append(f"whether {_s(g, a)} is as fast as the fastest setting tried (epochs at "
                     f"most {1 + stats.MARGIN:.2f}x as long) or slower (more than "
                     f"{1 + stats.NOISE_THRESHOLD:.2f}x): {_x(r.estimate)} so far, "
                     f"{interval(r.low, r.high)}")
    for a, _, r in gain:
        parts.append(f"whether {_s(g, a)} gains over `num_workers=0` "
                     f"({speedup_words(r.estimate, r.low, r.high, r.verdict)})")
    more = (f"; about {rec.rounds_more} more round(s) would settle it (the median of the race "
            f"run on in simulation, at the spread seen so far)" if rec.rounds_more else "")
    return [f"Still open: {_join(parts) if parts else 'no setting qualifies yet'}{more}."]


def fastest_sentence(g: claims_module.GroupClaims) -> str:
    f = g.fastest
    median = f"{seconds(f.median)} per epoch, median"
    if f.setting == g.recommendation.setting:
        return f"It is also the fastest measured ({median})."
    return (f"The fastest measured was {_s(g, f.setting)} ({median}; "
            f"{gain_text(g, f.setting, f.speedup)}).")


def cost_sentence(g: claims_module.GroupClaims) -> str:
    c, b = g.costs, g.batch_size
    if pd.isna(c.load):
        return ("The cells recorded no loading cost (metrics written before speedlimit "
                "measured it), so nothing is predicted.")
    text = (f"Loading one sample took {seconds(c.load)} in the main process (the workload's "
            "`__getitem__` on a fixed sample of items, before the clock; median over the "
            "cells)")
    if pd.isna(c.compute):
        return (text + "; with no `num_workers=0` cell the compute was never measured without "
                "workers competing for the CPU, so nothing is predicted.")
    return (text + f"; computing one took {seconds(c.compute)} with `num_workers=0` (on the "
            f"clock, {c.threads} torch thread(s)). Per batch of {b}: {seconds(c.load * b)} of "
            f"loading against {seconds(c.compute * b)} of compute, so loading costs "
            f"{c.load / c.compute:.2f} times the compute.")


def prediction_sentences(g: claims_module.GroupClaims) -> list[str]:
    p = g.prediction
    if p is None:
        return []
    b = g.batch_size
    work = (p.load + p.threads * p.compute) * b
    out = [f"Predicted from these costs with the {p.cpus} CPU(s) a cell may use: an epoch can "
           f"be no shorter than its compute ({seconds(p.compute * b)} per batch), its loading "
           f"shared by the workers ({seconds(p.load * b)} / num_workers) or all its work "
           f"shared by the CPUs ({seconds(work)} / {p.cpus}); so workers stop helping at "
           f"{_workers(p.stop)} (within {_pct(stats.NOISE_THRESHOLD)} of the best the grid "
           f"allows), and the race's own rule applied to these predicted epochs picks "
           f"{_workers(p.recommends)}."
           + (f" More workers than the grid has would still help: loading stops limiting "
              f"only at {_workers(p.enough)}." if p.enough > max(
                  int(s[axes.COMPARED]) for s in g.outcome.settings) else "")]
    checked = p.checked
    if not checked:
        if p.checks:
            out.append("No measured speed-up has an interval yet, so the prediction is not "
                       "checked.")
        return out
    outside = p.outside
    rows = "; ".join(f"{c.workers}: {_x(c.predicted)} predicted, {_x(c.measured.estimate)} "
                     f"measured ({interval(c.measured.low, c.measured.high)})"
                     for c in p.checks)
    if not outside:
        out.append(f"Nothing measured contradicts the prediction: each of its {len(checked)} "
                   f"speed-up(s) over `num_workers=0` lies inside the measured interval "
                   f"({rows}).")
    else:
        out.append(f"The measurement contradicts the prediction: {len(outside)} of its "
                   f"{len(checked)} speed-up(s) over `num_workers=0` lie outside the measured "
                   f"interval ({rows}).")
        worst = max(outside, key=lambda c: abs(c.predicted / c.measured.estimate - 1))
        i = next(k for k, s in enumerate(g.outcome.settings)
                 if int(s[axes.COMPARED]) == worst.workers)
        beside = g.cells["compute_per_sample_median"].iloc[i]
        if worst.predicted > worst.measured.estimate and pd.notna(beside):
            out.append(f"Furthest off: {_workers(worst.workers)}, where computing one sample "
                       f"took {seconds(beside)} with the workers beside it, against "
                       f"{seconds(p.compute)} alone: the model leaves out {LEFT_OUT}.")
        elif worst.predicted < worst.measured.estimate:
            out.append(f"Furthest off: {_workers(worst.workers)}, faster than the measured "
                       "costs allow: the loading cost measured before the clock (or the "
                       "compute of the `num_workers=0` cells) overstates what an epoch spends "
                       "on it.")
    return out


LEFT_OUT = ("collating batches and handing them from the workers to the main process, "
            "starting the workers, and processes that slow each other down")


def check_sentences(g: claims_module.GroupClaims) -> list[str]:
    if not g.checks:
        return []
    parts = [f"{_s(g, c.setting)}: {seconds(c.predicted)} predicted (median over its runs), "
             f"{seconds(c.measured)} measured ({c.error:+.0%})" for c in g.checks]
    return ["The race's epochs, predicted from windows of batches, against one whole epoch "
            "of each timed at the end: " + "; ".join(parts) + "."]


def group_sentences(g: claims_module.GroupClaims) -> list[str]:
    """Everything about one group, each fact once: the recommendation and the claims behind
    it, the fastest, the costs, the prediction and (a race) its check."""
    return ([recommendation_sentence(g)] + passed_over_sentence(g)
            + open_sentence(g) + [fastest_sentence(g), cost_sentence(g)]
            + prediction_sentences(g) + check_sentences(g))


# --- the run --------------------------------------------------------------------------------


CONTINUE = ("raise `train.budget` (or `train.max_rounds`) and run the same command again: "
            "the race goes on from its last round, and only the open groups run")


def answer_sentences(groups: list[claims_module.GroupClaims],
                     race_state: dict | None = None) -> list[str]:
    """One line per group: the DataLoader call to paste, how sure, its gain over
    num_workers=0 and how much slower than the fastest setting tried it may be; undecided,
    what would settle it, in minutes, and how to go on."""
    entries = {e["label"]: e for e in (race_state or {}).get("groups", [])}
    out = []
    for g in groups:
        rec = g.recommendation
        i = rec.setting
        gain = gain_text(g, i, rec.gain)
        call = f"`{paste(g, i)}` with `{holds_under(g)}`"
        if rec.level == "one run":
            out.append(f"{_cap(g.label)}: {call} (one run, not tested; {gain}).")
            continue
        bound = behind_words(rec.behind)
        if rec.why:
            bound += f"; {rec.why}"
        if rec.level == "tested":
            out.append(f"{_cap(g.label)}: {call} (tested; {gain}; {bound}).")
            continue
        seconds_more = (entries.get(g.label) or {}).get("seconds_more")
        more = ""
        if rec.rounds_more:
            more = f"; about {rec.rounds_more} more round(s)"
            if seconds_more:
                more += f" (~{minutes(seconds_more)})"
            more += f" would settle it: {CONTINUE}"
        out.append(f"{_cap(g.label)}: {call} (undecided after {g.outcome.rounds} "
                   f"round(s), the fewest workers measured within the noise threshold of the fastest; "
                   f"{gain}; {bound}{more}).")
    return out


def how_sure_sentences(fam: claims_module.Family, race_state: dict | None,
                       groups: list[claims_module.GroupClaims]) -> list[str]:
    out = []
    if fam.rounds <= 1 and not race_state:
        return ["Every cell ran once (`train.repeats: 1`, the seed's reproduction): there are no "
                "intervals, so nothing here is shown to be more than noise. `train.repeats: "
                "auto` races the settings until the answer is shown."]
    kind = ("the group's spread, pooled over its rounds and read at the race's planned looks, "
            "beside each pair's median, a confidence sequence: together they hold at every "
            "round at once however often the race looked" if fam.sequential
            else "fixed-sample intervals for one look at the end")
    out.append(f"Every claim of the findings rests on one family of intervals: the run's "
               f"{fam.comparisons} comparisons (within a workload and batch size, each setting "
               f"against the fastest of the others, and against `num_workers=0`: Hsu's "
               f"multiple comparisons with the best), each from the ratio of epoch durations "
               f"round by round (each round runs the settings in a random order, so drift of "
               f"the machine cancels), with {kind}; simultaneous for all of them at "
               f"{_pct(1 - fam.alpha)} (Bonferroni), so the chance that any claim read off them "
               f"is false is at most {_pct(fam.alpha)}. Costs, medians and the prediction are "
               "measurements and a model, with no error rate.")
    out.append(f"A verdict is read off its interval: faster or slower only where the whole "
               f"interval lies beyond the {_pct(stats.NOISE_THRESHOLD)} noise threshold, as fast "
               f"where it rules out epochs more than {_pct(stats.MARGIN)} longer, not told apart "
               "otherwise (criterion.rs's rule).")
    if race_state:
        why = {"decided": "every group was decided",
               "max_rounds": f"it reached `train.max_rounds` = {race_state['max_rounds']}",
               "budget": f"the next round would have passed `train.budget` = "
                         f"{minutes(race_state['budget_seconds'] or 0)}"}
        out.append(f"The race ran {race_state['rounds']} round(s) ({minutes(race_state['spent_seconds'])} "
                   f"of rounds) and stopped because {why.get(race_state['stopped'], race_state['stopped'])}.")
    elif groups:
        out.append(f"Each cell ran {fam.rounds} times (whole epochs).")
    resolution = [g.resolution() for g in groups if g.resolution() is not None]
    if resolution:
        out.append(f"At these runs the intervals against `num_workers=0` were a median "
                   f"+-{_pct(pd.Series(resolution).median())} wide: smaller differences between "
                   "settings could not be told here.")
    return out


def compute(summary: pd.DataFrame, groups: list[claims_module.GroupClaims],
            fam: claims_module.Family, race_state: dict | None = None,
            comparison: pd.DataFrame | None = None, context: dict | None = None,
            table: pd.DataFrame | None = None,
            grid_skipped: pd.DataFrame | None = None) -> list[Section]:
    """Sections of sentences, the answer first: the answer per group, how sure, what was not
    run, one section per group (workload and batch size: the claims behind its answer, its
    costs and the prediction), the machine's noise, start-up and steady state, quality, and
    published vs reproduced."""
    context = context or {}
    ok = summary[summary["epoch_duration_median"].notna()]
    loader = ok[ok["loader"].eq("dataloader")]
    not_run = not_run_sentences(table, grid_skipped)
    answer = Section("The answer")
    if loader.empty or not groups:
        answer.sentences.extend(not_run)
        answer.sentences.append("No DataLoader cell finished, so there is no num_workers "
                                "setting to compare.")
        return [answer]
    answer.sentences.extend(answer_sentences(groups, race_state))
    if context.get("data_source") == "synthetic":
        answer.sentences.append(
            f"These runs used the synthetic stand-in data ({context.get('train_size', '?')} "
            "training images in FashionMNIST's format), not FashionMNIST itself: durations are "
            "not comparable with published ones, speed-ups are.")
    sections = [answer, Section("How sure", how_sure_sentences(fam, race_state, groups))]
    if not_run:
        sections.append(Section("Not run", not_run))
    sections.extend(Section(_cap(g.label), group_sentences(g)) for g in groups)
    if table is not None:
        noise = machine_noise_sentences(table, ok)
        if noise:
            sections.append(Section("The machine's noise", noise))
    steady = steady_state_sentences(loader, table)
    if steady:
        sections.append(Section("Start-up and steady state", steady))
    quality = quality_sentences(table) if table is not None else []
    if quality:
        sections.append(Section("Quality", quality))
    if comparison is not None:
        sections.append(Section("Published vs reproduced", published_sentences(comparison)))
    return sections


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
