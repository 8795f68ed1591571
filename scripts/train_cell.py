"""Train one grid cell and write its metrics JSON (the `train_cell` rule's script).

Under Snakemake, the job's ``spec`` param is its whole hand-off (the cell's settings, epochs,
seed, data set root, workload function, failures so far); standalone, the same comes from the
command line:

    python scripts/train_cell.py CELL --data-root DIR --output FILE [options]

where CELL is the cell's path under results/runs/ (e.g. dataloader/batch_size~100/...). With
a warm start (the default) the cell runs in a process forked from a warm server that has
already imported torch; cold (or when the warm start is unavailable: one warning in the log,
never a failure), in a process forked from this one. Either way this process waits, and
kills the cell's process group when it outlives train.time_limit (plus a grace) without
stopping itself. Exclusive (the default), it first takes the machine's cell lock, so no two
cells are ever timed at the same time on one machine.

The job owns its output for its whole life (stopping an orphaned job of a killed run that
still owns it), and only a finished record is renamed into place. A cell that fails (an
exception, a DataLoader worker error, train.time_limit, too little shared memory, a crash)
leaves a complete record with ``status: failed``: the job exits 0 under Snakemake so the rest
of the grid runs, the aggregate step lists the cell as missing, and the next run retrains it.
"""

import time

STARTED = time.time()  # this Python's first statement: when the job's Python started running

import argparse  # noqa: E402
import json
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

from speedlimit import grid, logs  # noqa: E402
from speedlimit.run import job  # noqa: E402

log = logging.getLogger("speedlimit.train_cell")
RUN_ENV = "SPEEDLIMIT_RUN"


def use_warm_start(requested: bool, environ=os.environ) -> bool:
    """A warm start, unless this is a SLURM job: the server would outlive the job's allocation
    and serve later cells outside the scheduler's control (and its CPU accounting)."""
    if requested and environ.get("SLURM_JOB_ID"):
        log.info("inside SLURM job %s: cold start (no warm server on a cluster)",
                 environ["SLURM_JOB_ID"])
        return False
    return requested


def run(request: job.Request, output: str, *, warm: bool = True, exclusive: bool = True,
        record_failure: bool = True) -> int:
    """The job: own ``output``, hold the machine's cell lock, run the cell (warm or cold),
    and move its record into place; return the cell's exit code."""
    with job.own_output(output) as staged:
        request.output = str(staged)
        request.on_failure = str(staged) if record_failure else None
        with job.machine_lock(exclusive, holder=request.cell.path) as acquired:
            request.lock_acquired = acquired
            code = None
            if use_warm_start(warm):
                from speedlimit.run import warm as warm_start

                try:
                    code = warm_start.run(request)
                except warm_start.WarmUnavailable as why:  # before the clock: start it cold
                    log.warning("warm start unavailable, so the cell starts cold: %s", why)
            if code is None:
                code = job.run_cold(request)
        if code and record_failure and not staged.exists():
            # The cell's process died without a word (a signal, the OOM killer, a bus error).
            reason = (f"the cell's process died (signal {code - 128})" if code > 128
                      else f"the cell's process exited with code {code}")
            job.write_json(staged, job.failed_record(request.cell, request,
                                                     reason + "; see its log", code))
        if staged.exists():
            if code:
                job.count_failure(output)  # so the next run retrains this cell
            os.replace(staged, output)
        if code:
            log.error("cell %s failed with exit code %d (traceback above)", request.cell.path,
                      code)
        return code


def _seconds(text: str) -> float | None:
    return None if text.lower() in ("none", "null", "") else float(text)


