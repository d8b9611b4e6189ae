"""Coarse captions of the corpus: the image captioner on each middle frame (rule caption_coarse)."""

from viclip.captions.backends import image_captioner
from viclip.captions.coarse import coarse_captions
from viclip.captions.io import read_clips
from viclip.io import atomic_parquet
from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
df = coarse_captions(read_clips(snakemake.input.index), image_captioner(snakemake.params.captions, "coarse"))
atomic_parquet(df, snakemake.output[0])
log.info("%d coarse captions, e.g. %r", len(df), df["caption"].iloc[0])
