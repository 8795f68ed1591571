"""FashionMNIST's files: names, the IDX format, and a deterministic synthetic stand-in.

IDX (http://yann.lecun.com/exdb/mnist/): big-endian magic ``0x00 0x00 <dtype> <ndim>``, one
uint32 per dimension, then the raw data. FashionMNIST uses dtype 0x08 (uint8): images are
``N x 28 x 28``, labels ``N``. torchvision reads the un-gzipped files from
``<root>/FashionMNIST/raw/``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
from pathlib import Path

import numpy as np

from speedlimit.atomic import write_atomic

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
RAW_SUBDIR = Path("FashionMNIST") / "raw"
# The raw files' md5s, in md5sum's format (`md5sum -c MD5SUMS` checks them), written last by the
# job that makes the files: the one input each training job declares for the data set. Small,
# so Snakemake records its checksum: a data set made again on its own with the same data (a
# lost file made again by `snakemake --force <file>`) runs no finished cell again; other data
# runs every cell again. (Where the data set's job runs in the same run as the cells, as after
# an edit to its code, Snakemake runs every cell after it, whatever the data.)
MANIFEST = "MD5SUMS"
N_CLASSES = 10
SIDE = 28


def raw_paths(dataset_root: str | os.PathLike) -> list[str]:
    """The four un-gzipped files torchvision reads for a dataset root."""
    return [str(Path(dataset_root) / RAW_SUBDIR / name) for name in FILES]


def manifest_path(dataset_root: str | os.PathLike) -> str:
    """The data set's checksum manifest, beside its raw files (:data:`MANIFEST`)."""
    return str(Path(dataset_root) / RAW_SUBDIR / MANIFEST)


def write_manifest(dataset_root: str | os.PathLike) -> str:
    """Write the md5 of each raw file in ``md5sum`` format; return the manifest's path."""
    lines = [f"{md5(path)}  {Path(path).name}\n" for path in raw_paths(dataset_root)]
    manifest = manifest_path(dataset_root)
    write_atomic(manifest, "".join(lines).encode())
    return manifest


def lacking(dataset_root: str | os.PathLike) -> str | None:
    """What the data set lacks of its raw files, said with the command that makes them again;
    None when it has them all."""
    missing = [path for path in raw_paths(dataset_root) if not os.path.exists(path)]
    if not missing:
        return None
    return (f"the data set lacks {', '.join(missing)}: make it again with `snakemake --force "
            f"{missing[0]}` and this run's config options")


AGAIN = ("finished cells run again only if the data made differ from the checksums they were "
         "made with")


def manifest_problems(dataset_root: str | os.PathLike) -> list[str]:
    """What is amiss with a data set made before, which Snakemake does not see: files lost, or
    changed (modified after the manifest, and their md5 not the one it holds), each said with
    the command that makes them again."""
    manifest = Path(manifest_path(dataset_root))
    try:
        written = manifest.stat().st_mtime_ns
        recorded = {name.strip(): digest for digest, name in
                    (line.split(None, 1) for line in manifest.read_text().splitlines() if line)}
    except (OSError, ValueError):
        return []
    lacks = lacking(dataset_root)
    problems = [f"{lacks} ({AGAIN})"] if lacks else []
    changed = [path for path in raw_paths(dataset_root)
               if os.path.exists(path) and os.stat(path).st_mtime_ns > written
               and md5(path) != recorded.get(Path(path).name)]
    if changed:
        problems.append(
            f"{', '.join(changed)} changed after the data set's checksums ({manifest}): no "
            "finished cell runs again for that, and a cell that runs now trains on the changed "
            f"data. To train on the data set as made, make it again with `snakemake --force "
            f"{changed[0]}` and this run's config options ({AGAIN})")
    return problems


def dataset_root_of(raw_path: str | os.PathLike) -> str:
    """The dataset root of one of :func:`raw_paths` or of its manifest (their inverse)."""
    path = Path(raw_path)
    if path.name not in (*FILES, MANIFEST) or path.parent.parts[-2:] != RAW_SUBDIR.parts:
        raise ValueError(f"not a raw FashionMNIST file path: {raw_path}")
    return str(path.parents[2])


