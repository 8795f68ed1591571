"""The race: which DataLoader settings are fastest, decided in rounds that stop as soon as the
answer is shown.

A *group* is the cells that differ only in their DataLoader settings (one workload, batch
size, lr, thread count and device); its *settings* are those cells, in the order of
preference a recommendation follows (fewest workers first, then most of torch's defaults).
Each *round* runs every setting the answer still needs once, in a random order. After each
round, for every pair of settings of a group, the paired log-ratios of their epoch durations
(one per round both ran in) give an interval: half of the error rate from the group's pooled
spread at the race's planned looks (:mod:`speedlimit.results.blocks`), half from the pair's
median, a confidence sequence that holds at every round (:mod:`speedlimit.results.sequential`).

The answer needs few of those intervals (Hsu 1984, *multiple comparisons with the best*):
each setting against the fastest of the others (``k - 1`` comparisons per group hold when the
``k - 1`` intervals of the truly fastest setting do, whichever it is) and each setting against
its ``num_workers=0`` setting (its gain). The run's *family* is those comparisons, Bonferroni
over all of them (:func:`family_size`: 27 for the seed's grid, against 45 pairs). With
``t_i`` setting ``i``'s epoch duration, read off them:

* **out**: a setting is *slower than the fastest* when its interval of ``t_i / min t_j``
  (the others) lies wholly above ``1 + threshold`` (2%, criterion.rs's noise threshold): it
  leaves the race;
* **as fast**: a setting is *as fast as the fastest* when that interval lies wholly below
  ``1 + margin`` (at most 10% longer epochs than the fastest setting tried);
* **gain**: a setting is *faster than num_workers=0* when the baseline's interval against it
  lies wholly above ``1 + threshold``.

The **recommendation** is the first setting in preference order that is not passed over
(out, or shown to gain no more than the threshold over num_workers=0 where another setting
does), once it is as fast as the fastest and faster than num_workers=0 (or is num_workers=0
itself). The group is then *decided* and stops; every claim behind the decision is one of
the comparisons above, so the chance that any claim of the run is false is at most ``alpha``
(5%), however many rounds were looked at. The recommendation is never a setting the run
measured slower than one before it by more than the threshold (:func:`lagging`).

A round runs only what the answer still needs (:func:`decide`'s ``running``): the first
candidate; while it is not shown as fast as the fastest, each setting that may be the fastest
(not shown slower than another); and the candidate's num_workers=0 setting while its gain is
open. A setting that is out, or shown slower than another, or no longer needed once the
candidate is as fast, stops running (its intervals keep what they showed: a confidence
sequence holds at every round). ``tests/test_race.py`` simulates whole races
through this module.

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
from speedlimit.results import blocks, sequential, stats, words


@dataclass(frozen=True)
class Design:
    """What the race's intervals are and how its claims read off them."""

    comparisons: int  # the family: comparisons of the whole run (family_size)
    alpha: float = stats.ALPHA
    # the levers (stats.configure: train.threshold and train.margin), as set when made
    threshold: float = field(default_factory=lambda: stats.NOISE_THRESHOLD)
    margin: float = field(default_factory=lambda: stats.MARGIN)
    anytime: bool = True  # False: one look (a fixed number of repeats), fixed-n intervals
    # "blocks": the group's pooled spread, looks that spend the error rate
    # (:mod:`speedlimit.results.blocks`); "pairwise": each pair's own confidence sequence
    # (:mod:`speedlimit.results.sequential`), kept for comparison in the simulation
    method: str = "blocks"
    guard: float | None = blocks.GUARD  # blocks: None pools every setting (negative control)

    @property
    def alpha_each(self) -> float:
        """The level of each pair's interval (Bonferroni over the family)."""
        return self.alpha / max(1, self.comparisons)

    def alpha_at(self, rounds: int) -> float:
        """The level of each pair's interval at the look after ``rounds`` rounds (blocks):
        the look's share of the error rate (one look: all of it), over the family."""
        share = float(blocks.spend(rounds)) if self.anytime else 1.0
        return self.alpha_each * share


# --- one group's race, as arrays ----------------------------------------------------------


