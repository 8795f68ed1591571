# Stage 1: the data set, downloaded (md5-checked) or generated offline.

# On a cluster the download runs on the submit host: compute nodes often have no internet.
localrules:
    download_fashionmnist,


rule download_fashionmnist:
    output:
        idx.raw_paths(Path(config["data"]["root"]) / "fashionmnist"),
    params:
        md5=config["data"]["md5"],  # mirrors, retries and timeout: read from config
    resources:
        mem_mb=1000,
        runtime=30,
        **get_cluster_resources(),
    log:
        "logs/data/download_fashionmnist.log",
    conda:
        "../envs/pipeline.yaml"
    script:
        "../scripts/download.py"


rule make_synthetic:
    output:
        idx.raw_paths(
            Path(config["data"]["root"])
            / "synthetic-{train_size}-{test_size}-seed{seed}"
        ),
    params:
        code=code_digest("scripts/make_synthetic.py"),
    resources:
        mem_mb=2000,
        runtime=15,
        **get_cluster_resources(),
    log:
        "logs/data/make_synthetic-{train_size}-{test_size}-seed{seed}.log",
    conda:
        "../envs/pipeline.yaml"
    script:
        "../scripts/make_synthetic.py"
