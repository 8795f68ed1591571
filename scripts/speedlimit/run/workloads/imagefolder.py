"""The same training images as individual PNG files on disk (written once by the
``make_imagefolder`` rule), read with ``torchvision.datasets.ImageFolder``: every sample is
a file open and read plus a PNG decode (PIL, through ImageFolder's default loader), then
grayscale and ``ToTensor()``.

The files are read through the operating system's page cache: right after the rule wrote
them, or on a machine with memory to spare, that is a read from memory, not from the disk
(drop the cache to time a cold disk). ImageFolder orders samples by class folder, so item
``i`` is not the IDX file's item ``i``: the loss differs from the fashionmnist workload's,
while every cell of this workload trains on identical batches.
"""

import torchvision
from torchvision import transforms

from speedlimit.data import imagefolder


def make(dataset_root: str, seed: int):
    return torchvision.datasets.ImageFolder(
        imagefolder.train_dir(dataset_root),
        transform=transforms.Compose([transforms.Grayscale(), transforms.ToTensor()]),
    )
