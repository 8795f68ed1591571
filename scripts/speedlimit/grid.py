"""The grid: which cells a configuration asks for, and where each cell's metrics live.

Vocabulary used everywhere: the *grid* is the lists in ``config["grid"]``; a *cell* is one
combination of values; a *run* is one execution of a cell (``repeat`` numbers them); an
*epoch* is one pass over the training set.

A cell's path spells out every axis, so adding a value to one axis never renames an existing
cell (and so never retrains it). This module imports neither torch nor snakemake.
"""

from __future__ import annotations

import functools
import itertools
import random
from dataclasses import field, fields, make_dataclass

from speedlimit import axes
from speedlimit.groups import family_size
from speedlimit.axes import format_value  # noqa: F401 - part of this module's interface

LOADERS = axes.KINDS
PREFETCH = 2  # torch's prefetch_factor with num_workers > 0, when none is set
MIN_WINDOW_BATCHES = 2  # an interleaved epoch holds an opening, a skip and this many more


class _CellMethods:
    @property
    def axes(self) -> tuple[str, ...]:
        """This kind of cell's axes, in path order."""
        return axes.of_kind(self.loader)

    @functools.cached_property
    def path(self) -> str:
        """Readable relative path (no extension), e.g. ``dataloader/batch_size~100/...``.
        (Made once per cell: the workflow looks it up for every job.)"""
        parts = [self.loader] + [f"{a}~{format_value(getattr(self, a))}" for a in self.axes]
        return "/".join(parts + [f"repeat~{self.repeat}"])

    @property
    def ahead(self) -> int:
        """Batches its DataLoader's workers load ahead of the main process."""
        return (self.num_workers or 0) * (self.prefetch_factor or PREFETCH)

    def params(self) -> dict:
        """Every parameter that shapes the cell, as plain JSON-able values."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def problem(self) -> str | None:
        """Why this combination cannot run as asked, or None when it is valid."""
        if self.loader != axes.DATALOADER:
            return None
        if self.num_workers == 0 and self.prefetch_factor is not None:
            return "prefetch_factor needs num_workers > 0 (torch rejects it with 0 workers)"
        if self.num_workers == 0 and self.persistent_workers:
            return "persistent_workers needs num_workers > 0 (torch rejects it with 0 workers)"
        return None


# One combination of grid values, plus the repeat number: a frozen dataclass with a field per
# axis of speedlimit.axes (None where the cell's kind has no such axis).
Cell = make_dataclass(
    "Cell",
    [("loader", str)]
    + [(a.name, a.type | None, field(default=None)) for a in axes.AXES]
    + [("repeat", int, field(default=0))],
    bases=(_CellMethods,),
    frozen=True,
)
Cell.__module__ = __name__  # (make_dataclass's module= needs Python 3.12)


def parse_path(path: str) -> Cell:
    """Inverse of :attr:`Cell.path`; raises ValueError on anything that is not a cell path."""
    parts = path.strip("/").removesuffix(".json").split("/")
    loader, rest = parts[0], parts[1:]
    if loader not in LOADERS:
        raise ValueError(f"not a cell path (unknown loader {loader!r}): {path}")
    values = {}
    for part in rest:
        axis, sep, text = part.partition("~")
        if not sep:
            raise ValueError(f"not a cell path (segment {part!r} lacks '~'): {path}")
        if axis == "repeat":
            values[axis] = int(text)
        elif axis in axes.BY_NAME:
            values[axis] = axes.BY_NAME[axis].parse(text)
        else:
            raise ValueError(f"not a cell path (unknown axis {axis!r}): {path}")
    expected = axes.of_kind(loader) + ("repeat",)
    if tuple(values) != expected:
        raise ValueError(f"not a cell path (axes {tuple(values)} != {expected}): {path}")
    cell = Cell(loader=loader, **values)
    if cell.path != path.strip("/").removesuffix(".json"):
        raise ValueError(f"not a canonical cell path (expected {cell.path}): {path}")
    return cell


def _sort_key(cell: Cell):
    def key(v):
        return (v is not None, v if not isinstance(v, str) else 0, str(v))

    return (LOADERS.index(cell.loader),) + tuple(
        key(getattr(cell, a)) for a in axes.RUN_ORDER
    ) + (cell.repeat,)


def expand(grid: dict, repeats: int = 1) -> tuple[list[Cell], list[tuple[Cell, str]]]:
    """All cells of a validated grid, in run order, and the combinations skipped with why.

    Tensor (loader-free) cells exist once per batch_size, lr, torch_threads and device: the
    DataLoader-only axes do not apply to them.
    """
    cells: list[Cell] = []
    skipped: list[tuple[Cell, str]] = []
    for loader in grid.get("loader", [axes.DATALOADER]):
        names = axes.of_kind(loader)
        for combo in itertools.product(*(grid[a] for a in names)):
            for repeat in range(repeats):
                values = {a: axes.BY_NAME[a].normalize(v) for a, v in zip(names, combo)}
                cell = Cell(loader=loader, repeat=repeat, **values)
                reason = cell.problem()
                if reason:
                    skipped.append((cell, reason))
                else:
                    cells.append(cell)
    cells.sort(key=_sort_key)
    return cells, skipped


def round_order(paths, seed: int, round_: int) -> list[str]:
    """The order in which one round runs its cells, drawn from the seed and the round: the
    groups (cells that differ only in their DataLoader settings) in a random order, each
    group's cells back to back in a random order. So no cell always follows the same one
    (carry-over from a neighbour is not confounded with the cell), and the runs a comparison
    pairs ran within seconds of each other, not minutes. The same paths, seed and round give
    the same order."""
    return [cell.path for cell in _round_order(map(parse_path, paths), seed, round_)]


def _round_order(cells, seed: int, round_: int) -> list[Cell]:
    rng = random.Random(f"speedlimit-round-{seed}-{round_}")
    groups: dict[tuple, list[Cell]] = {}
    for cell in sorted(cells, key=lambda cell: cell.path):
        groups.setdefault(tuple(getattr(cell, a) for a in axes.CONDITIONS), []).append(cell)
    keys = sorted(groups, key=repr)
    rng.shuffle(keys)
    order = []
    for key in keys:
        rng.shuffle(groups[key])
        order.extend(groups[key])
    return order


def interleaved(cells: list[Cell], seed: int = 0) -> list[Cell]:
    """``cells`` in the order to run them: every repeat 0 (a round, in :func:`round_order`),
    then every repeat 1, and so on."""
    out = []
    for repeat in sorted({c.repeat for c in cells}):
        out.extend(_round_order([c for c in cells if c.repeat == repeat], seed, repeat))
    return out


def run_numbers(cells: list[Cell]) -> dict[str, int]:
    """Run number (1-based, seed order) of every cell path."""
    return {c.path: i for i, c in enumerate(sorted(cells, key=_sort_key), start=1)}


def comparisons(cells: list[Cell]) -> int:
    """The comparisons a run of ``cells`` makes: the race's family
    (:func:`speedlimit.results.family_size`) over each group, the cells that differ only
    in the DataLoader's own settings."""
    groups: dict[tuple, dict] = {}
    for cell in cells:
        if cell.loader == axes.DATALOADER:
            key = tuple(getattr(cell, a) for a in axes.CONDITIONS)
            setting = {a: axes.as_text(getattr(cell, a)) for a in axes.LOADER_SETTINGS}
            groups.setdefault(key, {})[tuple(setting.values())] = setting
    return family_size([list(g.values()) for g in groups.values()])


