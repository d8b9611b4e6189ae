# Multi-scale captions of the corpus: coarse (middle frame), per-frame,
# summary of the per-frame captions, and the fused caption.


rule caption_coarse:
    input:
        index="results/data/{corpus}/frames.parquet",
    output:
        "results/captions/{corpus}/coarse.parquet",
    params:
        captions=caption_settings("coarse"),
    log:
        "logs/captions/coarse-{corpus}.log",
    benchmark:
        "benchmarks/captions/coarse-{corpus}.tsv"
    resources:
        mem_mb=2000,
        runtime=60,
    script:
        "../scripts/caption_coarse.py"


rule caption_frames:
    input:
        index="results/data/{corpus}/frames.parquet",
    output:
        "results/captions/{corpus}/frames.parquet",
    params:
        captions=caption_settings("frames"),
    log:
        "logs/captions/frames-{corpus}.log",
    benchmark:
        "benchmarks/captions/frames-{corpus}.tsv"
    resources:
        mem_mb=2000,
        runtime=60,
    script:
        "../scripts/caption_frames.py"


rule summarize:
    input:
        frames="results/captions/{corpus}/frames.parquet",
    output:
        "results/captions/{corpus}/summary.parquet",
    params:
        captions=caption_settings("summary"),
    log:
        "logs/captions/summary-{corpus}.log",
    benchmark:
        "benchmarks/captions/summary-{corpus}.tsv"
    resources:
        mem_mb=2000,
        runtime=60,
    script:
        "../scripts/summarize.py"


rule fuse:
    input:
        coarse="results/captions/{corpus}/coarse.parquet",
        summary="results/captions/{corpus}/summary.parquet",
    output:
        "results/captions/{corpus}/fused.parquet",
    log:
        "logs/captions/fused-{corpus}.log",
    benchmark:
        "benchmarks/captions/fused-{corpus}.tsv"
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/fuse.py"
