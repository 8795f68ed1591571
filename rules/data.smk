# Stage 1: the data set, downloaded (md5-checked) or generated offline; its images as files.


# On a cluster the download runs on the submit host: compute nodes often have no internet.
localrules:
    download_fashionmnist,


rule download_fashionmnist:
    output:
        # Kept, not removed, when the job runs: complete files (a copy made by hand, or an
        # earlier run's without the manifest) stay as they are (speedlimit.data.download).
        update(idx.raw_paths(fashionmnist_root())),
        idx.manifest_path(fashionmnist_root()),  # written last (speedlimit.data.idx.MANIFEST)
    log:
        "logs/data/download_fashionmnist.log",
    conda:
        "../envs/pipeline.yaml"
    params:
        dataset_root=lambda wildcards, output: idx.dataset_root_of(output[0]),
        md5=config["data"]["md5"],  # mirrors, retries and timeout: read from config
    script:
        "../scripts/download.py"


rule make_synthetic:
    output:
        idx.raw_paths(synthetic_root("{train_size}", "{test_size}", "{seed}")),
        idx.manifest_path(synthetic_root("{train_size}", "{test_size}", "{seed}")),
    log:
        "logs/data/make_synthetic-{train_size}-{test_size}-seed{seed}.log",
    conda:
        "../envs/pipeline.yaml"
    params:
        dataset_root=lambda wildcards, output: idx.dataset_root_of(output[0]),
        code=code_digest("scripts/make_synthetic.py"),
    script:
        "../scripts/make_synthetic.py"


# The imagefolder workload's files: every training image as a PNG (only its cells need them).
rule make_imagefolder:
    input:
        DATASET_MANIFEST,
    output:
        directory(imagefolder_root()),
    log:
        "logs/data/make_imagefolder.log",
    conda:
        "../envs/pipeline.yaml"
    params:
        dataset_root=lambda wildcards, input: idx.dataset_root_of(input[0]),
        code=code_digest("scripts/make_imagefolder.py"),
    script:
        "../scripts/make_imagefolder.py"
