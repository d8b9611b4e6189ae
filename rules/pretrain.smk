# Contrastive pretraining: one job per arm and seed. `pretrain.execution`
# sizes the job (GPUs or CPU processes, nodes, memory, time) and is kept out
# of params: it changes how a run executes, not what it computes, so editing
# it reruns nothing (and a requeued job may resume on another GPU count).


rule pretrain:
    input:
        unpack(get_pretrain_corpus),
        captions=get_arm_captions,
        clip=get_clip_files,
    output:
        checkpoint="results/runs/{arm}/seed{seed}/checkpoint.pt",
        train_log="results/runs/{arm}/seed{seed}/log.jsonl",
    log:
        "logs/pretrain/{arm}-seed{seed}.log",
    benchmark:
        "results/runs/{arm}/seed{seed}/benchmark.tsv"
    conda:
        "../envs/viclip.yaml"
    threads: PRETRAIN_EXECUTION.threads
    resources:
        **get_resources("pretrain"),
    params:
        model=canonical(config["model"]),
        train=get_arm_schedule,
        mask_ratio=get_arm_mask_ratio,
        seed=get_seed,
        code=get_code("pretrain.py"),
    script:
        "../scripts/pretrain.py"
