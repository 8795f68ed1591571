"""Seaborn figures of the results table and summary. Every function takes data frames and
returns a matplotlib Figure; :func:`save` writes it. Medians with 95% bootstrap intervals of a
cell's own runs in the epoch-duration figure; comparisons with the race's intervals."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from speedlimit import axes  # noqa: E402
from speedlimit.results import decisions, stats  # noqa: E402

STYLE = {"context": "notebook", "style": "whitegrid", "palette": "colorblind"}
DPI = 110


def _setup() -> None:
    sns.set_theme(**STYLE)


def _ok(table: pd.DataFrame, loader: str = "dataloader") -> pd.DataFrame:
    return table[table["status"].eq("ok") & table["loader"].eq(loader)].copy()


def _label(series: pd.Series) -> pd.Series:
    """Whole numbers as category labels ("0", "16"), whatever dtype the CSV gave them."""
    return series.astype("Int64").astype(str)


def _settings(table: pd.DataFrame, data: pd.DataFrame) -> tuple[pd.Series, list[str]]:
    """num_workers labels, "no loader" for loader-free rows, and their order on an axis."""
    labels = pd.Series(np.where(data["loader"].eq("tensor"), "no loader",
                                _label(data["num_workers"])), index=data.index)
    order = list(_label(pd.Series(sorted(_ok(table)["num_workers"].unique()))))
    if data["loader"].eq("tensor").any():
        order.append("no loader")
    return labels, order


def _dodge(data: pd.DataFrame, amount: float) -> float | bool:
    """pointplot's dodge; seaborn divides by (batch sizes - 1), so none for a single one."""
    return amount if data["batch_size"].nunique() > 1 else False


# A figure gets a panel per combination of the settings (axes besides batch_size and
# num_workers) that vary, and per node when cells ran on several machines (e.g. separate SLURM
# allocations), so a line or a heatmap square never pools cells of different settings or
# hardware. A loader-free cell is drawn in a panel when it matches on the axes it has.
LIMIT_AXES = (*axes.LIMIT, axes.NODE)
_text = axes.as_text


def _panels(frame: pd.DataFrame) -> list[dict]:
    """One {axis: value} filter per panel, over the axes that vary among ``frame``'s cells."""
    varying = axes.varying(frame)
    if not varying:
        return [{}]
    combos = frame[varying].map(_text).drop_duplicates().sort_values(varying)
    return [dict(zip(varying, row)) for row in combos.itertuples(index=False)]


def _select(frame: pd.DataFrame, panel: dict, tensor: bool = False) -> pd.DataFrame:
    for axis, value in panel.items():
        if axis in frame and (not tensor or axis in LIMIT_AXES):
            frame = frame[frame[axis].map(_text) == value]
    return frame


def _title(text: str, panel: dict) -> str:
    return text + "".join(f" - {a}={v}" if a != "node" else f" - node {v}"
                          for a, v in panel.items())


def _axes(n: int, width: float = 6.0, height: float = 4.2, sharey: bool = True):
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False, sharey=sharey)
    return fig, list(axes[0])


def epoch_duration(table: pd.DataFrame) -> plt.Figure:
    """Epoch duration against num_workers, a line per batch size, loader-free limit dashed."""
    _setup()
    data = _ok(table)
    tensor = _ok(table, "tensor")
    panels = _panels(data)
    # Each panel scales to its own data: a shared axis clipped slower thread settings.
    fig, axes = _axes(len(panels), sharey=False)
    sizes = sorted(data["batch_size"].unique())
    palette = dict(zip(sizes, sns.color_palette(n_colors=len(sizes))))
    for ax, panel in zip(axes, panels):
        part, limits = _select(data, panel), _select(tensor, panel, tensor=True)
        part = part.assign(workers=_label(part["num_workers"]))
        order = list(_label(pd.Series(sorted(part["num_workers"].unique()))))
        sns.pointplot(part, x="workers", y="epoch_duration", hue="batch_size", order=order,
                      estimator="median", errorbar=("ci", 95), palette=palette, ax=ax,
                      dodge=_dodge(part, 0.15), markersize=5, linewidth=1.5, capsize=0.08)
        for size, group in limits.groupby("batch_size"):
            if size in palette:
                ax.axhline(group["epoch_duration"].median(), ls="--", lw=1.2,
                           color=palette[size], alpha=0.8)
        ax.set_xlabel("num_workers (DataLoader worker processes)")
        ax.set_ylabel("epoch duration (s, median, 95% CI)")
        ax.set_title(_title("Epoch duration", panel)
                     + ("\n(dashed: loader-free limit)" if len(limits) else ""))
        ax.set_ylim(bottom=0)
        ax.legend(title="batch_size", fontsize="small")
    fig.tight_layout()
    return fig


