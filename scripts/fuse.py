"""Fuse coarse captions and summaries (rule fuse)."""

import pandas as pd

from viclip.captions.fused import fuse
from viclip.io import atomic_parquet
from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
df = fuse(pd.read_parquet(snakemake.input.coarse), pd.read_parquet(snakemake.input.summary))
atomic_parquet(df, snakemake.output[0])
log.info("%d fused captions, e.g. %r", len(df), df["caption"].iloc[0])
