# Fine-tuning, which also scores the test split (so the fine-tuned weights are
# not loaded twice). `finetune.jobs` picks the job granularity:
#   per_task: one job per run and task; on a cluster the tasks of a run
#             fine-tune in parallel, and a change to one benchmark reruns only
#             that benchmark's fine-tuning;
#   per_run:  one job per run for all tasks; on a CPU this saves a torch
#             start-up (~3 s) per task, which is most of a tiny fine-tune.


from viclip.eval.protocol import finetuned_settings


def finetune_params(wildcards):
    tasks = [wildcards.task] if "task" in wildcards.keys() else FINETUNE
    return {"tasks": tasks, "bench_dirs": [bench_dir(t) for t in tasks]}


if config["finetune"]["jobs"] == "per_task":

    rule finetune:
        input:
            checkpoint="results/runs/{arm}/seed{seed}/checkpoint.pt",
            frames="results/data/benchmarks/{task}/frames.npy",
            meta="results/data/benchmarks/{task}/meta.json",
        output:
            checkpoint=["results/finetune/{arm}/seed{seed}/{task}/checkpoint.pt"],
            train_log=["results/finetune/{arm}/seed{seed}/{task}/log.jsonl"],
            record=["results/eval/{arm}/seed{seed}/{task}-finetuned.json"],
        params:
            plan=finetune_params,
            finetune=canonical({**{k: v for k, v in config["finetune"].items() if k != "jobs"},
                                "evaluate": finetuned_settings(config["evaluate"])}),
            train=canonical({k: config["pretrain"][k] for k in ("augment", "flip")}),
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

else:

    rule finetune:
        input:
            checkpoint="results/runs/{arm}/seed{seed}/checkpoint.pt",
            frames=expand("results/data/benchmarks/{task}/frames.npy", task=FINETUNE),
            meta=expand("results/data/benchmarks/{task}/meta.json", task=FINETUNE),
        output:
            checkpoint=expand("results/finetune/{{arm}}/seed{{seed}}/{task}/checkpoint.pt", task=FINETUNE),
            train_log=expand("results/finetune/{{arm}}/seed{{seed}}/{task}/log.jsonl", task=FINETUNE),
            record=expand("results/eval/{{arm}}/seed{{seed}}/{task}-finetuned.json", task=FINETUNE),
        params:
            plan=finetune_params,
            finetune=canonical({**{k: v for k, v in config["finetune"].items() if k != "jobs"},
                                "evaluate": finetuned_settings(config["evaluate"])}),
            train=canonical({k: config["pretrain"][k] for k in ("augment", "flip")}),
            seed=run_seed,
        log:
            "logs/finetune/{arm}-seed{seed}.log",
        benchmark:
            "benchmarks/finetune/{arm}-seed{seed}.tsv"
        threads: 1
        resources:
            mem_mb=3000,
            runtime=120,
            gpu=0,
        script:
            "../scripts/finetune.py"
