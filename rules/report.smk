# The headline table and the figure of differences to the baseline.


rule report:
    input:
        records=all_records,
        logs=expand("results/runs/{arm}/seed{seed}/log.jsonl", arm=ARMS, seed=SEEDS),
        index=f"results/data/{CORPUS}/frames.parquet",
    output:
        tex="results/tables/ablation.tex",
        csv="results/tables/ablation.csv",
        compute="results/tables/compute.csv",
        png="results/figures/ablation_deltas.png",
        pdf="results/figures/ablation_deltas.pdf",
    params:
        arms=ARMS,
        baseline=config["report"]["baseline"],
        labels={arm: settings["label"] for arm, settings in config["arms"].items()},
        model=canonical(config["model"]),
        train={arm: arm_train(arm) for arm in ARMS},
        mask={arm: config["arms"][arm]["mask_ratio"] for arm in ARMS},
    log:
        "logs/report/report.log",
    benchmark:
        "benchmarks/report/report.tsv"
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/report.py"