def speedup(summary: pd.DataFrame) -> plt.Figure:
    """Heatmap of the median speed-up over num_workers=0, per batch size and num_workers."""
    _setup()
    data = summary[summary["loader"].eq("dataloader") & summary["speedup"].notna()].copy()
    panels = _panels(data)
    height = 0.9 * max(3, data["batch_size"].nunique()) + 1.5
    fig, axes = _axes(len(panels), width=6.5, height=height)
    for ax, panel in zip(axes, panels):
        part = _select(data, panel).astype({"batch_size": "Int64", "num_workers": "Int64"})
        grid = part.pivot_table(index="batch_size", columns="num_workers", values="speedup",
                                aggfunc="median")
        # "*": faster or slower by more than noise (its interval lies beyond the threshold).
        shown = part["speedup_verdict"].isin([stats.FASTER, stats.SLOWER])
        significant = (part.assign(sig=shown.astype(float))
                       .pivot_table(index="batch_size", columns="num_workers", values="sig",
                                    aggfunc="max")
                       .reindex(index=grid.index, columns=grid.columns).fillna(0))
        if grid.empty:
            ax.text(0.5, 0.5, "no num_workers=0 baseline in the grid", ha="center")
            ax.set_axis_off()
            continue
        spread = max(0.05, float(np.nanmax(np.abs(grid.to_numpy() - 1.0))))
        labels = np.vectorize(lambda v, s: "" if np.isnan(v) else f"{v:.2f}" + ("*" if s else ""))(
            grid.to_numpy(float), significant.to_numpy(float) > 0)
        sns.heatmap(grid, annot=labels, fmt="", cmap="RdBu", center=1.0, vmin=1 - spread,
                    vmax=1 + spread, cbar_kws={"label": "speed-up (x, >1 = faster)"}, ax=ax,
                    linewidths=0.5)
        ax.set_xlabel("num_workers")
        ax.set_ylabel("batch_size")
        ax.set_title(_title("Speed-up over num_workers=0", panel))
    fig.tight_layout()
    return fig


def prediction(summary: pd.DataFrame) -> plt.Figure:
    """Measured speed-up over num_workers=0 (median, 95% interval where there is one) beside
    the speed-up predicted from the loading and compute costs (dashed), per num_workers: a
    line per batch size, a panel per setting (workload, ...)."""
    _setup()
    data = summary[summary["loader"].eq("dataloader") & summary["speedup"].notna()].copy()
    panels = _panels(data)
    fig, axes = _axes(len(panels), sharey=False)
    sizes = sorted(data["batch_size"].unique())
    palette = dict(zip(sizes, sns.color_palette(n_colors=len(sizes))))
    for ax, panel in zip(axes, panels):
        part = _select(data, panel).sort_values("num_workers")
        for size, rows in part.groupby("batch_size"):
            color = palette[size]
            x = rows["num_workers"].astype(float).to_numpy()
            y = rows["speedup"].to_numpy(float)
            low = rows["speedup_ci_low"].to_numpy(float)
            high = rows["speedup_ci_high"].to_numpy(float)
            has = ~np.isnan(low) & ~np.isnan(high)
            ax.plot(x, y, "o-", color=color, label=f"{int(size)} measured")
            if has.any():
                ax.errorbar(x[has], y[has], yerr=[y[has] - low[has], high[has] - y[has]],
                            fmt="none", ecolor=color, capsize=3, lw=1)
            if rows["predicted_speedup"].notna().any():
                ax.plot(x, rows["predicted_speedup"].to_numpy(float), "--", color=color,
                        alpha=0.8, label=f"{int(size)} predicted")
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_xticks(sorted(part["num_workers"].astype(int).unique()))
        ax.set_xlabel("num_workers")
        ax.set_ylabel("speed-up over num_workers=0 (x)")
        ax.set_title(_title("Measured vs predicted", panel))
        ax.legend(title="batch_size", fontsize="small")
    fig.tight_layout()
    return fig


