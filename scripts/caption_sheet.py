"""A sample sheet of one shard: frames beside their captions (rule caption_sheet)."""

import pandas as pd

from viclip.captions.io import check_variant, read_clips
from viclip.captions.shards import shard_of
from viclip.captions.sheet import render_sheet
from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
p, inp = snakemake.params, snakemake.input
clips = shard_of(read_clips(inp.index), p.run["shards"], p.run["shard"])
tables = {
    v: check_variant(pd.read_parquet(getattr(inp, v)), v, getattr(inp, v))
    for v in ("coarse", "frames", "summary", "fused")
}
shown = render_sheet(
    clips,
    tables,
    snakemake.output[0],
    p.n_clips,
    title=f"{snakemake.wildcards.corpus}, shard {p.run['shard'] + 1} of {p.run['shards']}",
)
log.info("sheet of %d clips: %s", len(shown), ", ".join(shown))
