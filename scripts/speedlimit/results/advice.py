"""Per workload and batch size: what loading costs, where workers should stop helping (the
prediction of :mod:`speedlimit.results.predict`), what was measured, and the DataLoader
settings to use (``results/recommendation.yaml``).

A *group* is the DataLoader cells that differ only in their DataLoader settings (num_workers,
pin_memory, persistent_workers, prefetch_factor): one workload, batch size, lr, thread count,
device and node. Within a group every cell was compared with every other (the summary's
``vs_fastest*`` columns: exact Mann-Whitney tests, Holm over all the run's pairs). The
recommendation is the smallest num_workers as fast as the fastest (:func:`as_fast`: fewer
processes, the same speed), preferring torch's defaults for the other settings among equals.

Everything here is computed from the summary and the table; sentences mark code with single
backticks, as :mod:`speedlimit.results.findings` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from speedlimit import axes
from speedlimit.results import predict, stats
from speedlimit.results.words import percent as _pct, times as _x
from speedlimit.results.words import workers as _workers
from speedlimit.results.aggregate import CONDITION_KEYS, group_costs

# Verdicts (vs the fastest) that mean "as fast as the fastest": not told apart from it, or
# a real difference within the noise threshold.
SAME_SPEED = (stats.NO_CLEAR, stats.SMALL)
# How much slower than the fastest a setting with fewer workers may be, at the end of its 95%
# interval, to be recommended in its place ("the same speed, fewer processes").
EQUIVALENCE = 0.10
UNTESTED = (stats.TOO_FEW, stats.SINGLE)
DEFAULTS = {"pin_memory": False, "persistent_workers": False, "prefetch_factor": None}
LEFT_OUT = ("collating batches and handing them from the workers to the main process, "
            "starting the workers, and processes that slow each other down")


def _us(seconds: float) -> str:
    """Seconds of one sample's work in µs, or in ms from a millisecond on."""
    return f"{seconds * 1e3:.3g} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.3g} µs"


def _ms(seconds: float) -> str:
    """Seconds of a batch's work in ms, or in s from a second on."""
    return f"{seconds:.3g} s" if seconds >= 1 else f"{seconds * 1e3:.3g} ms"


def _value(value):
    """A table value as plain Python (numpy and pandas scalars, NaN as None)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


@dataclass
class Group:
    """One group's cells (summary rows) and what was found about them."""

    conditions: dict  # workload, batch_size, ... and node, as plain values
    label: str  # the conditions that vary across the run's groups, in words
    cells: pd.DataFrame
    varying: list[str]  # the DataLoader settings besides num_workers that vary in the group
    load: float = float("nan")
    compute: float = float("nan")
    cpus: int | None = None
    fastest: pd.Series | None = None
    recommended: pd.Series | None = None
    smaller: str = ""  # how the recommendation was found: see recommend()
    gain_shown: bool = False  # some setting is faster than num_workers=0 by more than noise
    fast: pd.Series | None = None  # as_fast() of the cells
    passed_over: pd.DataFrame | None = None  # fewer workers than the recommendation
    predicted_stop: int | None = None
    sentences: list[str] = field(default_factory=list)

    @property
    def workload(self) -> str:
        return str(self.conditions.get("workload", ""))

    @property
    def batch_size(self) -> int:
        return int(self.conditions["batch_size"])

    @property
    def threads(self) -> int:
        return int(self.conditions.get("torch_threads") or 1)

    def settings(self, row) -> str:
        """A cell's DataLoader settings in words: num_workers, and what else varies."""
        parts = [f"num_workers={int(row['num_workers'])}"]
        parts += [f"{a}={axes.as_text(row[a])}" for a in self.varying]
        return "`" + ", ".join(parts) + "`"


