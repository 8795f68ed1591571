"""The race: which DataLoader settings are fastest, decided in rounds that stop as soon as the
answer is shown.

A *group* is the cells that differ only in their DataLoader settings (one workload, batch
size, lr, thread count and device); its *settings* are those cells, in the order of
preference a recommendation follows (fewest workers first, then most of torch's defaults).
Each *round* runs every setting still in the race once, in a random order. After each round,
for every pair of settings of a group, the paired log-ratios of their epoch durations (one per
round both ran in) give an interval that holds at every round at once
(:mod:`speedlimit.results.sequential`), simultaneously for every pair of the run (Bonferroni
over the run's pairs). Read off those intervals, with ``t_i / t_j`` the ratio of epoch
durations:

* **out**: a setting is *slower* than another when its interval lies wholly above
  ``1 + threshold`` (2%, criterion.rs's noise threshold): it leaves the race;
* **as fast**: a setting is *as fast as* another when its interval lies wholly below
  ``1 + margin`` (at most 10% longer epochs);
* **gain**: a setting is *faster than num_workers=0* when the baseline's interval against it
  lies wholly above ``1 + threshold``.

The **recommendation** is the first setting in preference order that is not passed over
(out, or shown to gain no more than the threshold over num_workers=0 where another setting
does), once it is as fast as every setting still in the race and faster than num_workers=0
(or is num_workers=0 itself). The group is then *decided* and stops; every claim behind the
decision is one of the intervals above, so the chance that any claim of the run is false is at
most ``alpha`` (5%), however many rounds were looked at. Settings that leave the race stop
running; a group's num_workers=0 cells run as long as the group races (every gain is measured
against them). ``tests/test_race.py`` simulates whole races through this module.

Two layers: :class:`Group` holds the numbers of one group's race as arrays (leading axes:
independent races, as in a simulation); :func:`run_race` replays a run's records round by round
into per-group decisions (:class:`Outcome`), as the pipeline's round checkpoint and the
findings use them. Nothing here imports torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from speedlimit import axes
from speedlimit.results import sequential, stats

THRESHOLD = stats.NOISE_THRESHOLD  # a difference smaller than this is noise (criterion.rs)
MARGIN = 0.10  # "as fast": at most this much longer epochs, at the end of the interval
# Runs of the loader-free limit per tensor cell in a race: it is no setting of the race, and
# makes no claim (its ratio to the best setting is a measurement), so it runs in round 0 only.
LIMIT_ROUNDS = 1


@dataclass(frozen=True)
class Design:
    """What the race's intervals are and how its claims read off them."""

    pairs: int  # the family: pairs of settings in the whole run
    alpha: float = stats.ALPHA
    threshold: float = THRESHOLD
    margin: float = MARGIN
    anytime: bool = True  # False: one look (a fixed number of repeats), fixed-n intervals

    @property
    def alpha_pair(self) -> float:
        return self.alpha / max(1, self.pairs)


# --- one group's race, as arrays ----------------------------------------------------------


class Group:
    """One group's race: ``k`` settings in preference order, ``base[i]`` the index of setting
    ``i``'s num_workers=0 setting (itself for one; -1 where the grid has none). Leading axes
    ``batch`` are independent races (a simulation); the pipeline uses ``batch=()``."""

    def __init__(self, k: int, base, design: Design, batch: tuple = ()):
        self.k, self.design, self.batch = k, design, tuple(batch)
        self.base = np.asarray(base, int)
        self.i, self.j = np.triu_indices(k, 1)  # the pairs (i < j)
        self.cs = sequential.Running(self.batch + (len(self.i),), design.alpha_pair,
                                     design.anytime)
        self.logs: list[np.ndarray] = []  # per round: log epoch durations, NaN: not run
        self.history: list[tuple[np.ndarray, np.ndarray]] = []  # (L, U) after each round

    @property
    def rounds(self) -> int:
        return len(self.logs)

    def add_round(self, durations: np.ndarray) -> None:
        """One round's epoch durations (``batch + (k,)``; NaN where a setting did not run)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            self.logs.append(np.log(np.asarray(durations, float)))
        logs = np.stack(self.logs, axis=-1)  # batch + (k, rounds)
        d = logs[..., self.i, :] - logs[..., self.j, :]  # log(t_i / t_j) per round
        self.cs.update(d, changed=~np.isnan(d[..., -1]))
        self.history.append(self.bounds())

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(L, U): ``batch + (k, k)`` bounds of log(t_i / t_j); -inf/inf where none yet."""
        shape = self.batch + (self.k, self.k)
        low, high = np.zeros(shape), np.zeros(shape)
        low[..., self.i, self.j], high[..., self.i, self.j] = self.cs.low, self.cs.high
        low[..., self.j, self.i], high[..., self.j, self.i] = -self.cs.high, -self.cs.low
        return low, high

    def pair_values(self, a: int, b: int) -> np.ndarray:
        """The paired log-ratios log(t_a / t_b) so far (NaN: a round without both)."""
        logs = np.stack(self.logs, axis=-1)
        return logs[..., a, :] - logs[..., b, :]

    def decide(self) -> "Decision":
        return decide(*self.bounds(), self.base, self.design)