def time_split(table: pd.DataFrame) -> plt.Figure:
    """Share of each epoch spent waiting for data, per cell."""
    _setup()
    data = pd.concat([_ok(table), _ok(table, "tensor")])
    data["setting"], order = _settings(table, data)
    panels = _panels(_ok(table))
    fig, axes = _axes(len(panels))
    for ax, panel in zip(axes, panels):
        part = pd.concat([_select(data[data["loader"].eq("dataloader")], panel),
                          _select(data[data["loader"].eq("tensor")], panel, tensor=True)])
        sns.barplot(part, x="setting", y="data_wait_share", hue="batch_size", order=order,
                    estimator="median", errorbar=("ci", 95), ax=ax, palette="colorblind")
        ax.set_xlabel("num_workers (or no loader at all)")
        ax.set_ylabel("share of the epoch waiting for data")
        ax.set_ylim(0, 1)
        ax.set_title(_title("Where the time goes", panel))
        ax.legend(title="batch_size", fontsize="small")
    fig.tight_layout()
    return fig


def quality(table: pd.DataFrame) -> plt.Figure:
    """Final-epoch loss and accuracy per cell."""
    _setup()
    data = table[table["status"].eq("ok")].copy()
    data = data[data["epoch"] == data["epochs"]]
    data["setting"], order = _settings(table, data)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for ax, column, label in ((axes[0], "loss", "training loss (last epoch)"),
                              (axes[1], "accuracy", "training accuracy (last epoch)")):
        if column == "accuracy" and not pd.to_numeric(data[column], errors="coerce").notna().any():
            # (a workload with its own loss or step reports no accuracy: no class labels)
            ax.text(0.5, 0.5, "no accuracy: the workload trains with its own loss or step",
                    ha="center", va="center", transform=ax.transAxes)
            ax.set_ylabel(label)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        sns.pointplot(data, x="setting", y=column, hue="batch_size", order=order,
                      estimator="median", errorbar=None, ax=ax, palette="colorblind",
                      dodge=_dodge(data, 0.2), markersize=5, linestyle="none")
        ax.set_xlabel("num_workers (or no loader at all)")
        ax.set_ylabel(label)
        ax.legend(title="batch_size", fontsize="small")
    axes[1].set_ylim(0, 1)
    fig.suptitle("Quality per cell: same seed, so equal within a batch size on the CPU")
    fig.tight_layout()
    return fig


def race(outcomes: list) -> plt.Figure:
    """The race, from the decision record: per group (a panel), each setting's epochs against
    the setting picked (recommended, or the data's pick while undecided): the median paired
    ratio so far (line) and its interval after every round (band), and where it left the race
    (x). Solid: 1; dotted: the noise threshold; dashed: the margin."""
    _setup()
    if not outcomes:
        return placeholder("race", "No group of DataLoader settings was decided: nothing to "
                           "plot.")
    sequential = all(o.design is None or o.design.anytime for o in outcomes)
    fig, axes = _axes(max(1, len(outcomes)), width=6.2, height=4.0, sharey=False)
    for ax, o in zip(axes, outcomes):
        ref = decisions.pick(o)
        rounds = np.arange(1, o.rounds + 1)
        colors = sns.color_palette(n_colors=len(o.settings))
        logs = np.log(o.durations)
        for i in range(len(o.settings)):
            if i == ref:
                continue
            low = np.exp([h[0][i, ref] for h in o.history])
            high = np.exp([h[1][i, ref] for h in o.history])
            paired = logs[i] - logs[ref]
            point = np.full(len(rounds), np.nan)
            for r in range(len(rounds)):
                seen = paired[: r + 1][~np.isnan(paired[: r + 1])]
                point[r] = np.exp(np.median(seen)) if len(seen) else np.nan
            last = o.left_at[i] + 1 if o.left_at[i] is not None else len(rounds)
            shown = slice(0, last)
            ax.plot(rounds[shown], point[shown], "-", color=colors[i], lw=1.5, label=o.words(i))
            finite = np.isfinite(low) & np.isfinite(high)
            ax.fill_between(rounds[shown], np.where(finite, low, np.nan)[shown],
                            np.where(finite, high, np.nan)[shown], color=colors[i], alpha=0.18,
                            step="mid")
            if o.left_at[i] is not None:
                ax.plot(rounds[last - 1], point[last - 1], "x", color=colors[i], ms=9, mew=2)
        for level, style in ((1.0, "-"), (1 + o.threshold, ":"), (1 / (1 + o.threshold), ":"),
                             (1 + o.margin, "--")):
            ax.axhline(level, color="black", lw=0.8, ls=style)
        ax.set_yscale("log")
        ax.set_ylim(0.5, 2.5)
        ticks = [0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 2.5]
        ax.set_yticks(ticks, [f"{t:g}x" for t in ticks])
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_xlim(0.5, max(len(rounds), 1) + 0.5)
        ax.set_xlabel("round")
        ax.set_ylabel(f"epoch duration / {o.words(ref)}'s")
        state = "decided" if o.decided else "undecided"
        ax.set_title(f"{o.label}\n{state} after {o.rounds} round(s): {o.words(ref)}",
                     fontsize="medium")
        ax.legend(fontsize="x-small", loc="upper right")
    fig.suptitle("The race: each setting against the one picked, interval after every round "
                 + ("(valid at every round)" if sequential else
                    "(fixed repeats: the last round's is the claim)"), fontsize="medium")
    fig.tight_layout()
    return fig


