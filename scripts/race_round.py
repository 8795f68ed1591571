"""Decide a round of the race (the `race_round` checkpoint): read every run so far, decide
per group what is shown (speedlimit.results.decisions), write results/race/round~R.json, and say
per group, on the terminal and in the log, what is still in the race."""

import json
import logging
import sys

from speedlimit import config, logs, record
from speedlimit.atomic import write_atomic
from speedlimit.results import decisions, schedule, stats


def main(run_files, round_file, round_, params, terminal=None) -> dict:
    """Every record is read and checked (speedlimit.record): a round is never decided on one
    that is cut short, corrupt or of another schema (:class:`record.RecordError` names it)."""
    schema = record.load_schema()
    records = [run for f in run_files  # (a group's round holds a record per setting)
               for run in record.read_runs(f, schema, record.RACE_REDO).values()]
    runs = decisions.runs_frame(records)
    outcomes = decisions.run_race(runs[runs["loader"].eq("dataloader")], forecast=True)
    state = schedule.round_file(outcomes, runs, round_, params["seed"], params["max_rounds"],
                            config.budget_seconds(params["budget"]))
    write_atomic(round_file, json.dumps(state, indent=2).encode())  # read by the DAG: whole
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
    stats.configure(params["threshold"], params["margin"])
    try:
        main(smk.input.runs, smk.output[0], int(smk.wildcards.round),
             json.loads(smk.params.race), terminal)
    except record.RecordError as err:
        logging.error("%s", err)
        print(f"speedlimit: {err}", file=terminal, flush=True)
        sys.exit(1)
