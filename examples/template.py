"""A template for your own training job as speedlimit's ``custom`` workload: copy this file
(anywhere on your Python path, or into the project folder), fill in the places marked
``YOUR`` below, and point the config at it (configs/custom.yaml does, for this file)::

    workloads:
      custom:
        function: examples.template:make
        args: {root: data/template, size: 20000, features: 32}

As shipped it runs as is, on data it makes itself: a synthetic regression set (``size``
samples of ``features`` numbers and one target each), written once under ``args.root`` as a
stand-in for your own files, read back into memory, and trained with a small MLP and a mean
squared error; its batches are dicts. So ``snakemake --configfile config.yaml
configs/custom.yaml`` races the DataLoader settings on it without FashionMNIST.

speedlimit imports this module in each cell's process, before the clock, and calls
``make(seed, **args)``: ``seed`` is ``train.seed``, ``args`` are ``workloads.custom.args``
(changing them, or editing this module, reruns exactly the custom cells). What it returns:
:class:`speedlimit.run.workloads.Custom`, with

* ``dataset``: a map-style ``torch.utils.data.Dataset`` (``__len__`` and ``__getitem__``)
  whose item ``i`` is the same in whichever process loads it (the main process or any
  DataLoader worker: seed any randomness per item). A sample may be a tuple ``(inputs,
  labels)``, a dict of tensors (as here) or one tensor;
* ``model``: an ``nn.Module``, or a zero-argument callable that makes one (speedlimit calls
  it after seeding torch with ``seed``, so every cell starts from the same weights). It is
  called on ``batch[0]`` of a tuple batch, on the whole batch otherwise (the dict here);
* ``loss(outputs, batch)``: your loss (here MSE); or instead ``step(model, batch,
  optimizer) -> loss``, your whole training step (zero_grad, forward, backward, optimizer
  step) on one batch already on the cell's device. With neither, the default is
  cross-entropy on tuple batches ``(inputs, class labels)``, with the accuracy reported;
  with either, no accuracy is (the table's column stays empty);
* ``collate_fn`` (optional): how a list of samples becomes a batch (the DataLoader's
  ``collate_fn``; torch's ``default_collate`` by default); keep one row per sample;
* ``optimizer`` (optional): ``optimizer(parameters, lr)``, given ``grid.lr``; Adam by
  default.

Time what your real job does: the same data (``args.root``), model, batch size
(``grid.batch_size``), device (``grid.device``) and threads (``grid.torch_threads``).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from speedlimit.run.workloads import Custom


# --- YOUR data set ----------------------------------------------------------------------------


def stand_in(root: Path, size: int, features: int) -> Path:
    """A synthetic regression set written once under ``root`` (a stand-in for your files):
    targets a fixed linear function of the features, plus noise. Written whole or not at all
    (a temporary file renamed), so cells that start together never read half a file."""
    path = root / f"regression-{size}x{features}.npz"
    if not path.exists():
        rng = np.random.default_rng(0)  # the data's own seed: the same data for every seed
        x = rng.standard_normal((size, features), dtype=np.float32)
        w = rng.standard_normal(features, dtype=np.float32)
        y = (x @ w + 0.1 * rng.standard_normal(size, dtype=np.float32)).astype(np.float32)
        root.mkdir(parents=True, exist_ok=True)
        part = root / f".{path.name}.{os.getpid()}.npz"
        np.savez(part, features=x, target=y)
        os.replace(part, path)
    return path


class Regression(torch.utils.data.Dataset):
    """Item ``i``: ``{"features": float32 tensor of shape [features], "target": float32
    scalar}``. Replace the loading with yours (files, a database, decoding, augmentation):
    what ``__getitem__`` costs is what the DataLoader's workers exist for."""

    def __init__(self, path: Path):
        data = np.load(path)
        self.features = torch.from_numpy(data["features"])
        self.target = torch.from_numpy(data["target"])

    def __len__(self) -> int:
        return len(self.target)

    def __getitem__(self, index: int) -> dict:
        return {"features": self.features[index], "target": self.target[index]}

    def as_tensors(self) -> dict:
        """Optional: every sample at once, exactly as collating them one by one gives them
        (a fast start for the loader-free limit, ``grid.loader: tensor``; without it the
        limit loads every sample before the clock)."""
        return {"features": self.features, "target": self.target}


# --- YOUR model -------------------------------------------------------------------------------


class Model(nn.Module):
    def __init__(self, features: int, hidden: int = 64):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(),
                                    nn.Linear(hidden, 1))

    def forward(self, batch: dict) -> torch.Tensor:  # the whole batch: a dict here
        return self.layers(batch["features"]).squeeze(1)


# --- YOUR loss (or your whole step) -----------------------------------------------------------


def loss(outputs: torch.Tensor, batch: dict) -> torch.Tensor:
    return F.mse_loss(outputs, batch["target"])


# Or, instead of loss=..., your whole training step (return its loss):
#
# def step(model, batch, optimizer):
#     optimizer.zero_grad()
#     value = F.mse_loss(model(batch), batch["target"])
#     value.backward()
#     optimizer.step()
#     return value


def make(seed: int, root: str = "data/template", size: int = 20_000, features: int = 32):
    """What speedlimit calls (``seed``: train.seed; the rest: workloads.custom.args)."""
    path = stand_in(Path(root), int(size), int(features))  # YOUR files instead
    return Custom(
        dataset=Regression(path),
        model=functools.partial(Model, int(features)),  # made after torch is seeded
        loss=loss,
        # step=step,                                    # instead of loss
        # collate_fn=my_collate,                        # default: torch's default_collate
        # optimizer=lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9),
    )
