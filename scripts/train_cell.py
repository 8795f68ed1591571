"""Train one grid cell and write its metrics JSON (the `train_cell` rule's command).

Usage: python scripts/train_cell.py CELL --data-root DIR --output FILE [options]

CELL is the cell's path under results/runs/ (e.g. dataloader/batch_size~100/...). With
--warm (the default) the cell runs in a process forked from a warm server that has already
imported torch; with --cold it runs here. With --exclusive (the default) it first takes the
machine's cell lock, so no two cells are ever timed at the same time on one machine.
"""

import argparse
import logging
import os
import sys
import time

from speedlimit import cell as cells

log = logging.getLogger("speedlimit.train_cell")


def use_warm_start(requested: bool, environ=os.environ) -> bool:
    """A warm start, unless this is a SLURM job: the server would outlive the job's allocation
    and serve later cells outside the scheduler's control (and its CPU accounting)."""
    if requested and environ.get("SLURM_JOB_ID"):
        log.info("inside SLURM job %s: cold start (no warm server on a cluster)",
                 environ["SLURM_JOB_ID"])
        return False
    return requested


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Train one grid cell and write its metrics JSON.")
    parser.add_argument("cell", help="cell path, e.g. dataloader/batch_size~100/...")
    parser.add_argument("--data-root", required=True, help="dataset root torchvision reads")
    parser.add_argument("--output", required=True, help="metrics JSON to write")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=None)
    parser.add_argument("--log", default=None, help="log file the cell appends to (warm start)")
    parser.add_argument("--warm", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--exclusive", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    cells.setup_logging()
    request = cells.Request(cell=args.cell, dataset_root=args.data_root, output=args.output,
                            epochs=args.epochs, seed=args.seed, time_limit=args.time_limit,
                            log=args.log, process_started=cells.process_start_time())
    with cells.machine_lock(args.exclusive):
        request.lock_acquired = time.time()
        if use_warm_start(args.warm):
            from speedlimit import warm

            code = warm.run(request)
            if code:
                log.error("cell %s failed with exit code %d (traceback above)", args.cell, code)
            return code
        return cells.execute(request)


def snakemake_main(smk) -> None:
    """Entry of the `train_cell` rule: map the job onto the command line above."""
    p = smk.params
    dataset_root = os.path.dirname(os.path.dirname(os.path.dirname(smk.input[0])))
    argv = [smk.wildcards.cell, "--data-root", dataset_root, "--output", smk.output[0],
            "--epochs", str(p.epochs), "--seed", str(p.seed), "--log", smk.log[0],
            "--warm" if p.warm else "--no-warm",
            "--exclusive" if p.exclusive else "--no-exclusive"]
    if p.time_limit:
        argv += ["--time-limit", str(p.time_limit)]
    # Everything this process and its DataLoader workers print goes to the rule's log.
    log_fd = os.open(smk.log[0], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 2)
    sys.exit(main(argv))


if __name__ == "__main__":
    if "snakemake" in globals():
        snakemake_main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
    else:
        sys.exit(main())
