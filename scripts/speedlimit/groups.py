"""A group's settings: which keys make a group and a setting, the order of preference a
recommendation follows, each setting's num_workers=0 setting, the run's family of
comparisons, and a setting or a group in words.

A *group* is the cells that differ only in their DataLoader settings (one workload, batch
size, lr, thread count and device, on one machine); its *settings* are those cells. Core:
no numpy, pandas or torch (the grid counts the family from its cells before any job).
"""

from __future__ import annotations

from speedlimit import axes


# A group: every axis but the DataLoader's own, on one machine (runs on different nodes, as a
# cluster may give them, are never paired).
GROUP_KEYS = [*axes.CONDITIONS, axes.NODE]
SETTING_KEYS = list(axes.LOADER_SETTINGS)


def preference(setting: dict) -> tuple:
    """Sort key of a setting: fewest workers, then most of torch's defaults kept."""
    kept = sum(axes.text(setting.get(a)) == axes.text(v) for a, v in axes.TORCH_DEFAULTS.items())
    return (int(setting[axes.COMPARED]), -kept,
            tuple(axes.text(setting.get(a)) for a in SETTING_KEYS))


def setting_words(setting: dict, varying: list[str]) -> str:
    """A setting in words: ``num_workers=2`` and what else varies in its group."""
    parts = [f"num_workers={int(setting[axes.COMPARED])}"]
    parts += [f"{a}={axes.text(setting.get(a))}" for a in varying if a != axes.COMPARED]
    return ", ".join(parts)


def group_label(conditions: dict, varying: list[str]) -> str:
    """A group in words: workload and batch size, and the conditions that vary in the run."""
    parts = [f"workload {conditions.get('workload')}", f"batch_size {conditions['batch_size']}"]
    parts += [f"{a}={axes.text(conditions[a])}" for a in varying
              if a not in ("workload", "batch_size")]
    return ", ".join(parts)


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


def baselines(settings: list[dict]) -> list[int]:
    """Index of each setting's num_workers=0 setting (the same baseline axes), or -1."""
    out = []
    for s in settings:
        match = [i for i, t in enumerate(settings) if int(t[axes.COMPARED]) == 0
                 and all(axes.text(t.get(a)) == axes.text(s.get(a)) for a in axes.BASELINE
                         if a in SETTING_KEYS)]
        out.append(match[0] if match else -1)
    return out