class Group:
    """One group's race: ``k`` settings in preference order, ``base[i]`` the index of setting
    ``i``'s num_workers=0 setting (itself for one; -1 where the grid has none). Leading axes
    ``batch`` are independent races (a simulation); the pipeline uses ``batch=()``."""

    def __init__(self, k: int, base, design: Design, batch: tuple = ()):
        self.k, self.design, self.batch = k, design, tuple(batch)
        self.base = np.asarray(base, int)
        self.i, self.j = np.triu_indices(k, 1)  # the pairs (i < j)
        self.cs = sequential.Running(self.batch + (len(self.i),), design.alpha_each,
                                     design.anytime)
        self.flagged = np.zeros(self.batch + (k,), bool)  # blocks: compared by own spread
        # what the run measured of each setting (``batch + (k,)``): its level in the additive
        # model of the log epochs (:func:`blocks.fit`), after the last round
        self.level = np.zeros(self.batch + (k,))
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
        self.level = blocks.fit(logs)[0]  # what the run measured, once a round
        if self.design.method == "blocks":
            self._look(logs)
        else:
            d = logs[..., self.i, :] - logs[..., self.j, :]  # log(t_i / t_j) per round
            self.cs.update(d, changed=~np.isnan(d[..., -1]))
        self.history.append(self.bounds())

    def _look(self, logs: np.ndarray) -> None:
        """The blocks design after this round. Half the error rate goes to the group's
        pooled intervals, at the looks only, each look its share; the other half to each
        pair's median, a confidence sequence that holds at every round (the sign test's,
        between two order statistics: heavy tails, a busy neighbour's wild runs, move it by
        one place at most). A pair's interval is the intersection of both, and of what
        earlier rounds showed (with fixed repeats only the last round counts)."""
        d = logs[..., self.i, :] - logs[..., self.j, :]
        low, high = sequential.sign_bounds(d, self.design.alpha_each / 2,
                                           self.design.anytime)
        alpha = self.design.alpha_at(self.rounds) / 2
        if alpha > 0:
            p_low, p_high, _, self.flagged = blocks.intervals(logs, alpha, self.design.guard)
            low, high = np.maximum(low, p_low), np.minimum(high, p_high)
        if self.design.anytime:
            low, high = np.maximum(self.cs.low, low), np.minimum(self.cs.high, high)
        self.cs.low, self.cs.high = low, high

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
        return decide(*self.bounds(), self.base, self.design, self.level)


@dataclass
class Decision:
    """What one group's intervals show (arrays over ``batch``; ``k`` the last axis)."""

    best_low: np.ndarray  # bounds of log(t_i / min over the others t_j) (Hsu's MCB)
    best_high: np.ndarray
    maybe_best: np.ndarray  # not shown slower than any other setting: may be the fastest
    out: np.ndarray  # slower than the fastest by more than the threshold
    slower_than: np.ndarray  # the setting that may be fastest it is most clearly slower than
    as_fast: np.ndarray  # at most the margin slower than the fastest
    gain: np.ndarray  # faster than its num_workers=0 by more than the threshold (or is one)
    no_gain: np.ndarray  # shown to gain no more than the threshold where another setting does
    passed: np.ndarray  # out or no_gain: never the recommendation
    lagging: np.ndarray  # measured slower than a setting before it by more than the threshold
    candidate: np.ndarray  # the first setting neither passed over nor lagging (-1: none)
    decided: np.ndarray  # the candidate is as fast and shows its gain
    running: np.ndarray  # to run in the next round (undecided, and needed by the answer)


def best_bounds(low: np.ndarray, high: np.ndarray):
    """Hsu's constrained multiple comparisons with the best, from pairwise bounds of
    ``log(t_i / t_j)`` (``[.., k, k]``) that hold for every pair with the truly fastest
    setting ``b``: (low, high) of ``log(t_i / min over j != i of t_j)`` per setting, and which
    settings may be the fastest (no lower bound against another above 0; ``b`` is one).

    Why they hold: for ``i != b`` the quantity is ``log(t_i / t_b)``, inside ``b``'s interval
    with ``i``, and ``b`` is among those that may be fastest, over which the bounds take
    their extremes; for ``i = b`` it is at most 0 (the upper bound is never below 0) and at
    least its lower bound against the second fastest."""
    k = low.shape[-1]
    eye = np.eye(k, dtype=bool)
    maybe = np.where(eye, True, low <= 0).all(axis=-1)
    against = maybe[..., None, :] & ~eye  # [.., i, j]: j != i may be the fastest
    # (none at all may be fastest only where the intervals contradict each other: use all;
    # where only i may be, i is the fastest and its upper bound is 0)
    against = np.where(maybe.any(axis=-1)[..., None, None], against, ~eye)
    upper = np.maximum(np.where(against, high, -np.inf).max(axis=-1), 0.0)
    lower_maybe = np.where(~eye, low, np.inf).min(axis=-1)
    lower_not = np.where(against, low, np.inf).min(axis=-1)
    lower = np.where(maybe, lower_maybe, lower_not)
    if k == 1:
        lower, upper = np.zeros_like(upper), np.zeros_like(upper)
    return lower, upper, maybe