def groups(summary: pd.DataFrame) -> list[Group]:
    """The run's groups, in run order, each with its costs, fastest and recommendation."""
    loader = summary[summary["loader"].eq(axes.DATALOADER)
                     & summary["epoch_duration_median"].notna()]
    if loader.empty:
        return []
    keys = [k for k in CONDITION_KEYS if k != "loader" and k in loader]
    vary = axes.varying(loader, [k for k in keys if k != "workload"])
    out = []
    for values, cells in loader.groupby(keys, dropna=False, sort=False):
        conditions = {k: _value(v) for k, v in zip(keys, values)}
        label = ", ".join([f"workload {conditions.get('workload')}",
                           f"batch_size {int(conditions['batch_size'])}"]
                          + [f"`{k}={axes.as_text(conditions[k])}`" for k in vary
                             if k != "batch_size"])
        cells = cells.sort_values(["num_workers", "epoch_duration_median"], kind="stable")
        group = Group(conditions, label, cells,
                      axes.varying(cells, [a for a in axes.LOADER_SETTINGS
                                           if a != axes.COMPARED]))
        group.load, group.compute, group.cpus = group_costs(cells)
        flagged = cells[cells["fastest"].astype("boolean").fillna(False)]
        group.fastest = (flagged.iloc[0] if len(flagged)
                         else cells.loc[cells["epoch_duration_median"].idxmin()])
        recommend(group)
        if predictable(group):
            group.predicted_stop = predict.stops_helping(
                group.load, group.compute, sorted(int(w) for w in cells["num_workers"]),
                group.cpus, group.threads)
        group.sentences = sentences(group)
        out.append(group)
    out.sort(key=lambda g: int(g.cells["first_run"].min()))
    return out


def predictable(group: Group) -> bool:
    return bool(pd.notna(group.load) and pd.notna(group.compute) and group.cpus)


def _defaults_kept(row) -> int:
    return sum(axes.as_text(row[a]) == axes.as_text(v) for a, v in DEFAULTS.items() if a in row)


def as_fast(cells: pd.DataFrame) -> pd.Series:
    """Which cells stand in for the fastest of their group: the fastest itself, or a cell not
    told apart from it (or apart by less than the noise threshold) whose 95% interval also
    rules out being more than :data:`EQUIVALENCE` slower. A cell whose runs spread so widely
    that nothing can be told apart from it is not "as fast"."""
    fastest = cells["fastest"].astype("boolean").fillna(False)
    close = (cells["vs_fastest_verdict"].isin(SAME_SPEED)
             & cells["vs_fastest_ci_low"].ge(1 - EQUIVALENCE).fillna(False))
    return (fastest | close).astype(bool)


def shows_gain(cells: pd.DataFrame) -> pd.Series:
    """Which cells are faster than num_workers=0 by more than noise."""
    return cells["speedup_verdict"].eq(stats.FASTER) & cells["num_workers"].gt(0)


def recommend(group: Group) -> None:
    """The smallest num_workers as fast as the fastest (:func:`as_fast`; torch's defaults for
    the other DataLoader settings among equals). Where any setting of the group is faster
    than num_workers=0 by more than noise, the recommendation must be too: "as fast as the
    fastest" is no gain shown, and the gain is the point.

    ``group.smaller`` says how it was found: ``untested`` (a cell with fewer workers than the
    fastest could not be compared with it, for too few repeats or one run: the fastest as
    measured), ``fastest`` (the fastest's num_workers), ``within noise`` (fewer workers, as
    fast), ``gain elsewhere`` (neither the fastest nor any cell as fast as it shows the gain
    that other cells show: the fastest of those). ``group.passed_over``: the cells with fewer
    workers than the recommendation, each left out for a reason :func:`_why_not` gives."""
    cells, fastest = group.cells, group.fastest
    fewer = cells[cells["num_workers"] < fastest["num_workers"]]
    verdicts = fewer["vs_fastest_verdict"]
    if verdicts.isin(UNTESTED).any() or (len(fewer) and verdicts.isna().all()):
        group.smaller, group.recommended = "untested", fastest
        group.passed_over = cells.iloc[:0]
        return
    gain, group.fast = shows_gain(cells), as_fast(cells)
    group.gain_shown = bool(gain.any())
    if group.gain_shown:  # (a cell with no num_workers=0 cell of its settings is not tested)
        gain_or_untested = gain | (cells["num_workers"].gt(0) & cells["speedup"].isna())
        eligible = cells[group.fast & gain_or_untested]
    else:
        eligible = cells[group.fast]
    if eligible.empty:  # only where a gain is shown, but not by the fastest nor its equals
        gains = cells[gain]
        group.smaller = "gain elsewhere"
        group.recommended = gains.loc[gains["epoch_duration_median"].idxmin()]
    else:
        least = eligible[eligible["num_workers"] == eligible["num_workers"].min()]
        group.recommended = _prefer(least)
        group.smaller = ("fastest" if group.recommended["num_workers"] == fastest["num_workers"]
                         else "within noise")
    group.passed_over = cells[cells["num_workers"] < group.recommended["num_workers"]]


