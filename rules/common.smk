# Glue: config validation, the grid, and input functions. Logic lives in scripts/speedlimit/.
import collections
import functools
import inspect
import json
import math
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.settings.types import DeploymentMethod

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

from speedlimit import config as config_module  # noqa: E402
from speedlimit import grid, project, record  # noqa: E402
from speedlimit.run import lock, preflight  # noqa: E402
from speedlimit.run.request import Request, how_text  # noqa: E402
from speedlimit.data import idx, imagefolder  # noqa: E402
from speedlimit.run import workloads  # noqa: E402

try:
    config = config_module.validate(
        config, Path(workflow.basedir) / "schemas" / "config.schema.yaml"
    )
except config_module.ConfigError as err:
    raise WorkflowError(f"{err}\n(config.yaml, --configfile and --config together)") from None

# train.repeats: auto races the settings in rounds (rules/race.smk); a number runs that many
# whole epochs of every cell. Either way a run of a cell is `repeat~R`: the race's round R.
RACE = config["train"]["repeats"] == "auto"
ROUNDS = config["train"]["max_rounds"] if RACE else config["train"]["repeats"]
CELLS, SKIPPED = grid.expand(config["grid"], ROUNDS)
if RACE:  # (the combinations torch rejects, once each)
    SKIPPED = grid.expand(config["grid"], 1)[1]
CELL_PATHS = {cell.path: cell for cell in CELLS}


def repeats_warning():
    """Before any job: fixed repeats (or a race's max_rounds) too few for the run's
    comparisons to decide anything on a quiet machine, with the number needed."""
    from speedlimit.results import sequential

    comparisons = grid.comparisons([cell for cell in CELLS if cell.repeat == 0])
    if not comparisons:
        return None
    key = "max_rounds" if RACE else "repeats"
    needed = sequential.repeats_needed(comparisons, anytime=RACE)
    if ROUNDS >= needed:
        return None
    what = "a race decides nothing before" if RACE else "nothing can be shown with fewer than"
    return (
        f"speedlimit: WARNING: train.{key}: {ROUNDS} is too few for this run's "
        f"{comparisons} comparison(s) of settings: {what} {needed} runs per setting, even on a quiet machine "
        f"(3% run-to-run noise; a noisier one needs more). Set train.{key}: {needed} or "
        "more" + ("." if RACE else ", or train.repeats: auto to race them.")
    )


REPEATS_WARNING = repeats_warning() if workflow.is_main_process else None
if REPEATS_WARNING:
    print(REPEATS_WARNING, file=sys.stderr)
if not CELLS:
    reasons = collections.Counter(reason for _, reason in SKIPPED)
    raise WorkflowError(
        f"nothing to run: none of the grid's {len(SKIPPED)} runs can run here ("
        + "; ".join(f"{n}: {reason}" for reason, n in reasons.items())
        + "). Change the grid in config.yaml (or --config), or run where they can."
    )


wildcard_constraints:
    cell=r"(dataloader|tensor)(/[a-z_]+~[^/]+)+",


def signed(function):
    """``function`` carrying its own signature. Snakemake inspects the signature of a rule's
    input, params, priority and resource functions each time it calls one
    (``inspect.signature``, tens of microseconds), for every job, and again after every round
    of a race; a function that carries its signature answers at once (benchmarks/dag.py)."""
    function.__signature__ = inspect.signature(function)
    return function


def code_digest(script):
    """Digest of the speedlimit modules a rule's script imports (followed through their own
    imports): a param, so editing them reruns exactly the rules that use them. Snakemake's
    own code trigger covers the script itself."""
    return project.code_digest(script)


def fashionmnist_root():
    return str(Path(config["data"]["root"]) / "fashionmnist")


def synthetic_root(train_size, test_size, seed):
    return str(Path(config["data"]["root"]) / f"synthetic-{train_size}-{test_size}-seed{seed}")


