"""Write the training images as PNG files in ImageFolder's layout (the `make_imagefolder`
rule), once per data set, for the imagefolder workload."""

import logging
import sys

from speedlimit import logs
from speedlimit.data import idx, imagefolder


def main(dataset_root: str) -> None:
    lacks = idx.lacking(dataset_root)  # (the rule declares the data set's checksums)
    if lacks:
        logging.error("%s", lacks)
        sys.exit(f"speedlimit: {lacks}")
    count = imagefolder.write(dataset_root)
    logging.info("wrote %d PNG files under %s", count, imagefolder.root(dataset_root))


if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    logs.to_rule_log(smk.log[0])
    main(smk.params.dataset_root)