def _prefer(cells: pd.DataFrame) -> pd.Series:
    """Among cells of equal speed: most of torch's defaults kept, then the faster."""
    order = cells.assign(_defaults=[-_defaults_kept(r) for _, r in cells.iterrows()])
    return order.sort_values(["_defaults", "epoch_duration_median"], kind="stable").iloc[0]


# --- sentences -----------------------------------------------------------------------------


def _interval(row, low="speedup_ci_low", high="speedup_ci_high") -> str:
    if pd.notna(row.get(low)) and pd.notna(row.get(high)):
        return f"95% interval {row[low]:.2f}-{row[high]:.2f}x"
    return "no interval"


def _verdict_words(row) -> str:
    """The speed-up over num_workers=0 of a row: value, interval and verdict in words."""
    verdict = row.get("speedup_verdict")
    if pd.isna(verdict) or verdict == stats.SINGLE:
        return f"{_x(row['speedup'])} (one run per cell: no interval)"
    if verdict == stats.TOO_FEW:
        return (f"{_x(row['speedup'])} (too few repeats to tell: {int(row['repeats_needed'])} "
                "runs per cell are needed)")
    words = {stats.FASTER: "more than noise", stats.SLOWER: "more than noise",
             stats.NO_CLEAR: "cannot be told apart from noise",
             stats.SMALL: f"within the {_pct(stats.NOISE_THRESHOLD)} noise threshold"}
    return f"{_x(row['speedup'])} ({_interval(row)}; {words[verdict]})"


def cost_sentence(group: Group) -> str:
    b = group.batch_size
    if pd.isna(group.load):
        return ("The cells recorded no loading cost (metrics written before speedlimit "
                "measured it), so nothing is predicted.")
    text = (f"Loading one sample took {_us(group.load)} in the main process (the workload's "
            f"`__getitem__` on a fixed sample of items, before the clock; the median over "
            f"{len(group.cells)} cell(s))")
    if pd.isna(group.compute):
        if (group.cells["num_workers"] == 0).any():
            return text + "; no compute time was recorded, so nothing is predicted."
        return (text + "; with no `num_workers=0` cell the compute was never measured without "
                "workers competing for the CPU, so nothing is predicted.")
    ratio = group.load / group.compute
    return (text + f"; computing one took {_us(group.compute)} with `num_workers=0` (on the "
            f"clock, {group.threads} torch thread(s)). Per batch of {b}: {_ms(group.load * b)} "
            f"of loading against {_ms(group.compute * b)} of compute, so loading costs "
            f"{ratio:.2f} times the compute.")


def prediction_sentence(group: Group) -> str:
    b, load, compute, cpus, threads = (group.batch_size, group.load, group.compute,
                                       group.cpus, group.threads)
    work = (load + threads * compute) * b
    stop = group.predicted_stop
    text = (f"Predicted from these costs with the {cpus} CPU(s) a cell may use: an epoch can "
            f"be no shorter than its compute ({_ms(compute * b)} per batch), its loading "
            f"shared by the workers ({_ms(load * b)} / num_workers) or all its work shared by "
            f"the CPUs ({_ms(work)} / {cpus} = {_ms(work / cpus)})")
    if stop == 0:
        text += (f"; so no num_workers in the grid is predicted to gain more than the "
                 f"{_pct(stats.NOISE_THRESHOLD)} noise threshold: workers should not help "
                 f"({_workers(0)}).")
    else:
        text += (f"; so workers should stop helping at {_workers(stop)}, "
                 f"{_x(predict.speedup(load, compute, stop, cpus, threads))} over "
                 "`num_workers=0`.")
    enough = predict.enough_workers(load, compute, cpus, threads)
    if enough > int(group.cells["num_workers"].max()):
        text += (f" More workers than the grid has would still help: loading stops limiting "
                 f"only at {_workers(enough)}.")
    return text


