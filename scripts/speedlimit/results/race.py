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
over all of them (:func:`speedlimit.groups.family_size`: 27 for the seed's grid, against 45
pairs). With ``t_i`` setting ``i``'s epoch duration, read off them:

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

This module holds the numbers of one group's race as arrays (:class:`Group`; leading axes:
independent races, as in a simulation) and reads its decisions off them (:func:`decide`).
:mod:`speedlimit.results.decisions` replays a run's records into them, per group;
:mod:`speedlimit.results.forecast` simulates what is left; :mod:`speedlimit.results.schedule`
writes a round's decisions and the next round. Nothing here imports torch or pandas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from speedlimit.results import blocks, sequential, stats


@dataclass(frozen=True)
class Design:
    """What the race's intervals are and how its claims read off them."""

    comparisons: int  # the family: comparisons of the whole run (groups.family_size)
    threshold: float  # the levers: train.threshold, the noise threshold ...
    margin: float  # ... and train.margin, "as fast"
    alpha: float = stats.ALPHA
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
