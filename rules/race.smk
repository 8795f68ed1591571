# Stage 2: the decision (scripts/decide.py, the one stage that decides; every later stage
# reads its record). With train.repeats: auto, the race: round 0 runs every cell once; after
# each round the checkpoint `race_round` decides, per group, which settings are out and
# whether the recommendation is shown (speedlimit.results.race, replayed from the records by
# speedlimit.results.decisions), and names the next round's runs in a random order; the race
# stops when every group is decided, at train.max_rounds or at train.budget. Then each
# group's recommendation and its num_workers=0 run one whole epoch (`check_epoch`), to check
# the epochs the race predicted from its windows. With fixed repeats, `decide` once, after
# every repeat.
#
# Every decision is a function of the records and the config alone, so a rerun recomputes the
# same rounds and trains only what is new: a finished race trains nothing, and a changed cell
# reopens only its own group (plus what a larger family of comparisons asks of the others).


localrules:
    race_round,
    decide,


checkpoint race_round:
    input:
        runs=get_round_runs,
        previous=get_previous_round,
    output:
        "results/race/round~{round}.json",
    log:
        "logs/race/round~{round}.log",
    conda:
        "../envs/report.yaml"
    params:
        race=RACE_PARAMS,
        code=code_digest("scripts/decide.py"),
    script:
        "../scripts/decide.py"


# A round of a group whose settings are timed together (speedlimit.run.group): the group's
# lead cell's job, timing every setting of the group still in the race, interleaved, and
# writing one record per setting (in the group's record).
rule decide:
    input:
        runs=get_run_files,
    output:
        "results/decisions.json",
    log:
        "logs/decide.log",
    conda:
        "../envs/report.yaml"
    params:
        race=DECIDE_PARAMS,
        code=code_digest("scripts/decide.py"),
    script:
        "../scripts/decide.py"


use rule train_cell as race_group with:
    output:
        "results/race/groups/{cell}.json",
    log:
        "logs/race_group/{cell}.log",
    priority: get_group_priority
    threads: 1 if EXCLUSIVE else get_group_cpus
    resources:
        cpus_per_task=get_group_cpus,
        mem_mb=get_group_mem_mb,
        runtime=get_group_runtime,
        gpu=get_cell_gpus if CELL_GPUS else 0,
        slurm_extra=CELL_SLURM_EXTRA,
        cell_lock=CELL_LOCK,
        cell_slot=CELL_SLOT,
        python=PYTHON,
        how=HOW,
    params:
        request=get_group_request,


use rule train_cell as check_epoch with:
    output:
        "results/check/{cell}.json",
    log:
        "logs/check_epoch/{cell}.log",
    priority: 0
    params:
        request=get_check_request,