def fastest_sentence(group: Group) -> str:
    f = group.fastest
    text = (f"Measured: the fastest setting was {group.settings(f)} "
            f"({f['epoch_duration_median']:.3g} s per epoch, median)")
    if int(f["num_workers"]) == 0 or pd.isna(f.get("speedup")):
        others = group.cells[group.cells["num_workers"] > 0]
        if int(f["num_workers"]) == 0 and len(others):
            return text + ": no worker setting beat loading in the main process."
        if int(f["num_workers"]) == 0:
            return text + "; the grid has no setting with workers to compare it with."
        if (group.cells["num_workers"] == 0).any():
            same = ", ".join(f"{a}={axes.as_text(f[a])}" for a in group.varying
                             if a in axes.BASELINE)
            return (text + f"; the grid has no `num_workers=0` cell with its other settings "
                    f"(`{same}`) to compare it with.")
        return text + "; the grid has no `num_workers=0` cell to compare it with."
    return text + f", {_verdict_words(f)} over `num_workers=0`."


def _versus_text(row) -> str:
    return (f"{_workers(row['num_workers'])} ({_x(row['vs_fastest'])} of its speed, "
            + _interval(row, "vs_fastest_ci_low", "vs_fastest_ci_high") + ")")


def _why_not(group: Group, row) -> str:
    """Why a cell with fewer workers than the recommendation is not recommended."""
    verdict = row["vs_fastest_verdict"]
    if verdict in (stats.SLOWER, stats.FASTER):
        return f"{_versus_text(row)} was slower than the fastest by more than noise"
    if not group.fast[row.name]:
        return (f"{_versus_text(row)} could not be told apart from the fastest, but may be "
                f"more than {_pct(EQUIVALENCE)} slower")
    if int(row["num_workers"]) == 0:
        return (f"{_versus_text(row)} was as fast as the fastest, but other settings were "
                "shown faster than it")
    return (f"{_versus_text(row)} was as fast as the fastest, but not faster than "
            "`num_workers=0` by more than noise")


def smallest_sentence(group: Group) -> str:
    f, rec, cells = group.fastest, group.recommended, group.cells
    if group.smaller == "untested":
        n = int(cells["repeats"].max())
        needed = cells["pairs_repeats_needed"].dropna()
        why = ("one run per cell" if n <= 1 else
               f"{n} runs per cell are too few for the run's {int(cells['pairs'].max())} "
               f"pairwise comparisons ({int(needed.max())} are needed)" if len(needed) else
               f"{n} runs per cell")
        return ("Whether fewer workers would be as fast cannot be told: " + why
                + "; the recommendation is the fastest as measured.")
    if group.smaller == "gain elsewhere":
        text = (f"The fastest is not faster than `num_workers=0` by more than noise, nor is any "
                f"setting as fast as it, but {group.settings(rec)} is ({_verdict_words(rec)}): "
                "the recommendation is the fastest setting with a gain shown.")
    elif group.smaller == "within noise":
        verdict = rec.get("vs_fastest_verdict")
        how = ("cannot be told apart from it" if verdict == stats.NO_CLEAR else
               f"differs from it by less than the {_pct(stats.NOISE_THRESHOLD)} noise threshold")
        text = (f"The smallest num_workers as fast as the fastest is {_workers(rec['num_workers'])}"
                f": at {_x(rec['vs_fastest'])} of its speed "
                f"({_interval(rec, 'vs_fastest_ci_low', 'vs_fastest_ci_high')}) it {how} and is "
                f"at most {_pct(EQUIVALENCE)} slower, with fewer processes.")
    elif group.passed_over is None or group.passed_over.empty:
        return ("It is also the smallest num_workers in the grid here "
                f"({_workers(f['num_workers'])}).")
    else:
        text = "No setting with fewer workers stands in for the fastest."
    passed = group.passed_over
    if passed is not None and len(passed):
        text += (" Fewer workers than " + _workers(rec["num_workers"]) + ": "
                 + "; ".join(_why_not(group, r) for _, r in passed.iterrows()) + ".")
    return text


def measured_stop(group: Group) -> int | None:
    """Where workers stopped helping as measured: the recommendation's num_workers, unless
    too few repeats left that open (a setting with fewer workers than the fastest, or, when
    the fastest has the fewest, one with more, that could not be compared with it)."""
    others = group.cells[~group.cells["fastest"].astype("boolean").fillna(False)]
    fewest = int(group.fastest["num_workers"]) == int(group.cells["num_workers"].min())
    if group.smaller == "untested" or (fewest and len(others) and
                                       others["vs_fastest_verdict"].isin(UNTESTED).any()):
        return None
    return int(group.recommended["num_workers"])


