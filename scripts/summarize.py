"""Summarise per-frame captions into one caption per clip (rule summarize)."""

import pandas as pd

from viclip.captions.backends import summarizer
from viclip.captions.summary import summary_captions
from viclip.io import atomic_parquet
from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
df = summary_captions(pd.read_parquet(snakemake.input.frames), summarizer(snakemake.params.captions))
atomic_parquet(df, snakemake.output[0])
log.info("%d summaries, e.g. %r", len(df), df["caption"].iloc[0])
