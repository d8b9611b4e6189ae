"""Render one synthetic benchmark stand-in (rule render_benchmark)."""

from viclip.data.benchmarks.synthetic import build_benchmark
from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
out = build_benchmark(
    snakemake.wildcards.bench, snakemake.params.settings, snakemake.params.world, snakemake.params.out_dir
)
log.info("wrote %s", out)