def check_sentences(group: Group) -> list[str]:
    """The prediction set beside the measurement: crossover and speed-ups, saying plainly
    where it fails."""
    if not predictable(group) or group.predicted_stop is None:
        return []
    if not (group.cells["num_workers"] > 0).any():
        return ["No setting with workers was measured here, so the prediction is not checked."]
    cells = group.cells[group.cells["num_workers"] > 0]
    cells = cells[cells["speedup"].notna() & cells["predicted_speedup"].notna()]
    rows, misses = [], []
    for _, r in cells.iterrows():
        has = pd.notna(r["speedup_ci_low"]) and pd.notna(r["speedup_ci_high"])
        inside = has and r["speedup_ci_low"] <= r["predicted_speedup"] <= r["speedup_ci_high"]
        state = f"{_interval(r)}, {'inside' if inside else 'outside'}" if has else "no interval"
        rows.append(f"{int(r['num_workers'])}: {_x(r['predicted_speedup'])} predicted, "
                    f"{_x(r['speedup'])} measured ({state})")
        if has and not inside:
            misses.append(r)
    stop, seen = group.predicted_stop, measured_stop(group)
    checked = len(rows) - sum(r.endswith("(no interval)") for r in rows)
    outside = (f"{len(misses)} of {checked} predicted speed-ups lie outside their measured 95% "
               "interval")
    if seen is None:
        text = (f"The prediction put the crossover at {_workers(stop)}; with these repeats the "
                "measurement cannot place it, so that is not checked")
        out = [text + (f"; {outside}." if misses else ".")]
    elif seen == stop and not misses:
        out = [f"The prediction holds: workers stopped helping at {_workers(stop)}, as "
               "predicted" + (", and every predicted speed-up lies inside its measured 95% "
                              "interval." if checked else ".")]
    elif seen == stop:
        out = [f"The prediction holds for the crossover (workers stopped helping at "
               f"{_workers(stop)}, as predicted) but fails for the speed-ups: {outside}."]
    else:
        out = [f"The prediction fails here: it put the crossover at {_workers(stop)}, but "
               f"workers stopped helping at {_workers(seen)}" + (f"; {outside}." if misses
                                                                else ".")]
    if rows:
        out.append("Predicted vs measured speed-up over `num_workers=0` per num_workers: "
                   + "; ".join(rows) + ".")
    if misses:
        worst = max(misses, key=lambda r: abs(r["predicted_speedup"] / r["speedup"] - 1))
        base = group.cells[group.cells["num_workers"] == 0]
        expected = float(base["epoch_duration_median"].median()) / worst["predicted_speedup"]
        extra = worst["epoch_duration_median"] - expected
        text = (f"Furthest off: {_workers(worst['num_workers'])}, whose epoch took "
                f"{abs(extra):.3g} s ({_pct(abs(extra) / expected)}) "
                + ("longer" if extra > 0 else "less")
                + " than predicted from the `num_workers=0` epoch")
        if extra > 0:
            text += (f": time the model leaves out ({LEFT_OUT}); computing one sample took "
                     f"{_us(worst['compute_per_sample_median'])} there against "
                     f"{_us(group.compute)} with `num_workers=0`.")
        else:
            text += (": faster than the measured costs allow, so the loading cost measured "
                     "before the clock (or the compute of the `num_workers=0` cells) overstates "
                     "what an epoch spends on it.")
        out.append(text)
    return out


def sentences(group: Group) -> list[str]:
    out = [cost_sentence(group)]
    if predictable(group):
        out.append(prediction_sentence(group))
    out.append(fastest_sentence(group))
    out.append(smallest_sentence(group))
    out.extend(check_sentences(group))
    rec = group.recommended
    out.append(f"Recommended: `{paste(group, rec)}`" + (
        f", {_verdict_words(rec)} over `num_workers=0`." if int(rec["num_workers"]) > 0
        and pd.notna(rec.get("speedup")) else "."))
    return out


