# Stage 2: one training job per grid cell (and repeat), each writing its metrics JSON.


rule train_cell:
    input:
        get_cell_input,
    output:
        "results/runs/{cell}.json",
    log:
        "logs/train_cell/{cell}.log",
    priority: get_cell_priority
    conda:
        "../envs/pipeline.yaml"
    threads: get_cell_threads
    resources:
        # What differs per cell; what every job shares lives in profiles/slurm.
        cpus_per_task=get_cell_cpus,
        mem_mb=get_cell_mem_mb,
        runtime=get_cell_runtime,
        gpu=get_cell_gpus,
        slurm_extra=get_cell_slurm_extra,
        # How the cell is run (no rerun trigger): the machine's cell lock, or "none".
        cell_lock=get_cell_lock,
        cell_slot=get_cell_slot,
    params:
        # The job's whole hand-off (cell, epochs, seed, data set root, code digest, failures
        # so far), and its rerun trigger: one string, read once.
        spec=get_cell_spec,
    # A shell command, not `script:`, so that the job waits for the machine's cell lock
    # before its Python starts (scripts/train_cell.sh). Warm start and time limit are how a
    # cell is run, not what it measures: they reach the job in $SPEEDLIMIT_RUN (common.smk),
    # so they are no rerun trigger.
    shell:
        "scripts/train_cell.sh {resources.cell_lock:q} --spec {params.spec:q}"
        " --output {output:q} --log {log:q}"
