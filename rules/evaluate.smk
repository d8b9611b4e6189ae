# Zero-shot evaluation: one job per run writes one record per benchmark.

from viclip.eval.protocol import zeroshot_settings


rule evaluate_zeroshot:
    input:
        checkpoint="results/runs/{arm}/seed{seed}/checkpoint.pt",
        frames=expand("results/data/benchmarks/{bench}/frames.npy", bench=ZEROSHOT),
        meta=expand("results/data/benchmarks/{bench}/meta.json", bench=ZEROSHOT),
        manifest=expand("results/data/benchmarks/{bench}/manifest.parquet", bench=ZEROSHOT),  # missing-video counts
    output:
        expand("results/eval/{{arm}}/seed{{seed}}/{bench}-zeroshot.json", bench=ZEROSHOT),
    log:
        "logs/evaluate/zeroshot-{arm}-seed{seed}.log",
    benchmark:
        "benchmarks/evaluate/zeroshot-{arm}-seed{seed}.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        bench_dirs=[bench_dir(b) for b in ZEROSHOT],
        settings=canonical(zeroshot_settings(config["evaluate"])),
    script:
        "../scripts/evaluate_zeroshot.py"