def pairs_sentence(summary: pd.DataFrame) -> list[str]:
    """How the settings were compared with the fastest: once per run."""
    tested = summary[summary["vs_fastest_verdict"].notna()
                     & summary["vs_fastest_verdict"].ne(stats.SINGLE)]
    if tested.empty:
        return []
    m = int(summary["pairs"].max())
    slower = int(tested["vs_fastest_verdict"].isin((stats.SLOWER, stats.FASTER)).sum())
    same = int(tested["vs_fastest_verdict"].isin(SAME_SPEED).sum())
    few = int(tested["vs_fastest_verdict"].eq(stats.TOO_FEW).sum())
    return [f"Within each workload and batch size every setting was also compared with every "
            f"other (exact Mann-Whitney test, {stats.CORRECTION} over the run's {m} pairs, so "
            f"the chance that any \"slower than the fastest\" below is false is at most "
            f"{_pct(stats.ALPHA)}, although the fastest was picked from the same runs): against "
            f"the fastest, {slower} setting(s) were slower by more than noise, {same} within "
            f"noise" + (f", {few} had too few repeats to tell" if few else "") + "."]


# --- the recommendation --------------------------------------------------------------------


def kwargs(group: Group, row) -> dict:
    """The DataLoader keyword arguments of a cell, as measured (shuffle: RandomSampler)."""
    out = {"batch_size": group.batch_size, "shuffle": True,
           "num_workers": int(row["num_workers"])}
    for a in ("pin_memory", "persistent_workers"):
        if axes.as_text(row.get(a)) == "True":
            out[a] = True
    if axes.as_text(row.get("prefetch_factor")) not in ("default",):
        out["prefetch_factor"] = int(float(row["prefetch_factor"]))
    return out


def paste(group: Group, row) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs(group, row).items())
    return f"DataLoader(dataset, {args})"


def _needed(group: Group) -> int | None:
    """Runs per cell this run's comparisons need (the larger of its two families)."""
    values = pd.concat([group.cells["pairs_repeats_needed"], group.cells["repeats_needed"]])
    values = values.dropna()
    return int(values.max()) if len(values) else None


def how_sure(group: Group) -> tuple[str, str]:
    """(level, in words): ``tested`` when every claim behind the recommendation was tested
    with enough repeats, ``too few repeats`` or ``one run`` when not."""
    rec = group.recommended
    n = int(group.cells["repeats"].max())
    if n <= 1:
        return "one run", ("nothing behind this was tested; run with repeats "
                           "(configs/workloads.yaml) before relying on it")
    others = group.cells[group.cells["num_workers"] > 0]
    zero = int(rec["num_workers"]) == 0
    if (group.smaller == "untested"
            or (not zero and rec.get("speedup_verdict") in UNTESTED)
            or (zero and others["speedup_verdict"].isin(UNTESTED).any())):
        return "too few repeats", (f"{n} runs per cell, {_needed(group)} needed for this "
                                   "run's comparisons: not tested")
    same = ("the fastest measured" if bool(rec.get("fastest")) else
            "the fastest of the settings with a gain shown" if group.smaller == "gain elsewhere"
            else f"as fast as the fastest measured (at most {_pct(EQUIVALENCE)} slower, 95% "
            "interval)")
    if zero:
        return "tested", (f"no worker setting was faster than `num_workers=0` by more than "
                          f"noise and the {_pct(stats.NOISE_THRESHOLD)} noise threshold, and it "
                          f"is {same} ({n} runs per cell)")
    verdict = rec.get("speedup_verdict")
    if pd.isna(verdict):
        verdict = ("not compared with `num_workers=0` (the grid has no such cell with its "
                   "other settings)")
    words = {stats.FASTER: "faster than `num_workers=0` by more than noise",
             stats.SLOWER: "slower than `num_workers=0` by more than noise",
             stats.NO_CLEAR: "not told apart from `num_workers=0`",
             stats.SMALL: "faster than `num_workers=0`, but within the noise threshold"}
    return "tested", f"{words.get(verdict, verdict)} and {same} ({n} runs per cell)"


def _table_rows(group: Group, table: pd.DataFrame) -> pd.DataFrame:
    """The results table's finished DataLoader runs of a group."""
    rows = table[table["status"].eq("ok") & table["loader"].eq(axes.DATALOADER)]
    for key, value in group.conditions.items():
        if key in rows:
            rows = rows[rows[key].map(axes.as_text) == axes.as_text(value)]
    return rows


