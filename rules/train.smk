# Stage 2: one training job per grid cell (and repeat), each writing its metrics JSON.


rule train_cell:
    input:
        get_dataset_files(),
    output:
        "results/runs/{cell}.json",
    params:
        spec=get_cell_spec,
        epochs=config["train"]["epochs"],
        seed=config["train"]["seed"],
    threads: get_cell_threads
    resources:
        # On a cluster (profiles/slurm) each cell is one job with an allocation of its own.
        cpus_per_task=get_cell_cpus,
        mem_mb=get_cell_mem_mb,
        runtime=get_cell_runtime,
        gpu=get_cell_gpus,
        slurm_extra=get_cell_slurm_extra,
        **get_cluster_resources(),
    log:
        "logs/train_cell/{cell}.log",
    conda:
        "../envs/pipeline.yaml"
    script:
        "../scripts/train_cell.py"
