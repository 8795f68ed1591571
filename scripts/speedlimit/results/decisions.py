"""A run's records replayed into each group's race: the decisions and every interval
behind them (:class:`Outcome`; ratios with their intervals: :class:`Pair`), and what the
answer pastes from them (:func:`pick`, and :func:`why_not_fastest` where it is not the
setting measured fastest).

The replay is deterministic: the same records always give the same decisions. Nothing here
imports torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from speedlimit import axes, grid
from speedlimit.groups import (GROUP_KEYS, SETTING_KEYS, baselines, family_size, group_label,
                               setting_words)
from speedlimit.groups import preference
from speedlimit.results import stats
from speedlimit.results.forecast import rounds_more
from speedlimit.results.race import Decision, Design, Group, best_bounds
from speedlimit.results.words import percent


@dataclass(frozen=True)
class Ratio:
    """A ratio of epoch durations with its interval (simultaneous, of the run's family), the
    rounds behind it and, once read, the verdict read off the interval. For a *speed-up*
    ``t_other / t_this`` (above 1: this is faster); for a *time ratio* ``t_this / t_other``
    (above 1: this takes longer). The one type of a ratio and its interval."""

    estimate: float
    low: float  # NaN: no interval yet
    high: float
    rounds: int  # rounds both ran in
    verdict: str | None = None

    @property
    def has_interval(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    def as_dict(self) -> dict:
        """As the recommendation holds it: four digits, None for no interval."""
        return {"estimate": rounded(self.estimate), "low": rounded(self.low),
                "high": rounded(self.high), "verdict": self.verdict}

    @classmethod
    def speedup(cls, outcome: "Outcome", this: int, other: int) -> "Ratio":
        """``t_other / t_this``, its verdict read as a speed-up."""
        p = outcome.pair(other, this)
        runs = min(outcome.runs[this], outcome.runs[other])
        return cls(p.estimate, p.low, p.high, p.rounds,
                   stats.verdict(p.low, p.high, runs, outcome.threshold))

    @classmethod
    def time(cls, outcome: "Outcome", this: int, other: int) -> "Ratio":
        """``t_this / t_other``, with the verdict of the matching speed-up ("slower" when
        this takes longer)."""
        p = outcome.pair(this, other)
        runs = min(outcome.runs[this], outcome.runs[other])
        return cls(p.estimate, p.low, p.high, p.rounds, _time_verdict(p, runs, outcome))

    @classmethod
    def behind(cls, outcome: "Outcome", this: int) -> "Ratio":
        """A time ratio against the fastest of the others: ``t_this / min t_j`` (Hsu's)."""
        p = outcome.versus_best(this)
        return cls(p.estimate, p.low, p.high, p.rounds,
                   _time_verdict(p, outcome.runs[this], outcome))

    @classmethod
    def ahead(cls, outcome: "Outcome", this: int) -> "Ratio":
        """The same comparison as a speed ratio: ``min t_j / t_this`` (above 1: faster)."""
        p = outcome.versus_best(this)
        low, high = 1 / p.high, 1 / p.low
        return cls(1 / p.estimate, low, high, p.rounds,
                   stats.verdict(low, high, min(outcome.runs[this], p.rounds),
                                 outcome.threshold))


def _time_verdict(p: Ratio, runs: int, outcome: "Outcome") -> str:
    return stats.verdict(1 / p.high if p.high else math.inf, 1 / p.low if p.low else math.inf,
                         runs, outcome.threshold)


def rounded(value: float | None, digits: int = 4) -> float | None:
    """A number as a record holds it: ``digits`` after the point, None where not finite."""
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
    design: Design | None = None  # (always set by run_race; None only where built by hand)
    # k x rounds: each setting's epoch duration per round (NaN: not run), the measurements
    # behind every interval; and the rounds' numbers
    durations: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0)))
    round_numbers: list[int] = field(default_factory=list)

    @property
    def threshold(self) -> float:
        return self.design.threshold

    @property
    def margin(self) -> float:
        return self.design.margin

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

    def pair(self, a: int, b: int) -> Ratio:
        """``t_a / t_b`` with its interval (no verdict)."""
        return Ratio(float(self.estimate[a, b]), float(self.low[a, b]), float(self.high[a, b]),
                     int(self.common[a, b]))

    def versus_best(self, i: int) -> Ratio:
        """Setting ``i`` against the fastest of the others: the interval of ``t_i / min t_j``
        (Hsu's; NaN: none yet) and, as the estimate, its measured ratio against the one it is
        slowest against."""
        others = [j for j in range(len(self.settings)) if j != i]
        if not others:
            return Ratio(1.0, 1.0, 1.0, self.runs[i])
        low, high = self.decision.best_low[i], self.decision.best_high[i]
        known = bool(np.isfinite(low) and np.isfinite(high))
        estimate = max(float(self.estimate[i, j]) for j in others)
        return Ratio(estimate, math.exp(low) if known else math.nan,
                     math.exp(high) if known else math.nan,
                     int(min(self.common[i, j] for j in others)))

    def in_race(self) -> list[int]:
        return [i for i in range(len(self.settings)) if bool(self.decision.running[i])]

    def leader(self) -> int:
        """The setting measured fastest among those not out (the additive model's levels)."""
        alive = [i for i in range(len(self.settings)) if not self.decision.out[i]]
        pool = alive or list(range(len(self.settings)))
        return min(pool, key=lambda i: (float(np.log(self.estimate[i, 0])), i))


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
        row = {k: axes.text(params.get(k), k) for k in GROUP_KEYS + SETTING_KEYS}
        row.update(loader=params["loader"], round=int(params["repeat"]), cell=record["cell"],
                   duration=float(duration),
                   node=str((record.get("environment") or {}).get("node")),
                   started=timeline.get("process_started") or timeline.get("clock_started"),
                   ended=timeline.get("written") or timeline.get("clock_stopped"))
        rows.append(row)
    columns = GROUP_KEYS + SETTING_KEYS + ["loader", "round", "cell", "duration", "started",
                                           "ended"]
    return pd.DataFrame(rows, columns=columns)


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
            settings.setdefault(key, (dict(zip(skeys, key)), grid.prefix(row["cell"])))
        ordered = sorted(settings.values(), key=lambda s: preference(s[0]))
        out.append((conditions, [s for s, _ in ordered], [c for _, c in ordered]))
    return out


