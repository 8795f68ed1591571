"""Download FashionMNIST: mirrors in order, retries for transient errors, md5 checks.

Nothing half-written is ever left where torchvision looks: every file is fetched into a
temporary file, checked, decompressed and only then renamed into place.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from speedlimit.data import idx
from speedlimit.atomic import write_atomic

log = logging.getLogger("speedlimit.data.download")

GZ_FILES = tuple(f"{name}.gz" for name in idx.FILES)
OFFLINE_HINT = (
    "To run without the network, set `data: {source: synthetic}` (for example "
    "`make run SOURCE=synthetic`, or "
    "`snakemake --cores all --config data='{source: synthetic}'`), or copy the four .gz files "
    "(or their un-gzipped forms) from a machine that has them and point `data.root` at that "
    "folder (the files go in <root>/fashionmnist/FashionMNIST/raw/)."
)


class DownloadError(RuntimeError):
    """Every mirror failed for at least one file."""


class _Permanent(Exception):
    """A failure that retrying the same mirror cannot fix (404, md5 mismatch, bad gzip)."""


def _fetch(url: str, timeout: float, chunk: int = 1 << 16) -> bytes:
    """The body of ``url``; raises on HTTP errors, timeouts and short reads."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        expected = response.headers.get("Content-Length")
        parts = []
        while block := response.read(chunk):
            parts.append(block)
    data = b"".join(parts)
    if expected is not None and len(data) != int(expected):
        raise ConnectionError(f"short read: got {len(data)} of {expected} bytes")
    return data


def _attempt(url: str, name: str, md5: str, timeout: float) -> tuple[bytes, bytes]:
    """Fetch one .gz file and return it and its un-gzipped bytes, or raise."""
    try:
        data = _fetch(url, timeout)
    except urllib.error.HTTPError as err:
        if err.code >= 500 or err.code in (408, 429):
            raise
        raise _Permanent(f"HTTP {err.code} {err.reason}") from err
    return data, _unpack(data, md5)


def _unpack(data: bytes, md5: str) -> bytes:
    """The un-gzipped IDX bytes of a .gz file's ``data``, if its md5 is ``md5``."""
    got = hashlib.md5(data).hexdigest()
    if got != md5:
        raise _Permanent(f"md5 mismatch: expected {md5}, got {got} ({len(data)} bytes)")
    try:
        raw = gzip.decompress(data)
        idx.decode(raw)
    except (OSError, EOFError, ValueError) as err:
        raise _Permanent(f"not a gzipped IDX file: {err}") from err
    return raw


def fetch_file(name: str, md5: str, mirrors: list[str], dest: Path, retries: int = 3,
               timeout: float = 30.0, backoff: float = 1.0) -> str:
    """Put the un-gzipped ``name`` at ``dest``, trying each mirror; return the mirror used.

    Transient errors (timeouts, refused or broken connections, HTTP 5xx) are retried up to
    ``retries`` times per mirror with exponential backoff; permanent ones (404, md5 mismatch,
    corrupt gzip) move on to the next mirror at once.
    """
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        for attempt in range(1, retries + 1):
            try:
                gz, raw = _attempt(url, name, md5, timeout)
            except _Permanent as err:
                failures.append(f"{url}: {err}")
                log.warning("%s: %s; trying the next mirror", url, err)
                break
            except (OSError, urllib.error.URLError, ConnectionError, TimeoutError) as err:
                failures.append(f"{url} (attempt {attempt}/{retries}): {err}")
                log.warning("%s (attempt %d/%d): %s", url, attempt, retries, err)
                if attempt < retries:
                    time.sleep(backoff * 2 ** (attempt - 1))
                continue
            # The checked .gz stays beside the raw file (as torchvision keeps it): when another
            # file fails, Snakemake removes this job's outputs, and the next run unpacks
            # this copy instead of downloading it again.
            write_atomic(dest.with_name(name), gz)
            write_atomic(dest, raw)
            log.info("%s: ok from %s (md5 %s)", name, url, md5)
            return mirror
    raise DownloadError(
        f"could not download {name} from any mirror:\n  " + "\n  ".join(failures)
    )


