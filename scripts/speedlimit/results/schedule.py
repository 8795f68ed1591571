"""A round's decisions as the round checkpoint writes them (:func:`round_file`): per group
what was decided and what is open, whether the race stops and why, the next round's runs in
their random order, the whole epochs that check the race's predictions; what the race's
rounds took (their own wall time, not the pauses between invocations); and a group's
progress line. Nothing here imports torch."""

from __future__ import annotations

import pandas as pd

from speedlimit import grid
from speedlimit.groups import family_size
from speedlimit.results import stats
from speedlimit.results.decision_file import outcome_to_dict
from speedlimit.results.decisions import Outcome, gain_words, pick, why_not_fastest


# A pause between two runs of a round longer than this is not the race's time: the run was
# stopped (interrupted, killed) and invoked again later.
PAUSE_SECONDS = 60.0


def _busy_seconds(round_runs: pd.DataFrame) -> float:
    """A round's own wall time: from its first run's start to its last run's end, less every
    pause of more than PAUSE_SECONDS between one run's end and the next run's start."""
    total, start, end = 0.0, None, None
    for s, e in sorted(zip(round_runs["started"], round_runs["ended"])):
        if start is None or s - end > PAUSE_SECONDS:
            total += (end - start) if start is not None else 0.0
            start, end = s, e
        else:
            end = max(end, e)
    return total + (end - start if start is not None else 0.0)


def round_seconds(outcome: Outcome, runs: pd.DataFrame) -> float:
    """What the group's last round took (its own runs' wall time, a group job once), per
    setting it ran: the price of a setting's round, to estimate what is left."""
    mine = runs[runs["cell"].map(grid.prefix).isin(outcome.cells)].dropna(
        subset=["started", "ended"])
    if mine.empty:
        return 0.0
    last = mine[mine["round"].eq(mine["round"].max())]
    return _busy_seconds(last) / max(1, len(last))


def spent_seconds(runs: pd.DataFrame) -> float:
    """Seconds the race's rounds took: each round's own wall time (_busy_seconds), so time
    between invocations never counts, even inside a round that an interruption split in two."""
    timed = runs.dropna(subset=["started", "ended"])
    return float(sum(_busy_seconds(part) for _, part in timed.groupby("round")))


def round_file(outcomes: list[Outcome], runs: pd.DataFrame, round_: int, seed: int,
               max_rounds: int, budget: float | None, levers: dict) -> dict:
    """What round ``round_``'s checkpoint writes: per group what was decided and what is
    open, whether the race stops (and why), the next round's runs in their random order, and,
    once it stops, the whole epochs that check its predictions."""
    spent = spent_seconds(runs)
    following = round_ + 1
    cells = list(dict.fromkeys(f"{o.cells[i]}/repeat~{following}" for o in outcomes
                               if not o.decided for i in o.in_race()))
    # (the loader-free limit of a tensor cell is no setting of the race and makes no claim:
    # it runs in round 0 only, never in a round this file schedules)
    # the next round's price: each group's own last round, per setting it will run
    costs = [round_seconds(o, runs) for o in outcomes]
    next_seconds = sum(c * len(o.in_race()) for o, c in zip(outcomes, costs)
                       if not o.decided)
    stopped = None
    if all(o.decided for o in outcomes):
        stopped = "decided"
    elif following >= max_rounds:
        stopped = "max_rounds"
    elif budget is not None and spent + next_seconds > budget:
        stopped = "budget"
    groups = [group_entry(o, c) for o, c in zip(outcomes, costs)]
    return {
        "round": round_,
        "rounds": following,
        "stopped": stopped,
        "spent_seconds": round(spent, 1),
        "budget_seconds": budget,
        "max_rounds": max_rounds,
        "comparisons": family_size([o.settings for o in outcomes]),
        "alpha": stats.ALPHA,
        "threshold": levers["threshold"],
        "margin": levers["margin"],
        "groups": groups,
        "next": None if stopped else {"round": following,
                                      "cells": grid.round_order(cells, seed, following),
                                      "seconds": round(next_seconds, 1)},
        "check": check_cells(outcomes) if stopped else [],
        "outcomes": [outcome_to_dict(o) for o in outcomes],
    }


def fixed_file(outcomes: list[Outcome], repeats: int, levers: dict) -> dict:
    """The decision record of a run of fixed repeats: one look, after every repeat."""
    return {
        "rounds": repeats,
        "stopped": "fixed",
        "comparisons": family_size([o.settings for o in outcomes]),
        "alpha": stats.ALPHA,
        "threshold": levers["threshold"],
        "margin": levers["margin"],
        "groups": [group_entry(o, 0.0) for o in outcomes],
        "next": None,
        "check": [],
        "outcomes": [outcome_to_dict(o) for o in outcomes],
    }


def check_cells(outcomes: list[Outcome]) -> list[str]:
    """The cells whose whole epoch checks the race's prediction: each group's pick and its
    num_workers=0 setting."""
    out = []
    for o in outcomes:
        chosen = pick(o)
        for i in (chosen, o.base[chosen]):
            if i >= 0 and f"{o.cells[i]}/repeat~0" not in out:
                out.append(f"{o.cells[i]}/repeat~0")
    return out


def group_entry(o: Outcome, per_run: float) -> dict:
    """A group's state after a round, for the round's file and its progress line
    (``per_run``: what its last round took per setting it ran)."""
    leader = o.leader()
    out = [{"setting": o.words(i), "slower_than": o.words(int(o.decision.slower_than[i])),
            "after_round": o.left_at[i]}
           for i in range(len(o.settings)) if o.decision.out[i]]
    seconds = (o.rounds_more or 0) * per_run * max(1, len(o.in_race()))
    return {
        "label": o.label,
        "conditions": {k: v for k, v in o.conditions.items()},
        "decided": o.decided,
        "recommended": o.words(o.recommended) if o.decided else None,
        "gain": gain_words(o, pick(o)),
        "pick": o.words(pick(o)),
        "why": why_not_fastest(o),
        "leader": o.words(leader),
        "in_race": [o.words(i) for i in o.in_race()],
        "out": out,
        "rounds_more": o.rounds_more,
        "seconds_more": round(seconds, 1) if not o.decided else 0.0,
    }


def progress_line(entry: dict, round_: int) -> str:
    """One line per group after each round, for the terminal and the log."""
    head = f"race round {round_} | {entry['label']}: "
    if entry["decided"]:
        return head + f"decided: {entry['recommended']} ({entry['gain']})"
    minutes = entry["seconds_more"] / 60
    return (head + f"in the race {'; '.join(entry['in_race'])}; leader {entry['leader']} "
            f"({entry['gain']}); about {entry['rounds_more']} more round(s), "
            f"~{minutes:.1f} min")
