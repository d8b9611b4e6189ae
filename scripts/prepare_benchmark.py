"""Turn a user's local copy of a public benchmark into the standard manifest (rule prepare_benchmark).

params.settings (one entry of config `benchmarks`, e.g. benchmarks.k400):
  reader       one of viclip.data.benchmarks.readers.READERS (kinetics400, ssv2, msrvtt, ...)
  annotations  {key: path}: split names (train/val/test) and the extra files a
               reader needs (labels, data_json, captions); see the reader's docstring
  video_root   folder searched (recursively) for the videos
  splits       optional: which splits to read (default: every split key in annotations)
  extensions   optional: video file extensions, in order of preference
  options      optional: reader options (kinetics: naming; didemo: first_30s)
  templates    optional: prompt templates written to meta.json for classification
params.name: the benchmark name written to meta.json.
output: manifest (manifest.parquet), meta (meta.json), missing (missing.tsv), each written atomically.
"""

from viclip.data.benchmarks.readers import prepare, write
from viclip.data.benchmarks.readers.common import DEFAULT_EXTENSIONS
from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
s = snakemake.params.settings
manifest, meta, missing = prepare(
    snakemake.params.name,
    s["reader"],
    s["annotations"],
    s["video_root"],
    splits=s.get("splits"),
    extensions=s.get("extensions", DEFAULT_EXTENSIONS),
    options=s.get("options"),
    templates=s.get("templates"),
)
write(manifest, meta, missing, snakemake.output.manifest, snakemake.output.meta, snakemake.output.missing)
log.info(
    "%s: %d videos in the manifest, %d missing (listed in %s)",
    meta["name"],
    len(manifest),
    len(missing),
    snakemake.output.missing,
)