def dataset_root():
    """<data.root>/<name>: where torchvision finds FashionMNIST/raw/ for the configured source."""
    data = config["data"]
    if data["source"] == "synthetic":
        syn = data["synthetic"]
        return synthetic_root(syn["train_size"], syn["test_size"], syn["seed"])
    return fashionmnist_root()


def resolve_workload(name):
    """A workload of the grid, resolved once (speedlimit.run.workloads.resolve: its function,
    args, whether it reads the data set, and a digest of its code, the custom one's module
    looked up in the working directory first): the request of each of its cells carries it
    to the job."""
    try:
        return workloads.resolve(name, config["workloads"]["custom"], [Path.cwd()])
    except workloads.WorkloadError as err:
        raise WorkflowError(f"workload {name}: {err}") from None


RESOLVED = {name: resolve_workload(name) for name in config["grid"]["workload"]}
WORKLOADS = {name: resolved.for_request() for name, resolved in RESOLVED.items()}
# The built-in workloads read the pipeline's data set; a custom one only with the old
# signature, make(dataset_root, seed): a grid of other custom cells needs no data set at all.
READS_DATASET = {cell.workload for cell in CELLS if RESOLVED[cell.workload].dataset}

DATASET_ROOT = dataset_root()
# What a training job declares of the data set: its files' checksums (speedlimit.data.idx).
# A file lost or edited after them runs nothing again (Snakemake reruns nothing for a missing
# intermediate file), but a cell that runs would find it missing: say so before any job.
DATASET_MANIFEST = idx.manifest_path(DATASET_ROOT)
if workflow.is_main_process and READS_DATASET and Path(DATASET_MANIFEST).exists():
    for problem in idx.manifest_problems(DATASET_ROOT):
        print(f"speedlimit: WARNING: {problem}.", file=sys.stderr)


def imagefolder_root():
    return imagefolder.root(DATASET_ROOT)


def workload_input(name):
    """What a cell of workload ``name`` declares of the data set: its checksum manifest (for
    imagefolder also the images as files); nothing for a custom one that brings its own."""
    if name not in READS_DATASET:
        return []
    if name == "imagefolder":
        return [DATASET_MANIFEST, imagefolder_root()]
    return [DATASET_MANIFEST]


CELL_INPUTS = {name: workload_input(name) for name in {cell.workload for cell in CELLS}}
# One list where every cell's is the same (Snakemake handles each input of every job, and
# again after every round of a race: a function only where cells' inputs differ).
SAME_INPUT = len({tuple(inputs) for inputs in CELL_INPUTS.values()}) == 1
CELL_INPUT = next(iter(CELL_INPUTS.values())) if SAME_INPUT else None


@signed
def get_cell_input(wildcards):
    """What a cell reads of the data set (:func:`workload_input`)."""
    return CELL_INPUTS[get_cell(wildcards).workload]


def get_dataset_root(cell):
    """The data set a cell's workload reads (None: a custom one that brings its own)."""
    return DATASET_ROOT if cell.workload in READS_DATASET else None


def get_cell(wildcards):
    try:
        return CELL_PATHS[wildcards.cell]
    except KeyError:
        raise WorkflowError(f"results/runs/{wildcards.cell}.json is not a cell of the current grid")


# What one run of a cell times (speedlimit.run.probe): a race's runs time windows of batches
# and predict the epoch; fixed repeats (and a race's final check) time whole epochs.
WHOLE_EPOCHS = {"mode": "epochs"}
TIMING = {"mode": "windows", **config["train"]["probe"]} if RACE else WHOLE_EPOCHS


@signed
def get_request(wildcards, timing=None):
    """The job's request: everything that shapes a run's measurement, as one stable string
    (speedlimit.run.request: parsed once, by the job), and so its rerun trigger."""
    cell = get_cell(wildcards)
    path = run_file(wildcards.cell)
    return Request.for_rule(
        cell,
        timing or TIMING,
        config["train"]["epochs"],
        config["train"]["seed"],
        get_dataset_root(cell),
        WORKLOADS[cell.workload],
        TRAIN_CODE,
        # Snakemake compares params as a set of values: a bare count could hide among them.
        record.failures_so_far(path),
        get_hardware_key(cell, path),
    )


