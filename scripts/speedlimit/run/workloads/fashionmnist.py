"""The seed's workload: torchvision's FashionMNIST, in memory, ``ToTensor()`` only.

A DataLoader has almost nothing to do here (one uint8 image to a float tensor per sample):
the case PyTorch's own advice answers with ``num_workers=0``.
"""

import torchvision
from torchvision import transforms


class FashionMNIST(torchvision.datasets.FashionMNIST):  # (the name: torchvision's raw folder)
    def as_tensors(self):
        """Every sample at once, as indexing them gives them (ToTensor: uint8 / 255)."""
        return self.data.unsqueeze(1).float().div(255), self.targets


def make(dataset_root: str, seed: int):
    return FashionMNIST(dataset_root, train=True, download=False,
                        transform=transforms.Compose([transforms.ToTensor()]))
