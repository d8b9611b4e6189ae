# The headline table, the figures of differences to the baseline (all arms and
# one per ablation) and the training curves. Outputs marked report() make up
# `snakemake --report results/report.html`; captions live in report/. ABLATIONS comes from common.smk.


rule report:
    input:
        records=get_records,
        logs=get_train_logs(),
        index=get_corpus_clips(),
    output:
        tex="results/tables/ablation.tex",
        csv=report(
            "results/tables/ablation.csv",
            caption="../report/ablation_csv.rst",
            category="Table",
            labels={"file": "ablation.csv", "content": "summary per arm and metric"},
        ),
        compute=report(
            "results/tables/compute.csv",
            caption="../report/compute_csv.rst",
            category="Table",
            labels={"file": "compute.csv", "content": "pretraining cost per arm"},
        ),
        html=report(
            "results/tables/ablation.html",
            caption="../report/ablation_table.rst",
            category="Table",
            labels={"file": "ablation.html", "content": "the ablation table"},
        ),
        png=report(
            "results/figures/ablation_deltas.png",
            caption="../report/ablation_deltas.rst",
            category="Ablations",
            labels={
                "figure": "all arms",
                "arms": ", ".join(a for a in TRAINED_ARMS if a != config["report"]["baseline"]),
            },
        ),
        pdf="results/figures/ablation_deltas.pdf",
        ablation_png=[
            report(
                f"results/figures/ablations/{a.name}.png",
                caption="../report/ablation_figure.rst",
                category="Ablations",
                labels={"figure": a.title, "arms": ", ".join(a.arms)},
            )
            for a in ABLATIONS
        ],
        ablation_pdf=[f"results/figures/ablations/{a.name}.pdf" for a in ABLATIONS],
        curves=report(
            "results/figures/training_curves.png",
            caption="../report/training_curves.rst",
            category="Training",
            labels={"figure": "loss and learning rate"},
        ),
    log:
        "logs/report/report.log",
    benchmark:
        "benchmarks/report/report.tsv"
    conda:
        "../envs/viclip.yaml"
    resources:
        **get_resources("report"),
    params:
        **get_report_params(),
        code=get_code("report.py"),
    script:
        "../scripts/report.py"
