"""Render the synthetic pretraining corpus (rule render_corpus)."""

from viclip.data.synthetic import render_corpus
from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
out = render_corpus(snakemake.params.world, snakemake.params.corpus, snakemake.params.out_dir)
log.info("wrote %s", out)
