"""Where a job's messages go: one logging format, and each rule's log file."""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

FORMAT = "%(asctime)s %(name)s %(levelname)s: %(message)s"


def setup() -> None:
    """Log INFO and up to (the current) stderr in the project's format."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format=FORMAT, force=True)


def to_rule_log(path: str | os.PathLike) -> TextIO:
    """Send a rule script's stderr and logging to its ``log:`` file (as Snakemake's own
    workflows do); return the terminal's stderr, for the few lines a user must see there."""
    terminal = sys.stderr
    sys.stderr = open(path, "w")  # noqa: SIM115 - lives as long as the script
    setup()
    return terminal
