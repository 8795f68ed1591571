"""Train one grid cell and write its metrics JSON (the `train_cell` rule's command).

Usage: python scripts/train_cell.py CELL --data-root DIR --output FILE [options]

CELL is the cell's path under results/runs/ (e.g. dataloader/batch_size~100/...). With
--warm (the default) the cell runs in a process forked from a warm server that has already
imported torch; with --cold it runs here. With --exclusive (the default) it first takes the
machine's cell lock, so no two cells are ever timed at the same time on one machine.

The job owns its output for its whole life (stopping an orphaned job of a killed run that
still owns it), and only a finished record is renamed into place. A cell that fails (an
exception, a DataLoader worker error, train.time_limit, too little shared memory, a crash)
leaves a complete record with ``status: failed``: the job exits 0 under Snakemake so the rest
of the grid runs, the aggregate step lists the cell as missing, and the next run retrains it.
"""

import argparse
import logging
import os
import sys
import time

from speedlimit import cell as cells
from speedlimit import logs

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
    parser.add_argument("--failed-before", type=int, default=0,
                        help="failed runs of this cell so far (recorded in the metrics)")
    parser.add_argument("--record-failure", action=argparse.BooleanOptionalAction,
                        default=True, help="write a status: failed record when the cell fails")
    parser.add_argument("--warm", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--exclusive", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    logs.setup()
    with cells.own_output(args.output) as staged:
        request = cells.Request(cell=args.cell, dataset_root=args.data_root, output=str(staged),
                                epochs=args.epochs, seed=args.seed, time_limit=args.time_limit,
                                log=args.log, process_started=cells.process_start_time(),
                                failed_before=args.failed_before,
                                on_failure=str(staged) if args.record_failure else None)
        with cells.machine_lock(args.exclusive):
            request.lock_acquired = time.time()
            if use_warm_start(args.warm):
                from speedlimit import warm

                code = warm.run(request)
            else:
                code = cells.execute(request)
        if code and args.record_failure and not staged.exists():
            # The cell's process died without a word (a signal, the OOM killer, a bus error).
            reason = (f"the cell's process died (signal {code - 128})" if code > 128
                      else f"the cell's process exited with code {code}")
            cells.write_json(staged, cells.failed_record(cells.parse_path(args.cell), request,
                                                         reason + "; see its log", code))
        if staged.exists():
            if code:
                cells.count_failure(args.output)  # so the next run retrains this cell
            os.replace(staged, args.output)
        if code:
            log.error("cell %s failed with exit code %d (traceback above)", args.cell, code)
        return code


def snakemake_main(smk) -> None:
    """Entry of the `train_cell` rule: map the job onto the command line above."""
    p = smk.params
    # How a cell is run (not what it measures) comes from the config, not from params, so
    # that switching e.g. to profiles/slurm (no warm start, no lock) retrains nothing.
    train = smk.config["train"]
    dataset_root = os.path.dirname(os.path.dirname(os.path.dirname(smk.input[0])))
    argv = [smk.wildcards.cell, "--data-root", dataset_root, "--output", smk.output[0],
            "--epochs", str(p.epochs), "--seed", str(p.seed), "--log", smk.log[0],
            "--failed-before", str(cells.failures_so_far(smk.output[0])),
            "--warm" if train["warm_start"] else "--no-warm",
            "--exclusive" if train["exclusive"] else "--no-exclusive"]
    if train["time_limit"]:
        argv += ["--time-limit", str(train["time_limit"])]
    # Everything this process and its DataLoader workers print goes to the rule's log.
    log_fd = os.open(smk.log[0], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    terminal = os.fdopen(os.dup(2), "w")
    os.dup2(log_fd, 2)
    code = main(argv)
    record = cells.read_status(smk.output[0]) if code else None
    if record and record.get("status") == "failed":
        # Recorded: let the rest of the grid run; the aggregate step lists this cell.
        print(f"speedlimit: cell {smk.wildcards.cell} FAILED: {record['reason']}\n"
              f"  (recorded as status: failed in {smk.output[0]}; its log: {smk.log[0]}; "
              "the next run retrains it)", file=terminal, flush=True)
        code = 0
    sys.exit(code)


if __name__ == "__main__":
    if "snakemake" in globals():
        snakemake_main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
    else:
        sys.exit(main())
