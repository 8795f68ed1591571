"""The published table (reference data) and how our speed-ups compare with it.

The seed's 18 runs ship as ``reference/deeplizard-2019.csv``. Its speed-up per
(batch_size, num_workers) is the published num_workers=0 epoch duration of that batch size
divided by the cell's; ours is the summary's ``speedup`` (same definition, medians over
repeats). :func:`compare` puts them side by side for the cells both have.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from speedlimit import axes

SOURCE = ('deeplizard, "PyTorch DataLoader num_workers - Deep Learning Speed Limit Increase" '
          "(2019)")
DEFAULT_PATH = Path(__file__).resolve().parents[3] / "reference" / "deeplizard-2019.csv"
COLUMNS = ["run", "epoch", "loss", "accuracy", "epoch_duration", "run_duration", "lr",
           "batch_size", "num_workers"]
# A published speed-up within this of 1 counts as "no change".
TOLERANCE = 0.05
# What the published table does not say, and so what any comparison with it cannot control.
UNKNOWNS = ("its hardware (CPU model, cores), torch's intra-op thread count, the torch and "
            "torchvision versions, and its run-to-run noise (one run per cell)")
AGREE, DISAGREE, INCONCLUSIVE, NO_INTERVAL = "agree", "disagree", "inconclusive", "no interval"
# What `agreement` means: the one definition (the comparison table's caption and the findings).
AGREEMENT = ("agree when our interval (simultaneous for the run's pairs at 95%) lies wholly on "
             "the published value's side of 1, disagree when on the other side, inconclusive "
             "when it straddles 1, no interval with one run per cell or too few runs (then "
             "nothing is claimed)")
# Our settings besides the seed's axes (which are matched with the published cells); where
# they vary, each combination gets its own comparison rows.
SETTING_AXES = [a for a in (*axes.SETTINGS, axes.NODE) if a not in axes.SEED]


class PublishedError(ValueError):
    """The reference file is missing columns or has no num_workers=0 baseline."""


def load(path: str | Path = DEFAULT_PATH) -> pd.DataFrame:
    table = pd.read_csv(path)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise PublishedError(f"{path}: missing columns {missing}")
    return table


def speedups(published: pd.DataFrame) -> pd.DataFrame:
    """One row per published (lr, batch_size, num_workers): epoch duration and speed-up over
    num_workers=0 of the same batch size and lr (mean over epochs, as the seed had one)."""
    cells = (published.groupby(["lr", "batch_size", "num_workers"], as_index=False)
             ["epoch_duration"].mean())
    base = cells[cells["num_workers"] == 0].set_index(["lr", "batch_size"])["epoch_duration"]
    if base.empty:
        raise PublishedError("the published table has no num_workers=0 run")
    keys = pd.MultiIndex.from_frame(cells[["lr", "batch_size"]])
    cells["speedup"] = base.reindex(keys).to_numpy() / cells["epoch_duration"].to_numpy()
    return cells


def direction(speedup: float, tolerance: float = TOLERANCE) -> str:
    if pd.isna(speedup):
        return "unknown"
    if speedup > 1 + tolerance:
        return "faster"
    if speedup < 1 - tolerance:
        return "slower"
    return "no change"


def agreement(published: float, low: float, high: float) -> str:
    """Whether our interval [low, high] agrees with a published speed-up (see compare)."""
    if pd.isna(low) or pd.isna(high):
        return NO_INTERVAL
    side = direction(published)
    if side == "no change":
        if high < 1 - TOLERANCE or low > 1 + TOLERANCE:
            return DISAGREE
        return AGREE if 1 - TOLERANCE <= low and high <= 1 + TOLERANCE else INCONCLUSIVE
    if low <= 1 <= high:
        return INCONCLUSIVE
    ours = "faster" if low > 1 else "slower"
    return AGREE if ours == side else DISAGREE


def _setting_labels(ours: pd.DataFrame) -> pd.Series:
    """"torch_threads=1" etc. for the axes that vary among our cells; "" when none varies."""
    varying = axes.varying(ours, SETTING_AXES)
    if not varying:
        return pd.Series("", index=ours.index)
    return ours[varying].astype(str).apply(
        lambda row: ", ".join(f"{a}={v}" for a, v in row.items()), axis=1)


def compare(published: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """Published vs reproduced speed-up for every (lr, batch_size, num_workers > 0) cell both
    have, among our cells with the seed's values where it has known ones (its workload); one
    row per of our settings (e.g. per torch_threads) when those vary.

    ``agreement``: ``agree`` when our interval (simultaneous for the run's pairs, so within the
    run's family of claims) lies wholly on the side of 1 where the
    published speed-up is (faster or slower), ``disagree`` when it lies wholly on the other
    side (or, for a published "no change", wholly outside 1 +- TOLERANCE), ``inconclusive``
    when it straddles 1, and ``no interval`` without one (single runs, too few repeats):
    then the figures stand side by side and nothing is claimed. ``agree`` is the same as a
    boolean. ``published_in_interval``: the published speed-up lies inside our interval.
    """
    pub = speedups(published)
    pub = pub[pub["num_workers"] > 0]
    ours = summary[summary["loader"].eq("dataloader") & summary["speedup"].notna()].copy()
    ours = ours[ours["num_workers"] > 0]
    for axis, value in axes.SEED_VALUES.items():  # e.g. only the seed's workload
        if axis in ours:
            ours = ours[ours[axis].map(axes.as_text) == axes.format_value(value)]
    ours["setting"] = _setting_labels(ours)
    ours["lr_key"] = ours["lr"].astype(float).round(12)
    pub = pub.assign(lr_key=pub["lr"].astype(float).round(12))
    merged = ours.merge(pub.rename(columns={"epoch_duration": "published_epoch_duration",
                                            "speedup": "published_speedup"})
                        .drop(columns="lr"),
                        on=["lr_key", "batch_size", "num_workers"], how="inner")
    columns = ["setting", "lr", "batch_size", "num_workers", "published_epoch_duration",
               "published_speedup", "epoch_duration_median", "speedup", "speedup_ci_low",
               "speedup_ci_high", "repeats"]
    out = merged.reindex(columns=columns).rename(
        columns={"epoch_duration_median": "reproduced_epoch_duration",
                 "speedup": "reproduced_speedup", "speedup_ci_low": "reproduced_ci_low",
                 "speedup_ci_high": "reproduced_ci_high"})
    out["published_direction"] = out["published_speedup"].map(direction)
    out["reproduced_direction"] = out["reproduced_speedup"].map(direction)
    out["agreement"] = [agreement(p, low, high) for p, low, high in
                        zip(out["published_speedup"], out["reproduced_ci_low"],
                            out["reproduced_ci_high"])]
    out["agree"] = out["agreement"].eq(AGREE)
    has_ci = out["reproduced_ci_low"].notna() & out["reproduced_ci_high"].notna()
    inside = ((out["published_speedup"] >= out["reproduced_ci_low"])
              & (out["published_speedup"] <= out["reproduced_ci_high"]))
    out["published_in_interval"] = pd.Series(np.where(has_ci, inside, None),
                                             index=out.index, dtype="boolean")
    out = out.astype({"batch_size": "Int64", "num_workers": "Int64", "repeats": "Int64"})
    return out.sort_values(["setting", "lr", "batch_size", "num_workers"],
                           kind="stable").reset_index(drop=True)
