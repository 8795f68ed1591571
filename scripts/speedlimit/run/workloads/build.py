"""Build a cell's workload (see :mod:`speedlimit.run.workloads` for the contract): import its
function, call it, check what it returned, and give the training loop one interface.

The function's module is imported here, in the cell's own process (never in the warm
server), so an edited workload always runs as edited.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from speedlimit.run.model import Network
from speedlimit.run.workloads import WorkloadError, parse


@dataclass
class Workload:
    name: str
    function: str
    dataset: torch.utils.data.Dataset
    model: Callable[[], nn.Module]

    @property
    def per_epoch(self) -> bool:
        """Whether its samples change from epoch to epoch (it has ``set_epoch``)."""
        return callable(getattr(self.dataset, "set_epoch", None))

    def set_epoch(self, epoch: int) -> None:
        if self.per_epoch:
            self.dataset.set_epoch(epoch)

    def tensors(self, epoch: int, items=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Every sample of ``epoch`` as one input tensor and one label tensor, exactly as the
        DataLoader's batches hold them (for the loader-free limit, before the clock).
        ``items``: only these are loaded (the rows of the others are zeros), for a run that
        times only its first batches."""
        self.set_epoch(epoch)
        shortcut = getattr(self.dataset, "as_tensors", None)
        if callable(shortcut):
            inputs, labels = shortcut()
            return inputs, torch.as_tensor(labels)
        indices = range(len(self.dataset)) if items is None else [int(i) for i in items]
        got = [self.dataset[i] for i in indices]
        try:
            inputs = torch.stack([torch.as_tensor(x) for x, _ in got])
        except RuntimeError as err:
            raise WorkloadError(f"workload {self.name}: its samples cannot be stacked into one "
                                f"tensor for the loader-free limit ({err}); leave `tensor` out "
                                "of grid.loader for it") from None
        labels = torch.as_tensor([int(y) for _, y in got])
        if items is None:
            return inputs, labels
        rows = torch.as_tensor(list(indices))
        full = torch.zeros((len(self.dataset),) + inputs.shape[1:], dtype=inputs.dtype)
        full_labels = torch.zeros(len(self.dataset), dtype=labels.dtype)
        full[rows], full_labels[rows] = inputs, labels
        return full, full_labels


@contextlib.contextmanager
def _importable_from(folders):
    """``folders`` (the project's working directory) first on sys.path while importing."""
    added = [str(f) for f in folders if str(f) not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for folder in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)


def load_function(function: str, search=None) -> Callable:
    module_name, name = parse(function)
    with _importable_from(search if search is not None else [os.getcwd()]):
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise WorkloadError(f"cannot import {module_name} for workload function "
                                f"{function}: {err}") from err
    make = getattr(module, name, None)
    if not callable(make):
        raise WorkloadError(f"{module_name} has no function {name!r} (workload {function})")
    return make


def build(name: str, function: str, dataset_root: str, seed: int, search=None) -> Workload:
    """Call the workload's function (torch's generator seeded with ``seed``) and check it."""
    make = load_function(function, search)
    torch.default_generator.manual_seed(seed)
    made = make(dataset_root, seed)
    dataset, model = made if isinstance(made, tuple) else (made, Network)
    if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
        raise WorkloadError(f"workload {name}: {function} returned {type(dataset).__name__}, "
                            "not a map-style data set (with __getitem__ and __len__)")
    if len(dataset) == 0:
        raise WorkloadError(f"workload {name}: {function} returned an empty data set")
    if isinstance(model, nn.Module):
        instance = model
        model = lambda: instance  # noqa: E731 - built (and seeded) inside the function
    elif not callable(model):
        raise WorkloadError(f"workload {name}: {function} returned a model that is neither an "
                            "nn.Module nor a callable that makes one")
    return Workload(name, function, dataset, model)
