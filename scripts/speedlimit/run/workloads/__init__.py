"""Workloads: what a cell trains on, named by the ``workload`` axis.

A workload is a function named as ``package.module:function``; the built-in ones are modules
of this package, the user's own (``custom``) is named in the config, as a string or as a
mapping with its arguments::

    workloads:
      custom: {function: "package.module:make", args: {root: /data/mine, size: 20000}}

It is called in each cell's process, before the clock, as::

    make(seed, **args) -> Custom | Dataset | tuple[Dataset, model]

``seed`` is ``train.seed``; ``args`` are the config's ``workloads.custom.args`` as keyword
arguments (changing them reruns exactly the custom cells). For backward compatibility a
function whose first parameter is named ``dataset_root`` (the signature before there were
args: ``make(dataset_root, seed)``) is called as ``make(dataset_root, seed, **args)``, with
the folder of the data set the pipeline has (FashionMNIST's files, or the synthetic
stand-in in their format, under ``<dataset_root>/FashionMNIST/raw/``); the pipeline reads
that signature from the module's source (a ``def`` at its top level) before any job, and
only such a custom workload makes its cells depend on the data set (download it, or wait for
it). Any other custom workload brings its own data: a grid of only such cells needs no
FashionMNIST file at all.

It returns a :class:`Custom` (the data set and, each optional, its model, loss or whole
training step, collate function and optimizer), or, as before, a map-style
``torch.utils.data.Dataset`` alone or a pair ``(dataset, model)``. The model is an
``nn.Module``, or a zero-argument callable (a class) that returns one, called after torch's
generator is seeded with ``seed``; without one the cell trains the seed's ``Network`` (1 x 28
x 28 inputs, 10 classes). A sample (and so a batch: :mod:`speedlimit.run.batches`) is a tuple
``(inputs, labels, ...)``, a dict of tensors or one tensor; the training step is
:meth:`speedlimit.run.workloads.build.Workload.train_step` (the default: Adam and
``F.cross_entropy(model(inputs), labels)``, with the accuracy on those labels).

Two optional methods of the data set: ``set_epoch(epoch)``, called in the main process
before each epoch's batches are drawn (epochs count from 1; the loading cost is measured at
epoch 0), for samples that change per epoch (augmentation); and ``as_tensors()``, every
sample at once as one batch (``(inputs, labels)`` for the seed's samples), exactly as
collating them one by one gives them (a shortcut for the loader-free limit, which otherwise
loads every sample before the clock and collates them all at once).

Item ``i`` should be the same in whichever process loads it (the main process or any
DataLoader worker), so that the loss stays comparable across num_workers: random samples are
seeded per item (and epoch), as the built-in augmentation does.

This module names the built-in workloads and resolves a name, once, into what everything
else uses (:func:`resolve`: its function, module and attribute, its file, its args, whether
it reads the pipeline's data set, and a digest of its code for its cells' rerun trigger):
the rules resolve each workload of the grid, the request carries the result to the job, and
:mod:`speedlimit.run.workloads.build` constructs the workload from it. It imports no torch.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speedlimit import project

PACKAGE = __name__
DEFAULT = "fashionmnist"
CUSTOM = "custom"  # the user's own: its function is named in the config (workloads.custom)

# name -> (function, what it is): each built-in is a module of this package.
BUILT_IN = {
    "fashionmnist": (f"{PACKAGE}.fashionmnist:make",
                     "the seed: FashionMNIST in memory, ToTensor() only"),
    "fashionmnist-augment": (f"{PACKAGE}.augment:make",
                             "the same images through per-sample CPU augmentation "
                             "(random resized crop, flip, rotation, jitter)"),
    "imagefolder": (f"{PACKAGE}.imagefolder:make",
                    "the same images as PNG files read with torchvision's ImageFolder"),
}

SPEC = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):([A-Za-z_]\w*)$")


class WorkloadError(ValueError):
    """A workload cannot be found or built; the message says what to fix."""


def parse(spec: str) -> tuple[str, str]:
    """``package.module:function`` -> (module, function)."""
    match = SPEC.match(spec or "")
    if not match:
        raise WorkloadError(f"{spec!r} is not a function named as package.module:function")
    return match[1], match[2]


@dataclass
class Custom:
    """What a workload's function may return: its data set and, each optional, how it
    trains on it. ``from speedlimit.run.workloads import Custom`` (torch-free).

    * ``dataset``: a map-style data set (``__getitem__`` and ``__len__``);
    * ``model``: an ``nn.Module`` or a zero-argument callable that makes one (called after
      torch is seeded); None: the seed's ``Network``;
    * ``loss(outputs, batch) -> Tensor``: the loss of ``outputs = model(inputs)`` (inputs:
      ``batch[0]`` of a tuple or list batch, the batch itself for a dict or a tensor); the
      step around it is the default one (zero_grad, backward, optimizer step);
    * ``step(model, batch, optimizer) -> loss``: the whole training step on one batch (the
      batch already on the cell's device), returning its loss (a tensor or a number);
      exclusive with ``loss``;
    * ``collate_fn``: makes a batch from a list of samples (the DataLoader's ``collate_fn``;
      torch's ``default_collate`` by default); every sample must stay one row of the
      batch's tensors;
    * ``optimizer(parameters, lr) -> torch.optim.Optimizer``: None: ``torch.optim.Adam``.

    With neither ``loss`` nor ``step``, batches must be tuples ``(inputs, labels)`` of class
    labels: the default ``F.cross_entropy``, and the accuracy is reported; with either, the
    accuracy is not (null in the records, empty in the table).
    """

    dataset: Any
    model: Any = None
    loss: Callable | None = None
    step: Callable | None = None
    collate_fn: Callable | None = None
    optimizer: Callable | None = None


def custom_parts(custom) -> tuple[str | None, dict]:
    """``workloads.custom`` as the config gives it (None, ``package.module:function``, or
    ``{function: ..., args: {...}}``): its function and args."""
    if isinstance(custom, dict):
        args = custom.get("args") or {}
        if not isinstance(args, dict):
            raise WorkloadError(f"workloads.custom.args is {type(args).__name__}, not a "
                                "mapping of keyword arguments")
        if "seed" in args:
            raise WorkloadError("workloads.custom.args has seed: the function gets "
                                "train.seed as its first argument; set train.seed instead")
        return custom.get("function"), dict(args)
    return custom, {}


def function_of(name: str, custom=None) -> str:
    """The function that makes workload ``name`` (``custom``: ``workloads.custom``)."""
    if name in BUILT_IN:
        return BUILT_IN[name][0]
    if name == CUSTOM:
        function, _ = custom_parts(custom)
        if not function:
            raise WorkloadError("grid.workload has custom, but workloads.custom names no "
                                "function: set it to package.module:function (or "
                                "{function: package.module:function, args: {...}}; see "
                                "docs/workloads.md)")
        parse(function)
        return function
    raise WorkloadError(f"unknown workload {name!r} (built in: {', '.join(BUILT_IN)}; or "
                        f"{CUSTOM})")


def describe(name: str, custom=None) -> str:
    if name in BUILT_IN:
        return BUILT_IN[name][1]
    return f"the user's own, from {custom_parts(custom)[0]}" if name == CUSTOM else name


def builtin_file(name: str) -> Path:
    """The module file of a built-in workload."""
    module, _ = parse(BUILT_IN[name][0])
    return Path(__file__).with_name(module.rsplit(".", 1)[1] + ".py")


def _top_level(file: Path, spec: str) -> ast.Module:
    try:
        return ast.parse(Path(file).read_text(), str(file))
    except SyntaxError as err:
        raise WorkloadError(f"workloads.custom = {spec}: {file}, line {err.lineno}: "
                            f"{err.msg}") from None


def check_defines(file: Path, function: str, spec: str) -> None:
    """Raise WorkloadError unless module ``file`` parses and defines ``function`` at its top
    level (a def, a class, an assignment or an import of that name): what the config names
    is checked before any job runs, not found missing in every cell."""
    names = set()
    for node in _top_level(file, spec).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    if function not in names:
        defined = sorted(n for n in names if not n.startswith("_"))
        raise WorkloadError(f"workloads.custom = {spec}: {file} defines no {function!r} at its "
                            f"top level (it defines: {', '.join(defined) or 'nothing'})")


OLD_FIRST = "dataset_root"  # the first parameter of the signature before args


def reads_dataset_root(file: Path, function: str, spec: str = "") -> bool:
    """Whether ``function`` of module ``file`` has the old signature, ``make(dataset_root,
    seed)``: a top-level ``def`` whose first parameter is named ``dataset_root``. Read from
    the source, so the rules know before any job whether its cells need the data set; a
    function that is not defined there (imported, assigned) counts as the new signature."""
    for node in _top_level(file, spec).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == function:
            params = node.args.posonlyargs + node.args.args
            return bool(params) and params[0].arg == OLD_FIRST
    return False


@dataclass(frozen=True)
class Resolved:
    """A workload, resolved: ``module:attribute`` is its ``function``; ``code``: a digest of
    its module and what it imports (the built-ins': their own module); ``args``: the keyword
    arguments it is called with; ``dataset``: whether it reads the pipeline's data set (the
    built-ins, and a custom function of the old signature)."""

    name: str
    function: str
    module: str
    attribute: str
    file: Path
    code: str
    args: dict = field(default_factory=dict)
    dataset: bool = True

    def for_request(self) -> dict:
        """What a cell's request carries (its rerun trigger): a custom workload's args too,
        so that changing them reruns exactly the custom cells."""
        out = {"function": self.function, "module": self.module,
               "attribute": self.attribute, "code": self.code}
        if self.name == CUSTOM:
            out["args"] = self.args
        return out


def resolve(name: str, custom=None, search=None) -> Resolved:
    """Workload ``name`` (``custom``: ``workloads.custom``, whose module is looked up in
    ``search``, the working directory by default, first): raise :class:`WorkloadError`
    when it cannot be found, or its module does not parse or define the function."""
    function = function_of(name, custom)
    module, attribute = parse(function)
    if name in BUILT_IN:
        file = builtin_file(name)
        return Resolved(name, function, module, attribute, file, project.code_digest(file))
    _, args = custom_parts(custom)
    search = [Path.cwd()] if search is None else list(search)
    try:
        file, _ = project.module_location(module, search)
    except FileNotFoundError as err:
        raise WorkloadError(str(err)) from None
    check_defines(file, attribute, function)
    return Resolved(name, function, module, attribute, file,
                    project.module_digest(module, search), args,
                    reads_dataset_root(file, attribute, function))