@dataclass
class Decision:
    """What one group's intervals show (arrays over ``batch``; ``k`` the last axis)."""

    out: np.ndarray  # slower than some setting by more than the threshold
    slower_than: np.ndarray  # the setting it was shown slower than (-1: none)
    as_fast: np.ndarray  # as fast as every setting still in the race
    gain: np.ndarray  # faster than its num_workers=0 by more than the threshold (or is one)
    no_gain: np.ndarray  # shown to gain no more than the threshold where another setting does
    passed: np.ndarray  # out or no_gain: never the recommendation
    candidate: np.ndarray  # the first setting not passed over (-1: none)
    decided: np.ndarray  # the candidate is as fast and shows its gain
    running: np.ndarray  # to run in the next round (undecided, and still needed)


def decide(low: np.ndarray, high: np.ndarray, base: np.ndarray, design: Design) -> Decision:
    """Read one group's decisions off its intervals ``low``/``high`` of log(t_i / t_j)."""
    k = low.shape[-1]
    slow, fast = math.log1p(design.threshold), math.log1p(design.margin)
    eye = np.eye(k, dtype=bool)
    beyond = (low > slow) & ~eye  # [.., i, j]: i is slower than j by more than the threshold
    out = beyond.any(axis=-1)
    # the setting it is most clearly slower than (the largest lower bound)
    slower_than = np.where(out, np.argmax(np.where(beyond, low, -np.inf), axis=-1), -1)
    alive = ~out
    within = (high <= fast) | eye | ~alive[..., None, :]
    as_fast = within.all(axis=-1)
    idx = np.arange(k)
    has_base = base >= 0
    is_base = base == idx
    b = np.where(has_base, base, idx)
    base_low = low[..., b, idx]  # [.., i] = low[.., base[i], i]: the baseline against i
    base_high = high[..., b, idx]
    gain = is_base | ~has_base | (base_low > slow)
    base_out = np.take_along_axis(out, np.broadcast_to(b, out.shape), axis=-1)
    no_gain = has_base & ~is_base & (base_high <= slow) & base_out
    passed = out | no_gain
    open_ = ~passed
    any_open = open_.any(axis=-1)
    candidate = np.where(any_open, np.argmax(open_, axis=-1), -1)
    qualifies = alive & as_fast & gain
    pick = np.take_along_axis(qualifies, np.maximum(candidate, 0)[..., None], axis=-1)[..., 0]
    decided = any_open & pick
    needed_base = np.zeros(out.shape, bool)
    for i in range(k):  # a num_workers=0 setting runs while one it is the baseline of does
        if has_base[i] and not is_base[i]:
            needed_base[..., base[i]] |= alive[..., i]
    running = ~decided[..., None] & (alive | needed_base)
    return Decision(out, slower_than, as_fast, gain, no_gain, passed, candidate, decided,
                    running)


# --- the pipeline's side: records -> groups -> decisions ----------------------------------

# A group: every axis but the DataLoader's own, on one machine (runs on different nodes, as a
# cluster may give them, are never paired).
GROUP_KEYS = [*axes.CONDITIONS, axes.NODE]
SETTING_KEYS = list(axes.LOADER_SETTINGS)


