# The headline table and the figure of differences to the baseline.


rule report:
    input:
        all_records,
    output:
        tex="results/tables/ablation.tex",
        csv="results/tables/ablation.csv",
        png="results/figures/ablation_deltas.png",
        pdf="results/figures/ablation_deltas.pdf",
    params:
        arms=ARMS,
        baseline=config["report"]["baseline"],
        labels={arm: settings["label"] for arm, settings in config["arms"].items()},
    log:
        "logs/report/report.log",
    benchmark:
        "benchmarks/report/report.tsv"
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/report.py"
