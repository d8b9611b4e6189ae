# Multi-scale captions of the corpus, in `captions.shards` shards: coarse
# (middle frame), per-frame, summary of the per-frame captions, and the
# fused caption, each gathered into results/captions/{corpus}/{variant}.parquet,
# plus length statistics and a sample sheet per shard (target `captions`).
#
# `captions.backend` (synthetic | hf) is the only switch between the synthetic
# world's captioner and real transformers models; both write the same files.
# Each rule's params hold only the keys its output depends on, so changing the
# summarizer reruns only summarize, fuse and what reads them. With the hf
# backend and `execution.share_frames`, one job per shard decodes each clip
# once for both image captioners (rule caption_images); changing either
# captioner then reruns that job, and the other captioner's captions come back
# from the caption cache (`execution.cache_dir`) but their rewritten file
# reruns what reads it, so sharing is off by default. The cache also lets a
# killed job resume from its finished chunks. `captions.execution` is kept out
# of params: it changes how jobs run, not what they write.


wildcard_constraints:
    shard=r"\d+",


rule captions:
    input:
        CAPTION_OUTPUTS,


rule caption_images:
    input:
        index=get_corpus_clips(),
    output:
        coarse="results/captions/{corpus}/shards/{shard}/coarse.parquet",
        frames="results/captions/{corpus}/shards/{shard}/frames.parquet",
    log:
        "logs/captions/images-{corpus}-{shard}.log",
    benchmark:
        "benchmarks/captions/images-{corpus}-{shard}.tsv"
    wildcard_constraints:
        corpus=one_of([CORPUS] if SHARE_FRAMES else []),
    conda:
        "../envs/viclip.yaml"
    threads: CAPTION_EXECUTION.cpus
    resources:
        **get_resources("captions"),
    params:
        captioners=get_captioners("coarse", "frames"),
        run=get_caption_shard,
        code=get_code("caption_images.py"),
    script:
        "../scripts/caption_images.py"


# Without shared frames, each image captioner is a job of its own.
if not SHARE_FRAMES:

    use rule caption_images as caption_coarse with:
        output:
            coarse="results/captions/{corpus}/shards/{shard}/coarse.parquet",
        log:
            "logs/captions/coarse-{corpus}-{shard}.log",
        benchmark:
            "benchmarks/captions/coarse-{corpus}-{shard}.tsv"
        wildcard_constraints:
            corpus=CORPUS,
        params:
            captioners=get_captioners("coarse"),

    use rule caption_images as caption_frames with:
        output:
            frames="results/captions/{corpus}/shards/{shard}/frames.parquet",
        log:
            "logs/captions/frames-{corpus}-{shard}.log",
        benchmark:
            "benchmarks/captions/frames-{corpus}-{shard}.tsv"
        wildcard_constraints:
            corpus=CORPUS,
        params:
            captioners=get_captioners("frames"),


rule summarize:
    input:
        frames="results/captions/{corpus}/shards/{shard}/frames.parquet",
    output:
        "results/captions/{corpus}/shards/{shard}/summary.parquet",
    log:
        "logs/captions/summary-{corpus}-{shard}.log",
    benchmark:
        "benchmarks/captions/summary-{corpus}-{shard}.tsv"
    conda:
        "../envs/viclip.yaml"
    threads: CAPTION_EXECUTION.cpus
    resources:
        **get_resources("captions"),
    params:
        summary=get_caption_params("summary"),
        run=get_caption_shard,
        code=get_code("summarize.py"),
    script:
        "../scripts/summarize.py"


rule fuse:
    input:
        unpack(get_fuse_inputs),
    output:
        "results/captions/{corpus}/shards/{shard}/fused.parquet",
    log:
        "logs/captions/fused-{corpus}-{shard}.log",
    benchmark:
        "benchmarks/captions/fused-{corpus}-{shard}.tsv"
    conda:
        "../envs/viclip.yaml"
    threads: get_fuse_resources().get("cpus_per_task", 1)
    resources:
        **get_fuse_resources(),
    params:
        fused=get_caption_params("fused"),
        run=get_caption_shard,
        code=get_code("fuse.py"),
    script:
        "../scripts/fuse.py"


rule gather_captions:
    input:
        get_caption_shards,
    output:
        "results/captions/{corpus}/{variant}.parquet",
    log:
        "logs/captions/gather-{corpus}-{variant}.log",
    wildcard_constraints:
        variant="|".join(CAPTION_VARIANTS),
    conda:
        "../envs/viclip.yaml"
    resources:
        **get_resources("gather_captions"),
    params:
        code=get_code("gather_captions.py"),
    script:
        "../scripts/gather_captions.py"


rule caption_stats:
    input:
        coarse="results/captions/{corpus}/coarse.parquet",
        frames="results/captions/{corpus}/frames.parquet",
        summary="results/captions/{corpus}/summary.parquet",
        fused="results/captions/{corpus}/fused.parquet",
    output:
        json="results/captions/{corpus}/stats.json",
        tsv="results/captions/{corpus}/stats.tsv",
    log:
        "logs/captions/stats-{corpus}.log",
    conda:
        "../envs/viclip.yaml"
    resources:
        **get_resources("caption_stats"),
    params:
        code=get_code("caption_stats.py"),
    script:
        "../scripts/caption_stats.py"


rule caption_sheet:
    input:
        index=get_corpus_clips(),
        coarse="results/captions/{corpus}/shards/{shard}/coarse.parquet",
        frames="results/captions/{corpus}/shards/{shard}/frames.parquet",
        summary="results/captions/{corpus}/shards/{shard}/summary.parquet",
        fused="results/captions/{corpus}/shards/{shard}/fused.parquet",
    output:
        "results/captions/{corpus}/shards/{shard}/sheet.png",
    log:
        "logs/captions/sheet-{corpus}-{shard}.log",
    conda:
        "../envs/viclip.yaml"
    resources:
        **get_resources("caption_sheet"),
    params:
        n_clips=CAPTIONS.get("sheet_clips", 6),
        run=get_caption_shard,
        code=get_code("caption_sheet.py"),
    script:
        "../scripts/caption_sheet.py"