def get_hardware_key(cell, path):
    """For cuda cells, a rerun trigger that retries a cell skipped for want of a GPU where one
    shows (/dev/nvidia*): its record keeps the key it ran under; a skipped record's key turns
    to "gpu" on a machine with a GPU, so it reruns there, and a measured record keeps its key
    wherever the results go (a measurement is never replaced by a skip)."""
    if cell.device != "cuda":
        return None
    done = record.peek(path) or {}
    key = (done.get("params") or {}).get("hardware", "first run")
    if done.get("status") == record.SKIPPED and preflight.gpus_visible():
        return "gpu"
    return key


# A train_cell job's resources. Snakemake evaluates every callable of a job's rule for each
# job (and inspects its signature each time), and a race evaluates the DAG again after every
# round: so what the config makes the same for every cell is a constant, and what differs per
# cell is looked up in one table built once per distinct cell (benchmarks/dag.py).
EXCLUSIVE = config["train"]["exclusive"]
# One of the `cell_slot` resource (profiles/default: 2, one timed and one waiting).
CELL_SLOT = 1 if EXCLUSIVE else 0
# Minutes: the configured wall time, plus train.time_limit when one is set.
CELL_RUNTIME = config["cluster"]["runtime"] + (
    math.ceil(config["train"]["time_limit"] / 60) if config["train"]["time_limit"] else 0
)
CELL_SLURM_EXTRA = "--exclusive" if config["cluster"]["exclusive_nodes"] else ""
CELL_GPUS = any(cell.device == "cuda" for cell in CELLS)


@functools.cache
def cell_resources(path):
    """What a cell's job holds: CPUs of its SLURM allocation (its main process's threads plus
    one per worker), memory, GPUs and, when cells may overlap, the cores it holds locally."""
    cell = CELL_PATHS[path]
    cpus = cell.torch_threads + (cell.num_workers or 0)
    cluster = config["cluster"]
    return {
        "cpus": cpus,
        "mem_mb": cluster["mem_mb"] + cluster["mem_mb_per_worker"] * (cell.num_workers or 0),
        "gpu": 1 if cell.device == "cuda" else 0,
    }


@signed
def get_cell_cpus(wildcards):
    """CPUs of a cell's SLURM allocation, and the cores it holds in Snakemake's local
    scheduling when cells may overlap. (Exclusive cells run one at a time under the machine's
    lock whatever they hold, so each holds one core, a constant in the rule: then the job that
    waits for the lock, asleep in scripts/train_cell.sh, is always the next in priority.)"""
    return cell_resources(wildcards.cell)["cpus"]


@signed
def get_cell_mem_mb(wildcards):
    return cell_resources(wildcards.cell)["mem_mb"]


@signed
def get_cell_gpus(wildcards):
    return cell_resources(wildcards.cell)["gpu"]


@signed
def get_check_request(wildcards):
    """A race's check of its prediction: the cell's whole epoch."""
    return get_request(wildcards, WHOLE_EPOCHS)


def get_run_files(wildcards):
    """Every run's metrics file: each cell's repeats; in a race, the runs its rounds asked
    for, round by round (rules/race.smk)."""
    if RACE:
        return run_files(race_runs())
    return run_files(CELL_PATHS)


def run_file(path):
    """Where a run's record is: its own file, or its group's round (a race's settings timed
    together: rules/race.smk's race_group)."""
    lead = GROUP_OF.get(grid.prefix(path))
    if lead is None:
        return f"results/runs/{path}.json"
    return f"results/race/groups/{lead}/repeat~{path.rsplit('~', 1)[1]}.json"


def run_files(paths):
    """The records of these runs, each file once (a group's round holds several)."""
    return list(dict.fromkeys(run_file(path) for path in paths))


