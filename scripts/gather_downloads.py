"""The download shards' manifests and summaries, joined in shard order (rule gather_downloads).

snakemake.input.manifests  each shard's manifest parquet, in shard order
snakemake.input.summaries  each shard's summary json, in the same order
snakemake.output.manifest  results/data/{corpus}/clips.parquet: what an unsharded run writes
snakemake.output.summary   json: clip counts by latest status over all shards, and the shards' ledgers
"""

import json

from viclip.data.shards import gather
from viclip.io import atomic_json, atomic_parquet
from viclip.runtime import setup_job

log = setup_job(snakemake.log[0])
summaries = [json.loads(open(p).read()) for p in snakemake.input.summaries]
manifest, summary = gather(list(snakemake.input.manifests), summaries)
atomic_parquet(manifest, snakemake.output.manifest)
atomic_json(summary, snakemake.output.summary)
log.info("gathered %d clips of %d shards: %s", len(manifest), len(summaries), summary["by_status"])
