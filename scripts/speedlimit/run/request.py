"""One run of a cell, as the train_cell rule hands it to the job: the one hand-off.

The rule passes two things, both declared in it (``rules/train.smk``):

* its ``request`` param, one JSON object: what the run *measures* (the cell's settings, how
  it is timed, epochs, seed, data set, the workload's function and args) and the rerun triggers that
  ride along (code digests, failures so far, the hardware key). Changing any of it reruns the
  cell;
* its resource ``how`` (warm start, time limit, runs again while disturbed: :func:`how_text`)
  and the interpreter and lock file in its shell command: how the run *is run*, which is no
  rerun trigger (resources never are).

:meth:`Request.from_rule` parses them once, in the job's Python (``scripts/train_cell.py``);
the same object travels to a warm server as JSON (:meth:`to_json`, :meth:`from_json`) and is
what :func:`speedlimit.run.job.execute` runs. Torch-free.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from speedlimit import record
from speedlimit.grid import Cell
from speedlimit.run import fingerprint  # torch-free


@dataclass
class Request:
    """Everything a run of a cell needs."""

    cell: Cell
    dataset_root: str | None  # the pipeline's data set (None: the workload brings its own)
    output: str
    workload_function: str | None = None  # package.module:function (None: the built-in one)
    workload_args: dict = field(default_factory=dict)  # its keyword arguments (custom's)
    epochs: int = 1
    seed: int = 0
    timing: dict | None = None  # whole epochs (None) or a race's windows (run.probe)
    # How it is run (the rule's resources; no rerun trigger).
    warm_start: bool = True  # ask a warm server (the run records whether it got one)
    time_limit: float | None = None
    redo_disturbed: int = 0
    exclusive: bool = True  # under the machine's cell lock
    # Kept in the record (rerun triggers of the rule).
    failed_before: int = 0  # failed records this cell had before this run
    hardware: str | None = None  # the cuda cells' hardware key
    log: str | None = None
    # Filled in by the job.
    process_started: float | None = None  # when the job's Python started (epoch seconds)
    lock_acquired: float | None = None  # when it held the machine's cell lock
    on_failure: str | None = None  # where to write a status: failed record, if anywhere
    warm: bool = False  # runs in a process forked from a warm server
    cwd: str = field(default_factory=os.getcwd)
    env: dict = field(default_factory=lambda: dict(os.environ))
    # The job's CPU affinity, niceness, resource limits, umask and control groups: a warm
    # server's child takes them on, so that it is the process a cold start would have been.
    process: dict = field(default_factory=lambda: fingerprint.process())

    @classmethod
    def from_rule(cls, request: str, output: str, log: str | None, *, warm_start: bool = True,
                  time_limit: float | None = None, redo_disturbed: int = 0,
                  exclusive: bool = True, **job) -> "Request":
        """The rule's ``request`` param (JSON) and resources, parsed once."""
        fields = json.loads(request)
        timing = fields.get("timing") or {}
        if time_limit and timing.get("mode") == record.INTERLEAVED:  # a group's round: per setting
            time_limit *= len(timing["cells"])
        return cls(cell=Cell(**fields["cell"]), dataset_root=fields["dataset_root"],
                   output=output, workload_function=fields["workload"]["function"],
                   workload_args=fields["workload"].get("args") or {},
                   epochs=fields["epochs"], seed=fields["seed"], timing=fields.get("timing"),
                   warm_start=warm_start, time_limit=time_limit,
                   redo_disturbed=redo_disturbed, exclusive=exclusive,
                   failed_before=fields.get("failed_before", 0),
                   hardware=fields.get("hardware"), log=log, **job)

    @staticmethod
    def for_rule(cell: Cell, timing: dict, epochs: int, seed: int, dataset_root: str | None,
                 workload: dict, code: str, failed_before: int, hardware: str | None) -> str:
        """The rule's ``request`` param: what :meth:`from_rule` reads, as one stable string
        (sorted keys: the same request is the same text, or Snakemake would rerun it)."""
        return json.dumps({"cell": cell.params(), "timing": timing, "epochs": epochs,
                           "seed": seed, "dataset_root": dataset_root, "workload": workload,
                           "code": code, "failed_before": failed_before,
                           "hardware": hardware}, sort_keys=True)

    def params(self) -> dict:
        """The record's ``params`` as far as the request knows them."""
        return {**self.cell.params(), "epochs": self.epochs, "seed": self.seed,
                "hardware": self.hardware}

    def to_dict(self) -> dict:
        return {**self.__dict__, "cell": self.cell.params()}

    @classmethod
    def from_dict(cls, fields: dict) -> "Request":
        return cls(**{**fields, "cell": Cell(**fields["cell"])})

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> "Request":
        return cls.from_dict(json.loads(text))


# How a run is run, as the train_cell rule's ``how`` resource: key=value pairs, since a
# resource travels to a cluster job as plain text. Made by the workflow, read by the job.
def how_text(warm_start: bool, time_limit: float | None, redo_disturbed: int) -> str:
    """``warm_start=1,time_limit=none,redo_disturbed=0``: what :func:`parse_how` reads."""
    return (f"warm_start={int(warm_start)},time_limit={time_limit or 'none'},"
            f"redo_disturbed={redo_disturbed}")


def seconds(text: str) -> float | None:
    """A time limit as text: ``none`` (or null, 0, empty) is no limit."""
    return None if text.lower() in ("none", "null", "", "0") else float(text)


def parse_how(text: str) -> dict:
    """:func:`how_text`'s pairs: ``warm`` (bool), ``time_limit`` (seconds or None),
    ``redo_disturbed`` (int); a pair left out takes its default."""
    pairs = dict(item.split("=", 1) for item in text.split(",") if item)
    return {"warm": pairs.get("warm_start", "1") == "1",
            "time_limit": seconds(pairs.get("time_limit", "none")),
            "redo_disturbed": int(pairs.get("redo_disturbed", 0))}
