# Zero-shot evaluation: one job per run writes one record per benchmark.


rule evaluate_zeroshot:
    input:
        checkpoint="results/runs/{arm}/seed{seed}/checkpoint.pt",
        clip=get_clip_files,
        frames=expand("results/data/benchmarks/{bench}/frames.npy", bench=ZEROSHOT),
        meta=expand("results/data/benchmarks/{bench}/meta.json", bench=ZEROSHOT),
        manifest=expand("results/data/benchmarks/{bench}/manifest.parquet", bench=ZEROSHOT),  # missing-video counts
    output:
        expand("results/eval/{{arm}}/seed{{seed}}/{bench}-zeroshot.json", bench=ZEROSHOT),
    log:
        "logs/evaluate/zeroshot-{arm}-seed{seed}.log",
    benchmark:
        "benchmarks/evaluate/zeroshot-{arm}-seed{seed}.tsv"
    conda:
        "../envs/viclip.yaml"
    threads: 1
    resources:
        **get_resources("evaluate_zeroshot"),
    params:
        bench_dirs=[bench_dir(b) for b in ZEROSHOT],
        settings=ZEROSHOT_SETTINGS,
        code=get_code("evaluate_zeroshot.py"),
    script:
        "../scripts/evaluate_zeroshot.py"
