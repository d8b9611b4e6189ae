"""Caption length statistics per variant (rule caption_stats)."""

import pandas as pd

from viclip.captions.io import VARIANTS, check_variant
from viclip.captions.stats import REFERENCE, stats_table, variant_stats
from viclip.io import atomic_json, atomic_path
from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
tables = {
    v: check_variant(pd.read_parquet(getattr(snakemake.input, v)), v, getattr(snakemake.input, v)) for v in VARIANTS
}
stats = variant_stats(tables)
atomic_json({"variants": stats, "reference": REFERENCE}, snakemake.output.json)
with atomic_path(snakemake.output.tsv) as tmp:
    stats_table(stats).to_csv(tmp, sep="\t", index=False, float_format="%.4g")
for name, s in stats.items():
    log.info("%s: %d captions, %.1f words on average", name, s["n"], s.get("words_mean", 0.0))
