import socket

import pytest

from httpmirror import Mirror, gz_files
from speedlimit.data import download, idx


@pytest.fixture
def served(tmp_path):
    md5s = idx.write_synthetic(tmp_path / "made", 300, 50, seed=0, gz_dir=tmp_path / "gz")
    with Mirror(gz_files(tmp_path / "gz")) as mirror:
        yield mirror, md5s


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_falls_through_refused_corrupt_and_missing_mirrors(served, tmp_path):
    mirror, md5s = served
    refused = f"http://127.0.0.1:{unused_port()}/"
    mirrors = [refused, mirror.url("corrupt"), mirror.url("missing"), mirror.url("good")]
    root = tmp_path / "root"
    used = download.download(root, mirrors, md5s, retries=2, timeout=5, backoff=0)
    assert set(used.values()) == {mirror.url("good")}
    for name in idx.FILES:
        got = (root / "FashionMNIST" / "raw" / name).read_bytes()
        assert got == (tmp_path / "made" / "FashionMNIST" / "raw" / name).read_bytes()
    assert mirror.hits[("corrupt", "train-images-idx3-ubyte.gz")] == 1  # not retried
    assert not list((root / "FashionMNIST" / "raw").glob(".*"))  # no partial files left


def test_transient_errors_are_retried_on_the_same_mirror(served, tmp_path):
    mirror, md5s = served
    used = download.download(tmp_path / "root", [mirror.url("flaky")], md5s, retries=2,
                             timeout=5, backoff=0)
    assert set(used.values()) == {mirror.url("flaky")}
    assert mirror.hits[("flaky", "t10k-labels-idx1-ubyte.gz")] == 2


def test_truncated_and_slow_mirrors_count_as_failures(served, tmp_path):
    mirror, md5s = served
    used = download.download(tmp_path / "root",
                             [mirror.url("truncated"), mirror.url("slow"), mirror.url("good")],
                             md5s, retries=1, timeout=1, backoff=0)
    assert set(used.values()) == {mirror.url("good")}


def test_every_mirror_failing_names_files_mirrors_and_the_offline_way(served, tmp_path):
    mirror, md5s = served
    mirrors = [mirror.url("corrupt"), mirror.url("missing")]
    with pytest.raises(download.DownloadError) as err:
        download.download(tmp_path / "root", mirrors, md5s, retries=1, timeout=5, backoff=0)
    message = str(err.value)
    for name in download.GZ_FILES:
        assert name in message
    assert mirror.url("corrupt") in message and mirror.url("missing") in message
    assert "md5 mismatch" in message and "404" in message
    assert "source: synthetic" in message and "data.root" in message
    assert not list((tmp_path / "root" / "FashionMNIST" / "raw").iterdir())


def test_complete_files_are_kept_and_partial_leftovers_removed(served, tmp_path):
    mirror, md5s = served
    raw = tmp_path / "root" / "FashionMNIST" / "raw"
    download.download(tmp_path / "root", [mirror.url("good")], md5s, timeout=5, backoff=0)
    (raw / ".train-images-idx3-ubyte.123.part").write_bytes(b"half")
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00")  # broken
    (raw / "t10k-labels-idx1-ubyte.gz").unlink()  # and no checked .gz to unpack it from
    hits = sum(mirror.hits.values())
    used = download.download(tmp_path / "root", [mirror.url("good")], md5s, timeout=5, backoff=0)
    assert used["train-images-idx3-ubyte.gz"] == "present"
    assert used["t10k-labels-idx1-ubyte.gz"] == mirror.url("good")
    assert sum(mirror.hits.values()) == hits + 1
    assert not (raw / ".train-images-idx3-ubyte.123.part").exists()


def test_a_local_gz_copy_is_used_and_a_bad_one_ignored(served, tmp_path):
    mirror, md5s = served
    raw = tmp_path / "root" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name, data in gz_files(tmp_path / "gz").items():
        (raw / name).write_bytes(data)
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not the file")
    used = download.download(tmp_path / "root", [mirror.url("good")], md5s, timeout=5, backoff=0)
    assert used["train-images-idx3-ubyte.gz"] == "local"
    assert used["t10k-labels-idx1-ubyte.gz"] == mirror.url("good")
    assert sum(mirror.hits.values()) == 1


def test_files_fetched_before_a_failure_are_not_fetched_again(served, tmp_path):
    """Snakemake deletes a failed job's outputs; the checked .gz beside them survives."""
    mirror, md5s = served
    bad = dict(md5s, **{"t10k-labels-idx1-ubyte.gz": "0" * 32})
    root = tmp_path / "root"
    with pytest.raises(download.DownloadError):
        download.download(root, [mirror.url("good")], bad, retries=1, timeout=5, backoff=0)
    raw = root / "FashionMNIST" / "raw"
    for name in idx.FILES:  # what Snakemake does to the outputs of the failed job
        (raw / name).unlink(missing_ok=True)
    hits = sum(mirror.hits.values())
    used = download.download(root, [mirror.url("good")], md5s, retries=1, timeout=5, backoff=0)
    assert used["train-images-idx3-ubyte.gz"] == "local"
    assert used["t10k-labels-idx1-ubyte.gz"] == mirror.url("good")
    assert sum(mirror.hits.values()) == hits + 1
