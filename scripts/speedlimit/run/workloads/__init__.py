"""Workloads: what a cell trains on, named by the ``workload`` axis.

A workload is a function named as ``package.module:function``::

    make(dataset_root: str, seed: int) -> Dataset | tuple[Dataset, model]

``dataset_root`` is the folder of the data set the pipeline has (FashionMNIST's files, or the
synthetic stand-in in their format, under ``<dataset_root>/FashionMNIST/raw/``); ``seed`` is
``train.seed``. It returns a map-style ``torch.utils.data.Dataset`` whose item ``i`` is
``(input tensor, integer label)``, or that data set and a model: an ``nn.Module``, or a
zero-argument callable (a class) that returns one, called after torch's generator is seeded
with ``seed``. The model maps a batch of inputs to class scores for ``F.cross_entropy``;
without one the cell trains the seed's ``Network`` (1 x 28 x 28 inputs, 10 classes).

Two optional methods of the data set: ``set_epoch(epoch)``, called in the main process
before each epoch's batches are drawn (epochs count from 1; the loading cost is measured at
epoch 0), for samples that change per epoch (augmentation); and ``as_tensors()``, every
sample at once as ``(inputs, labels)``, exactly as indexing them one by one gives them (a
shortcut for the loader-free limit, which otherwise indexes every sample before the clock).

Item ``i`` should be the same in whichever process loads it (the main process or any
DataLoader worker), so that the loss stays comparable across num_workers: random samples are
seeded per item (and epoch), as the built-in augmentation does.

This module names the built-in workloads and resolves a name, once, into what everything
else uses (:func:`resolve`: its function, module and attribute, its file, and a digest of its
code for its cells' rerun trigger): the rules resolve each workload of the grid, the request
carries the result to the job, and :mod:`speedlimit.run.workloads.build` constructs the
workload from it. It imports no torch.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

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


def function_of(name: str, custom: str | None = None) -> str:
    """The function that makes workload ``name`` (``custom``: the one the config names)."""
    if name in BUILT_IN:
        return BUILT_IN[name][0]
    if name == CUSTOM:
        if not custom:
            raise WorkloadError("grid.workload has custom, but workloads.custom names no "
                                "function: set it to package.module:function "
                                "(docs/workloads.md)")
        parse(custom)
        return custom
    raise WorkloadError(f"unknown workload {name!r} (built in: {', '.join(BUILT_IN)}; or "
                        f"{CUSTOM})")


def describe(name: str, custom: str | None = None) -> str:
    if name in BUILT_IN:
        return BUILT_IN[name][1]
    return f"the user's own, from {custom}" if name == CUSTOM else name


def builtin_file(name: str) -> Path:
    """The module file of a built-in workload."""
    module, _ = parse(BUILT_IN[name][0])
    return Path(__file__).with_name(module.rsplit(".", 1)[1] + ".py")


def check_defines(file: Path, function: str, spec: str) -> None:
    """Raise WorkloadError unless module ``file`` parses and defines ``function`` at its top
    level (a def, a class, an assignment or an import of that name): what the config names
    is checked before any job runs, not found missing in every cell."""
    try:
        tree = ast.parse(Path(file).read_text(), str(file))
    except SyntaxError as err:
        raise WorkloadError(f"workloads.custom = {spec}: {file}, line {err.lineno}: "
                            f"{err.msg}") from None
    names = set()
    for node in tree.body:
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


@dataclass(frozen=True)
class Resolved:
    """A workload, resolved: ``module:attribute`` is its ``function``; ``code``: a digest of
    its module and what it imports (the built-ins': their own module)."""

    name: str
    function: str
    module: str
    attribute: str
    file: Path
    code: str

    def for_request(self) -> dict:
        return {"function": self.function, "module": self.module,
                "attribute": self.attribute, "code": self.code}


def resolve(name: str, custom: str | None = None, search=None) -> Resolved:
    """Workload ``name`` (``custom``: the function the config names; its module is looked up
    in ``search``, the working directory by default, first): raise :class:`WorkloadError`
    when it cannot be found, or its module does not parse or define the function."""
    function = function_of(name, custom)
    module, attribute = parse(function)
    if name in BUILT_IN:
        file = builtin_file(name)
        return Resolved(name, function, module, attribute, file, project.code_digest(file))
    search = [Path.cwd()] if search is None else list(search)
    try:
        file, _ = project.module_location(module, search)
    except FileNotFoundError as err:
        raise WorkloadError(str(err)) from None
    check_defines(file, attribute, function)
    return Resolved(name, function, module, attribute, file,
                    project.module_digest(module, search))
