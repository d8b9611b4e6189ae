# The corpus and the benchmarks: InternVid metadata -> subset -> downloaded
# clips, or a rendered synthetic corpus; real benchmarks prepared from their
# annotations, or rendered stand-ins; then the frame caches.


if CORPUS_KIND == "internvid":

    rule internvid_metadata:
        input:
            user_file("corpus.metadata"),
        output:
            clips="results/data/{corpus}/metadata.parquet",
            rejects="results/data/{corpus}/metadata_rejects.tsv",
        log:
            "logs/data/internvid_metadata-{corpus}.log",
        benchmark:
            "benchmarks/data/internvid_metadata-{corpus}.tsv"
        conda:
            "../envs/viclip.yaml"
        resources:
            **get_resources("internvid_metadata"),
        params:
            metadata=config["corpus"]["metadata"],
            code=get_code("internvid_metadata.py"),
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
        conda:
            "../envs/viclip.yaml"
        resources:
            **get_resources("select_subset"),
        params:
            subset=canonical(config["corpus"]["subset"]),
            code=get_code("select_subset.py"),
        script:
            "../scripts/select_subset.py"

    # One job per shard (`download.shards`): a contiguous run of the subset,
    # cut into the shared videos/ with its own ledger, so a killed or timed-out
    # shard job resumes alone. videos/ and the ledgers are not outputs:
    # Snakemake deletes a job's outputs before rerunning it, and they are what
    # a rerun resumes from.
    rule download_clips:
        input:
            clips="results/data/{corpus}/subset.parquet",
            source=get_download_source,
        output:
            manifest="results/data/{corpus}/download/{shard}.parquet",
            summary="results/data/{corpus}/download/{shard}.json",
        log:
            "logs/data/download_clips-{corpus}-{shard}.log",
        benchmark:
            "benchmarks/data/download_clips-{corpus}-{shard}.tsv"
        wildcard_constraints:
            shard=r"\d+",
        conda:
            "../envs/viclip.yaml"
        threads: config["corpus"]["download"].get("workers", 8)
        resources:
            **get_download_resources(),
        params:
            out_dir=get_out_dir,
            download=get_download_settings(),
            shard=get_download_shard,
            code=get_code("download_clips.py"),
        script:
            "../scripts/download_clips.py"

    # The shards' manifests in shard order: the manifest an unsharded run writes.
    rule gather_downloads:
        input:
            manifests=get_download_shard_files("parquet"),
            summaries=get_download_shard_files("json"),
        output:
            manifest="results/data/{corpus}/clips.parquet",
            summary="results/data/{corpus}/download.json",
        log:
            "logs/data/gather_downloads-{corpus}.log",
        benchmark:
            "benchmarks/data/gather_downloads-{corpus}.tsv"
        conda:
            "../envs/viclip.yaml"
        resources:
            **get_resources("gather_downloads"),
        params:
            code=get_code("gather_downloads.py"),
        script:
            "../scripts/gather_downloads.py"


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
    conda:
        "../envs/viclip.yaml"
    resources:
        **get_resources("render_corpus"),
    params:
        world=canonical(config["world"]),
        corpus=canonical(config["corpus"]),
        out_dir=get_out_dir,
        code=get_code("render_corpus.py"),
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
    conda:
        "../envs/viclip.yaml"
    resources:
        **get_resources("render_benchmark"),
    params:
        world=canonical(config["world"]),
        settings=get_benchmark_settings,
        out_dir=get_out_dir,
        code=get_code("render_benchmark.py"),
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
    conda:
        "../envs/viclip.yaml"
    resources:
        **get_resources("decode_corpus"),
    params:
        code=get_code("decode_frames.py"),
    script:
        "../scripts/decode_frames.py"


rule prepare_benchmark:
    input:
        get_benchmark_files,
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
    conda:
        "../envs/viclip.yaml"
    resources:
        **get_resources("prepare_benchmark"),
    params:
        name=get_bench_name,
        settings=get_benchmark_settings,
        code=get_code("prepare_benchmark.py"),
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
    conda:
        "../envs/viclip.yaml"
    threads: get_decode_threads
    resources:
        **get_resources("decode_benchmark"),
    params:
        decode=get_benchmark_decoding,
        code=get_code("decode_frames.py"),
    script:
        "../scripts/decode_frames.py"
