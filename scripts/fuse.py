"""Fuse coarse captions with the fine scale, for one shard (rule fuse); `captions.fusion` picks the rule."""

import pandas as pd

from viclip.captions.backends import summarizer
from viclip.captions.fused import fused_captions
from viclip.captions.io import check_variant, write_variant
from viclip.captions.settings import ExecutionSettings
from viclip.captions.shards import Runner, shard_tag
from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
p, inp = snakemake.params, snakemake.input
tables = {
    k: check_variant(pd.read_parquet(getattr(inp, k)), k, getattr(inp, k))
    for k in ("coarse", "summary", "frames")
    if k in inp.keys()
}  # noqa: SIM118 (`in` on a Namedlist looks at its values)
rule = p.fused["fusion"]
summ, run = None, None
if rule == "summary_prompted":
    ex = ExecutionSettings.from_config(snakemake.config["captions"].get("execution"))
    summ = summarizer({"backend": "hf", "hf": {"summarizer": p.fused["summarizer"]}}, ex)
    run = Runner(ex.cache_dir, shard_tag(p.run["shard"], p.run["shards"], snakemake.wildcards.corpus), ex.chunk_clips)
df = fused_captions(rule, tables["coarse"], tables.get("summary"), tables.get("frames"), summ, run)
write_variant(df, "fused", snakemake.output[0])
log.info("%d fused captions (%s), e.g. %r", len(df), rule, df["caption"].iloc[0] if len(df) else None)