# --- a race's groups timed together (speedlimit.run.group): one job per group and round -----


def known_size(workload):
    """A workload's data set size, where the config says it before any job: the built-in
    workloads read the configured source's training set; a custom one's is unknown."""
    if workload == "custom":
        return None
    data = config["data"]
    return data["synthetic"]["train_size"] if data["source"] == "synthetic" else 60_000


INTERLEAVE = config["train"]["interleave"]
GROUP_OF = grid.interleaved_groups(CELLS, known_size) if RACE and INTERLEAVE["enabled"] else {}
GROUP_CELLS = collections.defaultdict(list)  # lead prefix -> its cells' prefixes
for _cell, _lead in GROUP_OF.items():
    GROUP_CELLS[_lead].append(_cell)


def group_cells(wildcards):
    """The runs a group's round times (the round before decided which are still in: a round's
    jobs are asked for only once it has, so its file is no input, which would rerun the
    round whenever a checkpoint rewrites it), sorted:
    the job draws their order itself, and a request must not change with another group's
    order in the round."""
    lead = CELL_PATHS[wildcards.cell]
    members = set(GROUP_CELLS[grid.prefix(wildcards.cell)])
    return sorted(path for path in race_cells(lead.repeat) if grid.prefix(path) in members)


@signed
def get_group_request(wildcards):
    return get_request(
        wildcards,
        {
            "mode": record.INTERLEAVED,
            "cells": group_cells(wildcards),
            "windows": INTERLEAVE["windows"],
            "window_seconds": INTERLEAVE["window_seconds"],
        },
    )


@signed
def get_group_priority(wildcards):
    return max(cell_priority(path) for path in group_cells(wildcards))


@functools.cache
def group_resources(path):
    """A group's round holds every setting's workers at once: the most CPUs of one setting
    and the memory of them all."""
    members = [f"{cell}/repeat~0" for cell in GROUP_CELLS[grid.prefix(path)]]
    each = [cell_resources(member) for member in members]
    base = config["cluster"]["mem_mb"]
    return {
        "cpus": max(r["cpus"] for r in each),
        "mem_mb": base + sum(r["mem_mb"] - base for r in each),
        "gpu": max(r["gpu"] for r in each),
    }


@signed
def get_group_runtime(wildcards):
    """Minutes: the configured wall time, plus train.time_limit once per setting of the round."""
    limit = config["train"]["time_limit"]
    cells = len(group_cells(wildcards)) if limit else 0
    return config["cluster"]["runtime"] + (math.ceil(limit * cells / 60) if limit else 0)


@signed
def get_group_cpus(wildcards):
    return group_resources(wildcards.cell)["cpus"]


@signed
def get_group_mem_mb(wildcards):
    return group_resources(wildcards.cell)["mem_mb"]


# Repeats interleaved, each round in a random order drawn from train.seed: every cell's
# repeat 0, then every cell's repeat 1, ..., so that a slow drift of the machine spreads over
# all cells instead of reading as a difference between them, and no cell always follows the
# same one. A job's priority is its place in that order (higher runs first); the table's
# `order` records the order the clocks really ran in. A race's later rounds take their order
# from the round before (rules/race.smk).
SEED = config["train"]["seed"]
CELL_PRIORITY = {
    cell.path: len(CELLS) - place
    for place, cell in enumerate(
        grid.interleaved(CELLS if not RACE else [c for c in CELLS if c.repeat == 0], SEED)
    )
}


def cell_priority(path):
    if path in CELL_PRIORITY:
        return CELL_PRIORITY[path]
    return race_priority(path) if RACE else 0


@signed
def get_cell_priority(wildcards):
    return cell_priority(wildcards.cell)


FIGURES = [
    "epoch_duration",
    "speedup",
    "prediction",
    "race",
    "time_split",
    "quality",
    "published",
]
# The report's pages beyond the figures (rules/report.smk).
REPORT_PAGES = ["findings", "published_vs_reproduced", "table", "summary"]


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


