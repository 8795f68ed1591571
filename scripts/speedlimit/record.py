"""One record per run of a cell (``results/runs/<cell>.json``): how it is built, written, read
back and checked, and how many times a cell has failed. The one place for it: the workflow's
rerun triggers (``rules/common.smk``), the job (``scripts/train_cell.py``,
:mod:`speedlimit.run.job`), the training loop (:mod:`speedlimit.run.train`), the race's round
checkpoint (``scripts/decide.py``), the aggregation (:mod:`speedlimit.results.aggregate`)
and the findings (the check epochs' records: ``scripts/findings.py``) all use this module, and
read a record only through :func:`read` (checked) or :func:`peek` (a rerun trigger's look).
Torch-free.

A record is only ever a whole file (written through a temporary file and a rename). A run
that finishes writes ``status: ok``; one that cannot run here ``skipped`` with its reason; one
that fails ``failed`` with its reason, exit code and log. Each failure bumps a count kept
beside the record (``.<file>.failures``), which is part of the cell's rerun trigger: the next
run sees changed params and trains exactly the failed cells again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema

from speedlimit.atomic import write_atomic

SCHEMA_VERSION = 2
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "metrics.schema.json"
# What to do about a record that cannot be used (``{path}``: the record's): the next run trains
# that cell again, and leaves every other record as it is.
REDO = "delete the file (rm {path}) and run snakemake again to measure the cell again"
# In a race: Snakemake removes the round file of the checkpoint that failed on the record, and
# with the findings of the run before present it does not decide that round again by itself
# (snakemake/snakemake#4124); -R race_round does, from the records (none is measured again but
# the deleted one).
# With fixed repeats the decision reads every record first (the `decide` rule); the later
# stages' outputs stay, so a deleted record alone reruns nothing: -R decide measures it again.
FIXED_REDO = ("delete the file (rm {path}) and run snakemake again with -R decide, which "
              "measures that cell again and decides again from the records (every other "
              "record is kept)")
RACE_REDO = ("delete the file (rm {path}) and run snakemake again with -R race_round, which "
             "measures that cell again and decides the race's rounds again from the records "
             "(every other record is kept)")
OK, SKIPPED, FAILED = "ok", "skipped", "failed"
INTERLEAVED = "interleaved"  # timing mode of a group's round timed in one job


class RecordError(ValueError):
    """A record is unreadable or does not follow the schema; the message names it."""


# --- writing -------------------------------------------------------------------------------


def write(path: str | os.PathLike, record: dict) -> None:
    """Write ``record`` through a temporary file and a rename: never a partial JSON."""
    text = json.dumps(record, indent=2, allow_nan=False) + "\n"  # raises before any write
    write_atomic(path, text.encode())


def ok(cell, params: dict, **measured) -> dict:
    """A finished run's record: ``cell`` (its path), ``params`` (every parameter that shaped
    it) and what was measured (epochs, durations, environment, ...: the schema's fields)."""
    return {"schema_version": SCHEMA_VERSION, "status": OK, "cell": cell, "params": params,
            **measured}


def _without_epochs(cell, params: dict, status: str, reason: str, environment: dict,
                    **extra) -> dict:
    return {"schema_version": SCHEMA_VERSION, "status": status, "reason": reason, **extra,
            "cell": cell, "params": params, "epochs": [], "environment": environment}


def skipped(cell, params: dict, reason: str, environment: dict) -> dict:
    """A complete record of a run that cannot happen here (e.g. cuda without a GPU)."""
    return _without_epochs(cell, params, SKIPPED, reason, environment)


def failed(cell, params: dict, reason: str, environment: dict, exit_code: int,
           log: str | None, failed_before: int) -> dict:
    """A complete record of a run that did not finish: the table marks it missing."""
    return _without_epochs(cell, params, FAILED, reason, environment, exit_code=exit_code,
                           log=log, failed_before=failed_before)


def with_job(done: dict, hardware: str | None, warm: bool, process_started: float | None,
             lock_acquired: float | None, written: float) -> dict:
    """A run's record with what its job knows: the hardware key it ran under, whether it ran
    in a warm server's child, and the job's moments (when its Python started, when it held
    the machine's cell lock, when it wrote the record)."""
    done["params"]["hardware"] = hardware
    done["environment"]["warm_start"] = warm
    done.setdefault("timeline", {}).update(process_started=process_started,
                                           lock_acquired=lock_acquired, written=written)
    return done


def missing(cell, params: dict, reason: str | None = None) -> dict:
    """What the table holds for a run without a record (it failed or did not run)."""
    return {"status": "missing",
            "reason": reason or "no metrics file (the cell failed or did not run)",
            "cell": cell, "params": params, "epochs": []}


# --- reading -------------------------------------------------------------------------------


def peek(path: str | os.PathLike) -> dict | None:
    """A record as it is, unchecked (status, params, reference, ...), or None when absent or
    unreadable: what a rerun trigger or the job needs to know without failing."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def read(path: str | Path, schema: dict | None = None, redo: str = REDO) -> dict:
    """Parse and check one record; raise :class:`RecordError` naming file, problem and what to
    do (``redo``, given the path: :data:`REDO` or :data:`RACE_REDO`)."""
    schema = schema or load_schema()
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise RecordError(f"{path}: cannot be read: {err}") from err
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise RecordError(f"{path}: not valid JSON (truncated or corrupt?): {err}; "
                          + redo.format(path=path)) from err
    if not isinstance(record, dict):
        raise RecordError(f"{path}: holds {json.dumps(record)[:40]}, not a record (a JSON "
                          "object); " + redo.format(path=path))
    version = record.get("schema_version")
    if version != SCHEMA_VERSION:
        raise RecordError(
            f"{path}: schema_version {version!r} is not the supported {SCHEMA_VERSION}; "
            + redo.format(path=path)
        )
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(record))
    if error is not None:
        where = "/".join(map(str, error.absolute_path)) or "(top level)"
        raise RecordError(f"{path}: does not follow schemas/metrics.schema.json at {where}: "
                          f"{error.message}; " + redo.format(path=path))
    return record


def runs_of(path: str | Path, done: dict) -> dict[str, dict]:
    """The records of the cells a read record holds, by cell path: itself, or a group's
    runs (a race's round of a group timed in one job: :mod:`speedlimit.run.group`). A group
    job that failed holds no runs: each cell of its round gets its failed record."""
    if done.get("timing", {}).get("mode") != INTERLEAVED:
        return {done["cell"]: done}
    if done["status"] == OK:
        runs = {run["cell"]: run for run in done.get("runs") or []}
        if not runs:
            raise RecordError(f"{path}: a group's record with no runs; "
                              + RACE_REDO.format(path=path))
        return runs
    return {cell: {**done, "cell": cell, "params": {**done["params"], **_settings(cell)}}
            for cell in done["timing"].get("cells") or []}


def _settings(cell_path: str) -> dict:
    from speedlimit import grid  # (core; imports no torch)

    return grid.parse_path(cell_path).params()


def read_runs(path: str | Path, schema: dict | None = None, redo: str = REDO) -> dict:
    """:func:`read`, then the records of the cells it holds (:func:`runs_of`)."""
    return runs_of(path, read(path, schema, redo))


# --- failures ------------------------------------------------------------------------------


def failures_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.failures")


def failures_so_far(path: str | os.PathLike) -> int:
    """How many runs of the cell whose record is ``path`` have failed so far.

    A rerun trigger (part of the train_cell rule's request): each failure bumps it, so the
    request differs from the one the failed job ran with and Snakemake reruns the cell; a
    success leaves it alone, so the cell then stays done. The count lives in a file of its
    own because Snakemake removes a job's output before running it again.
    """
    try:
        text = failures_path(path).read_text().strip()
    except OSError:
        return 0
    return int(text) if text.isdigit() else 0


def count_failure(path: str | os.PathLike) -> int:
    count = failures_so_far(path) + 1
    write_atomic(failures_path(path), f"{count}\n".encode())
    return count
