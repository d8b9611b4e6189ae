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
# killed job resume from its finished chunks. `captions.execution` is kept out of params:
# it changes how jobs run, not what they write.

CAPTIONS = config["captions"]
CAPTION_EXECUTION = CAPTIONS.get("execution", {})
CAPTION_SHARDS = list(range(CAPTIONS.get("shards", 1)))
CAPTION_FUSION = CAPTIONS.get("fusion", "concat")
CAPTION_HF = CAPTIONS["backend"] == "hf"
SHARE_FRAMES = CAPTION_HF and CAPTION_EXECUTION.get("share_frames", False)
CAPTION_SHARD_DIR = "results/captions/{corpus}/shards/{shard}"


wildcard_constraints:
    shard=r"\d+",


def caption_params(part):
    """The captions keys one variant's output depends on: other keys' changes leave it alone."""
    c = CAPTIONS
    if part == "fused":
        out = {"fusion": CAPTION_FUSION}
        if CAPTION_FUSION == "summary_prompted":
            out["summarizer"] = c["hf"]["summarizer"]
        return canonical(out)
    out = {"backend": c["backend"]}
    if part == "frames":
        out["frames_per_clip"] = c["frames_per_clip"]
    if CAPTION_HF:
        role = "summarizer" if part == "summary" else part
        block = dict(c["hf"][role])
        if part == "summary":
            block.pop("fusion_prompt", None)  # read by fuse only
        return canonical({**out, "hf": {role: block}})
    out["seed"] = c["seed"]
    if part == "summary":
        return canonical(
            {**out, "summary_keeps_colour": c["summary_keeps_colour"], "noise": {"summary": c["noise"]["summary"]}}
        )
    return canonical({**out, "noise": {part: c["noise"][part]}})


def caption_shard(wildcards):
    return {"shard": int(wildcards.shard), "shards": len(CAPTION_SHARDS)}


def caption_resources(model_job):
    """`captions.execution` sizes the jobs that run models; a concatenation gets a small job."""
    ex = CAPTION_EXECUTION
    if not model_job:
        return {"mem_mb": 2000, "runtime": 30, "gpu": 0, "cpus_per_task": 1}
    return {
        "mem_mb": ex.get("mem_mb", 2000),
        "runtime": ex.get("runtime_min", 60),
        "gpu": ex.get("gpus", 0) if CAPTION_HF else 0,
        "cpus_per_task": ex.get("cpus", 1),
    }


def caption_variant_files(corpus):
    return expand(
        "results/captions/{corpus}/{variant}.parquet", corpus=corpus, variant=["coarse", "frames", "summary", "fused"]
    )


CAPTION_OUTPUTS = (
    caption_variant_files(CORPUS)
    + [
        f"results/captions/{CORPUS}/stats.json",
        f"results/captions/{CORPUS}/stats.tsv",
    ]
    + expand(CAPTION_SHARD_DIR + "/sheet.png", corpus=CORPUS, shard=CAPTION_SHARDS)
)


rule captions:
    input:
        CAPTION_OUTPUTS,


if SHARE_FRAMES:

    rule caption_images:
        input:
            index=corpus_clips(),
        output:
            coarse=CAPTION_SHARD_DIR + "/coarse.parquet",
            frames=CAPTION_SHARD_DIR + "/frames.parquet",
        log:
            "logs/captions/images-{corpus}-{shard}.log",
        benchmark:
            "benchmarks/captions/images-{corpus}-{shard}.tsv"
        threads: CAPTION_EXECUTION.get("cpus", 1)
        resources:
            **caption_resources(True),
        params:
            coarse=caption_params("coarse"),
            frames=caption_params("frames"),
            run=caption_shard,
        script:
            "../scripts/caption_images.py"

