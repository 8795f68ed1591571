"""Every claim the findings, the front page, the recommendation and the captions make, built
once, as data: numbers and the decision they support, never words (those are in
:mod:`speedlimit.results.findings`, from the vocabulary of :mod:`speedlimit.results.words`).

Per *group* (the cells that differ only in their DataLoader settings: one workload, batch
size, lr, thread count and device), from the race's outcome
(:mod:`speedlimit.results.race`) and the summary:

* :class:`Costs`: what loading and computing one sample took (measured, no test);
* :class:`Fastest`: the setting with the shortest epochs, and its speed-up over
  ``num_workers=0``;
* :class:`Recommendation`: the smallest num_workers as fast as the fastest, with every claim
  behind it (its gain over ``num_workers=0``, how much slower than the fastest setting tried
  it may be, why each setting before it was passed over) or, undecided, what is still open;
* :class:`Prediction`: the roofline of :mod:`speedlimit.results.predict`, its speed-ups set
  against the measured intervals, and the setting the race's own rule picks from it;
* :class:`Check`: in a race, the epoch predicted from windows against a measured whole epoch.

Every interval behind a claim belongs to one family (:class:`Family`): each setting against
the fastest of the others and against its ``num_workers=0`` (:mod:`speedlimit.results.race`),
simultaneous at ``alpha`` (Bonferroni over the comparisons; confidence sequences in a race, so
every round looked at is covered). A claim read off those intervals is false with a
chance of at most ``alpha`` for the whole run together; the costs, medians and the prediction
are measurements and a model, and make no such claim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from speedlimit import axes, grid
from speedlimit.groups import family_size, preference
from speedlimit.results import decisions, predict, race, stats
from speedlimit.results.decisions import Ratio
from speedlimit.results.aggregate import group_costs


@dataclass(frozen=True)
class Family:
    """The intervals every claim rests on."""

    alpha: float
    comparisons: int
    sequential: bool  # confidence sequences (a race) or fixed-sample intervals (one look)
    rounds: int  # the most runs of a cell
    threshold: float  # the levers every verdict and "as fast" was read with
    margin: float


@dataclass
class Costs:
    load: float  # seconds to load one sample in the main process (median over cells)
    compute: float  # seconds to compute one, with num_workers=0 (nan: no such cell)
    cpus: int | None
    threads: int
    batch_size: int

    @property
    def known(self) -> bool:
        return bool(pd.notna(self.load) and pd.notna(self.compute) and self.cpus)


@dataclass
class Fastest:
    setting: int
    median: float  # its median epoch duration
    speedup: Ratio | None  # over its num_workers=0 setting (None: it is one, or none exists)


@dataclass
class PassedOver:
    setting: int
    because: str  # "slower" (than the fastest) or "no gain" (over num_workers=0)
    versus: int  # no gain: its num_workers=0; slower: the setting that shows it most clearly
    ratio: Ratio  # slower: time ratio against the fastest of the others; no gain: speed-up


@dataclass
class Recommendation:
    setting: int
    level: str  # "tested" (decided), "undecided", "one run"
    gain: Ratio | None  # speed-up over its num_workers=0 (None: it is one, or none exists)
    behind: Ratio | None  # time ratio against the fastest of the others (None: no others)
    passed_over: list[PassedOver]  # the settings before it in preference order
    # undecided: (a, b, what must be shown, ratio); b = -1: the fastest of the others
    open: list[tuple[int, int, str, Ratio]]
    rounds_more: int | None = None
    why: str | None = None  # why it is not the setting measured fastest (None: it is)


@dataclass
class PredictionCheck:
    workers: int
    predicted: float  # predicted speed-up over num_workers=0
    measured: Ratio


@dataclass
class Prediction:
    load: float
    compute: float
    cpus: int
    threads: int
    stop: int  # the smallest num_workers of the grid within the threshold of the best
    recommends: int  # the setting (num_workers) the race's own rule picks from the model
    enough: int  # the fewest workers predicted within the threshold of any number of them
    checks: list[PredictionCheck]

    @property
    def outside(self) -> list[PredictionCheck]:
        return [c for c in self.checks
                if c.measured.has_interval and not c.measured.low <= c.predicted
                <= c.measured.high]

    @property
    def checked(self) -> list[PredictionCheck]:
        return [c for c in self.checks if c.measured.has_interval]


@dataclass
class Check:
    """A race's prediction of a whole epoch against one measured whole epoch."""

    setting: int
    predicted: float  # median over the race's runs of the predicted epoch
    measured: float  # the whole epoch, timed at the end of the race

    @property
    def error(self) -> float:
        return self.predicted / self.measured - 1


