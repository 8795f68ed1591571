"""The grid's axes, declared once. Every other module derives its lists from :data:`AXES`.

An axis is a list under ``grid:`` in config.yaml (``schemas/config.schema.yaml`` checks and
documents its values) and one setting of every cell that has it. Besides its value type, each
axis declares its roles:

``kinds``
    The kinds of cell that have it: a DataLoader cell has every axis; a loader-free cell
    (``tensor``: the whole set as one tensor) has only those that shape its training. A cell's
    path spells out its kind's axes in declaration order, so the order below is part of every
    results path: append new axes, never reorder.
``seed_rank``
    Position in the seed experiment's RunBuilder (lr, batch_size, num_workers): these axes are
    the seed's table columns, the match with the published table, and the first keys of the
    run order. ``None`` for the axes speedlimit added.
``same_batches``
    Cells that differ only in axes *without* this flag train on identical batches in identical
    order (everything is seeded), so they must reach the same loss: the quality check groups
    cells by the flagged axes.
``baseline``
    A cell's speed-up is against the ``num_workers=0`` cell with the same value of every
    flagged axis (persistent_workers and prefetch_factor cannot be set with 0 workers).
``seed_value``
    The value the seed experiment ran with, where it is known and other values make a
    different experiment: only cells with it are compared with the published table.
``loader_keyword`` and ``default``
    The ``torch.utils.data.DataLoader`` keyword the axis sets (``None``: it is no keyword of
    the DataLoader's, e.g. lr) and torch's value of it when a call leaves it out. A cell's
    DataLoader (:func:`loader_kwargs`), the call a recommendation pastes and the race's
    preference for torch's defaults (:data:`TORCH_DEFAULTS`) all derive from these two, so a
    new DataLoader axis is declared here alone.

Two axes play fixed parts in every comparison: :data:`COMPARED` (num_workers: what the
findings rank) within each :data:`ROWS` value (batch_size). Every other axis is a *setting*:
findings, the published comparison and the figures give each combination of the settings that
vary its own paragraph, row group or panel (:func:`varying`). The loader-free limit of a cell
is the ``tensor`` cell with the same value of every axis a ``tensor`` cell has.

Cells that ran on different machines (``node``, from their environment) are never compared
either: :data:`NODE` joins the settings wherever results are grouped.

This module imports nothing of the project, nor torch.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

DATALOADER = "dataloader"
TENSOR = "tensor"
KINDS = (DATALOADER, TENSOR)  # the values of the `loader` axis, which picks the kind of cell
BOTH = KINDS

NODE = "node"  # the machine a cell ran on: a grouping key wherever timings are compared


@dataclass(frozen=True)
class Axis:
    name: str
    type: type  # int, float, bool or str
    kinds: tuple[str, ...] = BOTH
    nullable: bool = False  # null is a value (e.g. prefetch_factor: null = torch's default)
    seed_rank: int | None = None
    same_batches: bool = False
    baseline: bool = True
    seed_value: object = None  # None: not known, or any value compares
    loader_keyword: str | None = None  # the DataLoader keyword it sets; None: not one
    default: object = None  # torch's value of that keyword when a call leaves it out

    def parse(self, text: str):
        """The value of a path segment's text (inverse of :func:`format_value`)."""
        if text == "default" and self.nullable:
            return None
        if self.type is bool:
            if text not in ("true", "false"):
                raise ValueError(f"{self.name} must be true or false, got {text!r}")
            return text == "true"
        return self.type(text)

    def normalize(self, value):
        """A config value as the cell holds it (`lr: [1]` is an int in YAML: lr~1.0)."""
        if value is None or self.type is not float:
            return value
        return float(value)

    def read(self, value):
        """A value as the axis holds it, from a table's or the race's text (``"True"``, ``2.0``,
        ``"default"``, NaN): None for null or absent."""
        text = as_text(value)
        if text == "default":
            return None
        if self.type is bool:
            return text.lower() in ("true", "1", "1.0")
        if self.type is int:
            return int(float(text))
        return self.type(text)


AXES: tuple[Axis, ...] = (
    Axis("batch_size", int, seed_rank=1, same_batches=True, loader_keyword="batch_size",
         default=1),
    Axis("num_workers", int, kinds=(DATALOADER,), seed_rank=2, baseline=False,
         loader_keyword="num_workers", default=0),
    Axis("lr", float, seed_rank=0, same_batches=True),
    Axis("torch_threads", int, same_batches=True),
    Axis("pin_memory", bool, kinds=(DATALOADER,), loader_keyword="pin_memory", default=False),
    Axis("persistent_workers", bool, kinds=(DATALOADER,), baseline=False,
         loader_keyword="persistent_workers", default=False),
    Axis("prefetch_factor", int, kinds=(DATALOADER,), nullable=True, baseline=False,
         loader_keyword="prefetch_factor", default=None),
    Axis("device", str, same_batches=True),
    Axis("workload", str, same_batches=True, seed_value="fashionmnist"),
)