else:

    rule caption_coarse:
        input:
            index=corpus_clips(),
        output:
            coarse=CAPTION_SHARD_DIR + "/coarse.parquet",
        log:
            "logs/captions/coarse-{corpus}-{shard}.log",
        benchmark:
            "benchmarks/captions/coarse-{corpus}-{shard}.tsv"
        threads: CAPTION_EXECUTION.get("cpus", 1)
        resources:
            **caption_resources(True),
        params:
            coarse=caption_params("coarse"),
            run=caption_shard,
        script:
            "../scripts/caption_images.py"

    rule caption_frames:
        input:
            index=corpus_clips(),
        output:
            frames=CAPTION_SHARD_DIR + "/frames.parquet",
        log:
            "logs/captions/frames-{corpus}-{shard}.log",
        benchmark:
            "benchmarks/captions/frames-{corpus}-{shard}.tsv"
        threads: CAPTION_EXECUTION.get("cpus", 1)
        resources:
            **caption_resources(True),
        params:
            frames=caption_params("frames"),
            run=caption_shard,
        script:
            "../scripts/caption_images.py"


rule summarize:
    input:
        frames=CAPTION_SHARD_DIR + "/frames.parquet",
    output:
        CAPTION_SHARD_DIR + "/summary.parquet",
    log:
        "logs/captions/summary-{corpus}-{shard}.log",
    benchmark:
        "benchmarks/captions/summary-{corpus}-{shard}.tsv"
    threads: CAPTION_EXECUTION.get("cpus", 1)
    resources:
        **caption_resources(True),
    params:
        summary=caption_params("summary"),
        run=caption_shard,
    script:
        "../scripts/summarize.py"


# concat reads the summary; summary_prompted reads the frame captions instead
FUSE_INPUTS = {"coarse": CAPTION_SHARD_DIR + "/coarse.parquet"} | (
    {"frames": CAPTION_SHARD_DIR + "/frames.parquet"}
    if CAPTION_FUSION == "summary_prompted"
    else {"summary": CAPTION_SHARD_DIR + "/summary.parquet"}
)


rule fuse:
    input:
        **FUSE_INPUTS,
    output:
        CAPTION_SHARD_DIR + "/fused.parquet",
    log:
        "logs/captions/fused-{corpus}-{shard}.log",
    benchmark:
        "benchmarks/captions/fused-{corpus}-{shard}.tsv"
    threads: caption_resources(CAPTION_FUSION == "summary_prompted")["cpus_per_task"]
    resources:
        **caption_resources(CAPTION_FUSION == "summary_prompted"),
    params:
        fused=caption_params("fused"),
        run=caption_shard,
    script:
        "../scripts/fuse.py"


# A plain file merge: run in the workflow's own process where the executor
# allows (no Python/torch start-up per variant).
rule gather_captions:
    input:
        lambda wildcards: expand(
            CAPTION_SHARD_DIR + "/{variant}.parquet",
            corpus=wildcards.corpus,
            shard=CAPTION_SHARDS,
            variant=wildcards.variant,
        ),
    output:
        "results/captions/{corpus}/{variant}.parquet",
    log:
        "logs/captions/gather-{corpus}-{variant}.log",
    wildcard_constraints:
        variant="coarse|frames|summary|fused",
    resources:
        mem_mb=4000,
        runtime=30,
    run:
        from viclip.captions.io import gather_variant

        gather_variant(list(input), wildcards.variant, output[0], log[0])


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
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/caption_stats.py"


rule caption_sheet:
    input:
        index=corpus_clips(),
        coarse=CAPTION_SHARD_DIR + "/coarse.parquet",
        frames=CAPTION_SHARD_DIR + "/frames.parquet",
        summary=CAPTION_SHARD_DIR + "/summary.parquet",
        fused=CAPTION_SHARD_DIR + "/fused.parquet",
    output:
        CAPTION_SHARD_DIR + "/sheet.png",
    log:
        "logs/captions/sheet-{corpus}-{shard}.log",
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        n_clips=CAPTIONS.get("sheet_clips", 6),
        run=caption_shard,
    script:
        "../scripts/caption_sheet.py"
