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
        time_limit=config["train"]["time_limit"],
        warm=config["train"]["warm_start"],
        exclusive=config["train"]["exclusive"],
    threads: get_cell_threads
    log:
        "logs/train_cell/{cell}.log",
    conda:
        "../envs/pipeline.yaml"
    script:
        "../scripts/train_cell.py"
