# Input functions over the decision's record (a race's rounds, read from its checkpoints), the
# run's outputs, and the answer printed when a run ends. Functions only: the rules that use
# them are in race.smk, summarize.smk and report.smk.


# The answer's levers and the decision's params; a race's rounds, read from the checkpoints'
# records.
LEVERS = {"threshold": config["train"]["threshold"], "margin": config["train"]["margin"]}
RACE_PARAMS = json.dumps(
    {
        "seed": config["train"]["seed"],
        "max_rounds": config["train"]["max_rounds"],
        "budget": config["train"]["budget"],
        **LEVERS,
    },
    sort_keys=True,
)
DECIDE_PARAMS = json.dumps({"repeats": PLAN.rounds, **LEVERS}, sort_keys=True)


def race_cells(round_):
    """The runs a round makes: round 0 every cell; later rounds as the round before decided."""
    if round_ == 0:
        return [cell.path for cell in PLAN.cells if cell.repeat == 0]
    return read_round(round_ - 1)["next"]["cells"]


ROUND_RECORDS = {}  # (path, mtime, size) -> the record: each round's file parsed once


def read_round(round_):
    """A round's record (waits for its checkpoint); one edited or cut by hand stops the run
    naming it, and how to decide it again."""
    path = checkpoints.race_round.get(round=round_).output[0]
    try:
        stat = os.stat(path)
        key = (path, stat.st_mtime_ns, stat.st_size)
        if key not in ROUND_RECORDS:
            with open(path) as fh:
                ROUND_RECORDS[key] = json.load(fh)
        return ROUND_RECORDS[key]
    except ValueError as err:
        raise WorkflowError(
            f"{path}: not valid JSON ({err}): a round of the race, decided from its records; "
            f"delete the file (rm {path}) and run snakemake again with -R race_round to "
            "decide the rounds again (no cell is measured again)"
        ) from None


def race_rounds():
    """The rounds of the race, up to the one that stopped it."""
    round_ = 0
    while not read_round(round_)["stopped"]:
        round_ += 1
    return round_ + 1


def race_runs():
    return [path for r in range(race_rounds()) for path in race_cells(r)]


def get_round_runs(wildcards):
    """A round's checkpoint reads every run so far: rounds 0 to this one."""
    return PLAN.run_files(p for r in range(int(wildcards.round) + 1) for p in race_cells(r))


def get_previous_round(wildcards):
    r = int(wildcards.round)
    return [] if r == 0 else checkpoints.race_round.get(round=r - 1).output


def race_priority(path):
    """A later round's run: its place in the order its round was given."""
    try:
        with open(f"results/race/round~{grid.parse_path(path).repeat - 1}.json") as fh:
            order = json.load(fh)["next"]["cells"]
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    return len(order) - order.index(path) if path in order else 0


def get_decisions(wildcards):
    """The decision record every later stage reads: the round that stopped the race, or with
    fixed repeats the `decide` rule's."""
    if not RACE:
        return ["results/decisions.json"]
    return checkpoints.race_round.get(round=race_rounds() - 1).output


def get_check_files(wildcards):
    """The whole epochs that check the race's predictions."""
    if not RACE:
        return []
    return [f"results/check/{path}.json" for path in read_round(race_rounds() - 1)["check"]]


FIGURES = ["epoch_duration", "speedup", "prediction", "race", "time_split", "quality", "published"]
REPORT_PAGES = ["findings", "published_vs_reproduced", "table", "summary"]  # rules/report.smk


def get_final_output():
    return (
        ["results/table.csv", "results/summary.csv", "results/findings.md"]
        + ["results/recommendation.yaml"]
        + [f"results/plots/{name}.png" for name in FIGURES]
        + [f"results/report/{name}.html" for name in REPORT_PAGES]
    )


def get_published_table():
    """The published table to compare with: report.published, else the shipped seed's."""
    path = config["report"]["published"]
    if path is None:
        return str(Path(workflow.basedir) / "reference" / "deeplizard-2019.csv")
    return path


# The answer on the terminal when the run ends, also when there was nothing to do (Snakemake
# runs no hook then, so an exit handler of the main process prints it): not after a failed,
# dry or touch run, and not for --lint, --report or the DAG (nothing executed).
ANSWER_FAILED = []


onerror:
    ANSWER_FAILED.append(True)


def print_answer():
    from speedlimit.results import answer

    if ANSWER_FAILED or workflow.executor_plugin is None or workflow.dryrun or workflow.touch:
        return
    text = answer.block("results")
    if text:
        print(text, flush=True)


if workflow.is_main_process:
    import atexit

    atexit.register(print_answer)
