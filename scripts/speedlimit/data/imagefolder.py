"""The training images as individual PNG files in torchvision's ImageFolder layout.

``<dataset_root>/ImageFolder/train/<class>/<index>.png``: one folder per class (``0`` to
``9``, so ImageFolder's sorted class folders give the same label numbers as the IDX labels),
one 8-bit grayscale PNG per training image, named by its index in the IDX file. The PNGs are
written here directly (zlib and the PNG chunk layout, no imaging library), are lossless, and
decode to the very pixels of the IDX file.
"""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np

from speedlimit.data import idx

FOLDER = "ImageFolder"
SPLIT = "train"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def root(dataset_root: str | os.PathLike) -> str:
    """The folder the rule writes (and removes before writing again)."""
    return str(Path(dataset_root) / FOLDER)


def train_dir(dataset_root: str | os.PathLike) -> str:
    """The folder ``torchvision.datasets.ImageFolder`` reads: one subfolder per class."""
    return str(Path(root(dataset_root)) / SPLIT)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png(image: np.ndarray) -> bytes:
    """A grayscale 8-bit PNG of a uint8 H x W array (filter type 0 on every row)."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    height, width = image.shape
    rows = np.hstack([np.zeros((height, 1), np.uint8), image])  # each row: filter byte 0
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit, grayscale
    return (PNG_SIGNATURE + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + _chunk(b"IEND", b""))


def write(dataset_root: str | os.PathLike) -> int:
    """Write every training image of ``dataset_root``'s IDX files as a PNG under
    :func:`root`; return how many. Written into a temporary folder beside it and renamed
    into place, so the folder is either whole or absent."""
    raw = Path(dataset_root) / idx.RAW_SUBDIR
    images = idx.decode((raw / idx.TRAIN_IMAGES).read_bytes())
    labels = idx.decode((raw / idx.TRAIN_LABELS).read_bytes())
    if len(images) != len(labels):
        raise ValueError(f"{raw}: {len(images)} images but {len(labels)} labels")
    final = Path(root(dataset_root))
    staging = final.with_name(f".{final.name}.{os.getpid()}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    width = len(str(len(images) - 1))
    for label in np.unique(labels):
        (staging / SPLIT / str(label)).mkdir(parents=True)
    for index, (image, label) in enumerate(zip(images, labels)):
        (staging / SPLIT / str(label) / f"{index:0{width}d}.png").write_bytes(png(image))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(staging, final)
    return len(images)
