"""Train one grid cell and write its record (the `train_cell` rule's script).

Under Snakemake the rule hands over one request (its ``request`` param: what the run
measures) and how to run it (its resources: warm start, time limit, runs again when
disturbed), parsed once into a :class:`speedlimit.run.request.Request`. Standalone, the same
comes from the command line:

    python scripts/train_cell.py CELL --data-root DIR --output FILE [options]

where CELL is the cell's path under results/runs/ (e.g. dataloader/batch_size~100/...). With
a warm start (the default) the cell runs in a process forked from a warm server that has
already imported torch; cold (or when the warm start is unavailable: one warning in the log,
never a failure), in a process forked from this one. Either way this process waits, and
kills the cell's process group when it outlives train.time_limit (plus a grace) without
stopping itself. Exclusive (the default), it holds the machine's cell lock, which
scripts/train_cell.sh took before this Python started (``--lock-held``), so no two cells are
ever timed at the same time on one machine.

The job owns its output for its whole life (stopping an orphaned job of a killed run that
still owns it), and only a finished record is renamed into place. A cell that fails (an
exception, a DataLoader worker error, train.time_limit, too little shared memory, a crash)
leaves a complete record with ``status: failed``: the job exits 0 under Snakemake so the rest
of the grid runs, the aggregate step lists the cell as missing, and the next run retrains it.
"""

import time

STARTED = time.time()  # this Python's first statement: when the job's Python started running

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

from speedlimit import grid, logs, record  # noqa: E402
from speedlimit.run import job, lock  # noqa: E402
from speedlimit.run.request import Request, parse_how, seconds  # noqa: E402

log = logging.getLogger("speedlimit.train_cell")


def use_warm_start(requested: bool, environ=os.environ) -> bool:
    """A warm start, unless this is a SLURM job: the server would outlive the job's allocation
    and serve later cells outside the scheduler's control (and its CPU accounting)."""
    if requested and environ.get("SLURM_JOB_ID"):
        log.info("inside SLURM job %s: cold start (no warm server on a cluster)",
                 environ["SLURM_JOB_ID"])
        return False
    return requested


def run(request: Request, output: str, *, exclusive: bool | None = None,
        record_failure: bool = True, lock_held: float | None = None) -> int:
    """The job: own ``output``, hold the machine's cell lock, run the cell (warm or cold),
    and move its record into place; return the cell's exit code."""
    exclusive = request.exclusive if exclusive is None else exclusive
    with lock.own_output(output) as staged:
        request.output = str(staged)
        request.on_failure = str(staged) if record_failure else None
        with lock.machine_lock(exclusive, holder=request.cell.path,
                               held_since=lock_held) as acquired:
            request.lock_acquired = acquired
            code = _run_warm_or_cold(request)
        if code and record_failure and not staged.exists():
            # The cell's process died without a word (a signal, the OOM killer, a bus error).
            reason = (f"the cell's process died (signal {code - 128})" if code > 128
                      else f"the cell's process exited with code {code}")
            record.write(staged, job.failed(request, reason + "; see its log", code))
        if staged.exists():
            if code:
                record.count_failure(output)  # so the next run retrains this cell
            os.replace(staged, output)
        if code:
            log.error("cell %s failed with exit code %d (traceback above)", request.cell.path,
                      code)
        return code


def _run_warm_or_cold(request: Request) -> int:
    if use_warm_start(request.warm_start):
        from speedlimit.run import warm

        try:
            return warm.run(request)
        except warm.WarmUnavailable as why:  # before the clock: start it cold
            log.warning("warm start unavailable, so the cell starts cold: %s", why)
    return job.run_cold(request)


