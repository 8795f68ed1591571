# Stage 2: one training job per grid cell (and repeat), each writing its metrics JSON.


rule train_cell:
    input:
        # The data set's checksum manifest (and the images as files, for imagefolder cells;
        # nothing for a custom workload that brings its own data): one list, and a function
        # only where cells' inputs differ, since Snakemake handles each input of every job
        # (and again after every round of a race).
        get_cell_input if CELL_INPUT is None else CELL_INPUT,
    output:
        "results/runs/{cell}.json",
    log:
        "logs/train_cell/{cell}.log",
    priority: get_cell_priority
    conda:
        "../envs/pipeline.yaml"
    threads: 1 if EXCLUSIVE else get_cell_cpus
    resources:
        # What differs per cell (a constant where the config makes it one: rules/common.smk);
        # what every job shares lives in profiles/slurm.
        cpus_per_task=get_cell_cpus,
        mem_mb=get_cell_mem_mb,
        runtime=CELL_RUNTIME,
        gpu=get_cell_gpus if CELL_GPUS else 0,
        slurm_extra=CELL_SLURM_EXTRA,
        # How the cell is run (resources are no rerun trigger): the machine's cell lock (or
        # "none"), the interpreter, and warm start, time limit and runs again while
        # disturbed (train_cell.py's --how).
        cell_lock=CELL_LOCK,
        cell_slot=CELL_SLOT,
        python=PYTHON,
        how=HOW,
    params:
        # What the run measures: the job's request (speedlimit.run.request), one string,
        # parsed once, and the rerun trigger.
        request=get_request,
    # A shell command, not `script:`, so that the job waits for the machine's cell lock
    # before its Python starts (scripts/train_cell.sh).
    shell:
        "scripts/train_cell.sh {resources.cell_lock:q} {output:q} {log:q} {resources.python:q}"
        " --request {params.request:q} --how {resources.how:q}"