def placeholder(title: str, message: str) -> plt.Figure:
    """A figure that says why there is nothing to draw (e.g. every cell failed)."""
    _setup()
    fig, ax = plt.subplots(figsize=(7, 2.5))
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    ax.set_title(title)
    ax.set_axis_off()
    return fig


def save(fig: plt.Figure, path: str) -> None:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)


def published_vs_reproduced(comparison: pd.DataFrame) -> plt.Figure:
    """Speed-up over num_workers=0 per num_workers, published beside ours, a panel per batch
    size (``comparison``: :func:`speedlimit.results.published.compare`)."""
    _setup()
    sizes = sorted(comparison["batch_size"].dropna().unique())
    fig, axes = _axes(max(1, len(sizes)), width=4.6, height=4.2)
    if not sizes:
        axes[0].text(0.5, 0.5, "no cell of this grid is in the published table", ha="center")
        axes[0].set_axis_off()
        return fig
    settings = sorted(comparison["setting"].fillna("").unique())
    colors = sns.color_palette(n_colors=len(settings) + 1)
    order = sorted(comparison["num_workers"].dropna().unique())
    pos = {w: i for i, w in enumerate(order)}
    width = 0.8 / (len(settings) + 1)
    for ax, size in zip(axes, sizes):
        part = comparison[comparison["batch_size"] == size]
        pub = part.drop_duplicates("num_workers")
        x = np.array([pos[w] for w in pub["num_workers"]]) - 0.4 + width / 2
        ax.bar(x, pub["published_speedup"] - 1, width=width, bottom=1, color="0.6",
               label="published (deeplizard 2019)")
        for i, setting in enumerate(settings):
            ours = part[part["setting"].fillna("") == setting]
            xo = np.array([pos[w] for w in ours["num_workers"]]) - 0.4 + width * (i + 1.5)
            ax.bar(xo, ours["reproduced_speedup"] - 1, width=width, bottom=1, color=colors[i],
                   label="reproduced" + (f" ({setting})" if setting else ""))
            has_ci = ours["reproduced_ci_low"].notna()
            if has_ci.any():
                o = ours[has_ci]
                ax.errorbar(xo[has_ci.to_numpy()], o["reproduced_speedup"],
                            yerr=[o["reproduced_speedup"] - o["reproduced_ci_low"],
                                  o["reproduced_ci_high"] - o["reproduced_speedup"]],
                            fmt="none", ecolor="black", capsize=3, lw=1)
        ax.axhline(1.0, color="black", lw=1)
        ax.set_xticks(range(len(order)), [str(int(w)) for w in order])
        ax.set_xlabel("num_workers")
        ax.set_ylabel("speed-up over num_workers=0 (x, >1 = faster)" if ax is axes[0] else "")
        ax.set_title(f"batch_size {int(size)}")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize="small",
               frameon=False)
    fig.suptitle("Published vs reproduced speed-up" + (
        " (bars from 1; black: our intervals)" if comparison["reproduced_ci_low"].notna().any()
        else " (bars from 1; one run per cell, no intervals)"))
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    return fig