def lagging(measured: np.ndarray | None, threshold: float) -> np.ndarray | bool:
    """Which settings the run measured slower than a setting before them in preference order
    (fewer workers) by more than the threshold: ``measured`` their log levels
    (``[.., k]``)."""
    if measured is None:
        return False
    k = measured.shape[-1]
    before = np.tril(np.ones((k, k), bool), -1)  # [i, q]: q comes before i
    gap = np.where(before, measured[..., :, None] - measured[..., None, :], -np.inf)
    return gap.max(axis=-1) > math.log1p(threshold)


def decide(low: np.ndarray, high: np.ndarray, base: np.ndarray, design: Design,
           measured: np.ndarray | None = None) -> Decision:
    """Read one group's decisions off its intervals ``low``/``high`` of log(t_i / t_j);
    ``measured``: each setting's log level as the run measured it (:attr:`Group.level`),
    so that the recommendation is never a setting measured slower than one before it."""
    k = low.shape[-1]
    slow, fast = math.log1p(design.threshold), math.log1p(design.margin)
    eye = np.eye(k, dtype=bool)
    best_low, best_high, maybe = best_bounds(low, high)
    out = best_low > slow
    shown = np.where(maybe[..., None, :] & ~eye, low, -np.inf)
    slower_than = np.where(out, np.argmax(shown, axis=-1), -1)
    alive = ~out
    as_fast = best_high <= fast
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
    behind = np.broadcast_to(lagging(measured, design.threshold), passed.shape)
    open_ = ~passed & ~behind
    any_open = open_.any(axis=-1)
    candidate = np.where(any_open, np.argmax(open_, axis=-1), -1)
    c = np.maximum(candidate, 0)
    qualifies = alive & as_fast & gain
    pick = np.take_along_axis(qualifies, c[..., None], axis=-1)[..., 0]
    decided = any_open & pick
    # What the answer still needs: the candidate; while it is not shown as fast as the
    # fastest, every setting that may be the fastest (against which it is either settled as
    # fast or shown out; and which leave that set only by being shown slower than another);
    # its num_workers=0 while its gain is open.
    is_c = (idx == c[..., None]) & any_open[..., None]
    c_fast = np.take_along_axis(as_fast, c[..., None], axis=-1)  # [.., 1]
    rivals = maybe & alive & ~c_fast & any_open[..., None]
    c_base = b[c]  # [..]
    c_gain = np.take_along_axis(gain | no_gain, c[..., None], axis=-1)  # [.., 1]
    needs_base = (idx == c_base[..., None]) & ~c_gain & any_open[..., None]
    needed = is_c | rivals | needs_base
    # no candidate (every setting passed over; only with axes beside num_workers): all but
    # the settings that are out race on
    needed = np.where(any_open[..., None], needed, alive)
    running = ~decided[..., None] & needed
    return Decision(best_low, best_high, maybe, out, slower_than, as_fast, gain, no_gain,
                    passed, behind, candidate, decided, running)


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
    estimate: float  # the measured ratio (the additive model's levels)
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
    estimate: np.ndarray  # k x k measured ratio t_a / t_b (the additive model's levels)
    common: np.ndarray  # k x k rounds both ran in
    left_at: list[int | None]  # the round after which each setting left the race
    history: list[tuple[np.ndarray, np.ndarray]] = field(repr=False, default_factory=list)
    rounds_more: int | None = None  # about how many more rounds a decision needs
    design: Design | None = None

    @property
    def threshold(self) -> float:
        return self.design.threshold if self.design else stats.NOISE_THRESHOLD

    @property
    def margin(self) -> float:
        return self.design.margin if self.design else stats.MARGIN

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

    def versus_best(self, i: int) -> Pair:
        """Setting ``i`` against the fastest of the others (``b = -1``): the interval of
        ``t_i / min t_j`` (Hsu's; NaN: none yet) and, as the estimate, its median paired ratio
        against the one it is slowest against."""
        others = [j for j in range(len(self.settings)) if j != i]
        if not others:
            return Pair(i, -1, 1.0, 1.0, 1.0, self.runs[i])
        low, high = self.decision.best_low[i], self.decision.best_high[i]
        known = bool(np.isfinite(low) and np.isfinite(high))
        estimate = max(float(self.estimate[i, j]) for j in others)
        return Pair(i, -1, math.exp(low) if known else math.nan,
                    math.exp(high) if known else math.nan, estimate,
                    int(min(self.common[i, j] for j in others)))

    def in_race(self) -> list[int]:
        return [i for i in range(len(self.settings)) if bool(self.decision.running[i])]

    def leader(self) -> int:
        """The setting measured fastest among those not out (the additive model's levels)."""
        alive = [i for i in range(len(self.settings)) if not self.decision.out[i]]
        pool = alive or list(range(len(self.settings)))
        return min(pool, key=lambda i: (float(np.log(self.estimate[i, 0])), i))


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
    """The comparisons of the run, the family its claims share (Bonferroni over them): per
    group, the intervals that must hold together for its claims to, whichever setting is the
    fastest: that setting's ``k - 1`` pairs and each setting's pair with its num_workers=0
    (a pair counted once where both include it; the fastest taken where fewest do)."""
    total = 0
    for settings in groups:
        k = len(settings)
        base = baselines(settings)
        gains = {(b, i) for i, b in enumerate(base) if b not in (-1, i)}
        shared = min((sum(1 for pair in gains if b in pair) for b in range(k)), default=0)
        total += max(0, k - 1) + len(gains) - shared
    return total


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
             keep_history: bool = False, forecast: bool = False) -> list[Outcome]:
    """Replay the runs round by round into every group's decisions (deterministic: the same
    records always give the same decisions); ``forecast``: with each undecided group's
    :func:`rounds_more` (seconds of simulation each)."""
    groups = group_settings(runs)
    if design is None:
        design = Design(comparisons=family_size([s for _, s, _ in groups]), anytime=anytime)
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
        est = np.exp(group.level[:, None] - group.level[None, :])  # measured t_a / t_b (additive model)
        present = ~np.isnan(logs)
        common = (present[:, None, :] & present[None, :, :]).sum(axis=-1)
        left_at = _left_at(group, settings)
        varying = [a for a in SETTING_KEYS if a != axes.COMPARED
                   and len({_text(s.get(a)) for s in settings}) > 1]
        known = np.isfinite(low) & np.isfinite(high)  # else no interval yet: NaN
        outcome = Outcome(conditions, group_label(conditions, vary_groups), settings, cells,
                          varying, list(group.base), len(rounds),
                          [int((~np.isnan(values[i])).sum()) for i in range(k)], decision,
                          np.where(known, np.exp(low), np.nan),
                          np.where(known, np.exp(high), np.nan), est, common, left_at,
                          group.history if keep_history else [], design=design)
        if forecast:
            outcome.rounds_more = rounds_more(group, decision)
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
    for r, (low, high) in enumerate(group.history):
        out = best_bounds(low, high)[0] > math.log1p(group.design.threshold)
        for i in range(group.k):
            if left[i] is None and out[i]:
                left[i] = r
    return left


