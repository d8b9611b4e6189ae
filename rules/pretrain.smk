# Contrastive pretraining: one job per arm and seed.


rule pretrain:
    input:
        frames=f"results/data/{CORPUS}/frames.npy",
        index=f"results/data/{CORPUS}/frames.parquet",
        captions=arm_captions,
    output:
        checkpoint="results/runs/{arm}/seed{seed}/checkpoint.pt",
        train_log="results/runs/{arm}/seed{seed}/log.jsonl",
    params:
        model=canonical(config["model"]),
        train=arm_train_settings,
        mask_ratio=arm_mask_ratio,
        seed=run_seed,
    log:
        "logs/pretrain/{arm}-seed{seed}.log",
    benchmark:
        "results/runs/{arm}/seed{seed}/benchmark.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=0,
    script:
        "../scripts/pretrain.py"
