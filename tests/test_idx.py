import gzip
import os
import subprocess

import numpy as np
import pytest
import torchvision

from speedlimit.data import idx


def test_encode_decode_round_trip():
    array = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    assert np.array_equal(idx.decode(idx.encode(array)), array)


@pytest.mark.parametrize("data", [b"", b"\x00\x00\x08", b"\x00\x00\x08\x01\x00\x00\x00\x05ab",
                                  b"\x1f\x8b\x08\x00garbage"])
def test_decode_rejects_broken_files(data):
    with pytest.raises(ValueError):
        idx.decode(data)


def test_synthetic_is_deterministic_balanced_and_fashionmnist_shaped():
    x1, y1 = idx.synthetic(500, seed=3)
    x2, y2 = idx.synthetic(500, seed=3)
    x3, _ = idx.synthetic(500, seed=4)
    assert x1.shape == (500, 28, 28) and x1.dtype == np.uint8 and y1.dtype == np.uint8
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert not np.array_equal(x1, x3)
    assert sorted(set(y1.tolist())) == list(range(10))
    assert np.bincount(y1).min() == 50


def test_torchvision_reads_the_synthetic_files(tmp_path):
    md5s = idx.write_synthetic(tmp_path, 300, 50, seed=0, gz_dir=tmp_path / "gz")
    train = torchvision.datasets.FashionMNIST(tmp_path, train=True, download=False)
    test = torchvision.datasets.FashionMNIST(tmp_path, train=False, download=False)
    assert len(train) == 300 and len(test) == 50
    image, label = train[0]
    assert image.size == (28, 28) and 0 <= label < 10
    assert set(md5s) == {f"{name}.gz" for name in idx.FILES}
    raw = gzip.decompress((tmp_path / "gz" / "train-images-idx3-ubyte.gz").read_bytes())
    assert raw == (tmp_path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").read_bytes()
    name = "train-images-idx3-ubyte.gz"
    assert idx.md5(tmp_path / "gz" / name) == md5s[name]


def test_the_manifest_is_what_md5sum_checks_and_says_what_changed_after_it(tmp_path):
    idx.write_synthetic(tmp_path, 300, 50, seed=0)
    assert idx.manifest_problems(tmp_path) == []  # no manifest: nothing made before
    manifest = idx.write_manifest(tmp_path)
    raw = tmp_path / "FashionMNIST" / "raw"
    assert manifest == idx.manifest_path(tmp_path) == str(raw / idx.MANIFEST)
    assert idx.dataset_root_of(manifest) == str(tmp_path)
    check = ["md5sum", "--check", "--strict", "--quiet", idx.MANIFEST]
    assert subprocess.run(check, cwd=raw).returncode == 0
    assert len((raw / idx.MANIFEST).read_text().splitlines()) == len(idx.FILES)
    assert idx.manifest_problems(tmp_path) == [] and idx.lacking(tmp_path) is None
    images = raw / "t10k-images-idx3-ubyte"
    later = os.stat(manifest).st_mtime_ns + 1_000_000_000
    # Copied or touched after the manifest, the same data: nothing to say.
    os.utime(images, ns=(later, later))
    assert idx.manifest_problems(tmp_path) == []
    # Changed after the manifest: md5sum and the warning say so.
    data = images.read_bytes()
    images.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    os.utime(images, ns=(later, later))
    assert subprocess.run(check, cwd=raw, capture_output=True).returncode != 0
    (problem,) = idx.manifest_problems(tmp_path)
    assert problem.startswith(f"{images} changed after the data set's checksums ({manifest})")
    assert f"`snakemake --force {images}`" in problem and idx.AGAIN in problem
    # A file lost: said first, with the command that makes it again.
    lost = raw / "train-labels-idx1-ubyte"
    lost.unlink()
    assert idx.lacking(tmp_path) == (f"the data set lacks {lost}: make it again with "
                                     f"`snakemake --force {lost}` and this run's config options")
    assert idx.manifest_problems(tmp_path)[0] == f"{idx.lacking(tmp_path)} ({idx.AGAIN})"