FORECASTS = 100  # simulated futures of a group behind "about N more rounds"
FORECAST_CAP = 150  # rounds a forecast looks ahead at most


def fit(logs: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Each setting's level and its standard error, the noise of one run and its degrees of
    freedom, from a group's log durations (``k x rounds``, NaN where a setting did not run) by the additive
    model ``log t = setting + round + noise`` (a round's speed shared by its runs)."""
    present = ~np.isnan(logs)
    k, r = logs.shape
    level = np.zeros(k)
    shift = np.zeros(r)
    for _ in range(20):  # alternating means: exact for a full table, close for a ragged one
        level = np.nanmean(np.where(present, logs - shift[None, :], np.nan), axis=1)
        level = np.where(np.isnan(level), 0.0, level)
        shift = np.nanmean(np.where(present, logs - level[:, None], np.nan), axis=0)
        shift = np.where(np.isnan(shift), 0.0, shift)
    residual = np.where(present, logs - level[:, None] - shift[None, :], np.nan)
    n = present.sum()
    dof = max(1, n - k - r + 1)
    noise = float(np.sqrt(np.nansum(residual ** 2) / dof)) if n > k + 1 else math.nan
    runs = np.maximum(present.sum(axis=1), 1)
    return level, noise / np.sqrt(runs), noise, dof


def forecast(group: Group, rng: np.random.Generator | None = None,
             futures: int = FORECASTS, cap: int = FORECAST_CAP,
             noise_scale: float = 1.0) -> np.ndarray | None:
    """More rounds until the group is decided, in ``futures`` simulated continuations of its
    race (``cap``: not by then), or None when already decided. Each future draws the
    settings' true levels from what was measured (level +- its standard error) and the noise
    from what its runs spread (scaled by chi-square over its degrees of freedom: a spread
    seen in three rounds may be twice as large), runs every round the decision code asks
    for, and
    decides after each round exactly as the race will: so what is left counts everything the
    race needs (the settings that leave, those that may be fastest, the baseline's part), not
    one pair's spread. (``noise_scale``: for the calibration test's negative control.)"""
    if bool(group.decide().decided):
        return None
    rng = rng or np.random.default_rng(0)
    logs = np.stack(group.logs, axis=-1)  # (k, rounds)
    level, se, noise, dof = fit(logs)
    if not np.isfinite(noise) or noise <= 0:
        noise, dof = 0.05, 1  # (too few runs to tell: a noisy machine's)
        se = np.full(group.k, noise)
    scale = np.sqrt(dof / rng.chisquare(dof, (futures, 1)))  # the noise's own uncertainty
    noise = noise * scale * noise_scale
    truth = level[None, :] + rng.normal(0.0, 1.0, (futures, group.k)) * se[None, :] * scale
    ahead = Group(group.k, group.base, group.design, batch=(futures,))
    for past in group.logs:
        ahead.add_round(np.broadcast_to(np.exp(past), (futures, group.k)))
    running = ahead.decide().running
    done = np.full(futures, cap)
    for r in range(cap):
        eps = rng.normal(0.0, 1.0, (futures, group.k)) * noise  # (a round's shared speed
        # cancels in every comparison: not drawn)
        ahead.add_round(np.where(running, np.exp(truth + eps), np.nan))
        decision = ahead.decide()
        done = np.where((done == cap) & decision.decided, r + 1, done)
        running = decision.running & (done == cap)[:, None]
        if not running.any():
            break
    return done


def rounds_more(group: Group, decision: Decision, cap: int = FORECAST_CAP
                ) -> int | None:
    """About how many more rounds the group needs to be decided (None when decided): the
    median over :func:`forecast`'s futures (``cap`` where most are not decided by then)."""
    if bool(decision.decided):
        return None
    done = forecast(group, cap=cap)
    return int(np.median(done)) if done is not None else None


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


def round_seconds(outcome: Outcome, runs: pd.DataFrame) -> float:
    """What the group's last round took (its own runs' wall time, a group job once), per
    setting it ran: the price of a setting's round, to estimate what is left."""
    mine = runs[runs["cell"].map(cell_prefix).isin(outcome.cells)].dropna(
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
               max_rounds: int, budget: float | None) -> dict:
    """What round ``round_``'s checkpoint writes: per group what was decided and what is
    open, whether the race stops (and why), the next round's runs in their random order, and,
    once it stops, the whole epochs that check its predictions."""
    from speedlimit import grid  # (core; no pandas there)

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
        "threshold": stats.NOISE_THRESHOLD,
        "margin": stats.MARGIN,
        "groups": groups,
        "next": None if stopped else {"round": following,
                                      "cells": grid.round_order(cells, seed, following),
                                      "seconds": round(next_seconds, 1)},
        "check": check_cells(outcomes) if stopped else [],
    }


def pick(outcome: Outcome) -> int:
    """The setting a group recommends: the decided one; undecided, the one the data favour:
    among the settings not passed over, the first in preference order (fewest workers) that
    the run measured within the noise threshold of the fastest of them, and no slower than a
    setting before it by more than the threshold (:func:`lagging`)."""
    if outcome.decided:
        return outcome.recommended
    d = outcome.decision
    level = np.log(outcome.estimate[:, 0])
    pool = [i for i in range(len(outcome.settings)) if not d.passed[i]] or \
        list(range(len(outcome.settings)))
    fastest = min(level[i] for i in pool)
    near = [i for i in pool if level[i] <= fastest + math.log1p(outcome.threshold)
            and not d.lagging[i]]
    return near[0] if near else min(pool, key=lambda i: (level[i], i))


def why_not_fastest(outcome: Outcome) -> str | None:
    """Why the pasted setting is not the one the run measured fastest, in a few words (None
    where it is)."""
    chosen, fastest = pick(outcome), outcome.leader()
    if chosen == fastest:
        return None
    ratio = float(outcome.estimate[chosen, fastest])  # t_chosen / t_fastest
    gap = f"{outcome.words(fastest)} measured {words.percent(ratio - 1, 1)} faster"
    if ratio <= 1 + outcome.threshold:
        return f"{gap}, within the {words.percent(outcome.threshold)} noise threshold: " \
               "fewer workers preferred"
    if outcome.decided:
        return f"{gap}, within the {words.percent(outcome.margin)} margin shown: fewer " \
               "workers preferred"
    # (undecided, the pick is within the threshold of the fastest setting not passed over:
    # a faster one was passed over, shown to gain nothing over its num_workers=0)
    return f"{gap}, but passed over: no gain over num_workers=0 shown"


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