def run_again_while_disturbed(request: Request, output: str, code: int,
                              lock_held: float | None) -> int:
    """train.redo_disturbed: run the cell again, at most that many times, while its record is
    flagged disturbed; the final record keeps the disturbed attempts' reference timings."""
    references = []
    for redo in range(1, request.redo_disturbed + 1):
        done = record.peek(output) or {}
        if code or not (done.get("reference") or {}).get("disturbed"):
            break
        references.append(done["reference"])
        log.warning("cell %s was disturbed (reference kernel %.1f ms before its clock, %.1f "
                    "ms after; other processes' CPU share %s): running it again (%d of "
                    "train.redo_disturbed = %d)", request.cell.path,
                    1e3 * done["reference"]["before"], 1e3 * done["reference"]["after"],
                    done["reference"].get("other_cpu_share"), redo, request.redo_disturbed)
        code = run(request, output, lock_held=lock_held)
    if references and not code:
        final = record.peek(output)
        final["redone"] = references
        record.write(output, final)
    return code


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train one grid cell and write its record.")
    parser.add_argument("cell", nargs="?", help="cell path, e.g. dataloader/batch_size~100/...")
    parser.add_argument("--request", help="the train_cell rule's request param (JSON): the "
                        "cell, its timing, epochs, seed, data set root, workload and failures "
                        "so far, instead of CELL, --data-root, --epochs, --seed, "
                        "--workload-function, --workload-args and --failed-before")
    parser.add_argument("--data-root", help="dataset root torchvision reads (for the "
                        "built-in workloads, and a custom one of the old signature)")
    parser.add_argument("--output", required=True, help="record (JSON) to write")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log", default=None, help="the job's log: this process, its workers "
                        "and the cell write to it; the terminal gets one line if the cell fails")
    parser.add_argument("--workload-function", default=None,
                        help="package.module:function that makes the cell's workload "
                        "(default: the built-in one of the cell's workload)")
    parser.add_argument("--workload-args", type=json.loads, default={},
                        help="its keyword arguments, as a JSON object (workloads.custom.args)")
    parser.add_argument("--failed-before", type=int, default=0,
                        help="failed runs of this cell so far (recorded in the record)")
    parser.add_argument("--record-failure", action=argparse.BooleanOptionalAction,
                        default=True, help="write a status: failed record when the cell fails")
    # How to run it: the rule's `how` resource, or each on its own.
    parser.add_argument("--how", type=parse_how, default={},
                        help="warm_start=0|1,time_limit=SECONDS|none,redo_disturbed=N (the "
                        "train_cell rule's resource; the options below override it)")
    parser.add_argument("--warm", action=argparse.BooleanOptionalAction, default=None,
                        help="warm start (when available; else a cold start)")
    parser.add_argument("--time-limit", type=seconds, default=None,
                        help="seconds (none or 0 = no limit)")
    parser.add_argument("--redo-disturbed", type=int, default=None,
                        help="runs again at most this many times while the cell is disturbed")
    parser.add_argument("--exclusive", action=argparse.BooleanOptionalAction, default=True,
                        help="take the machine's cell lock here (unless train_cell.sh holds it)")
    parser.add_argument("--lock-held", type=float, default=None,
                        help="when scripts/train_cell.sh took the machine's cell lock (epoch "
                        "seconds): this process inherited it")
    args = parser.parse_args(argv)
    if not args.request and not (args.cell and (args.data_root or args.workload_function)):
        parser.error("give either --request, or CELL and --data-root (or --workload-function "
                     "for a workload that brings its own data)")
    for key, default in (("warm", True), ("time_limit", None), ("redo_disturbed", 0)):
        if getattr(args, key) is None:
            setattr(args, key, args.how.get(key, default))
    return args


def request_of(args: argparse.Namespace) -> Request:
    """The one place a request is made: from the rule's, or from a standalone command line."""
    how = {"warm_start": args.warm, "time_limit": args.time_limit,
           "redo_disturbed": args.redo_disturbed, "exclusive": args.exclusive,
           "process_started": STARTED}
    if args.request:
        return Request.from_rule(args.request, args.output, args.log, **how)
    return Request(cell=grid.parse_path(args.cell), dataset_root=args.data_root,
                   output=args.output, workload_function=args.workload_function,
                   workload_args=args.workload_args,
                   epochs=args.epochs, seed=args.seed, failed_before=args.failed_before,
                   log=args.log, **how)


def main(argv=None) -> int:
    args = parse_args(argv)
    terminal = sys.stderr
    if args.log and args.request:  # the rule's job: everything it prints goes to its log
        log_fd = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        terminal = os.fdopen(os.dup(2), "w")
        os.dup2(log_fd, 2)
        os.close(log_fd)
    logs.setup()
    request = request_of(args)
    code = run(request, args.output, record_failure=args.record_failure,
               lock_held=args.lock_held)
    code = run_again_while_disturbed(request, args.output, code, args.lock_held)
    done = record.peek(args.output) if code and args.request else None
    if done and done.get("status") == record.FAILED:
        # Recorded: let the rest of the grid run; the aggregate step lists this cell.
        print(f"speedlimit: cell {request.cell.path} FAILED: {done['reason']}\n"
              f"  (recorded as status: failed in {args.output}; its log: {args.log}; "
              "the next run retrains it)", file=terminal, flush=True)
        code = 0
    return code


if __name__ == "__main__":
    sys.exit(main())