def main(argv=None, environ=os.environ) -> int:
    # Under the train_cell rule, how to run the cell (warm start, time limit) comes from the
    # workflow in $SPEEDLIMIT_RUN; the command line overrides it.
    run_env = json.loads(environ.get(RUN_ENV) or "{}")
    parser = argparse.ArgumentParser(description="Train one grid cell and write its metrics JSON.")
    parser.add_argument("cell", nargs="?", help="cell path, e.g. dataloader/batch_size~100/...")
    parser.add_argument("--spec", help="the train_cell rule's spec param (JSON): the cell, "
                        "epochs, seed, data set root, workload and failures so far, instead "
                        "of CELL, --data-root, --epochs, --seed, --workload-function and "
                        "--failed-before")
    parser.add_argument("--data-root", help="dataset root torchvision reads")
    parser.add_argument("--output", required=True, help="metrics JSON to write")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=_seconds, default=run_env.get("time_limit"),
                        help="seconds (none = no limit)")
    parser.add_argument("--log", default=None, help="the job's log: this process, its workers "
                        "and the cell write to it; the terminal gets one line if the cell fails")
    parser.add_argument("--workload-function", default=None,
                        help="package.module:function that makes the cell's workload "
                        "(default: the built-in one of the cell's workload)")
    parser.add_argument("--failed-before", type=int, default=0,
                        help="failed runs of this cell so far (recorded in the metrics)")
    parser.add_argument("--record-failure", action=argparse.BooleanOptionalAction,
                        default=True, help="write a status: failed record when the cell fails")
    parser.add_argument("--warm", action=argparse.BooleanOptionalAction,
                        default=run_env.get("warm_start", True),
                        help="warm start (when available; else a cold start)")
    parser.add_argument("--redo-disturbed", type=int,
                        default=run_env.get("redo_disturbed", 0),
                        help="runs again at most this many times while the cell is disturbed")
    parser.add_argument("--exclusive", action=argparse.BooleanOptionalAction, default=True,
                        help="take the machine's cell lock here (unless train_cell.sh holds it)")
    args = parser.parse_args(argv)
    terminal = sys.stderr
    if args.log and args.spec:  # the rule's job: everything it prints goes to its log
        log_fd = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        terminal = os.fdopen(os.dup(2), "w")
        os.dup2(log_fd, 2)
        os.close(log_fd)
    logs.setup()
    if args.spec:
        spec = json.loads(args.spec)
        cell, data_root = grid.Cell(**spec["cell"]), spec["dataset_root"]
        epochs, seed, failed_before = spec["epochs"], spec["seed"], spec["failed_before"]
        hardware = spec.get("hardware")
        function = spec["workload"]["function"]
        timing = spec.get("timing")
    elif args.cell and args.data_root:
        cell, data_root = grid.parse_path(args.cell), args.data_root
        epochs, seed, failed_before = args.epochs, args.seed, args.failed_before
        hardware = None
        function = args.workload_function
        timing = None
    else:
        parser.error("give either --spec or CELL and --data-root")
    request = job.Request(cell=cell, dataset_root=data_root, output=args.output, epochs=epochs,
                          seed=seed, time_limit=args.time_limit, log=args.log,
                          process_started=STARTED,
                          failed_before=failed_before, hardware=hardware,
                          workload_function=function, timing=timing)
    code = run(request, args.output, warm=args.warm, exclusive=args.exclusive,
               record_failure=args.record_failure)
    references = []
    for redo in range(1, args.redo_disturbed + 1):
        done = job.read_status(args.output) or {}
        if code or not (done.get("reference") or {}).get("disturbed"):
            break
        references.append(done["reference"])
        log.warning("cell %s was disturbed (reference kernel %.1f ms before its clock, %.1f "
                    "ms after; other processes' CPU share %s): running it again (%d of "
                    "train.redo_disturbed = %d)", cell.path, 1e3 * done["reference"]["before"],
                    1e3 * done["reference"]["after"], done["reference"].get("other_cpu_share"),
                    redo, args.redo_disturbed)
        code = run(request, args.output, warm=args.warm, exclusive=args.exclusive,
                   record_failure=args.record_failure)
    if references and not code:
        final = job.read_status(args.output)
        final["redone"] = references  # the disturbed attempts' reference timings
        job.write_json(args.output, final)
    record = job.read_status(args.output) if code and args.spec else None
    if record and record.get("status") == "failed":
        # Recorded: let the rest of the grid run; the aggregate step lists this cell.
        print(f"speedlimit: cell {cell.path} FAILED: {record['reason']}\n"
              f"  (recorded as status: failed in {args.output}; its log: {args.log}; "
              "the next run retrains it)", file=terminal, flush=True)
        code = 0
    return code


if __name__ == "__main__":
    sys.exit(main())
