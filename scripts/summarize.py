"""Summarise each clip's per-frame captions into one caption, for one shard (rule summarize)."""

import pandas as pd

from viclip.captions.backends import summarizer
from viclip.captions.io import check_variant, write_variant
from viclip.captions.settings import ExecutionSettings
from viclip.captions.shards import Runner, shard_tag
from viclip.captions.summary import summary_captions
from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
ex = ExecutionSettings.from_config(snakemake.config["captions"].get("execution"))
hf = p.summary["backend"] == "hf"
run = Runner(
    ex.cache_dir if hf else None, shard_tag(p.run["shard"], p.run["shards"], snakemake.wildcards.corpus), ex.chunk_clips
)
frames = check_variant(pd.read_parquet(snakemake.input.frames), "frames", snakemake.input.frames)
df = summary_captions(frames, summarizer(p.summary, ex), run)
write_variant(df, "summary", snakemake.output[0])
log.info("%d summaries, e.g. %r", len(df), df["caption"].iloc[0] if len(df) else None)
