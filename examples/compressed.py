"""An example custom workload for speedlimit: your own data set and model, timed like the
built-in ones. Use it with (see docs/workloads.md)::

    grid: {workload: [custom]}
    workloads: {custom: "examples.compressed:make"}

Every training image is kept in memory as its own zlib-compressed record, as a key-value
store or a shard of records would hold it, so each sample costs a decompression and a
normalization in ``__getitem__``; the model is a small MLP instead of the seed's CNN.

speedlimit calls ``make(dataset_root, seed)`` in each cell's process, before the clock:
``dataset_root`` holds the pipeline's data set in FashionMNIST's format, ``seed`` is
``train.seed``. It returns the data set (item ``i``: an input tensor and an integer label,
the same whichever process loads it) and the model (here its class: speedlimit makes it
after seeding torch, so every cell starts from the same weights).
"""

import zlib

import numpy as np
import torch
import torchvision
from torch import nn


class CompressedRecords(torch.utils.data.Dataset):
    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.shape = images.shape[1:]
        self.records = [zlib.compress(image.tobytes(), 6) for image in images]
        self.labels = [int(label) for label in labels]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int):
        pixels = np.frombuffer(zlib.decompress(self.records[index]), dtype=np.uint8)
        image = torch.from_numpy(pixels.reshape(self.shape).astype(np.float32) / 255.0)
        return (image.unsqueeze(0) - 0.5) / 0.5, self.labels[index]


class MLP(nn.Module):
    def __init__(self, hidden: int = 128, classes: int = 10):
        super().__init__()
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, hidden), nn.ReLU(),
                                    nn.Linear(hidden, classes))

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.layers(batch)


def make(dataset_root: str, seed: int):
    raw = torchvision.datasets.FashionMNIST(dataset_root, train=True, download=False)
    return CompressedRecords(raw.data.numpy(), raw.targets.numpy()), MLP
