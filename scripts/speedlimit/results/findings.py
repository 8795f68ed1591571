"""Findings in plain sentences: each claim of :mod:`speedlimit.results.claims` phrased once,
from the vocabulary of :mod:`speedlimit.results.words` (never computed here).

:func:`compute` returns sections of sentences, the answer first; :mod:`speedlimit.results.render`
renders them. Sentences mark code with single backticks (`like this`); each format converts.
Also :func:`hardware`, the machine the cells ran on, from their ``environment`` blocks.
"""

from __future__ import annotations


import pandas as pd

from speedlimit import axes
from speedlimit.results import claims as claims_module
from speedlimit.results.notes import (machine_noise_sentences, not_run_sentences,
                                      published_sentences, quality_sentences,
                                      steady_state_sentences)
from speedlimit.results.decisions import Ratio
from speedlimit.results.render import Section
from speedlimit.results.words import behind, interval, join as _join, minutes, percent as _pct
from speedlimit.results.words import seconds
from speedlimit.results.words import speedup as speedup_words, times as _x
from speedlimit.results.words import workers as _workers


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
                                                       ratio.verdict, g.outcome.threshold)
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
                    f"{_pct(g.outcome.threshold)} noise threshold, and it is "
                    f"{behind_words(rec.behind)}.")
        return (f"Recommended: {head}, tested: {gain_text(g, i, rec.gain)}; "
                f"{behind_words(rec.behind)}.")
    if rec.level == "one run":
        return (f"Fastest in one run: {head} ({gain_text(g, i, rec.gain)}); with one run per "
                "cell nothing is tested: race the settings (`train.repeats: auto`) before "
                "relying on it.")
    why = f"; {rec.why}" if rec.why else ""
    return (f"Undecided after {g.outcome.rounds} round(s); the fewest workers measured within "
            f"the {_pct(g.outcome.threshold)} noise threshold of the fastest: {head} "
            f"({gain_text(g, i, rec.gain)}; {behind_words(rec.behind)}{why}).")


def behind_words(ratio: Ratio | None) -> str:
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
            gain = speedup_words(p.ratio.estimate, p.ratio.low, p.ratio.high, p.ratio.verdict,
                                 g.outcome.threshold)
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
                     f"most {1 + g.outcome.margin:.2f}x as long) or slower (more than "
                     f"{1 + g.outcome.threshold:.2f}x): {_x(r.estimate)} so far, "
                     f"{interval(r.low, r.high)}")
    for a, _, r in gain:
        words = speedup_words(r.estimate, r.low, r.high, r.verdict, g.outcome.threshold)
        parts.append(f"whether {_s(g, a)} gains over `num_workers=0` ({words})")
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
           f"{_workers(p.stop)} (within {_pct(g.outcome.threshold)} of the best the grid "
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
                   "round(s), the fewest workers measured within the noise threshold of the "
                   f"fastest; {gain}; {bound}{more}).")
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
               f"interval lies beyond the {_pct(fam.threshold)} noise threshold, as fast "
               f"where it rules out epochs more than {_pct(fam.margin)} longer, not told apart "
               "otherwise (criterion.rs's rule).")
    if race_state:
        why = {"decided": "every group was decided",
               "max_rounds": f"it reached `train.max_rounds` = {race_state['max_rounds']}",
               "budget": f"the next round would have passed `train.budget` = "
                         f"{minutes(race_state['budget_seconds'] or 0)}"}
        stopped = why.get(race_state["stopped"], race_state["stopped"])
        out.append(f"The race ran {race_state['rounds']} round(s) "
                   f"({minutes(race_state['spent_seconds'])} of rounds) and stopped because "
                   f"{stopped}.")
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
