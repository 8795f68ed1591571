# Glue: config validation, the grid, and input functions. Logic lives in scripts/speedlimit/.
import collections
import json
import math
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.settings.types import DeploymentMethod

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

from speedlimit import config as config_module  # noqa: E402
from speedlimit.run import job, preflight  # noqa: E402
from speedlimit import grid, project  # noqa: E402
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
ROUNDS = config["train"]["max_repeats"] if RACE else config["train"]["repeats"]
CELLS, SKIPPED = grid.expand(config["grid"], ROUNDS)
if RACE:  # (the combinations torch rejects, once each)
    SKIPPED = grid.expand(config["grid"], 1)[1]
CELL_PATHS = {cell.path: cell for cell in CELLS}


def repeats_warning():
    """Before any job: fixed repeats (or a race's max_repeats) too few for the run's pairs of
    settings to decide anything on a quiet machine, with the number needed."""
    from speedlimit.results import sequential

    pairs = grid.pairs([cell for cell in CELLS if cell.repeat == 0])
    if not pairs:
        return None
    key = "max_repeats" if RACE else "repeats"
    needed = sequential.repeats_needed(pairs, anytime=RACE)
    if ROUNDS >= needed:
        return None
    what = "a race decides nothing before" if RACE else "nothing can be shown with fewer than"
    return (
        f"speedlimit: WARNING: train.{key}: {ROUNDS} is too few for this run's {pairs} "
        f"pair(s) of settings: {what} {needed} runs per setting, even on a quiet machine "
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


def get_dataset_files():
    return idx.raw_paths(dataset_root())


def imagefolder_root():
    return imagefolder.root(dataset_root())


def get_cell_input(wildcards):
    """The data set's files; for an imagefolder cell also the images as files."""
    if get_cell(wildcards).workload == "imagefolder":
        return get_dataset_files() + [imagefolder_root()]
    return get_dataset_files()


def get_cell(wildcards):
    try:
        return CELL_PATHS[wildcards.cell]
    except KeyError:
        raise WorkflowError(f"results/runs/{wildcards.cell}.json is not a cell of the current grid")


def workload_spec(name):
    """A workload's function and a digest of its code (the custom one's module is looked up
    in the working directory first): in its own cells' rerun trigger only."""
    try:
        function = workloads.function_of(name, config["workloads"]["custom"])
        if name in workloads.BUILT_IN:
            return {"function": function, "code": code_digest(workloads.builtin_file(name))}
        name_of_module, name_of_function = workloads.parse(function)
        file, _ = project.module_location(name_of_module, [Path.cwd()])
        workloads.check_defines(file, name_of_function, function)
        code = project.module_digest(name_of_module, [Path.cwd()])
        return {"function": function, "code": code}
    except (workloads.WorkloadError, FileNotFoundError) as err:
        raise WorkflowError(f"workload {name}: {err}") from None


# What one run of a cell times (speedlimit.run.probe): a race's runs time windows of batches
# and predict the epoch; fixed repeats (and a race's final check) time whole epochs.
WHOLE_EPOCHS = {"mode": "epochs"}
TIMING = {"mode": "windows", **config["train"]["probe"]} if RACE else WHOLE_EPOCHS


def get_cell_spec(wildcards, timing=None):
    """Everything that shapes a cell's measurement, as one stable string (a rerun trigger)."""
    cell = get_cell(wildcards)
    spec = {
        "cell": cell.params(),
        "timing": timing or TIMING,
        "epochs": config["train"]["epochs"],
        "seed": config["train"]["seed"],
        "dataset_root": dataset_root(),
        "code": TRAIN_CODE,
        "workload": WORKLOADS[cell.workload],
        # Snakemake compares params as a set of values: a bare count could hide among them.
        "failed_before": get_failed_before(wildcards),
        "hardware": get_hardware_key(wildcards),
    }
    return json.dumps(spec, sort_keys=True)


def get_hardware_key(wildcards):
    """For cuda cells, a rerun trigger that retries a cell skipped for want of a GPU where one
    shows (/dev/nvidia*): its record keeps the key it ran under; a skipped record's key turns
    to "gpu" on a machine with a GPU, so it reruns there, and a measured record keeps its key
    wherever the results go (a measurement is never replaced by a skip)."""
    if get_cell(wildcards).device != "cuda":
        return None
    record = job.read_status(f"results/runs/{wildcards.cell}.json") or {}
    key = (record.get("params") or {}).get("hardware", "first run")
    if record.get("status") == "skipped" and preflight.gpus_visible():
        return "gpu"
    return key


def get_failed_before(wildcards):
    """Failed runs of the cell so far: each failure bumps it, so the failed cell reruns."""
    return job.failures_so_far(f"results/runs/{wildcards.cell}.json")


def get_cell_threads(wildcards):
    """Cores a cell's job holds in Snakemake's local scheduling. Exclusive cells run one at a
    time under the machine's lock whatever they hold, so each holds one core: then the job
    that waits for the lock (asleep, in scripts/train_cell.sh) is always the next one in
    priority order. Cells that may overlap hold a core per thread and per worker."""
    if config["train"]["exclusive"]:
        return 1
    return get_cell_cpus(wildcards)


def get_cell_slot(wildcards):
    """One of the `cell_slot` resource (profiles/default: 2, one timed and one waiting)."""
    return 1 if config["train"]["exclusive"] else 0


def get_cell_cpus(wildcards):
    """CPUs of a cell's SLURM allocation: its main process's threads plus one per worker."""
    cell = get_cell(wildcards)
    return cell.torch_threads + (cell.num_workers or 0)


def get_cell_mem_mb(wildcards):
    cluster = config["cluster"]
    return cluster["mem_mb"] + cluster["mem_mb_per_worker"] * (get_cell(wildcards).num_workers or 0)


def get_cell_runtime(wildcards):
    """Minutes: the configured wall time, plus train.time_limit when one is set."""
    limit = config["train"]["time_limit"]
    return config["cluster"]["runtime"] + (math.ceil(limit / 60) if limit else 0)


def get_cell_gpus(wildcards):
    return 1 if get_cell(wildcards).device == "cuda" else 0


def get_cell_slurm_extra(wildcards):
    return "--exclusive" if config["cluster"]["exclusive_nodes"] else ""


def get_check_spec(wildcards):
    """A race's check of its prediction: the cell's whole epoch."""
    return get_cell_spec(wildcards, WHOLE_EPOCHS)


def get_run_files(wildcards):
    """Every run's metrics file: each cell's repeats; in a race, the runs its rounds asked
    for, round by round (rules/race.smk)."""
    if RACE:
        return [run_file(path) for path in race_runs()]
    return [run_file(path) for path in CELL_PATHS]


def run_file(path):
    return f"results/runs/{path}.json"


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


def get_cell_priority(wildcards):
    if wildcards.cell in CELL_PRIORITY:
        return CELL_PRIORITY[wildcards.cell]
    return race_priority(wildcards.cell) if RACE else 0


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
WORKLOADS = {name: workload_spec(name) for name in config["grid"]["workload"]}
# How train_cell jobs run, passed in their environment (set here, in every Snakemake process
# that parses the workflow, a cluster job's included), so that none of it is a rerun trigger:
# the interpreter of scripts/train_cell.sh (the rule's conda env's with --sdm conda, else
# Snakemake's own, as for `script:` rules), warm start and time limit.
os.environ.update(
    SPEEDLIMIT_PYTHON=(
        "python"
        if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
        else sys.executable
    ),
    SPEEDLIMIT_RUN=json.dumps(
        {key: config["train"][key] for key in ("warm_start", "time_limit", "redo_disturbed")}
    ),
)


def get_cell_lock(wildcards):
    """The machine's cell lock file (train.exclusive), or "none"."""
    return str(job.lock_path()) if config["train"]["exclusive"] else "none"


wildcard_constraints:
    train_size=r"\d+",
    test_size=r"\d+",
    seed=r"\d+",


# --- the race (rules/race.smk): its rounds, read from the checkpoint's decisions -----------

RACE_PARAMS = json.dumps(
    {
        "seed": SEED,
        "max_repeats": config["train"]["max_repeats"],
        "budget": config["train"]["budget"],
    },
    sort_keys=True,
)


def race_cells(round_):
    """The cell paths a round runs: round 0 every cell; later rounds as the round before
    decided."""
    if round_ == 0:
        return [cell.path for cell in CELLS if cell.repeat == 0]
    return read_round(round_ - 1)["next"]["cells"]


def read_round(round_):
    """A round's decisions (waits for its checkpoint)."""
    with open(checkpoints.race_round.get(round=round_).output[0]) as fh:
        return json.load(fh)


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
    return [run_file(path) for r in range(int(wildcards.round) + 1) for path in race_cells(r)]


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


def get_race_final(wildcards):
    """The round that stopped the race (its decisions), for the findings and figures."""
    if not RACE:
        return []
    return checkpoints.race_round.get(round=race_rounds() - 1).output


def get_check_files(wildcards):
    """The whole epochs that check the race's predictions."""
    if not RACE:
        return []
    final = read_round(race_rounds() - 1)
    return [f"results/check/{path}.json" for path in final["check"]]
