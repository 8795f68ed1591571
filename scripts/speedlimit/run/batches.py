"""A batch, whatever its shape: every place that takes one apart goes through here.

A workload's samples (and so its batches, as its ``collate_fn`` or torch's
``default_collate`` makes them) may be

* a tuple or list, ``(inputs, labels, ...)``: the seed's ``(image, label)``;
* a dict of tensors (or of nested tuples, lists and dicts of them);
* one tensor.

A batch's *size* is the length of its first tensor (depth first, a dict in its own order):
one row per sample. The model is called on :func:`inputs` (``batch[0]`` of a tuple or list,
the batch itself otherwise); the default loss reads the class labels at :func:`labels`
(``batch[1]`` of a tuple or list; a dict or a tensor has none).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch


def _map(batch, fn):
    """``batch`` with ``fn`` applied to every tensor in it (other leaves kept)."""
    if isinstance(batch, torch.Tensor):
        return fn(batch)
    if isinstance(batch, Mapping):
        mapped = {k: _map(v, fn) for k, v in batch.items()}
        if type(batch) is dict:
            return mapped
        try:
            return type(batch)(mapped)  # (as default_collate keeps a mapping's type)
        except TypeError:
            return mapped
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple
        return type(batch)(*(_map(v, fn) for v in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(_map(v, fn) for v in batch)
    return batch


def leaves(batch) -> list:
    """Every leaf of ``batch`` (tensors, arrays, numbers, ...), depth first."""
    if isinstance(batch, Mapping):
        return [leaf for v in batch.values() for leaf in leaves(v)]
    if isinstance(batch, (tuple, list)):
        return [leaf for v in batch for leaf in leaves(v)]
    return [batch]


def tensors(batch) -> list[torch.Tensor]:
    return [leaf for leaf in leaves(batch) if isinstance(leaf, torch.Tensor)]


def size(batch) -> int:
    """How many samples ``batch`` holds: the length of its first tensor."""
    found = tensors(batch)
    if not found or found[0].dim() == 0:
        raise TypeError(f"a batch of {type(batch).__name__} with no tensor of samples in it "
                        "(its samples must collate into tensors, one row per sample)")
    return int(found[0].shape[0])


def to_device(batch, device: torch.device, non_blocking: bool = False):
    """``batch`` with every tensor on ``device``."""
    return _map(batch, lambda t: t.to(device, non_blocking=non_blocking))


def rows(batch, index: torch.Tensor):
    """The rows ``index`` of every tensor of ``batch`` (a whole data set's, sliced into one
    batch by the loader-free limit)."""
    return _map(batch, lambda t: t[index])


def scatter(batch, index: torch.Tensor, total: int):
    """``batch``'s rows placed at rows ``index`` of tensors of ``total`` rows (the others
    zero): a data set's tensors of which only some items were loaded."""
    def place(t):
        full = torch.zeros((total,) + tuple(t.shape[1:]), dtype=t.dtype)
        full[index] = t
        return full
    return _map(batch, place)


def inputs(batch):
    """What the model is called on: ``batch[0]`` of a tuple or list, else the batch."""
    if isinstance(batch, (tuple, list)):
        return batch[0]
    return batch


def labels(batch):
    """The class labels of a tuple or list batch (``batch[1]``); None for any other."""
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[1]
    return None


def sample_bytes(sample) -> int:
    """Bytes one sample takes in a batch: its tensors and arrays, 8 for each number."""
    total = 0
    for leaf in leaves(sample):
        if isinstance(leaf, (str, bytes)):
            total += len(leaf)
            continue
        try:
            t = torch.as_tensor(leaf)
        except (TypeError, RuntimeError, ValueError):
            total += 8
            continue
        total += max(t.element_size() * t.nelement(), 8 if t.dim() == 0 else 0)
    return total
