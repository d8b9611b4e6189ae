"""Validate the released InternVid metadata into a clean clip table (rule internvid_metadata).

snakemake.params.metadata  the released jsonl or jsonl.gz (e.g. InternVid-10M-FLT.jsonl); also the
                           job's input once it exists (the DAG can be planned before it does)
snakemake.output.clips     clean parquet (viclip.data.internvid.SCHEMA)
snakemake.output.rejects   TSV ledger of rejected lines: line, youtube_id, field, reason, detail
snakemake.params           none read: the result depends on the input file only
"""

from viclip.data.internvid import clean_metadata
from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
stats = clean_metadata(snakemake.params.metadata, snakemake.output.clips, snakemake.output.rejects)
log.info(
    "wrote %s (%d clips) and %s (%d rejected lines)",
    snakemake.output.clips,
    stats.clean,
    snakemake.output.rejects,
    stats.n_rejected,
)