@dataclass
class GroupClaims:
    outcome: decisions.Outcome
    cells: pd.DataFrame  # the group's summary rows, in the outcome's setting order
    costs: Costs
    fastest: Fastest
    recommendation: Recommendation
    prediction: Prediction | None
    checks: list[Check] = field(default_factory=list)
    family: Family | None = None  # the intervals every claim here is read off

    @property
    def label(self) -> str:
        return self.outcome.label

    def words(self, i: int) -> str:
        return self.outcome.words(i)

    @property
    def workload(self) -> str:
        return str(self.outcome.conditions.get("workload"))

    @property
    def batch_size(self) -> int:
        return int(float(self.outcome.conditions["batch_size"]))

    def resolution(self) -> float | None:
        """The median half-width (on the log scale, as a factor) of the group's intervals
        against num_workers=0: about the smallest difference this run could tell apart."""
        o = self.outcome
        halves = [math.sqrt(o.high[b, i] / o.low[b, i]) for i, b in enumerate(o.base)
                  if b >= 0 and b != i and math.isfinite(o.low[b, i])
                  and math.isfinite(o.high[b, i]) and o.low[b, i] > 0]
        return float(np.median(halves)) - 1 if halves else None


# --- building them ---------------------------------------------------------------------------


def family(outcomes: list[decisions.Outcome], sequential: bool) -> Family:
    """The run's family of comparisons, its levers read off the outcomes' design (at least
    one outcome)."""
    design = outcomes[0].design
    return Family(stats.ALPHA, family_size([o.settings for o in outcomes]), sequential,
                  max((max(o.runs) for o in outcomes), default=0), design.threshold,
                  design.margin)


def build(summary: pd.DataFrame, outcomes: list[decisions.Outcome],
          checks: list[dict] | None = None, sequential: bool = False) -> list[GroupClaims]:
    """Every group's claims, in the order the groups' cells first ran; ``sequential``: the
    intervals are a race's confidence sequences (else fixed-sample ones)."""
    if not outcomes:
        return []
    rows = summary[summary["loader"].eq(axes.DATALOADER)]
    fam = family(outcomes, sequential)
    out = []
    for o in outcomes:
        node = str(o.conditions.get(axes.NODE))
        here = rows[rows[axes.NODE].astype(str) == node] if axes.NODE in rows else rows
        cells = here.set_index("cell", drop=False).reindex(o.cells)
        costs = Costs(*group_costs(cells), threads=int(float(o.conditions.get("torch_threads")
                                                           or 1)),
                      batch_size=int(float(o.conditions["batch_size"])))
        claims = GroupClaims(o, cells, costs, fastest(o, cells), recommendation(o),
                             None, check_claims(o, cells, checks or []), fam)
        claims.prediction = prediction(o, costs)
        out.append(claims)
    out.sort(key=lambda g: float(g.cells["first_run"].min()))
    return out


def fastest(o: decisions.Outcome, cells: pd.DataFrame) -> Fastest:
    i = o.leader()
    b = o.base[i]
    return Fastest(i, float(cells["epoch_duration_median"].iloc[i]),
                   Ratio.speedup(o, i, b) if b >= 0 and b != i else None)