# FashionMNIST's shapes: what an un-gzipped copy without its .gz must have to be kept.
SHAPES = {idx.TRAIN_IMAGES: (60000, 28, 28), idx.TRAIN_LABELS: (60000,),
          idx.TEST_IMAGES: (10000, 28, 28), idx.TEST_LABELS: (10000,)}


def raw_is_present(dest: Path, md5: str | None = None) -> bool:
    """True when ``dest`` holds a complete IDX file that can be trusted: its checked .gz lies
    beside it (md5 ``md5``), or, for a user's un-gzipped copy without one, it has
    FashionMNIST's shape (its md5 cannot be checked: the published md5s are of the .gz)."""
    try:
        array = idx.decode(dest.read_bytes())
    except (OSError, ValueError):
        return False
    gz = dest.with_name(dest.name + ".gz")
    if md5 is not None and gz.exists() and idx.md5(gz) == md5:
        return True
    if array.shape != SHAPES.get(dest.name, array.shape):
        log.warning("%s: shape %s is not FashionMNIST's %s; not used", dest, array.shape,
                    SHAPES[dest.name])
        return False
    log.warning("%s: an un-gzipped copy without its .gz: kept on its shape, md5 unchecked", dest)
    return True


def from_local_gz(gz: Path, md5: str, dest: Path) -> bool:
    """Use a user's copy of the .gz file next to ``dest`` when its md5 matches."""
    if not gz.exists():
        return False
    try:
        raw = _unpack(gz.read_bytes(), md5)
    except _Permanent as err:
        log.warning("%s: %s; not used", gz, err)
        return False
    write_atomic(dest, raw)
    log.info("%s: decompressed from the local copy %s", dest, gz)
    return True


def download(dataset_root: str | os.PathLike, mirrors: list[str], md5s: dict[str, str],
             retries: int = 3, timeout: float = 30.0, backoff: float = 1.0) -> dict[str, str]:
    """Download all four files into ``<dataset_root>/FashionMNIST/raw/``; return file->mirror.

    Files already there and complete are kept, and so is a local copy of a ``.gz`` file in
    that folder whose md5 matches (a user who copied the files by hand). Leftover partial
    files from an interrupted run are removed. When some file cannot be had, raises
    :class:`DownloadError` naming
    the files, the mirrors tried and how to run offline.
    """
    raw_dir = Path(dataset_root) / idx.RAW_SUBDIR
    raw_dir.mkdir(parents=True, exist_ok=True)
    for leftover in raw_dir.glob(".*.part"):
        log.warning("removing a partial file left by an earlier run: %s", leftover)
        leftover.unlink()
    used, missing, errors = {}, [], []
    for gz_name in GZ_FILES:
        dest = raw_dir / gz_name.removesuffix(".gz")
        if raw_is_present(dest, md5s[gz_name]):
            log.info("%s: already present, kept", dest)
            used[gz_name] = "present"
            continue
        if from_local_gz(raw_dir / gz_name, md5s[gz_name], dest):
            used[gz_name] = "local"
            continue
        if dest.exists():
            log.warning("%s: incomplete or corrupt (left by an earlier run?); removed", dest)
            dest.unlink()
        try:
            used[gz_name] = fetch_file(gz_name, md5s[gz_name], mirrors, dest, retries,
                                       timeout, backoff)
        except DownloadError as err:
            missing.append(gz_name)
            errors.append(str(err))
    if missing:
        raise DownloadError(
            f"FashionMNIST download failed for {', '.join(missing)} "
            f"(mirrors tried: {', '.join(mirrors)}).\n" + "\n".join(errors) + "\n" + OFFLINE_HINT
        )
    return used
