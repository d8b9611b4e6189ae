# Fine-tuning: one job per run and task; it also scores the test split, so
# the fine-tuned weights are not loaded twice.


rule finetune:
    input:
        checkpoint="results/runs/{arm}/seed{seed}/checkpoint.pt",
        frames="results/data/benchmarks/{task}/frames.npy",
        meta="results/data/benchmarks/{task}/meta.json",
    output:
        checkpoint="results/finetune/{arm}/seed{seed}/{task}/checkpoint.pt",
        train_log="results/finetune/{arm}/seed{seed}/{task}/log.jsonl",
        record="results/eval/{arm}/seed{seed}/{task}-finetuned.json",
    params:
        bench_dir=lambda wildcards: bench_dir(wildcards.task),
        finetune=config["finetune"],
        train={k: config["pretrain"][k] for k in ("augment", "flip")},
        seed=run_seed,
    log:
        "logs/finetune/{arm}-seed{seed}-{task}.log",
    benchmark:
        "benchmarks/finetune/{arm}-seed{seed}-{task}.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
        gpu=0,
    script:
        "../scripts/finetune.py"
