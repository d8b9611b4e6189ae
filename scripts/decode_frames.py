"""Decode every clip of a manifest into a frame cache (rules decode_corpus, decode_benchmark)."""

from pathlib import Path

import pandas as pd

from viclip.data.cache import decode_all
from viclip.io import atomic_npy, atomic_parquet, atomic_path
from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
manifest_path = Path(snakemake.input.manifest)
decode = dict(getattr(snakemake.params, "decode", None) or {})  # rule decode_benchmark: {} or the test transform
frames, kept, failures = decode_all(
    manifest_path.parent, pd.read_parquet(manifest_path), workers=snakemake.threads, **decode
)
with atomic_path(snakemake.output.failures) as tmp:
    pd.DataFrame(failures, columns=["clip_id", "path", "error"]).to_csv(tmp, sep="\t", index=False)
atomic_parquet(kept, snakemake.output.index)
atomic_npy(frames, snakemake.output.frames)
log.info(
    "decoded %d clips %s, %d failures (ledger: %s)", len(kept), frames.shape, len(failures), snakemake.output.failures
)
