# Fine-tuning, which also scores the test split (so the fine-tuned weights are
# not loaded twice): one job per run and task, or with `finetune.jobs:
# per_run` one job per run for all its tasks (see FINETUNE_PER_TASK).
# `finetune.execution` sizes the job and is kept out of params, as pretrain's is.


rule finetune:
    input:
        checkpoint="results/runs/{arm}/seed{seed}/checkpoint.pt",
        frames="results/data/benchmarks/{task}/frames.npy",
        meta="results/data/benchmarks/{task}/meta.json",
    output:
        checkpoint=["results/finetune/{arm}/seed{seed}/{task}/checkpoint.pt"],
        train_log=["results/finetune/{arm}/seed{seed}/{task}/log.jsonl"],
        record=["results/eval/{arm}/seed{seed}/{task}-finetuned.json"],
    log:
        "logs/finetune/{arm}-seed{seed}-{task}.log",
    benchmark:
        "benchmarks/finetune/{arm}-seed{seed}-{task}.tsv"
    wildcard_constraints:
        task=one_of(FINETUNE if FINETUNE_PER_TASK else []),
    conda:
        "../envs/viclip.yaml"
    threads: FINETUNE_EXECUTION.threads
    resources:
        **get_resources("finetune"),
    params:
        plan=get_finetune_plan,
        finetune=get_finetune_settings,
        train=get_finetune_train(),
        seed=get_seed,
        code=get_code("finetune.py"),
    script:
        "../scripts/finetune.py"


if not FINETUNE_PER_TASK:

    use rule finetune as finetune_run with:
        input:
            checkpoint="results/runs/{arm}/seed{seed}/checkpoint.pt",
            frames=expand("results/data/benchmarks/{task}/frames.npy", task=FINETUNE),
            meta=expand("results/data/benchmarks/{task}/meta.json", task=FINETUNE),
        output:
            checkpoint=expand("results/finetune/{{arm}}/seed{{seed}}/{task}/checkpoint.pt", task=FINETUNE),
            train_log=expand("results/finetune/{{arm}}/seed{{seed}}/{task}/log.jsonl", task=FINETUNE),
            record=expand("results/eval/{{arm}}/seed{{seed}}/{task}-finetuned.json", task=FINETUNE),
        log:
            "logs/finetune/{arm}-seed{seed}.log",
        benchmark:
            "benchmarks/finetune/{arm}-seed{seed}.tsv"