COMPARED = "num_workers"
ROWS = "batch_size"


@functools.cache
def of_kind(kind: str) -> tuple[str, ...]:
    """The axes of one kind of cell, in path order."""
    return tuple(a.name for a in AXES if kind in a.kinds)


def declare(declared: tuple[Axis, ...]) -> None:
    """Derive every list below from the declaration (they are never spelled out elsewhere):
    at import from :data:`AXES`; a test declares an axis more through it, and then the axes
    as they were. (What another module made of a list at import, e.g. grid's Cell, stays.)"""
    global AXES, BY_NAME, NAMES, SEED, RUN_ORDER, SAME_BATCHES, BASELINE, SETTINGS, SEED_VALUES
    global LIMIT, LOADER_SETTINGS, CONDITIONS, INTEGERS, BOOLEANS, KEYWORDS, TORCH_DEFAULTS
    AXES = tuple(declared)
    of_kind.cache_clear()
    BY_NAME = {axis.name: axis for axis in AXES}
    NAMES = tuple(BY_NAME)
    SEED = tuple(a.name for a in sorted((a for a in AXES if a.seed_rank is not None),
                                        key=lambda a: a.seed_rank))
    RUN_ORDER = SEED + tuple(n for n in NAMES if n not in SEED)  # how cells are numbered
    SAME_BATCHES = tuple(a.name for a in AXES if a.same_batches)
    BASELINE = tuple(a.name for a in AXES if a.baseline)
    SETTINGS = tuple(n for n in NAMES if n not in (COMPARED, ROWS))
    SEED_VALUES = {a.name: a.seed_value for a in AXES if a.seed_value is not None}
    LIMIT = of_kind(TENSOR)  # a cell's loader-free limit matches these
    # The DataLoader's own settings (the axes only a DataLoader cell has): what a
    # recommendation chooses. Every other axis is a condition it holds under (workload,
    # batch_size, threads, ...).
    LOADER_SETTINGS = tuple(n for n in of_kind(DATALOADER) if n not in LIMIT)
    CONDITIONS = LIMIT  # every axis but the DataLoader's own: those a loader-free cell has too
    INTEGERS = tuple(a.name for a in AXES if a.type is int)
    BOOLEANS = tuple(a.name for a in AXES if a.type is bool)
    # The axes that are DataLoader keywords, in declaration order (the order of a call's).
    KEYWORDS = tuple(a for a in AXES if a.loader_keyword is not None)
    # Torch's default of each DataLoader setting but the compared one: among settings alike in
    # speed the race prefers the one that keeps most of them (the plainest call).
    TORCH_DEFAULTS = {a.name: a.default for a in KEYWORDS
                      if a.name in LOADER_SETTINGS and a.name != COMPARED}


declare(AXES)


def loader_kwargs(values: dict) -> dict:
    """A cell's DataLoader keywords from its axis values (by axis name): every DataLoader axis
    of the declaration, but one at None (torch's own default: the keyword is left out, as
    prefetch_factor: null must be)."""
    return {a.loader_keyword: values[a.name] for a in KEYWORDS if values.get(a.name) is not None}


def format_value(value) -> str:
    """A value as a path segment shows it: ``default`` for null, ``true``/``false``, floats
    by repr (``0.01``, ``1.0``)."""
    if value is None:
        return "default"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def as_text(value) -> str:
    """A comparable text for a value read back from a table (NaN, <NA> and None alike)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "default"
    text = str(value)
    return "default" if text in ("nan", "<NA>", "None") else text


def text(value, name: str | None = None) -> str:
    """A setting's value as comparable text, the same whether read from a record or from a
    CSV table (where integers may come back as floats: ``0.0``)."""
    text = as_text(value)
    axis = BY_NAME.get(name)
    if axis is not None and text != "default":
        if axis.type is int:
            return str(int(float(text)))
        if axis.type is float:
            return repr(float(text))
        if axis.type is bool:
            return str(text.lower() in ("true", "1", "1.0"))
    return text


def varying(frame, candidates=None) -> list[str]:
    """The axes among ``candidates`` (columns of ``frame``; the settings and the node unless
    given) that take more than one value among cells of one loader kind (a loader-free cell
    has no ``pin_memory``: that is not a setting that varies)."""
    candidates = SETTINGS + (NODE,) if candidates is None else candidates
    parts = [p for _, p in frame.groupby("loader")] if "loader" in frame else [frame]
    return [a for a in candidates if a in frame
            and any(p[a].map(as_text).nunique() > 1 for p in parts)]