def machine(group: Group, table: pd.DataFrame | None) -> dict:
    """The machine a group's cells ran on: node, CPU model, the CPUs a cell could use, torch's
    threads in force and its version."""
    out = {"node": group.conditions.get("node"), "cpu_model": None, "cpus": group.cpus,
           "torch_threads": group.threads, "torch": None}
    if table is not None:
        rows = _table_rows(group, table)
        for key, column in (("cpu_model", "cpu_model"), ("torch", "torch_version")):
            values = rows[column].dropna().astype(str).unique() if column in rows else []
            out[key] = str(values[0]) if len(values) else None
    return out


def recommendation(found: list[Group], table: pd.DataFrame | None = None) -> dict:
    """``results/recommendation.yaml``: per group, the DataLoader settings to use, what they
    gain over num_workers=0, the machine they hold for and how sure it is."""
    entries = []
    for group in found:
        rec = group.recommended
        level, words = how_sure(group)
        speed = None
        if int(rec["num_workers"]) == 0:
            speed = {"median": 1.0, "ci_low": None, "ci_high": None,
                     "verdict": "this is num_workers=0"}
        elif pd.notna(rec.get("speedup")):
            speed = {"median": round(float(rec["speedup"]), 4),
                     "ci_low": _round(rec.get("speedup_ci_low")),
                     "ci_high": _round(rec.get("speedup_ci_high")),
                     "verdict": _value(rec.get("speedup_verdict")) or stats.SINGLE}
        fastest = group.fastest
        entries.append({
            "workload": group.workload,
            "batch_size": group.batch_size,
            "holds_under": {k: v for k, v in group.conditions.items()
                            if k not in ("workload", "batch_size", "node")},
            "dataloader_kwargs": kwargs(group, rec),
            "paste": paste(group, rec),
            "speedup_over_num_workers_0": speed,
            "fastest_measured": {"dataloader_kwargs": kwargs(group, fastest),
                                 "speedup_over_num_workers_0": _round(fastest.get("speedup"))},
            "machine": machine(group, table),
            "how_sure": {"level": level, "in_words": words.replace("`", ""),
                         "repeats": int(group.cells["repeats"].max()),
                         "comparisons_with_num_workers_0": _int(
                             group.cells["comparisons"].max()),
                         "pairs": _int(group.cells["pairs"].max()),
                         "repeats_needed": _needed(group)},
            "predicted": ({"load_per_sample_s": _round(group.load, 9),
                           "compute_per_sample_s": _round(group.compute, 9),
                           "workers_stop_helping_at": group.predicted_stop,
                           "measured_stop": measured_stop(group)}
                          if predictable(group) else None),
        })
    return {"about": ("DataLoader settings per workload and batch size, measured by speedlimit "
                      "on the machine named in each entry: the smallest num_workers as fast as "
                      "the fastest (not told apart from it, and at most "
                      f"{_pct(EQUIVALENCE)} slower at the end of its 95% interval), and faster "
                      "than num_workers=0 by more than noise where any setting was. Two "
                      "families of tests stand behind an entry, each Holm-corrected at "
                      f"{_pct(stats.ALPHA)} over the run (speed-ups over num_workers=0; every "
                      "pair of settings of a workload and batch size), so the chance that a "
                      f"claim of either family is false is at most {_pct(2 * stats.ALPHA)}. "
                      "Paste `paste` (dataset: your data set)."),
            "recommendations": entries}


def _int(value) -> int | None:
    value = _value(value)
    return None if value is None else int(value)


def _round(value, digits: int = 4):
    value = _value(value)
    return None if value is None else round(float(value), digits)


def front_sentences(found: list[Group]) -> list[str]:
    """One line per group for the report's front page."""
    out = []
    for group in found:
        rec = group.recommended
        level, words = how_sure(group)
        gain = (f", {_verdict_words(rec)} over `num_workers=0`"
                if int(rec["num_workers"]) > 0 and pd.notna(rec.get("speedup")) else "")
        out.append(f"{group.label[0].upper() + group.label[1:]}: `{paste(group, rec)}`{gain}; "
                   f"{level}: {words}.")
    if out:
        out.append("All of it, with the machine each holds for: `results/recommendation.yaml`.")
    return out