def run_race(runs: pd.DataFrame, levers: dict | None = None, anytime: bool = True,
             forecast: bool = False, design: Design | None = None) -> list[Outcome]:
    """Replay the runs round by round into every group's decisions (deterministic: the same
    records always give the same decisions). ``levers``: ``{"threshold", "margin"}``, the
    config's ``train.threshold`` and ``train.margin``; ``anytime``: a race's intervals (else
    fixed repeats', one look); ``forecast``: with each undecided group's
    :func:`speedlimit.results.forecast.rounds_more` (seconds of simulation each); ``design``:
    the whole design instead of levers and anytime (a simulation's)."""
    found = group_settings(runs)
    if design is None:
        if levers is None:
            raise TypeError("run_race needs the answer's levers (train.threshold and "
                            "train.margin) or a design")
        design = Design(comparisons=family_size([s for _, s, _ in found]),
                        threshold=levers["threshold"], margin=levers["margin"],
                        anytime=anytime)
    vary_groups = axes.varying(pd.DataFrame([c for c, _, _ in found]),
                               [k for k in GROUP_KEYS if k != "workload"])
    out = []
    for conditions, settings, cells in found:
        rows = runs
        for key, value in conditions.items():
            rows = rows[rows[key] == value]
        index = {c: i for i, c in enumerate(cells)}
        rows = rows.assign(setting=rows["cell"].map(grid.prefix).map(index))
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
        est = np.exp(group.level[:, None] - group.level[None, :])  # measured t_a / t_b
        present = ~np.isnan(logs)
        common = (present[:, None, :] & present[None, :, :]).sum(axis=-1)
        left_at = _left_at(group, settings)
        varying = [a for a in SETTING_KEYS if a != axes.COMPARED
                   and len({axes.text(s.get(a)) for s in settings}) > 1]
        known = np.isfinite(low) & np.isfinite(high)  # else no interval yet: NaN
        outcome = Outcome(conditions, group_label(conditions, vary_groups), settings, cells,
                          varying, list(group.base), len(rounds),
                          [int((~np.isnan(values[i])).sum()) for i in range(k)], decision,
                          np.where(known, np.exp(low), np.nan),
                          np.where(known, np.exp(high), np.nan), est, common, left_at,
                          group.history, design=design, durations=values,
                          round_numbers=rounds)
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
    gap = f"{outcome.words(fastest)} measured {percent(ratio - 1, 1)} faster"
    if ratio <= 1 + outcome.threshold:
        return f"{gap}, within the {percent(outcome.threshold)} noise threshold: " \
               "fewer workers preferred"
    if outcome.decided:
        return f"{gap}, within the {percent(outcome.margin)} margin shown: fewer " \
               "workers preferred"
    # (undecided, the pick is within the threshold of the fastest setting not passed over:
    # a faster one was passed over, shown to gain nothing over its num_workers=0)
    return f"{gap}, but passed over: no gain over num_workers=0 shown"


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
