"""Choose the pretraining subset from the clean InternVid clip table (rule select_subset).

snakemake.input.clips      clean parquet written by internvid_metadata
snakemake.output.subset    parquet with the chosen rows, same columns, table order
snakemake.params.subset    dict {method: first|random|div|flt, size: int|null, seed: int,
                           flt_top_fraction: float (flt only)}; see viclip.data.subset
"""

from viclip.data.subset import select_subset
from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
stats = select_subset(snakemake.input.clips, snakemake.output.subset, dict(snakemake.params.subset))
log.info(
    "wrote %s: %d of %d clips from %d videos",
    snakemake.output.subset,
    stats.selected,
    stats.available,
    stats.videos_selected,
)
