# Render the synthetic corpus and benchmark stand-ins to mp4, then decode them.


if CORPUS_KIND == "internvid":

    rule internvid_metadata:
        input:
            user_file(config["corpus"]["metadata"], "corpus.metadata"),
        output:
            clips="results/data/{corpus}/metadata.parquet",
            rejects="results/data/{corpus}/metadata_rejects.tsv",
        log:
            "logs/data/internvid_metadata-{corpus}.log",
        benchmark:
            "benchmarks/data/internvid_metadata-{corpus}.tsv"
        resources:
            mem_mb=4000,
            runtime=60,
        params:
            metadata=config["corpus"]["metadata"],
        script:
            "../scripts/internvid_metadata.py"

    rule select_subset:
        input:
            clips="results/data/{corpus}/metadata.parquet",
        output:
            subset="results/data/{corpus}/subset.parquet",
        log:
            "logs/data/select_subset-{corpus}.log",
        benchmark:
            "benchmarks/data/select_subset-{corpus}.tsv"
        resources:
            mem_mb=4000,
            runtime=30,
        params:
            subset=canonical(config["corpus"]["subset"]),
        script:
            "../scripts/select_subset.py"

    # videos/ and ledger.jsonl are not outputs: Snakemake deletes a job's
    # outputs before rerunning it, and they are what a rerun resumes from.
    rule download_clips:
        input:
            clips="results/data/{corpus}/subset.parquet",
        output:
            manifest="results/data/{corpus}/clips.parquet",
            summary="results/data/{corpus}/download.json",
        log:
            "logs/data/download_clips-{corpus}.log",
        benchmark:
            "benchmarks/data/download_clips-{corpus}.tsv"
        threads: config["corpus"]["download"].get("workers", 8)
        resources:
            mem_mb=8000,
            runtime=24 * 60,
        params:
            out_dir=lambda wildcards: f"results/data/{wildcards.corpus}",
            download=canonical(config["corpus"]["download"]),
        script:
            "../scripts/download_clips.py"


rule render_corpus:
    output:
        manifest="results/data/{corpus}/clips.parquet",
        videos=directory("results/data/{corpus}/videos"),
    log:
        "logs/data/render_corpus-{corpus}.log",
    benchmark:
        "benchmarks/data/render_corpus-{corpus}.tsv"
    wildcard_constraints:
        corpus=one_of([CORPUS] if CORPUS_KIND == "synthetic" else []),
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        world=canonical(config["world"]),
        corpus=canonical(config["corpus"]),
        out_dir=lambda wildcards: f"results/data/{wildcards.corpus}",
    script:
        "../scripts/render_corpus.py"


rule render_benchmark:
    output:
        manifest="results/data/benchmarks/{bench}/manifest.parquet",
        meta="results/data/benchmarks/{bench}/meta.json",
        videos=directory("results/data/benchmarks/{bench}/videos"),
    log:
        "logs/data/render_benchmark-{bench}.log",
    benchmark:
        "benchmarks/data/render_benchmark-{bench}.tsv"
    wildcard_constraints:
        bench=one_of(RENDERED_BENCHMARKS),
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        world=canonical(config["world"]),
        settings=benchmark_settings,
        out_dir=lambda wildcards: bench_dir(wildcards.bench),
    script:
        "../scripts/render_benchmark.py"


rule decode_corpus:
    input:
        manifest="results/data/{corpus}/clips.parquet",
    output:
        frames="results/data/{corpus}/frames.npy",
        index="results/data/{corpus}/frames.parquet",
        failures="results/data/{corpus}/failures.tsv",
    log:
        "logs/data/decode_corpus-{corpus}.log",
    benchmark:
        "benchmarks/data/decode_corpus-{corpus}.tsv"
    wildcard_constraints:
        corpus=one_of([CORPUS] if CORPUS_KIND == "synthetic" else []),
    resources:
        mem_mb=4000,
        runtime=60,
    script:
        "../scripts/decode_frames.py"


rule prepare_benchmark:
    input:
        lambda wildcards: [
            f
            for key, path in sorted(config["benchmarks"][wildcards.bench]["annotations"].items())
            for f in user_file(path, f"benchmarks.{wildcards.bench}.annotations.{key}")
        ],
    output:
        manifest="results/data/benchmarks/{bench}/manifest.parquet",
        meta="results/data/benchmarks/{bench}/meta.json",
        missing="results/data/benchmarks/{bench}/missing.tsv",
    log:
        "logs/data/prepare_benchmark-{bench}.log",
    benchmark:
        "benchmarks/data/prepare_benchmark-{bench}.tsv"
    wildcard_constraints:
        bench=one_of(REAL_BENCHMARKS),
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        name=lambda wildcards: wildcards.bench,
        settings=benchmark_settings,
    script:
        "../scripts/prepare_benchmark.py"


rule decode_benchmark:
    input:
        manifest="results/data/benchmarks/{bench}/manifest.parquet",
    output:
        frames="results/data/benchmarks/{bench}/frames.npy",
        index="results/data/benchmarks/{bench}/frames.parquet",
        failures="results/data/benchmarks/{bench}/failures.tsv",
    log:
        "logs/data/decode_benchmark-{bench}.log",
    benchmark:
        "benchmarks/data/decode_benchmark-{bench}.tsv"
    threads: lambda wildcards: 4 if wildcards.bench in REAL_BENCHMARKS else 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        decode=benchmark_decoding,
    script:
        "../scripts/decode_frames.py"
