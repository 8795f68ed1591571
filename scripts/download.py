"""Download and md5-check FashionMNIST (the `download_fashionmnist` rule)."""

import logging
import sys
from pathlib import Path

from speedlimit import download, logs


def main(raw_file: str, mirrors, md5s, retries: int, timeout: float) -> None:
    dataset_root = Path(raw_file).parents[2]  # <root>/FashionMNIST/raw/<file>
    try:
        download.download(dataset_root, list(mirrors), dict(md5s), retries, timeout)
    except download.DownloadError as err:
        logging.error("%s", err)
        sys.exit(f"speedlimit: {err}")


if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    logs.to_rule_log(smk.log[0])
    data = smk.config["data"]  # how to fetch, not what: no rerun trigger
    main(smk.output[0], data["mirrors"], smk.params.md5, data["retries"], data["timeout"])
