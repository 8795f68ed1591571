"""Build a cell's workload (see :mod:`speedlimit.run.workloads` for the contract): import its
function, call it with its args, check what it returned, and give the training loop one
interface: its data set, model, collate function, optimizer and training step.

The function's module is imported here, in the cell's own process (never in the warm
server), so an edited workload always runs as edited.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import default_collate

from speedlimit.run import batches
from speedlimit.run.model import Network
from speedlimit.run.workloads import OLD_FIRST, Custom, WorkloadError, parse


@dataclass
class Workload:
    """A cell's workload, built: what the training loop uses of it."""

    name: str
    function: str
    dataset: torch.utils.data.Dataset
    model: Callable[[], nn.Module]
    loss: Callable | None = None  # loss(outputs, batch) -> Tensor (None: cross-entropy)
    step: Callable | None = None  # step(model, batch, optimizer) -> loss (None: the default)
    collate_fn: Callable | None = None  # the DataLoader's (None: torch's default_collate)
    optimizer: Callable | None = None  # optimizer(parameters, lr) (None: Adam)

    @property
    def per_epoch(self) -> bool:
        """Whether its samples change from epoch to epoch (it has ``set_epoch``)."""
        return callable(getattr(self.dataset, "set_epoch", None))

    def set_epoch(self, epoch: int) -> None:
        if self.per_epoch:
            self.dataset.set_epoch(epoch)

    def make_optimizer(self, network: nn.Module, lr: float) -> torch.optim.Optimizer:
        if self.optimizer is None:
            return torch.optim.Adam(network.parameters(), lr=lr)
        return self.optimizer(network.parameters(), lr)

    def collate(self, samples: list):
        return (self.collate_fn or default_collate)(samples)

    def train_step(self, network: nn.Module, batch, optimizer) -> tuple[float, int | None]:
        """One training step on ``batch`` (on the device already): its loss, and how many of
        its samples the model classified right (None without class labels: the workload's
        own loss or step). The loss's ``.item()`` waits for a GPU: its kernels are inside.

        The workload's ``step(network, batch, optimizer)`` does all of it; else the model
        runs on the batch's inputs, the loss is the workload's ``loss(outputs, batch)`` or
        ``F.cross_entropy(outputs, labels)`` on a tuple batch's labels, and the optimizer
        takes the step."""
        if self.step is not None:
            return _number(self.step(network, batch, optimizer), self), None
        labels = None if self.loss is not None else batches.labels(batch)
        if self.loss is None and labels is None:
            raise WorkloadError(
                f"workload {self.name}: its batches are {type(batch).__name__}s, not "
                "(inputs, labels) tuples, so the default step (cross-entropy on class "
                "labels) cannot train on them: return Custom(dataset, model, loss=...) "
                "or Custom(..., step=...) from its function")
        outputs = network(batches.inputs(batch))
        if self.loss is not None:
            loss = self.loss(outputs, batch)
        else:
            loss = F.cross_entropy(outputs, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        value = loss.item()
        correct = None if labels is None else outputs.argmax(dim=1).eq(labels).sum().item()
        return value, correct

    def tensors(self, epoch: int, items=None):
        """Every sample of ``epoch`` as one batch (its tensors hold every sample, one row
        each), exactly as the DataLoader's batches hold them (for the loader-free limit,
        before the clock): the data set's ``as_tensors()``, or every sample collated at once.
        ``items``: only these are loaded (the rows of the others are zeros), for a run that
        times only its first batches."""
        self.set_epoch(epoch)
        shortcut = getattr(self.dataset, "as_tensors", None)
        if callable(shortcut):
            whole = shortcut()
            if isinstance(whole, tuple) and len(whole) == 2:  # (inputs, labels)
                return whole[0], torch.as_tensor(whole[1])
            return whole
        indices = range(len(self.dataset)) if items is None else [int(i) for i in items]
        try:
            whole = self.collate([self.dataset[i] for i in indices])
            rows = batches.size(whole)
        except (RuntimeError, TypeError, ValueError) as err:
            raise WorkloadError(f"workload {self.name}: its samples cannot be collated into "
                                f"one batch for the loader-free limit ({err}); leave `tensor` "
                                "out of grid.loader for it") from None
        uneven = [tuple(t.shape) for t in batches.tensors(whole) if t.dim() == 0
                  or t.shape[0] != rows]
        if rows != len(indices) or uneven:
            raise WorkloadError(f"workload {self.name}: its {len(indices)} samples collated "
                                f"into tensors of {rows} rows ({uneven or 'first'}), not one "
                                "row per sample, so the loader-free limit cannot slice them "
                                "into batches; leave `tensor` out of grid.loader for it")
        if items is None:
            return whole
        return batches.scatter(whole, torch.as_tensor(list(indices)), len(self.dataset))


def _number(loss, workload: Workload) -> float:
    """A step's loss as a float (a tensor's ``.item()``)."""
    if isinstance(loss, torch.Tensor) and loss.numel() == 1:
        return loss.item()
    if isinstance(loss, (int, float)):
        return float(loss)
    raise WorkloadError(f"workload {workload.name}: its step returned {type(loss).__name__}, "
                        "not the batch's loss (a one-element tensor or a number)")


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


def import_path() -> list[str]:
    """Where a workload's module is imported from: the working directory (the project's),
    then the folders of ``PYTHONPATH`` in this process's environment, then Python's own
    path. (A cell forked from a warm server takes on its job's environment, but not the
    Python path the server started with: the job's ``PYTHONPATH`` is put first here.)"""
    extra = [folder for folder in os.environ.get("PYTHONPATH", "").split(os.pathsep) if folder]
    return [os.getcwd(), *extra]


def load_function(function: str, search=None) -> Callable:
    module_name, name = parse(function)
    with _importable_from(search if search is not None else import_path()):
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise WorkloadError(f"cannot import {module_name} for workload function "
                                f"{function}: {err}") from err
    make = getattr(module, name, None)
    if not callable(make):
        raise WorkloadError(f"{module_name} has no function {name!r} (workload {function})")
    return make


def takes_dataset_root(make: Callable) -> bool:
    """Whether ``make`` has the old signature, ``make(dataset_root, seed)``: its first
    parameter is named ``dataset_root`` (:func:`inspect.signature`)."""
    try:
        params = list(inspect.signature(make).parameters.values())
    except (TypeError, ValueError):
        return False
    return bool(params) and params[0].name == OLD_FIRST and params[0].kind in (
        inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def call(make: Callable, function: str, dataset_root: str | None, seed: int,
         args: dict):
    """Call a workload's function: ``make(seed, **args)``, or, with the old signature (its
    first parameter named ``dataset_root``), ``make(dataset_root, seed, **args)``."""
    if not takes_dataset_root(make):
        _check_binds(make, function, (seed,), args)
        return make(seed, **args)
    if dataset_root is None:
        raise WorkloadError(
            f"{function}'s first parameter is dataset_root (the old signature, which reads "
            "the pipeline's data set), but it is not a def at the top level of its module, "
            "where the pipeline reads the signature before any job: define it there, or "
            "take the new signature make(seed, **args)")
    _check_binds(make, function, (dataset_root, seed), args)
    return make(dataset_root, seed, **args)


def _check_binds(make: Callable, function: str, positional: tuple, args: dict) -> None:
    """Raise WorkloadError, saying how it is called, when ``make`` cannot take these
    arguments (and not a TypeError from inside it)."""
    try:
        signature = inspect.signature(make)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*positional, **args)
    except TypeError as err:
        how = ("make(dataset_root, seed, **args)" if len(positional) == 2 else
               "make(seed, **args)")
        given = ", ".join(args) or "none"
        raise WorkloadError(
            f"{function}{signature} cannot be called as {how} ({err}; args given: {given}): "
            "it takes train.seed first and workloads.custom.args as keyword arguments; a "
            "function of the old signature names its first parameter dataset_root") from None


def unpack(made, name: str, function: str) -> Custom:
    """What a workload's function returned (a :class:`Custom`, a data set, or a pair of a
    data set and a model), as a :class:`Custom`, checked."""
    if isinstance(made, Custom):
        custom = made
    elif isinstance(made, tuple) and len(made) == 2:
        custom = Custom(made[0], made[1])
    else:
        custom = Custom(made)
    dataset = custom.dataset
    if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
        raise WorkloadError(f"workload {name}: {function} returned {type(dataset).__name__}, "
                            "not a map-style data set (with __getitem__ and __len__)")
    if len(dataset) == 0:
        raise WorkloadError(f"workload {name}: {function} returned an empty data set")
    if custom.loss is not None and custom.step is not None:
        raise WorkloadError(f"workload {name}: {function} returned both a loss and a step: "
                            "give one (a step computes its own loss)")
    for what in ("loss", "step", "collate_fn", "optimizer"):
        if getattr(custom, what) is not None and not callable(getattr(custom, what)):
            raise WorkloadError(f"workload {name}: {function} returned a {what} that is not "
                                "callable")
    return custom


def build(name: str, function: str, dataset_root: str | None, seed: int, search=None,
          args: dict | None = None) -> Workload:
    """Call the workload's function (torch's generator seeded with ``seed``) and check what
    it returned. ``dataset_root``: the pipeline's data set, for a function of the old
    signature (None where the cell does not depend on it); ``args``: its keyword arguments
    (``workloads.custom.args``)."""
    make = load_function(function, search)
    torch.default_generator.manual_seed(seed)
    custom = unpack(call(make, function, dataset_root, seed, dict(args or {})), name, function)
    model = Network if custom.model is None else custom.model
    if isinstance(model, nn.Module):
        instance = model
        model = lambda: instance  # noqa: E731 - built (and seeded) inside the function
    elif not callable(model):
        raise WorkloadError(f"workload {name}: {function} returned a model that is neither an "
                            "nn.Module nor a callable that makes one")
    return Workload(name, function, custom.dataset, model, custom.loss, custom.step,
                    custom.collate_fn, custom.optimizer)
