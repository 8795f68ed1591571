"""Decide the run (the only stage that does): read every run so far, replay it into each
group's decisions (speedlimit.results.decisions) and write the decision record every later
stage reads (aggregate, plot, findings, the answer on the terminal).

In a race it is the `race_round` checkpoint: results/race/round~R.json also names the next
round's runs, or why the race stops, and a line per group says on the terminal and in the log
what is still in the race. With fixed repeats it is the `decide` rule, once, after every
repeat: results/decisions.json (one look at the end)."""

import json
import logging
import sys

from speedlimit import config, logs, record
from speedlimit.atomic import write_atomic
from speedlimit.results import decisions, schedule


def main(run_files, out_file, round_, params, terminal=None) -> dict:
    """Every record is read and checked (speedlimit.record): a round is never decided on one
    that is cut short, corrupt or of another schema (:class:`record.RecordError` names it).
    ``round_`` None: fixed repeats (no race)."""
    schema = record.load_schema()
    race = round_ is not None
    redo = record.RACE_REDO if race else record.FIXED_REDO
    records = [run for f in run_files  # (a group's round holds a record per setting)
               for run in record.read_runs(f, schema, redo).values()]
    runs = decisions.runs_frame(records)
    levers = {"threshold": params["threshold"], "margin": params["margin"]}
    outcomes = decisions.run_race(runs[runs["loader"].eq("dataloader")], levers, anytime=race,
                                  forecast=True)
    if race:
        state = schedule.round_file(outcomes, runs, round_, params["seed"],
                                    params["max_rounds"], config.budget_seconds(params["budget"]),
                                    levers)
    else:
        state = schedule.fixed_file(outcomes, params["repeats"], levers)
    write_atomic(out_file, json.dumps(state, indent=2).encode())  # read by the DAG: whole
    if not race:
        return state
    lines = [schedule.progress_line(g, round_) for g in state["groups"]]
    if state["stopped"]:
        lines.append(f"race stopped after {state['rounds']} round(s) "
                     f"({state['spent_seconds'] / 60:.1f} min): {state['stopped']}")
    for line in lines:
        logging.info("%s", line)
        print(f"speedlimit: {line}", file=terminal or sys.stdout, flush=True)
    return state


if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    terminal = logs.to_rule_log(smk.log[0])
    params = json.loads(smk.params.race)
    round_ = getattr(smk.wildcards, "round", None)
    try:
        main(smk.input.runs, smk.output[0], None if round_ is None else int(round_), params,
             terminal)
    except record.RecordError as err:
        logging.error("%s", err)
        print(f"speedlimit: {err}", file=terminal, flush=True)
        sys.exit(1)
