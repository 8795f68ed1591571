# Glue: config validation, the run's plan (scripts/speedlimit/plan.py: the cells, their
# requests, resources, records and priorities) and the functions Snakemake calls over it;
# what needs Snakemake itself (checkpoints, the deployment method) stays here.
import inspect
import json
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.settings.types import DeploymentMethod

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

from speedlimit import config as config_module  # noqa: E402
from speedlimit import grid, project  # noqa: E402
from speedlimit.data import idx  # noqa: E402
from speedlimit.plan import WHOLE_EPOCHS, Plan, PlanError  # noqa: E402
from speedlimit.run import lock  # noqa: E402
from speedlimit.run.request import how_text  # noqa: E402

try:
    config = config_module.validate(
        config, Path(workflow.basedir) / "schemas" / "config.schema.yaml"
    )
    PLAN = Plan(config, [Path.cwd()])
except config_module.ConfigError as err:
    raise WorkflowError(f"{err}\n(config.yaml, --configfile and --config together)") from None
except PlanError as err:
    raise WorkflowError(str(err)) from None

# train.repeats: auto races the settings in rounds (rules/race.smk); a number runs that many
# whole epochs of every cell. Either way a run of a cell is `repeat~R`: the race's round R.
RACE = PLAN.race
SKIPPED = PLAN.skipped
if workflow.is_main_process:
    for line in [PLAN.repeats_warning(), *PLAN.dataset_warnings()]:
        if line:
            print(line, file=sys.stderr)


wildcard_constraints:
    cell=r"(dataloader|tensor)(/[a-z_]+~[^/]+)+",
    train_size=r"\d+",
    test_size=r"\d+",
    seed=r"\d+",
    round=r"\d+",


def signed(function):
    """``function`` carrying its own signature. Snakemake inspects the signature of a rule's
    input, params, priority and resource functions each time it calls one, for every job and
    again after every round of a race; one that carries it answers at once
    (benchmarks/dag.py)."""
    function.__signature__ = inspect.signature(function)
    return function


def code_digest(script):
    """Digest of the speedlimit modules (and templates) a rule's script uses: a param, so
    editing them reruns exactly the rules that use them."""
    return project.code_digest(script)


fashionmnist_root = PLAN.fashionmnist_root
synthetic_root = PLAN.synthetic_root
imagefolder_root = PLAN.imagefolder_root
DATASET_MANIFEST = PLAN.dataset_manifest
# One input list where every cell's is the same (a function only where cells' inputs differ).
SAME_INPUT = len({tuple(inputs) for inputs in PLAN.cell_inputs.values()}) == 1
CELL_INPUT = next(iter(PLAN.cell_inputs.values())) if SAME_INPUT else None
TRAIN_CODE = code_digest(project.TRAIN_SCRIPT)
# A job's resources: what the config makes the same for every cell is a constant.
EXCLUSIVE = PLAN.exclusive
CELL_SLOT = 1 if EXCLUSIVE else 0  # of `cell_slot` (profiles/default: 2, one timed, one waiting)
CELL_RUNTIME = PLAN.cell_runtime
CELL_SLURM_EXTRA = "--exclusive" if config["cluster"]["exclusive_nodes"] else ""
CELL_GPUS = any(cell.device == "cuda" for cell in PLAN.cells)
CELL_LOCK = str(lock.lock_path()) if EXCLUSIVE else "none"  # the machine's cell lock
# The interpreter of scripts/train_cell.sh (the rule's conda env's with --sdm conda, else
# Snakemake's own) and how a cell runs (resources: no rerun trigger; train_cell.py's --how).
PYTHON = (
    "python"
    if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
    else sys.executable
)
HOW = how_text(
    config["train"]["warm_start"], config["train"]["time_limit"], config["train"]["redo_disturbed"]
)


def wildcard_cell(wildcards):
    try:
        return PLAN.cell(wildcards.cell)
    except PlanError as err:
        raise WorkflowError(str(err)) from None


@signed
def get_cell_input(wildcards):
    return PLAN.cell_inputs[wildcard_cell(wildcards).workload]


@signed
def get_request(wildcards):
    wildcard_cell(wildcards)
    return PLAN.request(wildcards.cell, None, TRAIN_CODE)


@signed
def get_check_request(wildcards):
    """A race's check of its prediction: the cell's whole epoch."""
    wildcard_cell(wildcards)
    return PLAN.request(wildcards.cell, WHOLE_EPOCHS, TRAIN_CODE)


@signed
def get_cell_cpus(wildcards):
    return PLAN.cell_resources(wildcards.cell)["cpus"]


@signed
def get_cell_mem_mb(wildcards):
    return PLAN.cell_resources(wildcards.cell)["mem_mb"]


@signed
def get_cell_gpus(wildcards):
    return PLAN.cell_resources(wildcards.cell)["gpu"]


def cell_priority(path):
    if path in PLAN.priorities:
        return PLAN.priorities[path]
    return race_priority(path) if RACE else 0


@signed
def get_cell_priority(wildcards):
    return cell_priority(wildcards.cell)


def group_cells(wildcards):
    """The runs a group's round times (the round before decided which are still in)."""
    return PLAN.in_group(wildcards.cell, race_cells(PLAN.cell(wildcards.cell).repeat))


@signed
def get_group_request(wildcards):
    return PLAN.group_request(wildcards.cell, group_cells(wildcards), TRAIN_CODE)


@signed
def get_group_priority(wildcards):
    return max(cell_priority(path) for path in group_cells(wildcards))


@signed
def get_group_runtime(wildcards):
    return PLAN.group_runtime(len(group_cells(wildcards)) if config["train"]["time_limit"] else 0)


@signed
def get_group_cpus(wildcards):
    return PLAN.group_resources(wildcards.cell)["cpus"]


@signed
def get_group_mem_mb(wildcards):
    return PLAN.group_resources(wildcards.cell)["mem_mb"]


def get_run_files(wildcards):
    """Every run's record: each cell's repeats; in a race, the runs its rounds asked for."""
    return PLAN.run_files(race_runs() if RACE else PLAN.cell_paths)