def _text(value, name: str | None = None) -> str:
    """A setting's value as comparable text, the same whether read from a record or from a
    CSV table (where integers may come back as floats: ``0.0``)."""
    text = axes.as_text(value)
    axis = axes.BY_NAME.get(name)
    if axis is not None and text != "default":
        if axis.type is int:
            return str(int(float(text)))
        if axis.type is float:
            return repr(float(text))
        if axis.type is bool:
            return str(text.lower() in ("true", "1", "1.0"))
    return text


def preference(setting: dict) -> tuple:
    """Sort key of a setting: fewest workers, then most of torch's defaults kept."""
    kept = sum(_text(setting.get(a)) == _text(v) for a, v in axes.TORCH_DEFAULTS.items())
    return (int(setting[axes.COMPARED]), -kept,
            tuple(_text(setting.get(a)) for a in SETTING_KEYS))


def setting_words(setting: dict, varying: list[str]) -> str:
    """A setting in words: ``num_workers=2`` and what else varies in its group."""
    parts = [f"num_workers={int(setting[axes.COMPARED])}"]
    parts += [f"{a}={_text(setting.get(a))}" for a in varying if a != axes.COMPARED]
    return ", ".join(parts)


def group_label(conditions: dict, varying: list[str]) -> str:
    """A group in words: workload and batch size, and the conditions that vary in the run."""
    parts = [f"workload {conditions.get('workload')}", f"batch_size {conditions['batch_size']}"]
    parts += [f"{a}={_text(conditions[a])}" for a in varying
              if a not in ("workload", "batch_size")]
    return ", ".join(parts)


@dataclass
class Pair:
    """The interval of one pair of settings: t_a / t_b (ratio of epoch durations)."""

    a: int
    b: int
    low: float
    high: float
    estimate: float  # the median paired ratio
    rounds: int  # rounds both ran in

    def as_dict(self) -> dict:
        return {"ratio": _r(self.estimate), "low": _r(self.low), "high": _r(self.high),
                "rounds": self.rounds}


def _r(value: float, digits: int = 4):
    return None if value is None or not np.isfinite(value) else round(float(value), digits)


@dataclass
class Outcome:
    """A group's race after its last round: the decisions and every interval behind them."""

    conditions: dict
    label: str
    settings: list[dict]  # in preference order
    cells: list[str]  # their cell paths without repeat (dataloader/.../workload~K)
    varying: list[str]  # DataLoader settings besides num_workers that vary in the group
    base: list[int]
    rounds: int
    runs: list[int]  # runs of each setting
    decision: Decision
    low: np.ndarray  # k x k, bounds of t_i / t_j (NaN: no interval yet)
    high: np.ndarray
    estimate: np.ndarray  # k x k median paired ratio
    common: np.ndarray  # k x k rounds both ran in
    left_at: list[int | None]  # the round after which each setting left the race
    history: list[tuple[np.ndarray, np.ndarray]] = field(repr=False, default_factory=list)
    rounds_more: int | None = None  # about how many more rounds a decision needs

    @property
    def decided(self) -> bool:
        return bool(self.decision.decided)

    @property
    def recommended(self) -> int | None:
        return int(self.decision.candidate) if self.decided else None

    @property
    def candidate(self) -> int | None:
        c = int(self.decision.candidate)
        return None if c < 0 else c

    def words(self, i: int) -> str:
        return setting_words(self.settings[i], self.varying)

    def pair(self, a: int, b: int) -> Pair:
        return Pair(a, b, float(self.low[a, b]), float(self.high[a, b]),
                    float(self.estimate[a, b]), int(self.common[a, b]))

    def in_race(self) -> list[int]:
        return [i for i in range(len(self.settings)) if bool(self.decision.running[i])]

    def leader(self) -> int:
        """The setting with the shortest median epoch duration among those not out (by its
        median paired ratio against the others)."""
        alive = [i for i in range(len(self.settings)) if not self.decision.out[i]]
        pool = alive or list(range(len(self.settings)))
        return min(pool, key=lambda i: (float(np.nanmedian(np.log(self.estimate[i, pool]))),
                                        i))