def prefix(path: str) -> str:
    """A cell path without its ``repeat~R`` segment: the cell's runs share it."""
    return path.rsplit("/repeat~", 1)[0]


def interleavable(cell: Cell, batches_per_epoch: int) -> bool:
    """Whether an epoch of ``cell`` is long enough to time in interleaved windows
    (:mod:`speedlimit.run.interleave`): its opening (the first batch and the warm-up), one
    skip of the batches loaded ahead and :data:`MIN_WINDOW_BATCHES` more. A shorter epoch
    (few, large batches) is mostly start-up: it is timed whole."""
    return batches_per_epoch >= 1 + 2 * cell.ahead + MIN_WINDOW_BATCHES


def interleaved_groups(cells: list[Cell], dataset_size) -> dict[str, str]:
    """A race's groups whose settings are timed together, one job per round
    (:mod:`speedlimit.run.group`): for each DataLoader cell's :func:`prefix` in such a group,
    the prefix of the group's *lead* (its cell with the fewest workers, then the first path:
    the job's name). The settings timed together are those whose epoch holds an interleaved
    run's windows (:func:`interleavable`), where a group has two or more;
    the others (few batches, many loaded ahead: mostly start-up) are timed in runs of their
    own, as are the groups of a workload whose size ``dataset_size(workload)`` gives as None
    (unknown before it runs: a custom workload's)."""
    groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        if cell.loader == axes.DATALOADER and cell.repeat == 0:
            groups.setdefault(tuple(getattr(cell, a) for a in axes.CONDITIONS), []).append(cell)
    out = {}
    for members in groups.values():
        size = dataset_size(members[0].workload)
        if size is None:
            continue
        batches = -(-size // members[0].batch_size)
        together = [c for c in members if interleavable(c, batches)]
        if len(together) >= 2:
            lead = prefix(min(together, key=lambda c: (c.num_workers, c.path)).path)
            out.update({prefix(c.path): lead for c in together})
    return out