def encode(array: np.ndarray) -> bytes:
    """IDX bytes of a uint8 array."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def decode(data: bytes) -> np.ndarray:
    """uint8 array of IDX bytes; raises ValueError when the bytes are not a whole IDX file."""
    if len(data) < 4:
        raise ValueError("not an IDX file: shorter than its magic number")
    zero, zero2, dtype, ndim = struct.unpack(">BBBB", data[:4])
    if zero or zero2 or dtype != 0x08 or ndim == 0:
        raise ValueError(f"not a uint8 IDX file (magic {data[:4].hex()})")
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f"IDX header is cut short ({len(data)} bytes)")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = data[4 + 4 * ndim :]
    if len(body) != int(np.prod(shape)):
        raise ValueError(f"IDX body holds {len(body)} bytes, shape {shape} needs {np.prod(shape)}")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def md5(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _prototypes(rng: np.random.Generator) -> np.ndarray:
    """Ten distinct 28x28 class templates: smooth blobs and strokes, values in [0, 1]."""
    yy, xx = np.mgrid[0:SIDE, 0:SIDE] / (SIDE - 1)
    protos = np.zeros((N_CLASSES, SIDE, SIDE))
    for k in range(N_CLASSES):
        for _ in range(3):
            cy, cx = rng.uniform(0.2, 0.8, size=2)
            sy, sx = rng.uniform(0.05, 0.3, size=2)
            protos[k] += np.exp(-((yy - cy) ** 2 / (2 * sy**2) + (xx - cx) ** 2 / (2 * sx**2)))
        protos[k] /= protos[k].max()
    return protos


def synthetic(n: int, seed: int, prototype_seed: int = 1234) -> tuple[np.ndarray, np.ndarray]:
    """A learnable FashionMNIST stand-in: ``n`` uint8 28x28 images and their labels (0-9).

    Every class has a fixed template (the same for train and test sets); each image is its
    class template, shifted by up to two pixels, scaled in brightness and with noise added.
    Deterministic in ``seed``.
    """
    protos = _prototypes(np.random.default_rng(prototype_seed))
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % N_CLASSES
    rng.shuffle(labels)
    images = protos[labels]
    shifts = rng.integers(-2, 3, size=(n, 2))
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            sel = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
            images[sel] = np.roll(images[sel], (dy, dx), axis=(1, 2))
    images = images * rng.uniform(0.6, 1.0, size=(n, 1, 1))
    images = images + rng.normal(0.0, 0.25, size=images.shape)
    pixels = np.clip(images * 255.0, 0, 255).astype(np.uint8)
    return pixels, labels.astype(np.uint8)


def synthetic_files(train_size: int, test_size: int, seed: int) -> dict[str, bytes]:
    """IDX bytes (not gzipped) of a synthetic train and test set, keyed by FashionMNIST name."""
    train_x, train_y = synthetic(train_size, seed)
    test_x, test_y = synthetic(test_size, seed + 1_000_003)
    return {
        TRAIN_IMAGES: encode(train_x),
        TRAIN_LABELS: encode(train_y),
        TEST_IMAGES: encode(test_x),
        TEST_LABELS: encode(test_y),
    }


def write_synthetic(dataset_root: str | os.PathLike, train_size: int, test_size: int, seed: int,
                    gz_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """Write the raw files torchvision reads (and, if ``gz_dir``, their .gz); return gz md5s."""
    md5s = {}
    for name, data in synthetic_files(train_size, test_size, seed).items():
        write_atomic(Path(dataset_root) / RAW_SUBDIR / name, data)
        if gz_dir is not None:
            gz = gzip.compress(data, mtime=0)
            write_atomic(Path(gz_dir) / f"{name}.gz", gz)
            md5s[f"{name}.gz"] = hashlib.md5(gz).hexdigest()
    return md5s
