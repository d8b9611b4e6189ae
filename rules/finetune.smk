# Fine-tuning, which also scores the test split (so the fine-tuned weights are
# not loaded twice). `finetune.jobs` picks the job granularity:
#   per_task: one job per run and task; on a cluster the tasks of a run
#             fine-tune in parallel, and a change to one benchmark reruns only
#             that benchmark's fine-tuning;
#   per_run:  one job per run for all tasks; on a CPU this saves a torch
#             start-up (~3 s) per task, which is most of a tiny fine-tune.


# `finetune.execution` sizes the job (GPUs or CPU processes, memory, time,
# resume-point interval) and is kept out of params, as pretrain's is: it
# changes how fine-tuning executes, not what it computes.

from viclip.eval.protocol import finetuned_settings

FINETUNE_EXECUTION = config["finetune"].get("execution", {})


def finetune_layout():
    """(nodes, training processes per node, CPU threads per process)."""
    ex = FINETUNE_EXECUTION
    return ex.get("nodes", 1), ex.get("gpus", 0) or ex.get("nproc", 1), ex.get("cpus_per_process", 1)


def finetune_settings():
    return canonical(
        {
            **{k: v for k, v in config["finetune"].items() if k not in ("jobs", "execution")},
            "evaluate": finetuned_settings(config["evaluate"]),
        }
    )


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
        log:
            "logs/finetune/{arm}-seed{seed}-{task}.log",
        benchmark:
            "benchmarks/finetune/{arm}-seed{seed}-{task}.tsv"
        threads: finetune_layout()[1] * finetune_layout()[2]
        resources:
            mem_mb=FINETUNE_EXECUTION.get("mem_mb", 3000),
            runtime=FINETUNE_EXECUTION.get("runtime_min", 60),
            gpu=FINETUNE_EXECUTION.get("gpus", 0) * finetune_layout()[0],
            nodes=finetune_layout()[0],
            cpus_per_task=finetune_layout()[1] * finetune_layout()[2],
        params:
            plan=finetune_params,
            finetune=finetune_settings(),
            train=canonical({k: config["pretrain"][k] for k in ("augment", "flip")}),
            seed=run_seed,
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
        log:
            "logs/finetune/{arm}-seed{seed}.log",
        benchmark:
            "benchmarks/finetune/{arm}-seed{seed}.tsv"
        threads: finetune_layout()[1] * finetune_layout()[2]
        resources:
            mem_mb=FINETUNE_EXECUTION.get("mem_mb", 3000),
            runtime=FINETUNE_EXECUTION.get("runtime_min", 120),
            gpu=FINETUNE_EXECUTION.get("gpus", 0) * finetune_layout()[0],
            nodes=finetune_layout()[0],
            cpus_per_task=finetune_layout()[1] * finetune_layout()[2],
        params:
            plan=finetune_params,
            finetune=finetune_settings(),
            train=canonical({k: config["pretrain"][k] for k in ("augment", "flip")}),
            seed=run_seed,
        script:
            "../scripts/finetune.py"
