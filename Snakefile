# viclip-ablations: what video masking and coarse captions do to ViCLIP.
# Rules live in rules/, the code in viclip/; `snakemake --cores all` runs the
# embedded synthetic default end to end (see README.md).


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/captions.smk"
include: "rules/pretrain.smk"
include: "rules/evaluate.smk"
include: "rules/finetune.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        REPORT_OUTPUTS,