TRAIN_CODE = code_digest(project.TRAIN_SCRIPT)
# How train_cell jobs run (the rule's resources: no rerun trigger): the interpreter of
# scripts/train_cell.sh (the rule's conda env's with --sdm conda, else Snakemake's own, as for
# `script:` rules), and warm start, time limit and runs again while disturbed, as train_cell.py's
# --how (key=value pairs: a resource travels to a cluster job as plain text).
PYTHON = (
    "python"
    if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
    else sys.executable
)
HOW = how_text(
    config["train"]["warm_start"],
    config["train"]["time_limit"],
    config["train"]["redo_disturbed"],
)


# The machine's cell lock file (train.exclusive), or "none".
CELL_LOCK = str(lock.lock_path()) if EXCLUSIVE else "none"


wildcard_constraints:
    train_size=r"\d+",
    test_size=r"\d+",
    seed=r"\d+",


# --- the race (rules/race.smk): its rounds, read from the checkpoint's decisions -----------

# The answer's levers (train.threshold, train.margin): every rule that decides or words it.
LEVERS = {"threshold": config["train"]["threshold"], "margin": config["train"]["margin"]}

RACE_PARAMS = json.dumps(
    {
        "seed": SEED,
        "max_rounds": config["train"]["max_rounds"],
        "budget": config["train"]["budget"],
        **LEVERS,
    },
    sort_keys=True,
)


# Fixed repeats: the decision, once, after every repeat (rules/race.smk's `decide`).
DECIDE_PARAMS = json.dumps({"repeats": ROUNDS, **LEVERS}, sort_keys=True)


def race_cells(round_):
    """The cell paths a round runs: round 0 every cell; later rounds as the round before
    decided."""
    if round_ == 0:
        return [cell.path for cell in CELLS if cell.repeat == 0]
    return read_round(round_ - 1)["next"]["cells"]


def read_round(round_):
    """A round's decisions (waits for its checkpoint). The checkpoint writes them whole; one
    edited or cut by hand stops the run naming it, and how to decide it again."""
    path = checkpoints.race_round.get(round=round_).output[0]
    try:
        with open(path) as fh:
            return json.load(fh)
    except ValueError as err:
        raise WorkflowError(
            f"{path}: not valid JSON ({err}): a round of the race, decided from its records; "
            f"delete the file (rm {path}) and run snakemake again with -R race_round to "
            "decide the rounds again (no cell is measured again)"
        ) from None


def race_rounds():
    """The rounds of the race, up to the one that stopped it (each waits for its checkpoint)."""
    round_ = 0
    while not read_round(round_)["stopped"]:
        round_ += 1
    return round_ + 1


def race_runs():
    """Every run the race made, round by round."""
    return [path for r in range(race_rounds()) for path in race_cells(r)]


def get_round_runs(wildcards):
    """A round's checkpoint reads every run so far: rounds 0 to this one."""
    return run_files(path for r in range(int(wildcards.round) + 1) for path in race_cells(r))


def get_previous_round(wildcards):
    r = int(wildcards.round)
    return [] if r == 0 else checkpoints.race_round.get(round=r - 1).output


def race_priority(path):
    """A later round's run: its place in the order its round was given."""
    round_ = grid.parse_path(path).repeat
    order_file = f"results/race/round~{round_ - 1}.json"
    try:
        with open(order_file) as fh:
            order = json.load(fh)["next"]["cells"]
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    return len(order) - order.index(path) if path in order else 0


def get_decisions(wildcards):
    """The decision record every stage after the decision reads: the round that stopped the
    race, or with fixed repeats the `decide` rule's."""
    if not RACE:
        return ["results/decisions.json"]
    return checkpoints.race_round.get(round=race_rounds() - 1).output


def get_check_files(wildcards):
    """The whole epochs that check the race's predictions."""
    if not RACE:
        return []
    final = read_round(race_rounds() - 1)
    return [f"results/check/{path}.json" for path in final["check"]]


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
