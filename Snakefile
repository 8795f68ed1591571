# speedlimit: which DataLoader settings make training fastest on this machine, with proof.
# The pipeline's table of contents; the stages live in rules/*.smk.
from snakemake.utils import min_version

min_version("9.0")


include: "rules/configfile.smk"  # a malformed config.yaml: name the line, not just the file


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/inputs.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/race.smk"
include: "rules/summarize.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
