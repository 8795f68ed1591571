"""Write the training images as PNG files in ImageFolder's layout (the `make_imagefolder`
rule), once per data set, for the imagefolder workload."""

import logging

from speedlimit import logs
from speedlimit.data import imagefolder


def main(dataset_root: str) -> None:
    count = imagefolder.write(dataset_root)
    logging.info("wrote %d PNG files under %s", count, imagefolder.root(dataset_root))


if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    logs.to_rule_log(smk.log[0])
    main(smk.params.dataset_root)
