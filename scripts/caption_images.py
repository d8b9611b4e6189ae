"""Image captions of one shard (rules caption_images, caption_coarse, caption_frames).

`params.captioners` says which variants this job makes: both (caption_images:
each clip decoded once for both captioners) or one of coarse and frames.

`captions.execution` comes from the config, not params: it never changes
what is written.
"""

from viclip.captions.backends import image_captioner
from viclip.captions.coarse import coarse_table, coarse_task
from viclip.captions.frames import frames_table, frames_task
from viclip.captions.io import read_clips, write_variant
from viclip.captions.settings import ExecutionSettings
from viclip.captions.shards import Runner, caption_images, shard_of, shard_tag
from viclip.runtime import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
p, out = snakemake.params, snakemake.output
ex = ExecutionSettings.from_config(snakemake.config["captions"].get("execution"))
shard, n_shards = p.run["shard"], p.run["shards"]
clips = shard_of(read_clips(snakemake.input.index), n_shards, shard)
models = p.captioners  # the captioners of this job's outputs: coarse, frames or both
tasks = []
if "coarse" in models:
    tasks.append(coarse_task(image_captioner(models["coarse"], "coarse", ex)))
if "frames" in models:
    tasks.append(frames_task(image_captioner(models["frames"], "frame", ex), models["frames"]["frames_per_clip"]))
hf = next(iter(models.values()))["backend"] == "hf"
run = Runner(
    ex.cache_dir if hf else None,
    shard_tag(shard, n_shards, snakemake.wildcards.corpus),
    ex.chunk_clips,
    ex.decode_workers,
)
log.info("shard %d of %d: %d clips, tasks %s", shard, n_shards, len(clips), [t.name for t in tasks])
result = caption_images(clips, tasks, run)
if "coarse" in result:
    write_variant(coarse_table(clips, result["coarse"]), "coarse", out.coarse)
if "frames" in result:
    write_variant(frames_table(clips, result["frames"]), "frames", out.frames)
for name, (_, caps) in result.items():
    log.info("%s: %d clips, e.g. %r", name, len(caps), caps[0] if caps else None)
