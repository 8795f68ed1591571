"""Download and md5-check FashionMNIST (the `download_fashionmnist` rule)."""

import logging
import sys

from speedlimit import logs
from speedlimit.data import download, idx


def main(dataset_root: str, mirrors, md5s, retries: int, timeout: float) -> None:
    try:
        download.download(dataset_root, list(mirrors), dict(md5s), retries, timeout)
    except download.DownloadError as err:
        logging.error("%s", err)
        sys.exit(f"speedlimit: {err}")
    idx.write_manifest(dataset_root)  # last: the files are whole and checked


if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    logs.to_rule_log(smk.log[0])
    data = smk.config["data"]  # how to fetch, not what: no rerun trigger
    main(smk.params.dataset_root, data["mirrors"], smk.params.md5, data["retries"], data["timeout"])
