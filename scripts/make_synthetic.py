"""Generate the offline synthetic FashionMNIST stand-in (the `make_synthetic` rule)."""

import logging

from speedlimit import logs
from speedlimit.data import idx


def main(dataset_root: str, train_size: int, test_size: int, seed: int) -> None:
    idx.write_synthetic(dataset_root, train_size, test_size, seed)
    idx.write_manifest(dataset_root)
    logging.info("wrote %d + %d synthetic images (seed %d) under %s", train_size, test_size,
                 seed, dataset_root)


if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    logs.to_rule_log(smk.log[0])
    main(smk.params.dataset_root, int(smk.wildcards.train_size), int(smk.wildcards.test_size),
         int(smk.wildcards.seed))
