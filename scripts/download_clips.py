"""Download and cut one shard of the corpus clips, resumably (rule download_clips; gather_downloads joins them).

snakemake.input.clips      parquet with clip_id, youtube_id, start_s, end_s
snakemake.output.manifest  parquet of this shard's clips that were cut and probed (viclip.data.download.MANIFEST_COLUMNS)
snakemake.output.summary   json: this shard's clip counts by latest status
snakemake.params.out_dir   folder for videos/ and the shard's ledger.s{k}of{n}.jsonl. These must not be rule outputs:
                           Snakemake deletes outputs before rerunning a job, and they are what a rerun resumes from.
snakemake.params.shard     {shard: k, shards: n}: this job cuts the k-th of n contiguous runs of the table
snakemake.params.download  the config's `download:` section:
    source                youtube | local
    local_dir             folder of full videos {youtube_id}.mp4|.mkv|.webm (source: local)
    url_template          yt-dlp URL with {id} (default https://www.youtube.com/watch?v={id})
    cookies               cookies.txt for yt-dlp, or null
    max_height            best format no taller than this
    ratelimit_bytes       yt-dlp download bandwidth cap in bytes/s, or null
    section               fetch only the clip's section (true) or the whole video
    js_runtime            JavaScript runtime yt-dlp needs for YouTube: deno (default) | node | bun | quickjs[:path]
    workers               clips in flight at once
    min_interval_s        seconds between two fetch starts over all workers
    attempts, backoff_s   tries per run for transient failures; retry k waits backoff_s * 2**(k-1)
    max_total_attempts    stop retrying a transiently failing clip after this many tries over all runs
    retry_statuses        permanent statuses to try again in this run (e.g. [login_required])
    short_side, fps       output clips: short side in pixels (even) and frame rate
    duration_tolerance_s  slack on top of one output frame for |probed duration - (end - start)| (default 0)
"""

from pathlib import Path

import pandas as pd

from viclip.data.download import download_clips, options_from_config, source_from_config
from viclip.io import atomic_json, atomic_parquet
from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
cfg = dict(snakemake.params.download)
clips_path = Path(snakemake.input.clips)
shard = (int(snakemake.params.shard["shard"]), int(snakemake.params.shard["shards"]))
result = download_clips(
    pd.read_parquet(clips_path),
    snakemake.params.out_dir,
    source_from_config(cfg),
    options_from_config(cfg),
    name=str(clips_path),
    shard=shard,
)
atomic_parquet(result.manifest, snakemake.output.manifest)
atomic_json(
    {
        "n_clips": int(sum(result.status_counts.values())),
        "n_ok": len(result.manifest),
        "attempted_this_run": result.attempted,
        "by_status": result.status_counts,
        "shard": shard[0],
        "shards": shard[1],
        "ledger": str(result.ledger),
    },
    snakemake.output.summary,
)
log.info("wrote %s (%d clips) and %s", snakemake.output.manifest, len(result.manifest), snakemake.output.summary)