def durations_per_round(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`runs_frame`'s rows from the results table's finished DataLoader runs."""
    ok = table[table["status"].eq("ok") & table["loader"].eq(axes.DATALOADER)]
    if ok.empty:
        return runs_frame([])
    runs = ok.groupby("cell", sort=False).agg(duration=("epoch_duration", "mean"),
                                               round=("repeat", "first"),
                                               loader=("loader", "first"),
                                               **{k: (k, "first") for k in
                                                  GROUP_KEYS + SETTING_KEYS if k in ok})
    runs = runs.reset_index()
    for k in GROUP_KEYS + SETTING_KEYS:
        runs[k] = runs[k].map(lambda v, k=k: _text(v, k)) if k in runs else "default"
    runs[axes.NODE] = runs[axes.NODE].astype(str)
    runs["round"] = runs["round"].astype(int)
    return runs


def family_size(groups: list[list[dict]]) -> int:
    """The pairs of settings of the run: the race's family (Bonferroni over them)."""
    return sum(len(g) * (len(g) - 1) // 2 for g in groups)


def group_settings(runs: pd.DataFrame):
    """(conditions, settings in preference order, cell path prefix per setting) per group."""
    gkeys = [k for k in GROUP_KEYS if k in runs]
    skeys = [k for k in SETTING_KEYS if k in runs]
    out = []
    for values, rows in runs.groupby(gkeys, dropna=False, sort=False):
        values = values if isinstance(values, tuple) else (values,)
        conditions = dict(zip(gkeys, values))
        settings = {}
        for _, row in rows.iterrows():
            key = tuple(row[k] for k in skeys)
            settings.setdefault(key, (dict(zip(skeys, key)), cell_prefix(row["cell"])))
        ordered = sorted(settings.values(), key=lambda s: preference(s[0]))
        out.append((conditions, [s for s, _ in ordered], [c for _, c in ordered]))
    return out


def cell_prefix(cell: str) -> str:
    """A cell path without its ``repeat~R`` segment."""
    return cell.rsplit("/repeat~", 1)[0]


def baselines(settings: list[dict]) -> list[int]:
    """Index of each setting's num_workers=0 setting (the same baseline axes), or -1."""
    out = []
    for s in settings:
        match = [i for i, t in enumerate(settings) if int(t[axes.COMPARED]) == 0
                 and all(_text(t.get(a)) == _text(s.get(a)) for a in axes.BASELINE
                         if a in SETTING_KEYS)]
        out.append(match[0] if match else -1)
    return out


def run_race(runs: pd.DataFrame, design: Design | None = None, anytime: bool = True,
             keep_history: bool = False) -> list[Outcome]:
    """Replay the runs round by round into every group's decisions (deterministic: the same
    records always give the same decisions)."""
    groups = group_settings(runs)
    if design is None:
        design = Design(pairs=family_size([s for _, s, _ in groups]), anytime=anytime)
    vary_groups = axes.varying(pd.DataFrame([c for c, _, _ in groups]),
                               [k for k in GROUP_KEYS if k != "workload"])
    out = []
    for conditions, settings, cells in groups:
        rows = runs
        for key, value in conditions.items():
            rows = rows[rows[key] == value]
        index = {c: i for i, c in enumerate(cells)}
        rows = rows.assign(setting=rows["cell"].map(cell_prefix).map(index))
        rounds = sorted(int(r) for r in rows["round"].unique())
        k = len(settings)
        group = Group(k, baselines(settings), design)
        values = np.full((k, len(rounds)), np.nan)
        for r_i, r in enumerate(rounds):
            now = rows[rows["round"] == r]
            durations = np.full(k, np.nan)
            durations[now["setting"].to_numpy(int)] = now["duration"].to_numpy(float)
            values[:, r_i] = durations
            group.add_round(durations)
        decision = group.decide()
        low, high = group.bounds()
        logs = np.log(values)
        est = np.ones((k, k))
        common = np.zeros((k, k), int)
        for a in range(k):
            for b in range(k):
                d = logs[a] - logs[b]
                d = d[~np.isnan(d)]
                common[a, b] = len(d)
                est[a, b] = math.exp(float(np.median(d))) if len(d) else math.nan
        left_at = _left_at(group, settings)
        varying = [a for a in SETTING_KEYS if a != axes.COMPARED
                   and len({_text(s.get(a)) for s in settings}) > 1]
        known = np.isfinite(low) & np.isfinite(high)  # else no interval yet: NaN
        outcome = Outcome(conditions, group_label(conditions, vary_groups), settings, cells,
                          varying, list(group.base), len(rounds),
                          [int((~np.isnan(values[i])).sum()) for i in range(k)], decision,
                          np.where(known, np.exp(low), np.nan),
                          np.where(known, np.exp(high), np.nan), est, common, left_at,
                          group.history if keep_history else [])
        outcome.rounds_more = rounds_more(group, decision, design)
        out.append(outcome)
    return out


def state_words(o: "Outcome", i: int) -> str:
    """Where a setting stands in its group's race, in words (summary column ``race``)."""
    if o.decided and i == o.recommended:
        return "recommended"
    if o.decision.out[i]:
        after = f" after round {o.left_at[i]}" if o.left_at[i] is not None else ""
        return f"out{after}: slower than {o.words(int(o.decision.slower_than[i]))}"
    if o.decision.no_gain[i]:
        return "passed over: no gain over num_workers=0 shown"
    return "as fast" if o.decided else "in the race"


def _left_at(group: Group, settings: list[dict]) -> list[int | None]:
    """The round after which each setting was out (shown slower than another); None with
    fixed repeats, whose earlier rounds are no claims (only the last look counts)."""
    left: list[int | None] = [None] * group.k
    if not group.design.anytime:
        return left
    for r, (low, _) in enumerate(group.history):
        out = (low > math.log1p(group.design.threshold)) & ~np.eye(group.k, dtype=bool)
        for i in range(group.k):
            if left[i] is None and out[i].any():
                left[i] = r
    return left


def rounds_more(group: Group, decision: Decision, design: Design, cap: int = 1000) -> int | None:
    """About how many more rounds the group needs to be decided (None when decided): for each
    comparison that still blocks the first candidate, the rounds at which the mean's interval,
    with the pair's robust spread so far, would clear the nearer way to settle it."""
    if bool(decision.decided):
        return None
    c = int(decision.candidate)
    if c < 0:
        return cap
    low, high = group.bounds()
    slow, fast = math.log1p(design.threshold), math.log1p(design.margin)
    blocking = []  # (a, b, distance the interval must clear)
    for j in range(group.k):
        if j != c and not decision.out[j] and high[c, j] > fast:
            d = group.pair_values(c, j)
            m = float(np.nanmedian(d)) if np.isfinite(d).any() else 0.0
            blocking.append((c, j, max(fast - m, m - slow)))
    b = int(group.base[c])
    if b >= 0 and b != c and not decision.gain[c]:
        d = group.pair_values(b, c)
        m = float(np.nanmedian(d)) if np.isfinite(d).any() else 0.0
        blocking.append((b, c, abs(m - slow)))
    # A pair with few rounds borrows the spread of all the group's pairs (one from 2 or 3
    # values is noise); none at all: 5%.
    residuals = []
    for i in range(group.k):
        for j in range(i + 1, group.k):
            d = group.pair_values(i, j)
            d = d[~np.isnan(d)]
            if len(d) >= 2:
                residuals.append(d - np.median(d))
    residuals = np.concatenate(residuals) if residuals else np.array([])
    # (x1.2: residuals about each pair's own median of a few rounds understate its spread)
    pooled = stats.spread(residuals) * 1.2 if len(residuals) >= 5 else float("nan")
    more = 0
    for a, bb, distance in blocking:
        d = group.pair_values(a, bb)
        d = d[~np.isnan(d)]
        n = len(d)
        spread = stats.spread(d) if n >= 5 else pooled
        if not np.isfinite(spread) or spread <= 0:
            spread = 0.05
        need = n
        while need < cap and (sequential.t_factor(need, design.alpha_pair / 2,
                                                  anytime=design.anytime) * spread
                              > max(distance, 1e-6)):
            need += 1
        more = max(more, need - n)
    return max(1, more) if blocking else 1


# --- a round's decisions, as the round checkpoint writes them -------------------------------


def runs_frame(records: list[dict]) -> pd.DataFrame:
    """One row per finished run (both kinds of cell) from metrics records: the group and
    setting columns as text, ``loader``, ``round``, ``cell``, ``duration`` (the predicted
    epoch of a race's run, else the mean over its epochs), ``node``, ``started``, ``ended``.
    Failed and skipped runs give no row (their pairs skip that round)."""
    rows = []
    for record in records:
        if record.get("status") != "ok" or not record.get("epochs"):
            continue
        params, timeline = record["params"], record.get("timeline") or {}
        predicted = record.get("predicted") or {}
        duration = predicted.get("epoch_duration")
        if duration is None:
            duration = float(np.mean([e["epoch_duration"] for e in record["epochs"]]))
        row = {k: _text(params.get(k), k) for k in GROUP_KEYS + SETTING_KEYS}
        row.update(loader=params["loader"], round=int(params["repeat"]), cell=record["cell"],
                   duration=float(duration),
                   node=str((record.get("environment") or {}).get("node")),
                   started=timeline.get("process_started") or timeline.get("clock_started"),
                   ended=timeline.get("written") or timeline.get("clock_stopped"))
        rows.append(row)
    columns = GROUP_KEYS + SETTING_KEYS + ["loader", "round", "cell", "duration", "started",
                                           "ended"]
    return pd.DataFrame(rows, columns=columns)


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


def spent_seconds(runs: pd.DataFrame) -> tuple[float, float]:
    """(seconds the race's rounds took, wall time per run in its last round): each round's own
    wall time (_busy_seconds), so time between invocations never counts, even inside a round
    that an interruption split in two."""
    timed = runs.dropna(subset=["started", "ended"])
    if timed.empty:
        return 0.0, 0.0
    spans = {r: (_busy_seconds(part), len(part)) for r, part in timed.groupby("round")}
    last_span, last_runs = spans[max(spans)]
    return float(sum(s for s, _ in spans.values())), float(last_span / max(1, last_runs))


def round_file(outcomes: list[Outcome], runs: pd.DataFrame, round_: int, seed: int,
               max_repeats: int, budget: float | None) -> dict:
    """What round ``round_``'s checkpoint writes: per group what was decided and what is
    open, whether the race stops (and why), the next round's runs in their random order, and,
    once it stops, the whole epochs that check its predictions."""
    from speedlimit import grid  # (core; no pandas there)

    spent, per_run = spent_seconds(runs)
    following = round_ + 1
    cells = list(dict.fromkeys(f"{o.cells[i]}/repeat~{following}" for o in outcomes
                               if not o.decided for i in o.in_race()))
    undecided = [o.conditions for o in outcomes if not o.decided]
    if following < LIMIT_ROUNDS:  # the loader-free limit of every group still racing
        limits = runs[runs["loader"].eq(axes.TENSOR) & runs["round"].eq(0)]
        for _, row in limits.iterrows():
            if any(all(row[k] == c[k] for k in c if k != axes.NODE) for c in undecided):
                cells.append(f"{cell_prefix(row['cell'])}/repeat~{following}")
    next_seconds = per_run * len(cells)
    stopped = None
    if all(o.decided for o in outcomes):
        stopped = "decided"
    elif following >= max_repeats:
        stopped = "max_repeats"
    elif budget is not None and spent + next_seconds > budget:
        stopped = "budget"
    groups = [group_entry(o, per_run) for o in outcomes]
    return {
        "round": round_,
        "rounds": following,
        "stopped": stopped,
        "spent_seconds": round(spent, 1),
        "budget_seconds": budget,
        "max_repeats": max_repeats,
        "pairs": family_size([o.settings for o in outcomes]),
        "alpha": stats.ALPHA,
        "groups": groups,
        "next": None if stopped else {"round": following,
                                      "cells": grid.round_order(cells, seed, following)},
        "check": check_cells(outcomes) if stopped else [],
    }


def pick(outcome: Outcome) -> int:
    """The setting a group recommends: the decided one, else the leader so far."""
    return outcome.recommended if outcome.decided else outcome.leader()


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


def gain_words(outcome: Outcome, i: int) -> str:
    """A setting's speed-up over its num_workers=0 setting, with the interval."""
    b = outcome.base[i]
    if b < 0:
        return "no num_workers=0 setting to compare with"
    if b == i:
        return "num_workers=0 itself"
    p = outcome.pair(b, i)
    interval = (f"{p.low:.2f}-{p.high:.2f}x" if np.isfinite(p.low) and np.isfinite(p.high)
                else "no interval yet")
    return f"{p.estimate:.2f}x over num_workers=0, {interval}"


def group_entry(o: Outcome, per_run: float) -> dict:
    """A group's state after a round, for the round's file and its progress line."""
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
