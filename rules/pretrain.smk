# Contrastive pretraining: one job per trained arm and seed. `pretrain.execution`
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
    wildcard_constraints:
        arm=one_of(TRAINED_ARMS),
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


# A released-weights arm (`pretrain: false`): its official ViCLIP file becomes
# the checkpoint a pretraining run would have written, at the same path, so
# evaluation and fine-tuning take it as they take a trained run's. One run,
# under the first seed (RELEASED_SEED).


rule import_released:
    input:
        get_released_file,
    output:
        checkpoint="results/runs/{arm}/seed{seed}/checkpoint.pt",
    log:
        "logs/import/{arm}-seed{seed}.log",
    benchmark:
        "benchmarks/import/{arm}-seed{seed}.tsv"
    wildcard_constraints:
        arm=one_of(RELEASED_ARMS),
        seed=str(RELEASED_SEED),
    conda:
        "../envs/viclip.yaml"
    threads: 1
    resources:
        **get_resources("import_released"),
    params:
        source=get_released_path,
        key=get_released_key,
        model=canonical(config["model"]),
        seed=get_seed,
        code=get_code("import_checkpoint.py"),
    script:
        "../scripts/import_checkpoint.py"
