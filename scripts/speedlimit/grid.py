"""The grid: which cells a configuration asks for, and where each cell's metrics live.

Vocabulary used everywhere: the *grid* is the lists in ``config["grid"]``; a *cell* is one
combination of values; a *run* is one execution of a cell (``repeat`` numbers them); an
*epoch* is one pass over the training set.

A cell's path spells out every axis, so adding a value to one axis never renames an existing
cell (and so never retrains it). This module imports neither torch nor snakemake.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, fields

LOADERS = ("dataloader", "tensor")

# Path order of the axes of each kind of cell. The seed's three axes come first.
DATALOADER_AXES = (
    "batch_size",
    "num_workers",
    "lr",
    "torch_threads",
    "pin_memory",
    "persistent_workers",
    "prefetch_factor",
    "device",
)
TENSOR_AXES = ("batch_size", "lr", "torch_threads", "device")

# Order in which cells are numbered (the seed's RunBuilder: lr, batch_size, num_workers).
RUN_ORDER = (
    "lr",
    "batch_size",
    "num_workers",
    "torch_threads",
    "pin_memory",
    "persistent_workers",
    "prefetch_factor",
    "device",
)


@dataclass(frozen=True)
class Cell:
    """One combination of grid values, plus the repeat number."""

    loader: str
    batch_size: int
    lr: float
    torch_threads: int
    device: str
    repeat: int = 0
    num_workers: int | None = None
    pin_memory: bool | None = None
    persistent_workers: bool | None = None
    prefetch_factor: int | None = None

    @property
    def axes(self) -> tuple[str, ...]:
        return DATALOADER_AXES if self.loader == "dataloader" else TENSOR_AXES

    @property
    def path(self) -> str:
        """Readable relative path (no extension), e.g. ``dataloader/batch_size~100/...``."""
        parts = [self.loader] + [f"{a}~{format_value(getattr(self, a))}" for a in self.axes]
        return "/".join(parts + [f"repeat~{self.repeat}"])

    def params(self) -> dict:
        """Every parameter that shapes the cell, as plain JSON-able values."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def problem(self) -> str | None:
        """Why this combination cannot run as asked, or None when it is valid."""
        if self.loader != "dataloader":
            return None
        if self.num_workers == 0 and self.prefetch_factor is not None:
            return "prefetch_factor needs num_workers > 0 (torch rejects it with 0 workers)"
        if self.num_workers == 0 and self.persistent_workers:
            return "persistent_workers needs num_workers > 0 (torch rejects it with 0 workers)"
        return None


def format_value(value) -> str:
    if value is None:
        return "default"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _parse_value(axis: str, text: str):
    if axis in ("device", "loader"):
        return text
    if text == "default":
        return None
    if axis in ("pin_memory", "persistent_workers"):
        if text not in ("true", "false"):
            raise ValueError(f"{axis} must be true or false, got {text!r}")
        return text == "true"
    if axis == "lr":
        return float(text)
    return int(text)


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
        values[axis] = _parse_value(axis, text)
    expected = (DATALOADER_AXES if loader == "dataloader" else TENSOR_AXES) + ("repeat",)
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
        key(getattr(cell, a)) for a in RUN_ORDER
    ) + (cell.repeat,)


def expand(grid: dict, repeats: int = 1) -> tuple[list[Cell], list[tuple[Cell, str]]]:
    """All cells of a validated grid, in run order, and the combinations skipped with why.

    Tensor (loader-free) cells exist once per batch_size, lr, torch_threads and device: the
    DataLoader-only axes do not apply to them.
    """
    cells: list[Cell] = []
    skipped: list[tuple[Cell, str]] = []
    for loader in grid.get("loader", ["dataloader"]):
        axes = DATALOADER_AXES if loader == "dataloader" else TENSOR_AXES
        for combo in itertools.product(*(grid[a] for a in axes)):
            for repeat in range(repeats):
                values = dict(zip(axes, combo))
                values["lr"] = float(values["lr"])  # `lr: [1]` is an int in YAML: lr~1.0
                cell = Cell(loader=loader, repeat=repeat, **values)
                reason = cell.problem()
                if reason:
                    skipped.append((cell, reason))
                else:
                    cells.append(cell)
    cells.sort(key=_sort_key)
    return cells, skipped


def run_numbers(cells: list[Cell]) -> dict[str, int]:
    """Run number (1-based, seed order) of every cell path."""
    return {c.path: i for i, c in enumerate(sorted(cells, key=_sort_key), start=1)}