def recommendation(o: decisions.Outcome) -> Recommendation:
    """The decided setting with every claim behind it; undecided, the leader so far and
    what is still open; one run, the fastest as measured."""
    d = o.decision
    one_run = max(o.runs) <= 1
    chosen = decisions.pick(o)
    level = "tested" if o.decided else ("one run" if one_run else "undecided")
    b = o.base[chosen]
    gain = Ratio.speedup(o, chosen, b) if b >= 0 and b != chosen else None
    behind = Ratio.behind(o, chosen) if len(o.settings) > 1 else None
    passed = []
    for i in range(len(o.settings)):
        if preference(o.settings[i]) >= preference(o.settings[chosen]):
            continue
        if d.out[i]:
            passed.append(PassedOver(i, "slower", int(d.slower_than[i]), Ratio.behind(o, i)))
        elif d.no_gain[i]:
            passed.append(PassedOver(i, "no gain", o.base[i], Ratio.speedup(o, i, o.base[i])))
    open_ = [] if o.decided or one_run else open_questions(o)
    return Recommendation(chosen, level, gain, behind, passed, open_,
                          None if o.decided or one_run else o.rounds_more,
                          decisions.why_not_fastest(o))


def open_questions(o: decisions.Outcome) -> list[tuple[int, int, str, Ratio]]:
    """What keeps an undecided group open: whether its first candidate is as fast as the
    fastest of the others (at most the margin slower), and its gain over num_workers=0."""
    d = o.decision
    c = o.candidate
    if c is None:
        return []
    out = []
    if not d.as_fast[c] and len(o.settings) > 1:
        out.append((c, -1, "as fast", Ratio.behind(o, c)))
    b = o.base[c]
    if b >= 0 and b != c and not d.gain[c]:
        out.append((c, b, "gain", Ratio.speedup(o, c, b)))
    return out


def prediction(o: decisions.Outcome, costs: Costs) -> Prediction | None:
    """The model's speed-ups against the measured intervals, and what the race's rule would
    pick from the model's own epoch times."""
    if not costs.known:
        return None
    workers = [int(s[axes.COMPARED]) for s in o.settings]
    unique = sorted(set(workers))
    times = {w: predict.per_sample(costs.load, costs.compute, w, costs.cpus, costs.threads)
             for w in unique}
    checks = []
    for i, w in enumerate(workers):
        b = o.base[i]
        if w > 0 and b >= 0 and not _other_settings_vary(o, i):
            checks.append(PredictionCheck(w, times[0] / times[w] if 0 in times else math.nan,
                                          Ratio.speedup(o, i, b)))
    threshold = o.threshold
    return Prediction(costs.load, costs.compute, costs.cpus, costs.threads,
                      predict.stops_helping(costs.load, costs.compute, unique, costs.cpus,
                                            costs.threads, threshold),
                      model_pick(times, threshold, o.margin),
                      predict.enough_workers(costs.load, costs.compute, costs.cpus,
                                             costs.threads, threshold),
                      checks)


def _other_settings_vary(o: decisions.Outcome, i: int) -> bool:
    """Whether setting ``i`` differs from torch's defaults in something the model ignores."""
    return any(axes.as_text(o.settings[i].get(a)) != axes.as_text(v)
               for a, v in axes.TORCH_DEFAULTS.items())


def model_pick(times: dict[int, float], threshold: float, margin: float) -> int:
    """The num_workers the race's rule picks when the epoch times are known exactly (the
    model's): the fewest workers not slower than the best by more than the threshold's
    noise... read off degenerate intervals (low = high = the model's log ratio)."""
    workers = sorted(times)
    logs = np.log([times[w] for w in workers])
    ratio = logs[:, None] - logs[None, :]
    base = [0 if 0 in times else -1] * len(workers)
    decision = race.decide(ratio, ratio, np.array(base),
                           race.Design(comparisons=1, threshold=threshold, margin=margin))
    return workers[int(decision.candidate)]


def check_claims(o: decisions.Outcome, cells: pd.DataFrame, records: list[dict]) -> list[Check]:
    """The race's predicted epochs of this group's checked cells against their whole epochs."""
    out = []
    for record in records:
        if record.get("status") != "ok" or not record.get("epochs"):
            continue
        prefix = grid.prefix(record["cell"])
        if prefix in o.cells:
            i = o.cells.index(prefix)
            measured = float(np.mean([e["epoch_duration"] for e in record["epochs"]]))
            out.append(Check(i, float(cells["epoch_duration_median"].iloc[i]), measured))
    return out
