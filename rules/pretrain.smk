# Contrastive pretraining: one job per arm and seed. `pretrain.execution`
# sizes the job (GPUs or CPU processes, nodes, memory, time) and is kept out
# of params: it changes how a run executes, not what it computes, so editing
# it reruns nothing (and a requeued job may resume on another GPU count).

PRETRAIN_EXECUTION = config["pretrain"].get("execution", {})


def pretrain_layout():
    """(nodes, training processes per node, CPU threads per process)."""
    ex = PRETRAIN_EXECUTION
    per_node = ex.get("gpus", 0) or ex.get("nproc", 1)
    return ex.get("nodes", 1), per_node, ex.get("cpus_per_process", 1)


def pretrain_corpus(wildcards):
    """The synthetic corpus trains from its decoded frame cache; a real one decodes its clip files on the fly."""
    if CORPUS_KIND == "synthetic":
        return {"frames": f"results/data/{CORPUS}/frames.npy", "index": f"results/data/{CORPUS}/frames.parquet"}
    return {"manifest": f"results/data/{CORPUS}/clips.parquet"}


rule pretrain:
    input:
        unpack(pretrain_corpus),
        captions=arm_captions,
    output:
        checkpoint="results/runs/{arm}/seed{seed}/checkpoint.pt",
        train_log="results/runs/{arm}/seed{seed}/log.jsonl",
    log:
        "logs/pretrain/{arm}-seed{seed}.log",
    benchmark:
        "results/runs/{arm}/seed{seed}/benchmark.tsv"
    threads: pretrain_layout()[1] * pretrain_layout()[2]
    resources:
        mem_mb=PRETRAIN_EXECUTION.get("mem_mb", 4000),
        runtime=PRETRAIN_EXECUTION.get("runtime_min", 120),
        gpu=PRETRAIN_EXECUTION.get("gpus", 0) * pretrain_layout()[0],
        nodes=pretrain_layout()[0],
        cpus_per_task=pretrain_layout()[1] * pretrain_layout()[2],
    params:
        model=canonical(config["model"]),
        train=arm_train_settings,
        mask_ratio=arm_mask_ratio,
        seed=run_seed,
    script:
        "../scripts/pretrain.py"
