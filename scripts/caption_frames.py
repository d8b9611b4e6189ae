"""Per-frame captions of the corpus (rule caption_frames)."""

from viclip.captions.backends import image_captioner
from viclip.captions.frames import frame_captions
from viclip.captions.io import read_clips
from viclip.io import atomic_parquet
from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
p = snakemake.params.captions
df = frame_captions(read_clips(snakemake.input.index), image_captioner(p, "frame"), p["frames_per_clip"])
atomic_parquet(df, snakemake.output[0])
log.info("%d clips x %d frame captions, e.g. %r", len(df), p["frames_per_clip"], df["captions"].iloc[0][0])
