"""FashionMNIST through a typical per-sample CPU augmentation (torchvision transforms v2):
random resized crop, horizontal flip, rotation and brightness/contrast jitter on each PIL
image, then to a float tensor. Every sample costs real CPU time in ``__getitem__``: the case
where DataLoader workers are meant to pay off.

Seeded per sample: item ``i`` of epoch ``e`` draws its random parameters from torch's
generator seeded with (seed, e, i), so the same image gets the same crop, flip and rotation
in whichever process loads it, and a different one every epoch. The epoch lives in shared
memory, so worker processes see :meth:`AugmentedFashionMNIST.set_epoch` even when they
persist across epochs (``persistent_workers``). What holds: on the CPU every cell of this
workload with the same batch size, lr, torch_threads and seed trains on identical batches,
whatever its num_workers, pin_memory or prefetch_factor (the quality check compares them).
What does not: its loss differs from the other workloads' (augmented images are harder).
"""

import torch
import torchvision
from torchvision.transforms import v2

SIDE = 28


def augmentation() -> v2.Compose:
    return v2.Compose([
        v2.RandomResizedCrop(SIDE, scale=(0.6, 1.0), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandomRotation(15),
        v2.ColorJitter(brightness=0.3, contrast=0.3),
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
    ])


class AugmentedFashionMNIST(torch.utils.data.Dataset):
    def __init__(self, root: str, seed: int):
        self.images = torchvision.datasets.FashionMNIST(root, train=True, download=False,
                                                        transform=augmentation())
        self.seed = seed
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def __len__(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(epoch)

    def sample_seed(self, index: int) -> int:
        return ((self.seed * 1_000_003 + int(self._epoch)) * 1_000_000_007 + index) % 2**63

    def __getitem__(self, index: int):
        generator = torch.default_generator  # what v2's random transforms draw from
        state = generator.get_state()
        generator.manual_seed(self.sample_seed(index))
        try:
            return self.images[index]
        finally:
            generator.set_state(state)  # the caller's draws (e.g. dropout) stay untouched


def make(dataset_root: str, seed: int):
    return AugmentedFashionMNIST(dataset_root, seed)
